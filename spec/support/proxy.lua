-- Starts and stops spec/support/proxy.mjs (a TCP proxy with a fault switch) by PID and
-- sends it commands over its control port with a loop of our own (not the client under
-- test, whose loop must not run while we flip a switch).
local core = require("rivet.core")
local fake = require("spec.support.fake")

local M = {}

local Proxy = {}
Proxy.__index = Proxy

--- Starts a proxy in front of the server at `endpoint` (http://127.0.0.1:PORT).
--- Returns a proxy with .endpoint (give it to rivet.client), :cut(), :refuse(),
--- :resume(), :outage() (refuse + cut at once), :stall() / :flow() (stop / go on
--- reading what clients send), :stats() and :stop().
function M.start(endpoint)
  local tport = assert(endpoint:match("^http://127%.0%.0%.1:(%d+)"), "proxy: endpoint must be http://127.0.0.1:PORT")
  local out, port, cport, pid = fake.spawn("spec/support/proxy.mjs " .. tport, "^(%d+) (%d+) (%d+)$", "the proxy")
  return setmetatable({
    endpoint = "http://127.0.0.1:" .. port,
    pid = pid,
    _cport = cport,
    _out = out,
    _loop = core.loop(),
  }, Proxy)
end

--- Sends one command and returns the proxy's stats after it ran.
function Proxy:command(name)
  local loop = self._loop
  local id = loop:request({ method = "POST", url = "http://127.0.0.1:" .. self._cport .. "/" .. name, timeout = 5 })
  local out = {}
  local deadline = core.now() + 5
  while core.now() < deadline do
    local n = loop:poll(0.05, out)
    for i = 1, n do
      local r = out[i]
      if r.id == id then
        assert(not r.err, "proxy control failed: " .. tostring(r.message))
        return assert(core.json_decode(r.body, false))
      end
    end
  end
  error("proxy control: no answer to " .. name)
end

function Proxy:cut() return self:command("cut") end
function Proxy:refuse() return self:command("refuse") end
function Proxy:resume() return self:command("resume") end
function Proxy:outage() return self:command("refuse-cut") end
function Proxy:stall() return self:command("stall") end
function Proxy:flow() return self:command("flow") end
function Proxy:stats() return self:command("stats") end

function Proxy:stop()
  os.execute("kill " .. self.pid .. " 2>/dev/null")
  os.remove(self._out)
  self._loop:close()
end

return M
