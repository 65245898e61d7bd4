-- rivet.luv(client [, uv]): runs a client inside a luv (libuv) program.
--
-- The client's descriptor (client:pollfds(): one epoll set of its sockets) becomes a uv
-- poll handle, its next timed work (client:timeout()) one uv timer; either calls
-- client:poll(0). A prepare handle, which
-- libuv runs before every wait, brings the handles up to date with what the client wants
-- then, so calls made from luv callbacks are seen before libuv sleeps. Nothing spins: an
-- idle client costs the wake-ups of its own timers only.
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
  local loop = sched.loop
  local flat = {}
  local kick
  local watchers = {} -- fd -> { poll handle, events, mark }
  local mark = 0
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
    mark = mark + 1
    local n = loop:pollfds(flat) -- (csrc/host.c: descriptors that stay while attached)
    for i = 1, n do
      local fd, ev = flat[2 * i - 1], flat[2 * i]
      local w = watchers[fd]
      if not w then
        local h = uv.new_poll(fd)
        h:start(ev, on_ready)
        h:unref()
        w = { h, ev, mark }
        watchers[fd] = w
      elseif w[2] ~= ev then
        w[1]:start(ev, on_ready)
        w[2] = ev
      end
      w[3] = mark
    end
    for fd, w in pairs(watchers) do
      if w[3] ~= mark then
        w[1]:close()
        watchers[fd] = nil
      end
    end
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
    for fd, w in pairs(watchers) do
      w[1]:close()
      watchers[fd] = nil
    end
    client._host = nil
    if sched.host_kick == kick then sched.host_kick = nil end
  end

  function kick() alive(true) end
  prepare:start(sync)
  prepare:unref()
  sched.host_kick = kick
  client._host = host
  sync()
  return host
end

return M
