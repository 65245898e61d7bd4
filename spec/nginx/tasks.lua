-- client:spawn, futures and rivet.all in request handlers: tasks run in light threads of
-- the request, futures can be awaited from another light thread than the one that made them.
local rivet = require("rivet")
local clients = require("clients")

local M = {}

local function sorted(t)
  local out = {}
  for i = 1, #t do out[i] = t[i] end
  table.sort(out)
  return out
end

--- n spawned tasks calling increment, gathered with rivet.all; a future made in the
--- request's thread awaited inside a task; async calls gathered in the request's thread.
function M.spawn(args)
  local client = clients.get(args)
  local h = client.counter:getOrCreate(args.key)
  local n = tonumber(args.n) or 5
  local tasks = {}
  for i = 1, n do
    tasks[i] = client:spawn(function(by) return h:increment(by) end, 1)
  end
  local spawned = rivet.all(tasks)
  local f = h:async("getCount")
  local across = client:spawn(function() return f:await() + 1000 end):await()
  local fs = {}
  for i = 1, 3 do fs[i] = h:async("increment", 10) end
  local asyncs = rivet.all(fs)
  return { spawned = sorted(spawned), across = across, asyncs = sorted(asyncs), count = h:getCount() }
end

--- Spawned tasks, then client:run(): it returns once they are done. poll(0) returns at once.
function M.run(args)
  local client = clients.get(args)
  local h = client.counter:getOrCreate(args.key)
  local done = 0
  for _ = 1, 3 do
    client:spawn(function()
      h:increment(1)
      done = done + 1
    end)
  end
  local before = done
  client:run()
  local after_run = done
  client:poll(0)
  return { before = before, after_run = after_run, count = h:getCount() }
end

return M
