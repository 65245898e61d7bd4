-- rivet.ActorError: every failed call raises one of these (a table with a metatable).
-- Client-side failures use group "client"; errors the server sent keep its group/code.
local ActorError = {}
ActorError.__index = ActorError
ActorError.__name = "rivet.ActorError"

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
