-- rivet.cqueues(client [, cq]): runs a client inside a cqueues program.
--
-- A coroutine on the controller cq watches the client's descriptor (one epoll set of its
-- sockets, csrc/host.c: the same for as long as it is attached, so it is asked for once)
-- with cqueues.poll, until its next timed work (client:timeout(), asked before each
-- wait), and calls client:poll(0) after each wake-up. A call made inside a coroutine of cq (or of any
-- cqueues controller) waits by yielding to cqueues, so other coroutines run meanwhile;
-- calls in client:spawn() tasks yield to the client's scheduler as usual. Work a
-- coroutine gives the client between two polls (a request, a WebSocket write, a task)
-- makes the client's wake-up descriptor readable, which ends the watcher's wait.
local cqueues = require("cqueues")
local condition = require("cqueues.condition")
local errors = require("rivet.errors")
local compat = require("rivet.compat")

local M = {}
local now = compat.now

-- What cqueues.poll takes: an object with :pollfd() and :events().
local Pollable = {}
Pollable.__index = Pollable
function Pollable:pollfd() return self.fd end
function Pollable.events() return "r" end -- (the descriptor is only ever read)

-- The wait of a call made in a cqueues coroutine: yields to cqueues until fut settles.
-- Returns false outside cqueues (the scheduler then runs the loop itself).
local function foreign_await(fut, timeout)
  if not cqueues.running() then return false end
  local cond = condition.new()
  fut:onSettled(function() cond:signal() end)
  local deadline = timeout and now() + timeout
  while not fut.done do
    local left
    if deadline then
      left = deadline - now()
      if left <= 0 then error(errors.new("client", "timeout", "waited " .. timeout .. " s"), 0) end
    end
    cond:wait(left)
  end
  return true
end

--- Attaches client to controller cq (default: the running one). Returns a handle whose
--- :close() detaches it; the watcher also ends when the client is disposed.
function M.attach(client, cq)
  cq = cq or cqueues.running()
  local ok = type(cq) == "userdata" or type(cq) == "table"
  if not (ok and type(cq.wrap) == "function") then
    error("bad argument #2 to 'rivet.cqueues': expected a cqueues controller (none is running)", 3)
  end
  local sched = client._sched -- (init.lua checked that it can be hosted)
  local fd = not client._disposed and sched:host_fd()
  local watched = fd and setmetatable({ fd = fd }, Pollable)
  local kick = condition.new() -- ends the watcher's wait: work taken on from Lua, close()
  local host = { closed = false }
  sched.hosted = true
  sched.foreign_await = foreign_await
  sched.host_kick = function() kick:signal() end

  cq:wrap(function()
    while not host.closed and not client._disposed do
      local t = client:timeout()
      if t then cqueues.poll(watched, kick, t) else cqueues.poll(watched, kick) end
      if host.closed or client._disposed then break end
      client:poll(0)
    end
    host:close()
  end)

  function host.close()
    if host.closed then return end
    host.closed = true
    if sched.foreign_await == foreign_await then sched.foreign_await = nil end
    sched.host_kick = nil
    client._host = nil
    if fd then cqueues.cancel(fd) end
    kick:signal()
  end

  client._host = host
  return host
end

return M
