-- Run by spec/dns_block_spec.lua inside `unshare -m -n`, where /etc/resolv.conf names
-- 127.0.0.1 (timeout 30 s, one attempt), served by spec/fake/dns_drop.mjs. The client
-- resolves the host name and fetches /metadata over HTTP while the server answers; then
-- the server is switched to hold every query unanswered, WebSockets are opened to the
-- host name, their look-ups reach the server, and they are taken away while the look-ups
-- still run (scenario below). The child shows that the call returned before the
-- resolver gave up, by order:
--   1. the call (poll(0), dispose, loop close) returns;
--   2. only then: the resolver's UDP socket to 127.0.0.1:53 is still open (the look-up
--      still waits for its answer) and the server still holds unanswered queries;
--   3. the server is told to answer; the resolver sockets close (the look-ups end) and
--      the loop frees them on its next polls (the leak checkers see the rest).
-- Prints "step ..." lines and "ok" last; any failure raises (exit status 1).
--   lua5.4 spec/support/dns_child.lua DIR conn|timeout|client|loop|http|http_timeout HTTP_PORT
local rivet = require("rivet")
local core = require("rivet.core")

local dir, scenario, http_port = arg[1], arg[2], arg[3]
local HOST = "rivet-dns-test.invalid"
local N = 3

local function dns_status()
  local f = io.open(dir .. "/dns.status")
  local s = f and f:read("l") or ""
  if f then f:close() end
  local m, r, h, a = s:match("^mode (%a+) received (%d+) held (%d+) answered (%d+)")
  return tonumber(r) or 0, tonumber(h) or 0, tonumber(a) or 0, m
end

-- UDP sockets of this network namespace connected to 127.0.0.1:53: the resolver's
-- (glibc connects its UDP socket to the name server and closes it when the look-up ends)
local function resolver_sockets()
  local n = 0
  for line in io.lines("/proc/self/net/udp") do
    local rem = line:match("^%s*%d+:%s+%x+:%x+%s+(%x+:%x+)")
    if rem == "0100007F:0035" then n = n + 1 end
  end
  return n
end

-- Runs step() until pred() holds; a guard only (the spec's assertions are about order).
local function until_true(pred, step, what)
  local deadline = core.now() + 10
  while not pred() do
    if core.now() > deadline then error("gave up waiting for " .. what, 0) end
    step()
    os.execute("sleep 0.01")
  end
end

local function say(...) print("step", ...) io.stdout:flush() end

-- from now on the name server answers nothing
local function hold()
  local f = assert(io.open(dir .. "/hold", "w"))
  f:close()
  until_true(function() return select(4, dns_status()) == "hold" end, function() end, "the DNS server to hold")
end

local client, loop, conns
local step -- one turn of whatever loop is in use
local want = N -- queries that reach the server before the call under test
if scenario == "http" or scenario == "http_timeout" then
  -- an HTTP call whose host name look-up (libcurl's resolver thread) never ends
  hold()
  client = rivet.client("http://" .. HOST .. ":" .. http_port, { timeout = scenario == "http_timeout" and 0.3 or 30 })
  client:spawn(function() pcall(function() return client.counter:getForId("dns-http"):increment(1) end) end)
  step = function() client:poll(0) end
  want = 1
elseif scenario == "loop" then
  want = 2
  hold()
  loop = core.loop()
  for _ = 1, 2 do loop:ws_open({ host = HOST, port = 9, path = "/", protocols = "rivet" }) end
  step = function() loop:poll(0, {}) end
else
  client = rivet.client("http://" .. HOST .. ":" .. http_port, { timeout = scenario == "timeout" and 0.3 or 30 })
  say("server", client:server().line) -- resolved and fetched while the name server answers
  hold()
  conns = {}
  for i = 1, N do conns[i] = client.counter:getForId("dns-" .. i):connect() end
  step = function() client:poll(0) end
end

-- the look-ups have reached the server and wait for it
until_true(function() return select(2, dns_status()) >= want and resolver_sockets() > 0 end,
  step, "the look-ups to reach the DNS server")
local _, held0, answered0 = dns_status()
say("resolving", "held", held0, "resolver_sockets", resolver_sockets())

if scenario == "conn" then
  for _, c in ipairs(conns) do c:dispose() end
  client:poll(0)
  client:poll(0)
  say("returned", "dispose+poll(0)")
elseif scenario == "timeout" or scenario == "http_timeout" then
  -- the connect deadline or the call's timeout (0.3 s) passes while resolving
  local t_end = core.now() + 0.6
  while core.now() < t_end do
    client:poll(0)
    os.execute("sleep 0.02")
  end
  client:poll(0)
  say("returned", "timeout+poll(0)")
elseif scenario == "client" or scenario == "http" then
  client:dispose()
  say("returned", "client:dispose()")
else
  loop:close()
  say("returned", "loop:close()")
end

local sockets = resolver_sockets()
local _, held, answered = dns_status()
say("after", "resolver_sockets", sockets, "held", held, "answered_since", answered - answered0)
assert(sockets > 0, "the resolver had already given up: the call waited for it")
assert(held > 0 and answered == answered0, "the DNS server has no unanswered query left")

-- now let the look-ups end, and let the loop free them
local f = assert(io.open(dir .. "/answer", "w"))
f:close()
local function turn()
  if scenario == "conn" or scenario == "timeout" or scenario == "http_timeout" then
    client:poll(0)
  end
end
until_true(function() return resolver_sockets() == 0 end, turn, "the look-ups to end")
_, held, answered = dns_status()
say("answered", "held", held, "answered", answered)
turn()
if scenario == "client" or scenario == "loop" then
  -- a new loop's first WebSocket frees what closed loops left behind
  local l2 = core.loop()
  l2:ws_open({ host = "127.0.0.1", port = 9, path = "/", protocols = "rivet" })
  l2:poll(0, {})
  l2:close()
else
  client:dispose()
end
print("ok")
