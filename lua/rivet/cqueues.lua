-- rivet.cqueues(client [, cq]): runs a client inside a cqueues program.
--
-- A coroutine on the controller cq watches the client's descriptor (client:pollfds())
-- with cqueues.poll, until its next timed work (client:timeout()), and calls
-- client:poll(0) after each wake-up. A call made inside a coroutine of cq (or of any
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
local unpack = compat.unpack

-- What cqueues.poll takes: an object with :pollfd() and :events().
local Pollable = {}
Pollable.__index = Pollable
function Pollable:pollfd() return self.fd end
function Pollable:events() return self.ev end

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
  local loop = sched.loop
  local flat, args = {}, {}
  local watched = {} -- fd -> Pollable
  local kick = condition.new() -- ends the watcher's wait: work taken on from Lua, close()
  local host = { closed = false }
  sched.hosted = true
  sched.foreign_await = foreign_await
  sched.host_kick = function() kick:signal() end

  local function watch()
    local n = loop:pollfds(flat) -- (csrc/host.c: descriptors that stay while attached)
    for i = 1, n do
      local fd, ev = flat[2 * i - 1], flat[2 * i]
      local p = watched[fd]
      if not p then
        p = setmetatable({ fd = fd }, Pollable)
        watched[fd] = p
      end
      p.ev = ev
      args[i] = p
    end
    args[n + 1] = kick
    local t = client:timeout()
    if t then
      args[n + 2] = t
      return n + 2
    end
    args[n + 2] = nil
    return n + 1
  end

  cq:wrap(function()
    while not host.closed and not client._disposed do
      local k = watch()
      cqueues.poll(unpack(args, 1, k))
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
    for fd in pairs(watched) do cqueues.cancel(fd) end
    kick:signal()
  end

  client._host = host
  return host
end

return M
