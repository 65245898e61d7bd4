-- Turns the raw results of scripts/bench.sh into one Markdown table.
--   lua5.4 bench/report.lua RESULTS.txt[,MORE.txt...] TITLE MACHINE CONNS
-- Several files (comma-separated) pool their runs: each file's rounds stay rounds of
-- their own (the per-round LuaJIT/5.4 pairs never mix two runs).
-- RESULTS.txt lines: "<round> <workload> <client> <metric> <value>". Each cell is the
-- median over rounds; ratios are ours/theirs (lua/ts) and ours/floor (lua/floor).
-- When the results hold the luajit client too, a second table puts LuaJIT beside Lua 5.4:
-- medians, luajit/lua5.4 of the medians, and the same ratio round by round (the two run
-- back to back in each round: scripts/bench.sh), whose median decides the target "LuaJIT
-- at least as fast as Lua 5.4" (time rows: ≤ 1; throughput rows: ≥ 1; memory rows are
-- reported without a target), with a distribution-free interval for that median (order
-- statistics: it holds the true median at least 95 % of the time with 6 or more rounds,
-- 1 - 2/2^n with fewer); and LuaJIT's own ratios to rivetkit/client and the floor.
local path, title, machine, conns = arg[1], arg[2] or "", arg[3] or "", arg[4] or "1000"
local vals = {} -- vals[workload.."/"..metric][client] = {v...}
local by_round = {} -- by_round[workload.."/"..metric][client][round] = v
for file in path:gmatch("[^,]+") do
  for line in io.lines(file) do
    local r, w, c, m, v = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
    if r then
      r = file .. ":" .. r
      local k = w .. "/" .. m
      vals[k] = vals[k] or {}
      vals[k][c] = vals[k][c] or {}
      table.insert(vals[k][c], tonumber(v))
      by_round[k] = by_round[k] or {}
      by_round[k][c] = by_round[k][c] or {}
      by_round[k][c][r] = tonumber(v)
    end
  end
end

local function median(t)
  if not t or #t == 0 then return nil end
  table.sort(t)
  local n = #t
  local h = math.floor(n / 2)
  if n % 2 == 1 then return t[h + 1] end
  return (t[h] + t[h + 1]) / 2
end

-- key, label, unit scale, direction ("low" = lower is better), target vs theirs, floor check,
-- kind ("time", "rate" or "memory": whether "LuaJIT at least as fast" applies)
local rows = {
  { "stateless/p50_ms", "stateless action latency, median (ms)", 1, "low", 0.5, true, "time" },
  { "stateless/p99_ms", "stateless action latency, p99 (ms)", 1, "low", 0.5, true, "time" },
  { "conn/p50_ms", "connection action latency, median (ms)", 1, "low", 0.8, true, "time" },
  { "conn/p99_ms", "connection action latency, p99 (ms)", 1, "low", 0.8, true, "time" },
  { "pipeline/ops_per_s", "pipelined throughput, 64 in flight (actions/s)", 1, "high", 1.5, nil, "rate" },
  { "events/events_per_s", "event throughput (events/s)", 1, "high", 1.5, nil, "rate" },
  { "conn/cpu_ms_per_10k", "client CPU per 10k connection actions, sequential (ms)", 1, "low", 0.25, nil, "time" },
  { "pipeline/cpu_ms_per_10k", "client CPU per 10k connection actions, pipelined (ms)", 1, "low", 0.25, nil, "time" },
  { "stateless/cpu_ms_per_10k", "client CPU per 10k stateless actions (ms)", 1, "low", nil, nil, "time" },
  { "events/cpu_ms_per_10k", "client CPU per 10k events received (ms)", 1, "low", nil, nil, "time" },
  { "conns/rss_n_kb", "resident size with " .. conns .. " open connections (MiB)", 1 / 1024, "low", nil, nil, "memory" },
  { "conns/rss_1_kb", "resident size with 1 open connection (MiB)", 1 / 1024, "low", nil, nil, "memory" },
  { "conns/kb_per_conn", "memory per connection beyond the first (KiB)", 1, "low", 0.2, nil, "memory" },
  { "connect/p50_ms", "connect() to Init, median (ms)", 1, "low", nil, true, "time" },
  { "connect/p99_ms", "connect() to Init, p99 (ms)", 1, "low", nil, nil, "time" },
}
local unpack = table.unpack or unpack

