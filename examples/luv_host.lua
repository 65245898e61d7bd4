-- A luv (libuv) program that talks to an actor with no poll loop of its own: rivet.luv
-- hands the client's descriptor and timers to libuv, and uv.run() drives everything.
--   RIVET_ENDPOINT=http://127.0.0.1:6420 lua5.4 examples/luv_host.lua
-- (a server with examples/actors/index.mjs; `make demo` starts one; apt install lua-luv)
local uv = require("luv")
local rivet = require("rivet")

local client = rivet.client(os.getenv("RIVET_ENDPOINT") or "http://127.0.0.1:6420", { timeout = 10 })
rivet.luv(client)

local counter = client.counter:getOrCreate({ "luv-host", os.time() .. "-" .. math.random(1e9) })
local conn = counter:connect()
local seen = 0
conn:on("newCount", function(n)
  seen = seen + 1
  print("event: count is now " .. n)
end)

-- a libuv timer of the program's own: every 100 ms it starts a call in a task (calls in
-- tasks yield; libuv goes on meanwhile)
local ticks = 0
local timer = uv.new_timer()
timer:start(100, 100, function()
  ticks = ticks + 1
  client:spawn(function()
    print("increment -> " .. conn:increment(ticks))
  end)
  if ticks == 5 then
    timer:close()
    client:spawn(function()
      while seen < 5 do client:sleep(0.05) end -- the last events
      conn:dispose()
      client:dispose() -- nothing left to watch: uv.run() returns
    end)
  end
end)

uv.run()
print(("done: %d calls, %d events"):format(ticks, seen))
assert(seen == 5, "expected 5 events")
