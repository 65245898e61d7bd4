---@meta _
-- LuaLS definitions: the error every failed call raises, a rivet.ActorError (docs/errors.md).

---@class rivet.Error
---@field group string what went wrong: "user", "actor", "client", ... (e.g. client.timeout)
---@field code string e.g. "my_code", "not_found", "timeout"
---@field message string a human-readable message
---@field metadata any the metadata the actor attached to a user error, or nil
---@field actor? { actorId: string, generation: integer, key: any } 2.3 only: the actor that answered
---@field status? integer the HTTP status, when the error came from an HTTP response
---@field statusCode integer `status` when there is one, else 400 for a public error and 500 for others
---@field public boolean true for an error the server chose to send
---@field rayId? string 2.3 gateway ray id, when given
---@field closeCode? integer raw WebSocket errors after a close
---@field closeReason? string raw WebSocket errors after a close
local Error = {}

---True when this error is of kind `"group"` or `"group.code"`.
---@param name string
---@return boolean
function Error:is(name) end
