-- What handles and connections share about actions: any name that is not one of the
-- object's own methods becomes an action call (client.counter:getOrCreate("k"):increment(1)),
-- arguments travel as an array with explicit nulls, and transient errors are retried
-- with one policy (handles and raw fetch).
local core = require("rivet.core")
local log = require("rivet.log")
local protocol = require("rivet.protocol")

local null = core.null
local array_mt = core.array_mt

local M = {}

-- The action call for name k (made by a function of its own, so that the __index
-- below captures nothing: a function that closes upvalues ends in UCLO, which LuaJIT
-- does not compile, and a missing private field, e.g. handle._params, is read through
-- that __index on every call).
local function action_caller(k, mt, what)
  return function(obj, ...)
    if getmetatable(obj) ~= mt then
      error("action '" .. k .. "' must be called with a colon: " .. what .. ":" .. k .. "(...)", 2)
    end
    return obj:_call(k, 3, ...)
  end
end

--- Makes `methods` the __index of objects with metatable `mt`: a name it lacks (and that
--- does not start with "_") becomes function(obj, ...) return obj:_call(name, 3, ...) end.
--- The closure is made once per name and stored in `methods`, so later look-ups are plain
--- table hits (the hot path of conn:increment(1) runs no metamethod). `what` names the
--- object in the error for a dot call ("conn", "handle").
function M.actions(methods, mt, what)
  setmetatable(methods, {
    __index = function(_, k)
      if type(k) ~= "string" or k:byte(1) == 95 then return nil end -- 95: "_"
      local f = action_caller(k, mt, what)
      rawset(methods, k, f)
      return f
    end,
  })
  mt.__index = methods
end

--- The pause before retry number `attempt` (1, 2, ...) after a transient lifecycle error
--- (protocol.is_lifecycle: the actor was starting, stopping or being rescheduled): 25 ms
--- doubling to at most 250 ms, each with up to half of it taken off at random (so many
--- callers do not retry in step). Calls retry until their deadline, as the official
--- client does for seconds: an actor that is being rescheduled comes back.
function M.retry_pause(attempt)
  local p = math.min(0.025 * 2 ^ (attempt - 1), 0.25)
  return p * (0.5 + 0.5 * math.random())
end

--- After attempt number `attempt` failed with err: when err is a transient lifecycle
--- error (protocol.is_lifecycle) and there is time before `deadline`, logs `what` with
--- `fields` (plus the error and the attempt), sleeps the pause and returns the next
--- attempt's number; otherwise raises err (the last error, not a timeout: it says why).
function M.retry_after(sched, err, attempt, deadline, what, fields)
  if not protocol.is_lifecycle(err) then error(err, 0) end
  attempt = attempt + 1
  local pause = M.retry_pause(attempt)
  if core.now() + pause >= deadline then error(err, 0) end
  fields.error = tostring(err.group) .. "." .. tostring(err.code)
  fields.attempt = attempt
  log.emit("debug", what, fields)
  sched:sleep(pause)
  return attempt
end

--- After a gateway call of handle h to actor `id` failed with err, before the next try:
--- a key-based handle whose actor is gone looks its key up again (once); a transient
--- state is retried after a pause (2.3 scheduling details checked first); anything else
--- is raised. `st` ({reresolved = false, attempt = 0}) goes from one try to the next;
--- `what` ("action", "fetch", "send") and `fields` name the call in the log.
function M.after_failure(h, err, st, id, deadline, what, fields)
  if h._key and not st.reresolved and protocol.is_stale(err) then
    -- the cached id may belong to an actor that is gone
    st.reresolved = true
    h._id = false
    log.emit("debug", what .. ": the actor is gone, looking its key up again", fields)
    return
  end
  h:_check_scheduling(err, id, deadline)
  st.attempt = M.retry_after(h._client._sched, err, st.attempt, deadline, what .. ": retrying after a transient error",
    fields)
end

--- Arguments as an array with explicit nulls (Lua cannot hold nil in a table).
function M.pack_args(...)
  local args = setmetatable({ ... }, array_mt)
  for i = 1, select("#", ...) do
    if args[i] == nil then args[i] = null end
  end
  return args
end

return M
