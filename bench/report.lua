-- Turns the raw results of scripts/bench.sh into one Markdown table.
--   lua5.4 bench/report.lua RESULTS.txt TITLE MACHINE CONNS
-- RESULTS.txt lines: "<round> <workload> <client> <metric> <value>". Each cell is the
-- median over rounds; ratios are ours/theirs (lua/ts) and ours/floor (lua/floor).
local path, title, machine, conns = arg[1], arg[2] or "", arg[3] or "", arg[4] or "1000"
local vals = {} -- vals[workload.."/"..metric][client] = {v...}
for line in io.lines(path) do
  local r, w, c, m, v = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
  if r then
    local k = w .. "/" .. m
    vals[k] = vals[k] or {}
    vals[k][c] = vals[k][c] or {}
    table.insert(vals[k][c], tonumber(v))
  end
end

local function median(t)
  if not t or #t == 0 then return nil end
  table.sort(t)
  local n = #t
  if n % 2 == 1 then return t[(n + 1) // 2] end
  return (t[n // 2] + t[n // 2 + 1]) / 2
end

-- key, label, unit scale, direction ("low" = lower is better), target vs theirs, floor check
local rows = {
  { "stateless/p50_ms", "stateless action latency, median (ms)", 1, "low", 0.5, true },
  { "stateless/p99_ms", "stateless action latency, p99 (ms)", 1, "low", 0.5, true },
  { "conn/p50_ms", "connection action latency, median (ms)", 1, "low", 0.8, true },
  { "conn/p99_ms", "connection action latency, p99 (ms)", 1, "low", 0.8, true },
  { "pipeline/ops_per_s", "pipelined throughput, 64 in flight (actions/s)", 1, "high", 1.5 },
  { "events/events_per_s", "event throughput (events/s)", 1, "high", 1.5 },
  { "conn/cpu_ms_per_10k", "client CPU per 10k connection actions, sequential (ms)", 1, "low", 0.25 },
  { "pipeline/cpu_ms_per_10k", "client CPU per 10k connection actions, pipelined (ms)", 1, "low", 0.25 },
  { "stateless/cpu_ms_per_10k", "client CPU per 10k stateless actions (ms)", 1, "low" },
  { "events/cpu_ms_per_10k", "client CPU per 10k events received (ms)", 1, "low" },
  { "conns/rss_n_kb", "resident size with " .. conns .. " open connections (MiB)", 1 / 1024, "low" },
  { "conns/rss_1_kb", "resident size with 1 open connection (MiB)", 1 / 1024, "low" },
  { "conns/kb_per_conn", "memory per connection beyond the first (KiB)", 1, "low", 0.2 },
  { "connect/p50_ms", "connect() to Init, median (ms)", 1, "low", nil, true },
  { "connect/p99_ms", "connect() to Init, p99 (ms)", 1, "low" },
}

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
print("| workload | lua-rivetkit | rivetkit/client | C floor | ours/theirs | target | ours/floor |")
print("|---|--:|--:|--:|--:|:-:|--:|")
for _, row in ipairs(rows) do
  local key, label, scale, dir, target, floor_check = table.unpack(row, 1, 6)
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
