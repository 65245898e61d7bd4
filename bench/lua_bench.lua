-- One benchmark workload with lua-rivetkit; prints "RESULT <metric> <value>" lines.
-- Driven by scripts/bench.sh; by hand:
--   LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/?.so;;" \
--     lua5.4 bench/lua_bench.lua ENDPOINT WORKLOAD N KEY
--   (LuaJIT: LUA_CPATH="./build/luajit/?.so;;" luajit bench/lua_bench.lua ...)
-- WORKLOAD: stateless | conn | pipeline | events | conns | connect | schema
-- Runs on Lua 5.4 and LuaJIT 2.1 alike: no `//`, math.type, string.pack or other
-- 5.4-only calls here.
local rivet = require("rivet")
local core = require("rivet.core")

local endpoint, workload, n, key = arg[1], arg[2], tonumber(arg[3]), arg[4]
assert(endpoint and workload and n and key, "usage: lua_bench.lua ENDPOINT WORKLOAD N KEY")
local now = core.now
local cpu = os.clock -- clock(): user+sys CPU of this process (all threads)

local function result(name, v) io.write(string.format("RESULT %s %.6g\n", name, v)) end

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

local function latencies(t)
  table.sort(t)
  local function pct(p) return t[math.max(1, math.ceil(#t * p))] end
  result("p50_ms", pct(0.5) * 1000)
  result("p99_ms", pct(0.99) * 1000)
end

local client = rivet.client(endpoint, { encoding = os.getenv("BENCH_ENCODING") or "bare" })
local handle = client.counter:getOrCreate(key)
local warm = math.min(200, math.max(20, math.floor(n / 10)))
-- connects before the measured ones (every client does as many): a JIT (LuaJIT, V8)
-- compiles the connect path over its first few dozen connects
local CONNECT_WARM = 50
-- events received before the measured burst (every client does as many): LuaJIT was
-- still compiling the event path over the first thousand (3-5 % of the burst's time)
local EVENTS_WARM = 1000

local function open(h)
  local conn = h:connect()
  while conn.status ~= "connected" do client:poll(0.05) end
  return conn
end

if workload == "stateless" then
  for _ = 1, warm do handle:increment(1) end
  local t = {}
  local c0, t0 = cpu(), now()
  for i = 1, n do
    local s = now()
    handle:increment(1)
    t[i] = now() - s
  end
  local wall, c = now() - t0, cpu() - c0
  latencies(t)
  result("cpu_ms_per_10k", c / n * 10000 * 1000)
  result("ops_per_s", n / wall)
elseif workload == "conn" then
  local conn = open(handle)
  for _ = 1, warm do conn:increment(1) end
  local t = {}
  local c0, t0 = cpu(), now()
  for i = 1, n do
    local s = now()
    conn:increment(1)
    t[i] = now() - s
  end
  local wall, c = now() - t0, cpu() - c0
  latencies(t)
  result("cpu_ms_per_10k", c / n * 10000 * 1000)
  result("ops_per_s", n / wall)
  conn:dispose()
elseif workload == "pipeline" then
  local window = tonumber(os.getenv("BENCH_WINDOW")) or 64
  local conn = open(handle)
  local function run(total)
    local sent, done = 0, 0
    local on_settled
    local function issue()
      sent = sent + 1
      conn:async("increment", 1):onSettled(on_settled)
    end
    on_settled = function(f)
      if not f.ok then error(tostring(f.value)) end
      done = done + 1
      if sent < total then issue() end
    end
    for _ = 1, math.min(window, total) do issue() end
    while done < total do client:poll(1) end
  end
  run(warm * 4)
  local c0, t0 = cpu(), now()
  run(n)
  local wall, c = now() - t0, cpu() - c0
  result("ops_per_s", n / wall)
  result("cpu_ms_per_10k", c / n * 10000 * 1000)
  conn:dispose()
elseif workload == "events" then
  local conn = open(handle)
  local got = 0
  conn:on("tick", function() got = got + 1 end)
  conn:getCount() -- the subscription is on the server before the burst
  conn:emitMany(EVENTS_WARM)
  while got < EVENTS_WARM do client:poll(0.05) end
  got = 0
  local c0, t0 = cpu(), now()
  conn:async("emitMany", n)
  while got < n do client:poll(1) end
  local wall, c = now() - t0, cpu() - c0
  result("events_per_s", n / wall)
  result("cpu_ms_per_10k", c / n * 10000 * 1000)
  conn:dispose()
elseif workload == "conns" then
  -- resident size with 1 and with n open connections
  handle:resolve()
  local conns = { open(handle) }
  conns[1]:getCount()
  collectgarbage(); collectgarbage()
  local r1, h1 = rss_kb(), collectgarbage("count")
  for i = 2, n do conns[i] = handle:connect() end
  local open_count = 0
  local deadline = now() + 60
  while open_count < n and now() < deadline do
    client:poll(0.05)
    open_count = 0
    for i = 1, n do if conns[i].status == "connected" then open_count = open_count + 1 end end
  end
  assert(open_count == n, "only " .. open_count .. " of " .. n .. " connections opened")
  collectgarbage(); collectgarbage()
  local rn, hn = rss_kb(), collectgarbage("count")
  result("rss_1_kb", r1)
  result("rss_n_kb", rn)
  result("kb_per_conn", (rn - r1) / (n - 1))
  result("lua_heap_kb_per_conn", (hn - h1) / (n - 1)) -- diagnostic: the Lua part of it
  for i = 1, n do conns[i]:dispose() end
elseif workload == "schema" then
  -- connection action latency with a schema (bench/counter_schema.lua) and without, in the
  -- same process: batches of 100 calls alternate between two clients, one connection each
  local checked = rivet.client(endpoint, { encoding = os.getenv("BENCH_ENCODING") or "bare",
    schema = dofile("bench/counter_schema.lua") })
  local plain_conn = open(handle)
  local schema_conn = checked.counter:getOrCreate(key):connect()
  while schema_conn.status ~= "connected" do checked:poll(0.05) end
  for _ = 1, warm do plain_conn:increment(1); schema_conn:increment(1) end
  local times = { plain = {}, schema = {} }
  local cpu_used = { plain = 0, schema = 0 }
  local function batch(which, conn)
    local t = times[which]
    local c0 = cpu()
    for _ = 1, 100 do
      local s = now()
      conn:increment(1)
      t[#t + 1] = now() - s
    end
    cpu_used[which] = cpu_used[which] + cpu() - c0
  end
  for b = 1, math.max(1, math.floor(n / 100)) do
    if b % 2 == 1 then batch("plain", plain_conn); batch("schema", schema_conn)
    else batch("schema", schema_conn); batch("plain", plain_conn) end
  end
  local function p50(t) table.sort(t); return t[math.max(1, math.ceil(#t * 0.5))] end
  local a, b = p50(times.plain), p50(times.schema)
  result("p50_ms_plain", a * 1000)
  result("p50_ms_schema", b * 1000)
  result("p50_ratio", b / a)
  result("cpu_ms_per_10k_plain", cpu_used.plain / #times.plain * 10000 * 1000)
  result("cpu_ms_per_10k_schema", cpu_used.schema / #times.schema * 10000 * 1000)
  -- the check alone, as conn:increment(i) runs it (a new argument each time, so that
  -- LuaJIT cannot hoist it out of the loop)
  local s = checked._schema.actors.counter
  local m = 1000000
  local c0 = cpu()
  for i = 1, m do s:check("increment", i) end
  result("check_ns", (cpu() - c0) / m * 1e9)
  plain_conn:dispose()
  schema_conn:dispose()
  checked:dispose()
elseif workload == "connect" then
  handle:resolve()
  for _ = 1, CONNECT_WARM do open(handle):dispose() end
  local t = {}
  for i = 1, n do
    local s = now()
    local conn = handle:connect()
    while conn.status ~= "connected" do client:poll(0.05) end
    t[i] = now() - s
    conn:dispose()
  end
  latencies(t)
else
  error("unknown workload " .. workload)
end
client:dispose()
