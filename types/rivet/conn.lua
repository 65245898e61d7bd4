---@meta _
-- LuaLS definitions: live connections (docs/api.md, docs/connections.md). Any name that
-- is not one of the methods below is an action over the connection: `conn:increment(1)`.

---@alias rivet.ConnectionStatus "idle"|"connecting"|"connected"|"disconnected"|"disposed"

---@class rivet.Connection
---@field [string] fun(self: rivet.Connection, ...: any): any an action over the connection; returns its output
---@field status rivet.ConnectionStatus
---@field actorId string? once connected
---@field connectionId string? once connected
local Connection = {}

---Calls action `name` over the connection and waits for its output (the explicit form).
---@param name string
---@param ... any
---@return any
function Connection:action(name, ...) end

---Sends action `name` and returns a future at once.
---@param name string
---@param ... any
---@return rivet.Future
function Connection:async(name, ...) end

---Calls `fn(...)` for every event `name`.
---@param name string
---@param fn fun(...: any)
---@return fun() unsubscribe
function Connection:on(name, fn) end

---Like `on`, for the next event only.
---@param name string
---@param fn fun(...: any)
---@return fun() unsubscribe
function Connection:once(name, fn) end

---`fn(err)` for connection errors.
---@param fn fun(err: rivet.Error)
---@return fun() remove
function Connection:onError(fn) end

---`fn()` after every Init (the connection is ready).
---@param fn fun()
---@return fun() remove
function Connection:onOpen(fn) end

---`fn(code, reason)` when the socket closes.
---@param fn fun(code: integer, reason: string)
---@return fun() remove
function Connection:onClose(fn) end

---`fn(status)` on every status change.
---@param fn fun(status: rivet.ConnectionStatus)
---@return fun() remove
function Connection:onStatusChange(fn) end

---A message to the actor's queue over HTTP with this connection's params, as `handle:send`.
---@param name string
---@param body any
---@param opts? rivet.SendOptions
---@return rivet.SendResult?
function Connection:send(name, body, opts) end

---Closes the connection, fails pending calls with client.disposed and stops reconnecting
---(also `local conn <close> = handle:connect()`).
function Connection:dispose() end
