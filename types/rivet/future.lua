---@meta _
-- LuaLS definitions: futures (docs/api.md, docs/loop.md).

---One value or one error, settled once: `handle:async(...)`, `conn:async(...)`, `client:spawn(...)`.
---@class rivet.Future
---@field done boolean true once settled
---@field ok boolean? true (a value) or false (an error) once settled
---@field value any the value, or the error, once settled
local Future = {}

---The value; raises the error. Yields inside a task, runs the loop elsewhere.
---@param timeout? number seconds this wait may take (client.timeout after them)
---@return any
function Future:await(timeout) end

---`true, value` or `false, err` instead of raising.
---@param timeout? number
---@return boolean ok
---@return any value_or_error
function Future:result(timeout) end

---Fails the future with client.cancelled and stops its work; false once settled.
---@return boolean
function Future:cancel() end

---Calls `fn(future)` once it settles (at once if it has).
---@param fn fun(f: rivet.Future)
function Future:onSettled(fn) end
