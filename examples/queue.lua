-- Queues (RivetKit 2.3): hand work to an actor's run loop and, if you like, wait for
-- its answer.
--   RIVET_DEMO_SERVER=v23 scripts/demo.sh examples/queue.lua
--   RIVET_ENDPOINT=http://127.0.0.1:6420 lua5.4 examples/queue.lua
local rivet = require("rivet")

local client = rivet.client(os.getenv("RIVET_ENDPOINT") or "http://127.0.0.1:6420")
local server = client:server()
if server.line ~= "2.3" then
  -- 2.0 servers have no queues: the call says so
  local ok, err = pcall(function() return client.counter:getOrCreate("q"):send("jobs", 1) end)
  print("RivetKit " .. server.version .. ": " .. tostring(err) .. " (" .. tostring(not ok) .. ")")
  client:dispose()
  return
end

local worker = client.worker:getOrCreate({ "queue-example", tostring(os.time()) })

-- Fire and forget: returns once the actor has accepted the message.
worker:send("jobs", { task = "resize", image = "cat.png" })

-- Send and wait for the run loop to complete it (at most 10 s).
local r = worker:send("jobs", { task = "thumbnail", size = 64 }, { wait = true, timeout = 10 })
print("status: " .. r.status .. ", handled so far: " .. tostring(r.response.n)
  .. ", echo: " .. r.response.echo.task)

-- Many at once from a task; each waits for its own completion.
local futures = {}
for i = 1, 3 do
  futures[i] = client:spawn(function()
    return worker:send("jobs", { task = "batch", i = i }, { wait = true }).response.echo.i
  end)
end
local done = rivet.all(futures)
print("batch completed: " .. table.concat(done, ", "))

client:dispose()
