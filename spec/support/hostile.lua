-- Starts spec/fake/hostile_server.mjs (endless bodies, endless headers, a 2^62-byte
-- WebSocket frame) with a log of the raw requests it got; stopped by PID.
local fake = require("spec.support.fake")

local M = {}

--- Starts it; returns {endpoint=, pid=, stop=, requests=, sent=}.
function M.start()
  local log = os.tmpname()
  local srv = fake.start("spec/fake/hostile_server.mjs " .. log)
  srv.log = log
  local stop = srv.stop
  function srv.stop()
    stop()
    os.remove(log)
  end
  --- The raw requests recorded so far: {head = "...", body = "..."} each.
  function srv.requests()
    local f = io.open(log, "rb")
    local s = f and f:read("a") or ""
    if f then f:close() end
    local out = {}
    for rec in s:gmatch("(.-)\n=====\n") do
      local head, body = rec:match("^(.-\r\n\r\n)(.*)$")
      out[#out + 1] = { head = head or rec, body = body or "" }
    end
    return out
  end
  --- Bytes of hostile answers the server has written so far.
  function srv.sent() return fake.counter(srv.endpoint, "/stats", "sent") end
  return srv
end

return M
