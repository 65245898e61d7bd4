--- Futures: one value or one error, settled once. Shared by both schedulers: a future
-- asks its scheduler to wait (sched:await) and to wake its waiters (sched:_wake), so
-- it works the same over the native loop and inside nginx.
--
-- Fields: `done` (true once settled), `ok` (true: a value, false: an error) and `value`
-- (the value or the error).
-- @module rivet.future
local Future = {}
Future.__index = Future
Future.__name = "rivet.Future"

function Future.new(sched)
  -- the fields that settling and waiting set later are named here, so that setting them
  -- does not grow (rehash) the table; Lua 5.4 sizes it for nil fields too, LuaJIT only
  -- for the others (a connection's call, which sets _on_cancel and _owner, then grew
  -- its future when settling it), hence false for the internal ones
  -- _on_cancel(fut): what fut:cancel() also stops; _owner: what that works on
  return setmetatable({ _sched = sched, done = false, ok = nil, value = nil, _cb1 = false,
    _on_cancel = false, _owner = false }, Future)
end

-- Settles fut (ok, value) unless it is already settled; wakes its waiters and runs its
-- callbacks. Returns true if this call settled it.
local function settle(fut, ok, value)
  if fut.done then return false end
  fut.done, fut.ok, fut.value = true, ok, value
  local w = fut._waiters
  if w then
    fut._waiters = nil
    local sched = fut._sched
    for i = 1, #w do sched:_wake(w[i]) end
  end
  local cb = fut._cb1
  if cb then
    fut._cb1 = nil
    cb(fut)
    local cbs = fut._callbacks
    if cbs then
      fut._callbacks = nil
      for i = 1, #cbs do cbs[i](fut) end
    end
  end
  return true
end

--- Fails the future with client.cancelled at once and stops what would settle it: the
--- HTTP transfer of a stateless call is aborted, a connection call is forgotten (never
--- sent if it was still queued; a late reply is dropped), a task's current wait raises
--- client.cancelled inside it. Returns false (and does nothing) once it has settled.
-- @treturn boolean whether it was still pending
function Future:cancel()
  if self.done then return false end
  local hook = self._on_cancel
  self._on_cancel = nil
  settle(self, false, require("rivet.errors").new("client", "cancelled", "the call was cancelled"))
  if hook then hook(self) end
  return true
end

-- Forgets waiter w (its wait ended without the future settling: a timeout).
function Future:_remove_waiter(w)
  local ws = self._waiters
  if ws then
    for i = #ws, 1, -1 do if ws[i] == w then table.remove(ws, i) end end
  end
end

-- Settles the future with a value (ignored if it is already settled).
function Future:resolve(value) return settle(self, true, value) end
-- Settles the future with an error (ignored if it is already settled).
function Future:reject(err) return settle(self, false, err) end

--- Waits for the value (yielding inside a task, running the loop elsewhere); raises the
--- error the future settled with. `timeout` (seconds) bounds this wait only.
-- @tparam[opt] number timeout seconds; past them it raises client.timeout
-- @return the value
function Future:await(timeout)
  if timeout ~= nil and type(timeout) ~= "number" then
    error("bad argument #1 to 'await': timeout must be a number of seconds", 2)
  end
  return self._sched:await(self, timeout)
end

--- Like await, but returns true, value or false, err instead of raising.
-- @tparam[opt] number timeout seconds
-- @treturn boolean ok
-- @return the value, or the error
function Future:result(timeout)
  return pcall(self._sched.await, self._sched, self, timeout)
end

--- Calls fn(future) once the future settles (at once if it already has).
-- @tparam function fn
function Future:onSettled(fn)
  if self.done then
    fn(self)
  else
    -- the first callback (the usual case) in a field of its own, more in a list
    if not self._cb1 then
      self._cb1 = fn
    else
      local cbs = self._callbacks
      if cbs then cbs[#cbs + 1] = fn else self._callbacks = { fn } end
    end
  end
end

function Future:__tostring()
  if not self.done then return "rivet.Future (pending)" end
  return self.ok and "rivet.Future (resolved)" or ("rivet.Future (failed: " .. tostring(self.value) .. ")")
end

Future.settle = settle

return Future
