-- A cqueues program that talks to an actor: calls made in cqueues coroutines yield to
-- cqueues, so other coroutines run while they wait. rivet.cqueues adds the client's own
-- watcher coroutine to the controller.
--   RIVET_ENDPOINT=http://127.0.0.1:6420 lua5.4 examples/cqueues_host.lua
-- (a server with examples/actors/index.mjs; `make demo` starts one; apt install lua-cqueues)
local cqueues = require("cqueues")
local rivet = require("rivet")

local client = rivet.client(os.getenv("RIVET_ENDPOINT") or "http://127.0.0.1:6420", { timeout = 10 })
local cq = cqueues.new()
rivet.cqueues(client, cq)

local key = { "cqueues-host", os.time() .. "-" .. math.random(1e9) }

-- three workers, each calling the same actor; they interleave while their calls wait
for w = 1, 3 do
  cq:wrap(function()
    local counter = client.counter:getOrCreate(key)
    for _ = 1, 3 do
      print(("worker %d: increment -> %d"):format(w, counter:increment(1)))
    end
  end)
end

-- a coroutine that does something else meanwhile
cq:wrap(function()
  for i = 1, 3 do
    cqueues.sleep(0.05)
    print("heartbeat " .. i)
  end
end)

-- when the workers are done, the total is 9; then the client is disposed, which ends
-- its watcher and lets cq:loop() return
cq:wrap(function()
  local counter = client.counter:getOrCreate(key)
  while counter:getCount() < 9 do cqueues.sleep(0.05) end
  print("total: " .. counter:getCount())
  client:dispose()
end)

assert(cq:loop())
