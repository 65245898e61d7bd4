-- The soak driver (make soak, scripts/soak.sh). Two modes:
--
--   lua5.4 scripts/soak.lua client LABEL ENDPOINT OUTFILE
--       One soak client (one rivet.client, one process): SOAK_CONNS connections
--       (default 25) that each call burst(id, k) in a loop and check the k events it
--       sends, and SOAK_CALLERS tasks (default 4) making stateless op(id) calls over
--       HTTP, for SOAK_SECONDS (default 300); then it waits for what is still in flight
--       (at most the deadline + 2 s), disposes the client and writes OUTFILE.
--   lua5.4 scripts/soak.lua report DIR
--       Adds up DIR/client-*.out and the actors' records DIR/rec-*/exec-*.log (one line
--       per execution, written by soak/actors.mjs before it answers), prints the figures
--       and exits 1 if a pass criterion fails.
--
-- Every call carries a unique id (LABEL-n). A call is "hung" if it has not ended 2 s
-- after its deadline (SOAK_TIMEOUT, default 10 s, the client's timeout option).
-- Events: burst(id, k) makes the actor send events seq(key, n) to the calling
-- connection only, n = 1, 2, ... per server-side connection (key), then answer
-- {key, last n}. Events arrive before the answer on the same socket, so an answered
-- burst must have delivered all of its k events in the current connection episode
-- (between onOpen and the drop): each one missing counts as lost; so does a gap in n
-- within an episode.
local rivet = require("rivet")
local core = require("rivet.core")
local now = core.now

local function env_num(name, default)
  local v = tonumber(os.getenv(name) or "")
  return v or default
end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function rss_kb()
  local s = read_file("/proc/self/status") or ""
  return tonumber(s:match("VmRSS:%s*(%d+)")) or -1
end

local PID = tonumber((read_file("/proc/self/stat") or ""):match("^(%d+)"))
-- open descriptors of this process (the popen pipe itself is not counted: ls runs in
-- a child and lists our table, where the pipe's read end is one entry; subtract it)
local function fd_count()
  local p = io.popen("ls /proc/" .. PID .. "/fd 2>/dev/null")
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n - 1
end

-- "fd target" of every open descriptor (for the leak diagnosis in the results file)
local function fd_list()
  local p = io.popen("cd /proc/" .. PID .. "/fd 2>/dev/null && for f in *; do echo \"$f $(readlink $f)\"; done")
  local t = {}
  for l in p:lines() do t[l:match("^%S+")] = l end
  p:close()
  return t
end

local function errcode(err)
  if rivet.isActorError(err) then return err.group .. "." .. err.code end
  return "lua:" .. tostring(err):gsub("%s+", "_"):sub(1, 60)
end

--------------------------------------------------------------------------------------
-- client mode
--------------------------------------------------------------------------------------
local function run_client(label, endpoint, outfile)
  local SECONDS = env_num("SOAK_SECONDS", 300)
  local NCONN = env_num("SOAK_CONNS", 25)
  local NCALLERS = env_num("SOAK_CALLERS", 4)
  local TIMEOUT = env_num("SOAK_TIMEOUT", 10)
  local GRACE = 2
  local ACTORS = env_num("SOAK_ACTORS", 5) -- actors per client
  math.randomseed(os.time() + (PID or 0))

  local fd0, fdl0 = fd_count(), fd_list()
  local client = rivet.client(endpoint, { encoding = os.getenv("SOAK_ENCODING") or "bare", timeout = TIMEOUT })
  local t_start = now()
  local t_stop = t_start + SECONDS

  local st = {
    issued = 0, ok = 0, failed = {}, hung = 0, conn_issued = 0, http_issued = 0,
    ev_recv = 0, ev_expected = 0, ev_lost = 0, ev_gaps = 0, ev_dup = 0, ev_stray = 0,
    opens = 0, closes = 0, conn_errors = {}, handler_errors = 0,
  }
  local calls = {} -- id -> outcome ("ok" or error code), written to outfile
  local inflight = {} -- id -> { dl = deadline + grace, hung = bool }
  local nid = 0
  local function new_id(kind)
    nid = nid + 1
    local id = label .. "-" .. nid
    st.issued = st.issued + 1
    st[kind .. "_issued"] = st[kind .. "_issued"] + 1
    inflight[id] = { dl = now() + TIMEOUT + GRACE, kind = kind }
    return id
  end
  local function finish(id, ok, res)
    local e = inflight[id]
    inflight[id] = nil
    local outcome
    if ok then
      st.ok = st.ok + 1
      outcome = "ok"
    else
      outcome = errcode(res)
      st.failed[outcome] = (st.failed[outcome] or 0) + 1
    end
    if e and e.hung then outcome = outcome .. "(late)" end
    calls[#calls + 1] = id .. " " .. (e and e.kind or "?") .. " " .. outcome
  end

  local handles = {}
  for j = 1, ACTORS do handles[j] = client.soak:getOrCreate({ "soak", label, tostring(j) }) end

  -- connections
  local conns = {}
  for j = 1, NCONN do
    local h = handles[(j - 1) % ACTORS + 1]
    local conn = h:connect()
    local c = { conn = conn, ep = 0, last = {} }
    conns[j] = c
    conn:onOpen(function()
      st.opens = st.opens + 1
      c.ep = c.ep + 1
      c.last = {}
    end)
    conn:onClose(function() st.closes = st.closes + 1 end)
    conn:onError(function(err)
      local code = errcode(err)
      if code == "client.handler_failed" then st.handler_errors = st.handler_errors + 1 end
      st.conn_errors[code] = (st.conn_errors[code] or 0) + 1
    end)
    conn:on("seq", function(key, n)
      st.ev_recv = st.ev_recv + 1
      local l = c.last[key]
      if l then
        if n > l + 1 then st.ev_gaps = st.ev_gaps + (n - l - 1)
        elseif n <= l then st.ev_dup = st.ev_dup + 1 end
      end
      c.last[key] = n
    end)
    client:spawn(function()
      client:sleep(math.random() * 2)
      while now() < t_stop do
        local k = math.random(1, 8)
        local id = new_id("conn")
        local ok, res = conn:async("burst", id, k):result()
        if ok then
          local key, s = res[1], res[2]
          st.ev_expected = st.ev_expected + k
          local got = c.last[key] or 0
          if got < s then
            st.ev_lost = st.ev_lost + math.min(k, s - got)
          elseif got > s then
            st.ev_stray = st.ev_stray + 1
          end
        end
        finish(id, ok, res)
        client:sleep(0.5 + math.random())
      end
    end)
  end

  -- stateless callers
  for j = 1, NCALLERS do
    client:spawn(function()
      while now() < t_stop do
        local h = handles[math.random(1, ACTORS)]
        local id = new_id("http")
        local ok, res = h:async("op", id):result()
        finish(id, ok, res)
        client:sleep(0.1 + math.random() * 0.4)
      end
    end)
  end

  -- the loop, bounded: run until the end, then until nothing is in flight (at most
  -- the deadline + grace); check for hung calls twice a second
  local rss_warm, fd_warm
  local t_warm = t_start + math.min(10, SECONDS / 4)
  local next_check = now() + 0.5
  local t_final = t_stop + TIMEOUT + GRACE + 1
  while true do
    client:poll(0.05)
    local t = now()
    if not rss_warm and t >= t_warm then
      collectgarbage()
      rss_warm, fd_warm = rss_kb(), fd_count()
    end
    if t >= next_check then
      next_check = t + 0.5
      for _, e in pairs(inflight) do
        if not e.hung and t > e.dl then
          e.hung = true
          st.hung = st.hung + 1
        end
      end
    end
    if t >= t_stop and next(inflight) == nil then break end
    if t >= t_final then break end
  end
  for id, e in pairs(inflight) do
    if not e.hung then st.hung = st.hung + 1 end
    calls[#calls + 1] = id .. " " .. e.kind .. " hung"
  end
  collectgarbage()
  collectgarbage()
  local rss_end, fd_end_open = rss_kb(), fd_count()
  local open_now = 0
  for _, c in ipairs(conns) do if c.conn.status == "connected" then open_now = open_now + 1 end end
  for _, c in ipairs(conns) do c.conn:dispose() end
  client:dispose()
  conns, handles = nil, nil
  collectgarbage()
  collectgarbage()
  -- a descriptor can still be closing right after dispose (e.g. a resolver thread of
  -- curl finishing): look again for up to 5 s; report how long it took
  local t_disp = now()
  local fd_final = fd_count()
  while fd_final > fd0 and now() - t_disp < 5 do
    os.execute("sleep 0.1")
    fd_final = fd_count()
  end
  local fd_settle = now() - t_disp
  local fdl1 = fd_list()

  local f = assert(io.open(outfile .. ".tmp", "w"))
  local function S(k, v) f:write("S ", k, " ", tostring(v), "\n") end
  for _, k in ipairs({ "issued", "conn_issued", "http_issued", "ok", "hung", "ev_recv", "ev_expected", "ev_lost",
    "ev_gaps", "ev_dup", "ev_stray", "opens", "closes", "handler_errors" }) do
    S(k, st[k])
  end
  S("conns", NCONN)
  S("connected_at_end", open_now)
  S("rss_warm_kb", rss_warm or -1)
  S("rss_end_kb", rss_end)
  S("fd_before", fd0)
  S("fd_warm", fd_warm or -1)
  S("fd_end_open", fd_end_open)
  S("fd_final", fd_final)
  S("fd_settle_s", string.format("%.2f", fd_settle))
  S("seconds", string.format("%.1f", now() - t_start))
  -- descriptors open after dispose that were not before the client (pipes of our own
  -- popen excepted: their numbers change from one listing to the next)
  if fd_final ~= fd0 then
    for _, l in pairs(fdl0) do f:write("D before ", (l:gsub(" ", "=")), "\n") end
    for _, l in pairs(fdl1) do f:write("D after ", (l:gsub(" ", "=")), "\n") end
  end
  for code, n in pairs(st.failed) do f:write("F ", code, " ", n, "\n") end
  for code, n in pairs(st.conn_errors) do f:write("E ", code, " ", n, "\n") end
  for _, line in ipairs(calls) do f:write("C ", line, "\n") end
  f:close()
  os.rename(outfile .. ".tmp", outfile)
end

--------------------------------------------------------------------------------------
-- report mode
--------------------------------------------------------------------------------------
local function run_report(dir)
  local RSS_SLACK_KB = env_num("SOAK_RSS_SLACK_KB", 8192)
  local FD_SLACK = env_num("SOAK_FD_SLACK", 0)
  local servers = {} -- label prefix (v20 / v23) -> totals
  local order = {}
  local function srv(name)
    local s = servers[name]
    if not s then
      s = { clients = 0, S = {}, F = {}, E = {}, outcome = {}, rss = {}, fds = {}, exec = {}, twice = 0,
        twice_ids = {}, ev_sent = 0, ok_unrecorded = 0, failed_executed = {}, execs = 0 }
      servers[name] = s
      order[#order + 1] = name
    end
    return s
  end
  local p = io.popen("ls " .. dir .. "/client-*.out 2>/dev/null")
  local files = {}
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  table.sort(files)
  local missing_clients = 0
  for _, path in ipairs(files) do
    local label = path:match("client%-(v%d+)")
    local s = srv(label)
    s.clients = s.clients + 1
    local per = {}
    for line in io.lines(path) do
      local t, a, b, c = line:match("^(%u) (%S+) (%S+) ?(%S*)")
      if t == "S" then
        per[a] = tonumber(b) or b
        if tonumber(b) then s.S[a] = (s.S[a] or 0) + tonumber(b) end
      elseif t == "F" then s.F[a] = (s.F[a] or 0) + tonumber(b)
      elseif t == "E" then s.E[a] = (s.E[a] or 0) + tonumber(b)
      elseif t == "C" then s.outcome[a] = c
      end
    end
    s.rss[#s.rss + 1] = { per.rss_warm_kb, per.rss_end_kb }
    s.fds[#s.fds + 1] = { per.fd_before, per.fd_warm, per.fd_end_open, per.fd_final, tonumber(per.fd_settle_s) or 0 }
  end
  local expected = env_num("SOAK_EXPECT_CLIENTS", 0)
  if expected > 0 and #files < expected then missing_clients = expected - #files end
  -- the actors' records
  p = io.popen("ls " .. dir .. "/rec-*/exec-*.log 2>/dev/null")
  for path in p:lines() do
    local label = path:match("rec%-(v%d+)")
    local s = srv(label)
    for line in io.lines(path) do
      local id, key, first, last = line:match("^A (%S+) ?(%S*) ?(%d*) ?(%d*)")
      if id then
        s.execs = s.execs + 1
        local n = (s.exec[id] or 0) + 1
        s.exec[id] = n
        if n == 2 then s.twice = s.twice + 1; s.twice_ids[#s.twice_ids + 1] = id end
        if first ~= "" then s.ev_sent = s.ev_sent + (tonumber(last) - tonumber(first) + 1) end
      end
    end
  end
  p:close()

  local fail = {}
  local function check(cond, what) if not cond then fail[#fail + 1] = what end end
  check(missing_clients == 0, missing_clients .. " client(s) wrote no results")
  local T = { issued = 0, ok = 0, hung = 0, twice = 0, lost = 0 }
  for _, name in ipairs(order) do
    local s = servers[name]
    local S = s.S
    for id, outcome in pairs(s.outcome) do
      if outcome == "ok" and not s.exec[id] then s.ok_unrecorded = s.ok_unrecorded + 1 end
      if outcome ~= "ok" and s.exec[id] then
        s.failed_executed[outcome] = (s.failed_executed[outcome] or 0) + 1
      end
    end
    print(string.format("== %s: %d client process(es) x %d connections, %s s", name, s.clients,
      s.clients > 0 and (S.conns or 0) // s.clients or 0, S.seconds and string.format("%.0f", S.seconds / math.max(1, s.clients)) or "?"))
    print(string.format("calls issued       %d (%d over connections, %d stateless over HTTP)", S.issued or 0,
      S.conn_issued or 0, S.http_issued or 0))
    print(string.format("  succeeded        %d", S.ok or 0))
    local codes = {}
    for code, n in pairs(s.F) do codes[#codes + 1] = { code, n } end
    table.sort(codes, function(a, b) return a[2] > b[2] end)
    local nf = 0
    for _, e in ipairs(codes) do nf = nf + e[2] end
    print(string.format("  failed           %d", nf))
    for _, e in ipairs(codes) do print(string.format("      %-28s %d", e[1], e[2])) end
    print(string.format("  hung             %d   (not ended 2 s after the deadline)", S.hung or 0))
    print(string.format("executions recorded by the actors  %d", s.execs))
    print(string.format("  executed twice   %d%s", s.twice, s.twice > 0 and ("  e.g. " .. table.concat(s.twice_ids, " ", 1, math.min(5, #s.twice_ids))) or ""))
    print(string.format("  succeeded but not recorded  %d", s.ok_unrecorded))
    local fe, nfe = {}, 0
    for code, n in pairs(s.failed_executed) do fe[#fe + 1] = code .. " " .. n; nfe = nfe + n end
    print(string.format("  failed on the client but executed  %d%s", nfe, nfe > 0 and ("  (" .. table.concat(fe, ", ") .. ")") or ""))
    print(string.format("events sent by the actors  %d; received %d", s.ev_sent, S.ev_recv or 0))
    print(string.format("  of answered bursts: expected %d, lost %d; gaps within a connection %d; duplicates %d; stray %d",
      S.ev_expected or 0, S.ev_lost or 0, S.ev_gaps or 0, S.ev_dup or 0, S.ev_stray or 0))
    print(string.format("  sent to connections that dropped before the answer  %d", s.ev_sent - (S.ev_expected or 0)))
    print(string.format("connections opened (Init) %d for %d connections: reconnects %d; closes %d; connected at the end %d",
      S.opens or 0, S.conns or 0, (S.opens or 0) - (S.conns or 0), S.closes or 0, S.connected_at_end or 0))
    local ce = {}
    for code, n in pairs(s.E) do ce[#ce + 1] = code .. " " .. n end
    table.sort(ce)
    print("  connection errors (onError): " .. (#ce > 0 and table.concat(ce, ", ") or "none"))
    local rs, worst = {}, -math.huge
    for _, r in ipairs(s.rss) do
      rs[#rs + 1] = string.format("%d->%d", r[1], r[2])
      worst = math.max(worst, r[2] - r[1])
    end
    print(string.format("client RSS KiB (at 10 s -> end): %s; largest growth %d KiB (bound %d)", table.concat(rs, " "),
      worst, RSS_SLACK_KB))
    local fs, fleak, settle = {}, -math.huge, 0
    for _, r in ipairs(s.fds) do
      fs[#fs + 1] = string.format("%d/%d/%d/%d", r[1], r[2], r[3], r[4])
      fleak = math.max(fleak, r[4] - r[1])
      settle = math.max(settle, r[5])
    end
    print(string.format("client fds (before client / at 10 s / end, open / after dispose): %s; largest leak %d (bound %d); back to the start count %.2f s after dispose at most",
      table.concat(fs, " "), fleak, FD_SLACK, settle))
    check((S.hung or 0) == 0, name .. ": hung calls")
    check(s.twice == 0, name .. ": calls executed twice")
    check(s.ok_unrecorded == 0, name .. ": succeeded calls the actor never recorded")
    check((S.ev_lost or 0) + (S.ev_gaps or 0) + (S.ev_dup or 0) + (S.ev_stray or 0) == 0, name .. ": events lost/duplicated while connected")
    check(worst <= RSS_SLACK_KB, name .. ": RSS grew by more than the bound")
    check(fleak <= FD_SLACK, name .. ": file descriptors leaked")
    check((S.issued or 0) > 0, name .. ": no calls issued")
    T.issued, T.ok, T.hung, T.twice = T.issued + (S.issued or 0), T.ok + (S.ok or 0), T.hung + (S.hung or 0), T.twice + s.twice
    T.lost = T.lost + (S.ev_lost or 0) + (S.ev_gaps or 0)
  end
  print(string.format("== total: issued %d, succeeded %d, hung %d, executed twice %d, events lost %d", T.issued, T.ok,
    T.hung, T.twice, T.lost))
  if #fail > 0 then
    print("SOAK FAILED: " .. table.concat(fail, "; "))
    os.exit(1)
  end
  print("SOAK PASSED")
end

local mode = arg[1]
if mode == "client" then
  run_client(assert(arg[2], "label"), assert(arg[3], "endpoint"), assert(arg[4], "outfile"))
elseif mode == "report" then
  run_report(assert(arg[2], "dir"))
else
  io.stderr:write("usage: soak.lua client LABEL ENDPOINT OUTFILE | report DIR\n")
  os.exit(2)
end
