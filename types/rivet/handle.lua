---@meta _
-- LuaLS definitions: actor handles (docs/api.md). Any name that is not one of the
-- methods below is a stateless action: `handle:increment(5)`.

---@class rivet.SendOptions
---@field wait? boolean wait until the actor's handler completes the message
---@field timeout? number seconds the actor may take to complete it

---@class rivet.SendResult
---@field status "completed"|"timedOut"
---@field response any what the actor's handler completed the message with

---@class rivet.ConnectOptions
---@field timeout? number the default deadline (seconds) of the connection's calls

---@class rivet.WebSocketOptions
---@field timeout? number seconds to open
---@field max_message? integer the largest message in bytes (default 64 MiB)

---A handle to one actor: `client.counter:getOrCreate("k")`.
---@class rivet.Handle
---@field [string] fun(self: rivet.Handle, ...: any): any a stateless action (HTTP); returns its output
local Handle = {}

---Calls action `name`: the explicit form, for names that clash with these methods or start with `_`.
---@param name string
---@param ... any
---@return any
function Handle:action(name, ...) end

---Starts action `name` and returns a future at once.
---@param name string
---@param ... any
---@return rivet.Future
function Handle:async(name, ...) end

---The actor id, looked up once (or the actor created, for getOrCreate) and cached.
---@return string
function Handle:resolve() end

---The actor's gateway URL for other programs (carries the client's token).
---@return string
function Handle:getGatewayUrl() end

---A live connection: actions over one WebSocket, events, reconnection.
---@param params? any connection params, overriding the handle's
---@param opts? rivet.ConnectOptions
---@return rivet.Connection
function Handle:connect(params, opts) end

---A message to the actor's queue (RivetKit 2.3): nil once accepted, or with `wait` the outcome.
---@param name string
---@param body any
---@param opts? rivet.SendOptions
---@return rivet.SendResult?
function Handle:send(name, body, opts) end

---Raw HTTP to the actor's onRequest handler.
---@param input string|rivet.Request a path with optional query, or a request table
---@param init? rivet.FetchInit replaces the request table's fields
---@return rivet.Response
function Handle:fetch(input, init) end

---Raw WebSocket to the actor's onWebSocket handler (returns while it opens).
---@param path? string
---@param protocols? string|string[] subprotocols to offer
---@param opts? rivet.WebSocketOptions
---@return rivet.RawWebSocket
function Handle:websocket(path, protocols, opts) end
