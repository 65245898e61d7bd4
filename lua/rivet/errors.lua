--- rivet.ActorError: every failed call raises one of these (a table with a metatable).
-- Client-side failures use group "client"; errors the server sent keep its group/code.
-- `tostring(err)` is "group.code: message". See docs/errors.md.
-- @module rivet.errors

--- The fields of an ActorError (computed ones included).
-- @table ActorError
-- @field group what went wrong, e.g. `"user"`, `"actor"`, `"client"`
-- @field code e.g. `"my_code"`, `"not_found"`, `"timeout"`
-- @field message a human-readable message
-- @field metadata the metadata the actor attached to a user error, or nil
-- @field actor 2.3 only: {actorId, generation, key} of the actor that answered
-- @field status the HTTP status, when the error came from an HTTP response
-- @field statusCode status when there is one, else 400 for a public error and 500 for others
-- @field public true for an error the server chose to send
-- @field rayId 2.3 gateway ray id, when given
local ActorError = {}
ActorError.__name = "rivet.ActorError"

-- Fields the official client's errors carry, computed when not set (errors are also
-- built in C, csrc/conn.c, with group, code, message, metadata and actor only):
--   public      true for an error the server chose to send (not the client's own, and
--               not an internal error the server masked)
--   statusCode  the HTTP status when the error came in an HTTP response, else 400 for a
--               public error and 500 for others (as the official RivetError)
local computed = {
  public = function(e)
    local g, c = rawget(e, "group"), rawget(e, "code")
    return g ~= "client" and c ~= "internal_error"
  end,
  statusCode = function(e)
    local st = rawget(e, "status")
    if st then return st end
    return e.public and 400 or 500
  end,
}

ActorError.__index = function(e, k)
  local m = ActorError[k]
  if m ~= nil then return m end
  local f = computed[k]
  if f then return f(e) end
  return nil
end

function ActorError.__tostring(e)
  return (e.group or "?") .. "." .. (e.code or "?") .. ": " .. (e.message or "")
end

--- True when e is an ActorError, and (with `name` "group.code" or "group") of that kind.
-- Also `err:is(name)` and `rivet.isActorError(e, name)`.
-- @param e any value
-- @tparam[opt] string name "group" or "group.code"
-- @treturn boolean
function ActorError.is(e, name)
  if getmetatable(e) ~= ActorError then return false end
  if name == nil then return true end
  if name:find(".", 1, true) then return e.group .. "." .. e.code == name end
  return e.group == name
end

local M = { ActorError = ActorError }

-- Builds an ActorError. `extra` may carry metadata, actor, status, rayId.
function M.new(group, code, message, extra)
  local e = setmetatable({ group = group, code = code, message = message or (group .. "." .. code) }, ActorError)
  if extra then
    for k, v in pairs(extra) do e[k] = v end
  end
  return e
end

M.is = ActorError.is

return M