local function fmt(v, scale)
  if v == nil then return "—" end
  v = v * (scale or 1)
  local a = math.abs(v)
  if a >= 1000 then return string.format("%.0f", v) end
  if a >= 100 then return string.format("%.1f", v) end
  if a >= 10 then return string.format("%.2f", v) end
  return string.format("%.3f", v)
end

print("### " .. title)
print()
print("Machine: " .. machine)
print()
print("| workload | lua-rivetkit (Lua 5.4) | rivetkit/client | C floor | ours/theirs | target | ours/floor |")
print("|---|--:|--:|--:|--:|:-:|--:|")
for _, row in ipairs(rows) do
  local key, label, scale, dir, target, floor_check = unpack(row, 1, 6)
  local cells = vals[key] or {}
  local ours, theirs, fl = median(cells.lua), median(cells.ts), median(cells.floor)
  if ours or theirs or fl then
    local ratio, tgt, fratio = "—", "", "—"
    if ours and theirs and theirs ~= 0 then
      local q = ours / theirs
      ratio = string.format("%.2fx", q)
      if target then
        local ok = (dir == "low" and q <= target) or (dir == "high" and q >= target)
        tgt = string.format("%s %s%.2gx", ok and "met" or "**missed**", dir == "low" and "≤" or "≥", target)
      end
    end
    if ours and fl and fl ~= 0 then
      local q = ours / fl
      fratio = string.format("%.2fx", q)
      if floor_check then
        local ok = q <= 1.2
        fratio = fratio .. (ok and " (met ≤1.2x)" or " (**missed** ≤1.2x)")
      end
    end
    print(string.format("| %s | %s | %s | %s | %s | %s | %s |", label, fmt(ours, scale), fmt(theirs, scale),
      fmt(fl, scale), ratio, tgt, fratio))
  end
end
print()

-- LuaJIT beside Lua 5.4 (only when the luajit client ran)
local function has_luajit()
  for _, cells in pairs(vals) do if cells.luajit then return true end end
  return false
