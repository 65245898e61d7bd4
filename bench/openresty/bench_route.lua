-- The nginx side of the OpenResty row (bench/README.md): one stateless action per
-- request, with one client and one handle per worker, as bench/openresty_node_route.mjs
-- does in Node.
local rivet = require("rivet")

local client = rivet.client(os.getenv("RIVET_ENDPOINT"), { encoding = os.getenv("BENCH_ENCODING") or "bare" })
local counter = client.counter:getOrCreate(os.getenv("BENCH_KEY") or "bench-openresty")

local M = {}

--- GET /increment: the counter's new value.
function M.increment()
  local ok, v = pcall(counter.increment, counter, 1)
  if not ok then
    ngx.status = 500
    ngx.say(tostring(v))
    return
  end
  ngx.say(v)
end

return M
