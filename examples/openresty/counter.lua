-- The handler module of examples/openresty/nginx.conf (docs/openresty.md).
--
-- One client per worker, made when the module is first required. Request handlers call
-- it like anywhere else: every call yields to nginx while it waits, so the worker goes on
-- serving other requests.
local rivet = require("rivet")

local client = rivet.client(os.getenv("RIVET_ENDPOINT"), { timeout = 10 })
local counts = ngx.shared.counts
local watched = {} -- key -> connection, in this worker

local M = {}

local function key_arg()
  local key = ngx.var.arg_key
  if not key or key == "" then return "default" end
  return key
end

-- Answers 502 with the error's text (an ActorError prints as "group.code: message").
local function fail(err)
  ngx.status = ngx.HTTP_BAD_GATEWAY
  ngx.say("rivet: ", tostring(err))
  return ngx.exit(ngx.HTTP_BAD_GATEWAY)
end

--- GET /increment?key=K&by=N: a stateless action; answers the new count.
function M.increment()
  local ok, count = pcall(function()
    return client.counter:getOrCreate(key_arg()):increment(tonumber(ngx.var.arg_by) or 1)
  end)
  if not ok then return fail(count) end
  ngx.say(count)
end

--- GET /watch?key=K: opens (once per worker) a connection to the counter K that keeps
--- the latest newCount in the shared dict. The connection outlives this request: its
--- socket belongs to a background light thread of the worker, where the handler runs.
function M.watch()
  local key = key_arg()
  local conn = watched[key]
  if not conn then
    conn = client.counter:getOrCreate(key):connect()
    conn:on("newCount", function(count)
      counts:set(key, count) -- background thread: shared dicts and ngx.log, no ngx.say
    end)
    conn:onError(function(err) ngx.log(ngx.WARN, "counter ", key, ": ", tostring(err)) end)
    watched[key] = conn
    local ok, count = pcall(conn.getCount, conn) -- an action over the connection
    if not ok then
      watched[key] = nil
      conn:dispose()
      return fail(count)
    end
    counts:set(key, count)
  end
  ngx.say("watching ", key, " (", conn.status, "), count ", counts:get(key))
end

--- GET /count?key=K: the count the watching connection last heard of.
function M.count()
  local count = counts:get(key_arg())
  if count == nil then return ngx.exit(ngx.HTTP_NOT_FOUND) end
  ngx.say(count)
end

return M
