---@meta _
-- LuaLS definitions: raw HTTP and raw WebSocket to an actor's own handlers (docs/raw.md).

---@class rivet.FetchInit
---@field method? string default "GET"
---@field headers? table<string, string|number|string[]>
---@field body? string|fun(): string? a string, or a function returning chunks (nil at the end)
---@field timeout? number seconds
---@field stream? boolean read the body as it arrives (res:read, res:chunks)

---@class rivet.Request: rivet.FetchInit
---@field url? string a path with optional query (a full URL's scheme and host are ignored)
---@field path? string the same as `url`

---The answer of `handle:fetch`. A non-2xx answer of the actor's handler is a response, not an error.
---@class rivet.Response
---@field status integer
---@field ok boolean a 2xx status
---@field headers table<string, string> lower-case names; repeated headers joined with ", "
---@field body string? the body (nil for a streamed response)
local Response = {}

---The body decoded as JSON (null inside tables is rivet.null); raises client.malformed_response.
---@return any
function Response:json() end

---The body as a string (a streamed response is read to its end first).
---@return string
function Response:text() end

---A streamed response's next piece: nil at its end; nil, err on failure or after `timeout` seconds.
---@param timeout? number
---@return string? chunk
---@return rivet.Error? err
function Response:read(timeout) end

---Iterates the body as it arrives: `for chunk in res:chunks() do ... end`.
---@return fun(): string?
function Response:chunks() end

---Ends a streamed transfer (also at the end of a `local res <close>` scope).
function Response:close() end

---The answer of `handle:websocket`: open, or still opening.
---@class rivet.RawWebSocket
---@field status "connecting"|"open"|"closing"|"closed"
---@field protocol string? the subprotocol the server selected
---@field closeCode integer? once closed
---@field closeReason string? once closed
local RawWebSocket = {}

---Sends a text frame, or a binary one with mode "binary".
---@param data string
---@param mode? "binary"
---@return true? ok
---@return rivet.Error? err once the socket is closing or closed
function RawWebSocket:send(data, mode) end

---The next message, or nil, err when the socket closed, failed or `timeout` seconds passed.
---@param timeout? number
---@return string? data
---@return "text"|"binary"|rivet.Error kind_or_err
function RawWebSocket:receive(timeout) end

---Registers a handler: "open" fn(protocol), "message" fn(data, kind), "close" fn(code, reason), "error" fn(err).
---@param event "open"|"message"|"close"|"error"
---@param fn function
---@return fun() remove
function RawWebSocket:on(event, fn) end

---Closes the socket (default 1000; 3000-4999 for your own codes).
---@param code? integer
---@param reason? string at most 123 bytes
function RawWebSocket:close(code, reason) end
