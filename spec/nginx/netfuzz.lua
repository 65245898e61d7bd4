-- The network-side fuzz's calls from a request handler (spec/openresty_netfuzz_spec.lua):
-- one batch per request, through the cosocket transport, against the fuzz server at
-- args.endpoint (spec/support/netfuzz.lua has the calls and what is recorded).
local rivet = require("rivet")
local netfuzz = require("spec.support.netfuzz")

local M = {}

-- Messages quote the server's bytes: printable ASCII only on the way out (JSON)
local function printable(t)
  for k, v in pairs(t) do
    if type(v) == "string" then t[k] = v:gsub("[^ -~]", "?") elseif type(v) == "table" then printable(v) end
  end
  return t
end

--- args: endpoint, enc, first (calls first+1 .. first+n), n, label. Returns the batch's
--- record, and {sane =, sanity_errors =, plain =} from a proper call after it, and the
--- worker's pid.
function M.batch(args)
  local c = rivet.client(args.endpoint, { encoding = args.enc, timeout = netfuzz.TIMEOUT })
  local rec = netfuzz.batch(c, tonumber(args.first), tonumber(args.n), args.label or args.enc)
  if #rec.hung == 0 then
    rec.sane, rec.sanity_errors, rec.plain = netfuzz.sane(c, tonumber(args.first))
  end
  c:dispose()
  rec.pid = ngx.worker.pid()
  return printable(rec)
end

return M
