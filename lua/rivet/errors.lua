-- rivet.ActorError: every failed call raises one of these (a table with a metatable).
-- Client-side failures use group "client"; errors the server sent keep its group/code.
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
function ActorError.is(e, name)
  if getmetatable(e) ~= ActorError then return false end
  if name == nil then return true end
  if name:find(".", 1, true) then return e.group .. "." .. e.code == name end
  return e.group == name
end

local M = { ActorError = ActorError }

--- Builds an ActorError. `extra` may carry metadata, actor, status, rayId.
function M.new(group, code, message, extra)
  local e = setmetatable({ group = group, code = code, message = message or (group .. "." .. code) }, ActorError)
  if extra then
    for k, v in pairs(extra) do e[k] = v end
  end
  return e
end

M.is = ActorError.is

return M
