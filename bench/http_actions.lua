-- Sequential stateless action latency, per encoding: median and p99.
--   make bench       (starts a server and runs this)
--   RIVET_ENDPOINT=http://127.0.0.1:6420 lua5.4 bench/http_actions.lua [calls]
local rivet = require("rivet")
local core = require("rivet.core")

local endpoint = os.getenv("RIVET_ENDPOINT") or "http://127.0.0.1:6420"
local calls = tonumber(arg and arg[1]) or 500

local function percentile(sorted, p)
  local i = math.max(1, math.ceil(#sorted * p))
  return sorted[i]
end

local probe = rivet.client(endpoint)
local server = probe:server()
probe:dispose()
print(string.format("server: RivetKit %s (%s line), %d sequential calls per encoding", server.version, server.line, calls))
print(string.format("%-6s %10s %10s %10s", "enc", "median ms", "p99 ms", "calls/s"))
for _, enc in ipairs({ "bare", "cbor", "json" }) do
  local client = rivet.client(endpoint, { encoding = enc })
  local counter = client.counter:getOrCreate({ "bench", enc, tostring(os.time()) })
  for _ = 1, 20 do counter:increment(1) end -- warm up: resolve, connection, JIT of the server
  local t = {}
  local start = core.now()
  for i = 1, calls do
    local t0 = core.now()
    counter:increment(1)
    t[i] = (core.now() - t0) * 1000
  end
  local total = core.now() - start
  table.sort(t)
  print(string.format("%-6s %10.3f %10.3f %10.0f", enc, percentile(t, 0.5), percentile(t, 0.99), calls / total))
  client:dispose()
end
