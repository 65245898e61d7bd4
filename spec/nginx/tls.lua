-- https:// endpoints inside nginx: a host name resolved through the `resolver` directive,
-- verification against lua_ssl_trusted_certificate (the conf points both at the spec's
-- name server and throw-away CA).
local rivet = require("rivet")

local M = {}

local clients = {}

--- increment(1) over HTTPS and over a wss:// connection, on the endpoint args.which names
--- ("good": a certificate for localhost; "wrong": one for another name).
function M.calls(args)
  local url = assert(os.getenv(args.which == "wrong" and "RIVET_TLS_WRONG_ENDPOINT" or "RIVET_TLS_ENDPOINT"))
  local client = clients[url]
  if not client then
    client = rivet.client(url, { timeout = 10 })
    clients[url] = client
  end
  local h = client.counter:getOrCreate(args.key)
  local ok, v = pcall(h.increment, h, 1)
  if not ok then
    local d = require("reply").describe_error(v)
    d.failed = "http"
    return d
  end
  local conn = h:connect()
  local ok2, v2 = pcall(conn.increment, conn, 1)
  conn:dispose()
  if not ok2 then
    local d = require("reply").describe_error(v2)
    d.failed = "websocket"
    return d
  end
  return { url = url, stateless = v, conn = v2 }
end

return M