end
if has_luajit() then
  -- "0.20x (met ≤0.5x)": q against a target in direction dir
  local function check(q, dir, target)
    q = math.floor(q * 100 + 0.5) / 100 -- judged as printed (two decimals)
    local ok = (dir == "low" and q <= target) or (dir == "high" and q >= target)
    return string.format("%s %s%.2gx", ok and "met" or "**missed**", dir == "low" and "≤" or "≥", target)
  end
  print("#### LuaJIT beside Lua 5.4 (same run)")
  print()
  -- The k-th smallest and k-th largest of n sorted values bound their median with
  -- probability 1 - 2 P(B < k), B ~ Binomial(n, 1/2): the largest k that keeps it at
  -- least 95 % (k = 1, min–max, when even that falls short: 5 rounds or fewer).
  local function median_interval(qs)
    local n = #qs
    local pk = 0.5 ^ n -- P(B = k - 1), starting at P(B = 0)
    local below = pk -- P(B < k)
    local k = 1
    while k < math.floor((n + 1) / 2) do
      pk = pk * (n - k + 1) / k -- now P(B = k)
      if 2 * (below + pk) > 0.05 then break end
      below = below + pk
      k = k + 1
    end
    return qs[k], qs[n - k + 1], 1 - 2 * below
  end
  print("| workload | Lua 5.4 | LuaJIT | LuaJIT/5.4 | per round: median (interval of the median) | LuaJIT at least as fast | LuaJIT/theirs | LuaJIT/floor |")
  print("|---|--:|--:|--:|--:|:-:|--:|--:|")
  local jrows = {}
  for i, row in ipairs(rows) do jrows[i] = row end
  table.insert(jrows, { "conns/lua_heap_kb_per_conn", "Lua heap per connection beyond the first (KiB, collectgarbage)",
    1, "low", nil, nil, "memory" })
  for _, row in ipairs(jrows) do
    local key, label, scale, dir, target, floor_check, kind = unpack(row, 1, 7)
    local cells = vals[key] or {}
    local l54, lj, theirs, fl = median(cells.lua), median(cells.luajit), median(cells.ts), median(cells.floor)
    if l54 or lj then
      local ratio, rounds_s, tgt, vs_theirs, vs_floor = "—", "—", "", "—", "—"
      if l54 and lj and l54 ~= 0 then ratio = string.format("%.2fx", lj / l54) end
      -- the same ratio round by round (within a round the two run back to back)
      local rr = by_round[key] or {}
      local a, b = rr.lua or {}, rr.luajit or {}
      local qs = {}
      for r, v in pairs(a) do
        if b[r] and v ~= 0 then qs[#qs + 1] = b[r] / v end
      end
      if kind == "memory" then
        tgt = "(memory: no target)"
      end
      if #qs > 0 then
        table.sort(qs)
        local q = median(qs)
        local lo, hi = median_interval(qs)
        rounds_s = string.format("%.2f (%.2f–%.2f)", q, lo, hi)
        if kind ~= "memory" then
          tgt = check(q, dir, 1)
          if tgt:find("missed", 1, true) and lo <= 1 and hi >= 1 then tgt = tgt .. ", even within noise" end
        end
      end
      if lj and theirs and theirs ~= 0 then
        local q = lj / theirs
        vs_theirs = string.format("%.2fx", q)
        if target then vs_theirs = vs_theirs .. " (" .. check(q, dir, target) .. ")" end
      end
      if lj and fl and fl ~= 0 then
        local q = lj / fl
        vs_floor = string.format("%.2fx", q)
        if floor_check then vs_floor = vs_floor .. " (" .. check(q, "low", 1.2) .. ")" end
      end
      print(string.format("| %s | %s | %s | %s | %s | %s | %s | %s |", label, fmt(l54, scale), fmt(lj, scale),
        ratio, rounds_s, tgt, vs_theirs, vs_floor))
    end
  end
  print()
end

-- Schema checks (workload "schema"): connection action latency with a schema and without,
-- in the same process (batches alternate), per interpreter; and the check alone.
if vals["schema/p50_ratio"] then
  print("#### Connection actions with a schema and without (same run)")
  print()
  print("| client | median without (ms) | median with (ms) | with/without, median of rounds (min–max) | CPU per 10k without / with (ms) | the check alone (ns per call) |")
  print("|---|--:|--:|--:|--:|--:|")
  for _, c in ipairs({ { "lua", "lua-rivetkit (Lua 5.4)" }, { "luajit", "lua-rivetkit on LuaJIT" } }) do
    local key, label = c[1], c[2]
    local function cell(m) return median((vals["schema/" .. m] or {})[key]) end
    local ratios = {}
    for _, v in ipairs((vals["schema/p50_ratio"] or {})[key] or {}) do ratios[#ratios + 1] = v end
    if #ratios > 0 then
      table.sort(ratios)
      print(string.format("| %s | %s | %s | %.3f (%.3f–%.3f) | %s / %s | %s |", label, fmt(cell("p50_ms_plain")),
        fmt(cell("p50_ms_schema")), median(ratios), ratios[1], ratios[#ratios], fmt(cell("cpu_ms_per_10k_plain")),
        fmt(cell("cpu_ms_per_10k_schema")), fmt(cell("check_ns"))))
    end
  end
  print()
end
