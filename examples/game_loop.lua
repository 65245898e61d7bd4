-- A fixed-tick game loop: client:poll(0) once per tick never waits, spawned tasks call
-- actions (each yields until its answer), and events arrive between ticks.
--   RIVET_ENDPOINT=http://127.0.0.1:6420 lua5.4 examples/game_loop.lua
-- (a server with examples/actors/index.mjs; `make demo` starts one)
local rivet = require("rivet")
local now = require("rivet.core").now

local client = rivet.client(os.getenv("RIVET_ENDPOINT") or "http://127.0.0.1:6420", { timeout = 10 })
local score = client.counter:getOrCreate({ "game-score", os.time() .. "-" .. math.random(1e9) })
local conn = score:connect()

local shown = 0     -- what the HUD shows: updated only by events
local events = 0
conn:on("newCount", function(n) shown = n; events = events + 1 end)
conn:onStatusChange(function(s) print("connection: " .. s) end)
conn:onError(function(err) print("connection error: " .. tostring(err)) end)

local TICK = 1 / 30          -- 30 ticks per second
local RUN_FOR = 3            -- seconds
local start = now()
local next_tick = start
local ticks, calls, done, longest_poll = 0, 0, 0, 0

while now() - start < RUN_FOR do
  -- 1. network: ready I/O, events, resumed tasks; returns at once
  local t0 = now()
  client:poll(0)
  longest_poll = math.max(longest_poll, now() - t0)

  -- 2. game logic: every 10th tick the player scores; the call runs in a task
  ticks = ticks + 1
  if ticks % 10 == 0 then
    calls = calls + 1
    client:spawn(function()
      conn:increment(1)    -- yields this task, not the game loop
      done = done + 1
    end)
  end

  -- 3. render (here: a status line twice a second)
  if ticks % 15 == 0 then
    print(string.format("tick %3d  score %3d  calls %d/%d", ticks, shown, done, calls))
  end

  -- 4. sleep what is left of the tick (the game's own timing, not the library's)
  next_tick = next_tick + TICK
  local left = next_tick - now()
  -- (a real game waits for vsync here; plain Lua has no sub-second sleep)
  if left > 0 then os.execute(string.format("sleep %.3f", left)) end
end

-- drain the last calls before leaving
local deadline = now() + 5
while (done < calls or shown < calls) and now() < deadline do client:poll(0.02) end
print(string.format("%d ticks, %d calls answered, %d events, final score %d (server says %d), longest poll(0) %.1f ms",
  ticks, done, events, shown, conn:getCount(), longest_poll * 1000))
assert(done == calls and shown == calls, "every call answered and every event seen")
conn:dispose()
client:dispose()
