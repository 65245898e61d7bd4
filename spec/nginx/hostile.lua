-- Calls against spec/fake/hostile_server.mjs from a request handler (spec/openresty_security_spec.lua):
-- each returns the errors the calls raised and what they cost the worker.
local rivet = require("rivet")
local describe_error = require("reply").describe_error

local M = {}

-- The worker's resident set in KiB.
local function rss_kb()
  local f = assert(io.open("/proc/self/statm"))
  local _, pages = f:read("*n", "*n")
  f:close()
  return pages * 4
end

local CALLS = {
  fetch = function(h) return h:fetch("/x") end,
  work = function(h) return h:work() end,
  websocket = function(h)
    local ws = h:websocket("/w")
    local data, err = ws:receive(5)
    ws:close()
    error(err or ("received " .. tostring(data)), 0)
  end,
  stream = function(h)
    local piece, err = h:fetch("/x", { stream = true }):read(5)
    if err then error(err, 0) end
    return piece
  end,
}

--- args: endpoint, id (the hostile answer), call (fetch | work | stream | websocket), times,
--- timeout, max_response. Returns {errors = {...}, lua_kb =, rss_kb = growth, after =
--- a proper call's value, pid = the worker's pid}.
function M.calls(args)
  local c = rivet.client(args.endpoint, { encoding = "json", timeout = tonumber(args.timeout) or 20,
    max_response = tonumber(args.max_response) })
  local h = c.a:getForId(args.id)
  local call = assert(CALLS[args.call or "fetch"], "no such call")
  collectgarbage("collect")
  local lua0, rss0 = collectgarbage("count"), rss_kb()
  local errors = {}
  for i = 1, tonumber(args.times) or 1 do
    local ok, err = pcall(call, h)
    errors[i] = ok and { ok = true } or describe_error(err)
  end
  local drss = rss_kb() - rss0
  collectgarbage("collect")
  local dlua = collectgarbage("count") - lua0
  local after = c.a:getForId("ok"):work()
  c:dispose()
  return { errors = errors, lua_kb = dlua, rss_kb = drss, after = after, pid = ngx.worker.pid() }
end

return M
