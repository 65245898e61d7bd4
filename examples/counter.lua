-- The first thing to run: find or create a counter actor and call its actions.
--   make demo            (starts a local Rivet server with examples/actors and runs this)
--   RIVET_ENDPOINT=http://127.0.0.1:6420 lua5.4 examples/counter.lua
local rivet = require("rivet")

local client = rivet.client(os.getenv("RIVET_ENDPOINT") or "http://127.0.0.1:6420")
print("server: RivetKit " .. client:server().version)

-- A handle: nothing is sent until the first call. The key names this counter.
local counter = client.counter:getOrCreate({ "demo", tostring(os.time()) })

for i = 1, 3 do
  local count = counter:increment(i)   -- a stateless action over HTTP
  print(string.format("increment(%d) -> %d", i, count))
end
print("getCount() -> " .. counter:getCount())
print("actor id: " .. counter:resolve())

-- Errors are rivet.ActorError values with group, code and message.
local ok, err = pcall(counter.action, counter, "noSuchAction")
print("calling a missing action fails: " .. tostring(err) .. " (" .. tostring(not ok) .. ")")

-- Many calls in flight at once, from the main chunk.
local futures = {}
for i = 1, 5 do futures[i] = counter:async("increment", 1) end
local results = rivet.all(futures)
table.sort(results)
print("five concurrent increments -> " .. table.concat(results, ", "))

client:dispose()
