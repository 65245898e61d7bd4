-- One rivet client per worker and per (endpoint, encoding), kept at module level as a
-- user's handler module would keep its client.
local rivet = require("rivet")

local M = {}

local cache = {}

--- The endpoint of the test server, or of the fault proxy in front of it (via = "proxy").
function M.endpoint(via)
  if via == "proxy" then return assert(os.getenv("RIVET_PROXY_ENDPOINT"), "RIVET_PROXY_ENDPOINT not set") end
  return assert(os.getenv("RIVET_ENDPOINT"), "RIVET_ENDPOINT not set")
end

--- The worker's client for args.enc (default "bare") and args.via.
function M.get(args)
  local enc, via = args.enc or "bare", args.via
  local endpoint = M.endpoint(via)
  local k = enc .. " " .. endpoint
  local c = cache[k]
  if not c then
    c = rivet.client(endpoint, { encoding = enc, timeout = 15 })
    cache[k] = c
  end
  return c
end

return M
