-- rivet.luv(client [, uv]): runs a client inside a luv (libuv) program.
--
-- The client's descriptor (one epoll set of its sockets, csrc/host.c: the same for as
-- long as it is attached, so it is asked for once) becomes one uv poll handle, its next
-- timed work (client:timeout()) one uv timer; either calls client:poll(0). A prepare
-- handle, which libuv runs before every wait, asks client:timeout() again (which also
-- brings the client's set up to date), so calls made from luv callbacks are seen before
-- libuv sleeps. Nothing spins: an idle client costs the wake-ups of its own timers only.
--
-- Calls inside client:spawn() tasks yield to the client's scheduler, which luv now drives;
-- a call made directly in a luv callback (outside a task) runs the loop itself until it
-- is done, as anywhere outside a task. The client keeps uv.run() going while it has work
-- (a task, a transfer, a connection, a timer); its handles alone do not.
local M = {}

local ceil = math.ceil

--- Attaches client to luv's loop (uv: the luv module, default require("luv")).
--- Returns a handle whose :close() detaches it (client:dispose() does too).
function M.attach(client, uv)
  uv = uv or require("luv")
  if type(uv) ~= "table" or type(uv.new_poll) ~= "function" then
    error("bad argument #2 to 'rivet.luv': expected the luv module", 3)
  end
  local sched = client._sched -- (init.lua checked that it can be hosted)
  local fd = not client._disposed and sched:host_fd()
  local kick
  local watcher = fd and uv.new_poll(fd)
  local timer = uv.new_timer()
  local prepare = uv.new_prepare()
  local host = { closed = false }
  sched.hosted = true
  timer:unref()
  -- the prepare handle alone is referenced while the client has work: it is what keeps
  -- uv.run() going
  local referenced = false
  local function alive(yes)
    if yes ~= referenced and not host.closed then
      referenced = yes
      if yes then prepare:ref() else prepare:unref() end
    end
  end

  local function service()
    if host.closed then return end
    if client._disposed then host:close(); return end
    client:poll(0)
  end
  local function on_ready() service() end

  local function sync()
    if host.closed then return end
    if client._disposed then host:close(); return end
    local t = client:timeout()
    if t then
      timer:start(ceil(t * 1000), 0, service)
    else
      timer:stop()
    end
    alive(sched:_alive())
  end

  function host.close()
    if host.closed then return end
    host.closed = true
    prepare:close()
    timer:close()
    if watcher then watcher:close() end
    client._host = nil
    if sched.host_kick == kick then sched.host_kick = nil end
  end

  function kick() alive(true) end
  if watcher then
    watcher:start("r", on_ready)
    watcher:unref()
  end
  prepare:start(sync)
  prepare:unref()
  sched.host_kick = kick
  client._host = host
  sync()
  return host
end

return M
