-- Runs a spec handler and answers JSON: 200 with what it returned, 500 with the error
-- it raised ({error = tostring(err), group =, code =, message =} for an ActorError).
local cjson = require("cjson.safe")
local rivet = require("rivet")

local M = {}

local MODULES = {
  actions = true, conns = true, tasks = true, phases = true, tls = true, hostile = true, netfuzz = true,
}

--- The error as a table the spec can look at.
function M.describe_error(err)
  if rivet.isActorError(err) then
    return { error = tostring(err), group = err.group, code = err.code, message = err.message,
      metadata = err.metadata, actor_error = true }
  end
  return { error = tostring(err), actor_error = false }
end

--- Calls module[fn](args) (args: the query string as a table); replies with the result.
function M.dispatch(module, fn)
  if not MODULES[module] then return ngx.exit(404) end
  local handler = require(module)[fn]
  if type(handler) ~= "function" then return ngx.exit(404) end
  local ok, res = xpcall(handler, function(e)
    if rivet.isActorError(e) then return e end
    return debug.traceback(tostring(e), 2)
  end, ngx.req.get_uri_args())
  if ok then
    ngx.say(assert(cjson.encode(res == nil and cjson.null or res)))
  else
    ngx.log(ngx.ERR, "spec handler /", module, "/", fn, " failed: ", tostring(res))
    ngx.status = 500
    ngx.say(assert(cjson.encode(M.describe_error(res))))
  end
end

return M
