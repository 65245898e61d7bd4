-- A private nginx (Debian's nginx + libnginx-mod-http-lua) for the OpenResty specs:
-- its own prefix under a temporary directory, a conf generated from a template, one
-- worker, 127.0.0.1 on a free random port. Started in the background and stopped by
-- PID; nothing else is ever signalled.
--
--   local nginx = require("spec.support.nginx")
--   local srv = nginx.start({ template = "spec/nginx/nginx.conf", env = { RIVET_ENDPOINT = url } })
--   local res = srv:get("/ping")        -- { status = 200, body = "pong", headers = {...} }
--   srv:stop()                          -- SIGQUIT, SIGTERM, then SIGKILL; removes the prefix
--
-- Templates use ${NAME} placeholders (see `vars` in M.start). Global directives that only
-- the harness knows (daemon off, the pid file, `user root;` when root) go on nginx's -g
-- command line, so the templates and the example conf stay what a user would write.
local M = {}

local ROOT = assert(io.popen("pwd")):read("l")
M.root = ROOT

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>/dev/null"))
  local out = p:read("a")
  p:close()
  return out
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  assert(f:write(s))
  f:close()
end

local function sleep(s) os.execute("sleep " .. s) end

-- Running, and not a zombie.
local function alive(pid)
  local st = read_file("/proc/" .. pid .. "/stat")
  if not st then return false end
  local state = st:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- Any process left in the process group `pgid` (the group timeout(1) created for us)?
local function group_alive(pgid)
  for pid in run("ls /proc"):gmatch("(%d+)\n") do
    local st = read_file("/proc/" .. pid .. "/stat")
    local pg = st and st:match("^%d+ %b() %a %d+ (%d+)")
    if pg == pgid and alive(pid) then return true end
  end
  return false
end

-- no socket holds the port, listening or connected (TIME_WAIT aside: a listener reuses it)
local function port_free(port)
  return run("ss -Htan exclude time-wait 'sport = :" .. port .. "'") == ""
end

local rng_seeded = false
local function random_port()
  if not rng_seeded then
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
    rng_seeded = true
  end
  for _ = 1, 200 do
    -- checked free here; one taken before nginx binds it makes M.start try another
    -- below the kernel's ephemeral ports (32768 and up), which outgoing connections take
    -- (scripts/servers.sh keeps its servers under them too, at 12000 and up)
    local p = math.random(2000, 11999)
    if port_free(p) then return p end
  end
  error("nginx harness: no free port found")
end

--- The Debian module directory (load_module paths).
M.modules = "/usr/share/nginx/modules"

--- Fills ${NAME} placeholders from vars; an unknown name is an error (no silent blanks).
function M.render(text, vars)
  return (text:gsub("%${([%w_]+)}", function(k)
    local v = vars[k]
    if v == nil then error("nginx template: no value for ${" .. k .. "}", 0) end
    return tostring(v)
  end))
end

--- A url-encoded query string from a table (keys sorted).
function M.query(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    out[#out + 1] = k .. "=" .. tostring(t[k]):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end)
  end
  return table.concat(out, "&")
end

local Server = {}
Server.__index = Server

--- The last n lines of error.log (for failure messages).
function Server:log_tail(n)
  return run("tail -n " .. (n or 30) .. " " .. sh_quote(self.prefix .. "/logs/error.log"))
end

--- error.log, whole.
function Server:error_log() return read_file(self.prefix .. "/logs/error.log") or "" end

--- Writes the error.log tail to stderr as TAP comments ("# nginx: ...").
function Server:show_log(n)
  if not read_file(self.prefix .. "/logs/error.log") then return end -- stopped and removed
  local tail = self:log_tail(n)
  io.stderr:write("# nginx error.log (" .. self.prefix .. "), last lines:\n")
  for line in tail:gmatch("[^\n]+") do io.stderr:write("# nginx: " .. line .. "\n") end
end

--- Wraps a test body: on failure, shows the error.log tail, then re-raises the error.
function Server:wrap(fn)
  return function(...)
    local ok, err = xpcall(fn, debug.traceback, ...)
    if not ok then
      self:show_log(40)
      error(err, 0)
    end
  end
end

-- One HTTP request with curl. opts: method, body, headers (table), timeout (s, default 30).
function Server:request(path, opts)
  opts = opts or {}
  local dir = self.prefix .. "/client"
  self._nreq = (self._nreq or 0) + 1
  local bodyf, headf = dir .. "/body-" .. self._nreq, dir .. "/head-" .. self._nreq
  local cmd = { "curl -sS -g --noproxy '*' --max-time", tostring(opts.timeout or 30), "-o", sh_quote(bodyf),
    "-D", sh_quote(headf), "-w '%{http_code}'" }
  if opts.method then cmd[#cmd + 1] = "-X " .. sh_quote(opts.method) end
  for k, v in pairs(opts.headers or {}) do cmd[#cmd + 1] = "-H " .. sh_quote(k .. ": " .. v) end
  if opts.body then
    local inf = dir .. "/in-" .. self._nreq
    write_file(inf, opts.body)
    cmd[#cmd + 1] = "--data-binary @" .. sh_quote(inf)
  end
  cmd[#cmd + 1] = sh_quote(self.url .. path)
  local code = run(table.concat(cmd, " "))
  local res = { status = tonumber(code) or 0, body = read_file(bodyf) or "", headers = {} }
  for line in (read_file(headf) or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then res.headers[k:lower()] = v end
  end
  os.remove(bodyf)
  os.remove(headf)
  return res
end

--- GET path; returns { status, body, headers }.
function Server:get(path, opts) return self:request(path, opts) end

--- GET path?args (a table, url-encoded); asserts a 200 and returns the decoded JSON.
function Server:call(path, args, opts)
  local res = self:get(path .. (args and ("?" .. M.query(args)) or ""), opts)
  assert(res.status == 200, path .. " -> HTTP " .. res.status .. " (0: no answer): " .. res.body)
  local ok, v = pcall(require("rivet.core").json_decode, res.body, false)
  assert(ok and v ~= nil, "not JSON: " .. res.body)
  return v
end

--- The error.log lines that say a worker died (a crash: "exited on signal", or any
--- other "worker process N exited"); nil when there are none.
function Server:worker_deaths()
  local out = {}
  for line in self:error_log():gmatch("[^\n]+") do
    if line:find("signal", 1, true) or line:find("exited on", 1, true) or line:find("worker process %d+ exited") then
      out[#out + 1] = line
    end
  end
  return #out > 0 and table.concat(out, "\n") or nil
end

--- Starts `curl URL` in the background; returns a handle with :wait() -> { status, body }.
function Server:request_bg(path, timeout)
  local dir = self.prefix .. "/client"
  self._nreq = (self._nreq or 0) + 1
  local n = self._nreq
  local bodyf, codef = dir .. "/bg-body-" .. n, dir .. "/bg-code-" .. n
  local pid = run(("curl -sS -g --noproxy '*' --max-time %d -o %s -w '%%{http_code}' %s > %s.tmp 2>&1 & echo $!")
    :format(timeout or 60, sh_quote(bodyf), sh_quote(self.url .. path), sh_quote(codef)))
  pid = pid:match("%d+")
  return {
    pid = pid,
    --- true once curl has exited
    done = function() return not alive(pid) end,
    wait = function()
      while alive(pid) do sleep(0.05) end
      local res = { status = tonumber(read_file(codef .. ".tmp") or "") or 0, body = read_file(bodyf) or "" }
      os.remove(bodyf)
      os.remove(codef .. ".tmp")
      return res
    end,
  }
end

--- Runs the paths' requests at the same time (one curl each, all started before any is
--- waited for); returns their results in order.
function Server:parallel(paths, timeout)
  local dir = self.prefix .. "/client"
  local script = {}
  for i, path in ipairs(paths) do
    script[#script + 1] = ("curl -sS -g --noproxy '*' --max-time %d -o %s/par-%d -w '%%{http_code}' %s"
      .. " > %s/par-%d.code 2>&1 &")
      :format(timeout or 30, sh_quote(dir), i, sh_quote(self.url .. path), sh_quote(dir), i)
  end
  script[#script + 1] = "wait"
  os.execute(table.concat(script, "\n"))
  local out = {}
  for i = 1, #paths do
    local b, c = ("%s/par-%d"):format(dir, i), ("%s/par-%d.code"):format(dir, i)
    out[i] = { status = tonumber(read_file(c) or "") or 0, body = read_file(b) or "" }
    os.remove(b)
    os.remove(c)
  end
  return out
end

--- Stops nginx: SIGQUIT (graceful) to the master, SIGTERM after `grace` seconds
--- (default 5), SIGKILL to the process group we created after 3 more; removes the prefix
--- (kept when opts.keep or RIVET_TEST_KEEP_NGINX=1). Returns how it ended:
--- "quit" | "term" | "kill".
function Server:stop(opts)
  opts = opts or {}
  if self.stopped then return self.stopped end
  local how = "quit"
  local master = self:master_pid()
  local function wait_gone(secs)
    for _ = 1, math.floor(secs / 0.05) do
      if not group_alive(self.pgid) then return true end
      sleep(0.05)
    end
    return not group_alive(self.pgid)
  end
  if master then os.execute("kill -QUIT " .. master .. " 2>/dev/null") end
  if not wait_gone(opts.grace or 5) then
    how = "term"
    if master and alive(master) then os.execute("kill -TERM " .. master .. " 2>/dev/null") end
    if not wait_gone(3) then
      how = "kill"
      -- the group timeout(1) made for nginx: the master and its workers, nothing else
      os.execute("kill -KILL -- -" .. self.pgid .. " 2>/dev/null")
      wait_gone(3)
    end
  end
  if how ~= "quit" then
    io.stderr:write(("# nginx harness: nginx did not stop on SIGQUIT within %ss (%s)\n"):format(opts.grace or 5, how))
    self:show_log(20)
  end
  self.stopped = how
  if not opts.keep and os.getenv("RIVET_TEST_KEEP_NGINX") ~= "1" then
    os.execute("rm -rf " .. sh_quote(self.prefix))
  end
  return how
end

--- The master's pid (from its pid file; the timeout(1) wrapper's child otherwise).
function Server:master_pid()
  local s = read_file(self.prefix .. "/logs/nginx.pid")
  local pid = s and s:match("%d+")
  if pid and alive(pid) then return pid end
  local kids = read_file("/proc/" .. self.pgid .. "/task/" .. self.pgid .. "/children")
  pid = kids and kids:match("%d+")
  return pid
end

--- True while the nginx master runs.
function Server:running() return group_alive(self.pgid) end

local function make_prefix()
  local dir = run("mktemp -d /tmp/lua-rivetkit-nginx.XXXXXX"):match("[^\n]+")
  assert(dir and dir:match("^/tmp/lua%-rivetkit%-nginx%."), "nginx harness: mktemp failed")
  os.execute("mkdir -p " .. sh_quote(dir) .. "/conf " .. sh_quote(dir) .. "/logs "
    .. sh_quote(dir) .. "/temp " .. sh_quote(dir) .. "/client")
  return dir
end

--- Starts nginx. opts:
---   template   path of the conf template (relative to the repository root)
---   conf       or the conf text itself (already a template)
---   vars       extra ${NAME} values
---   env        environment variables for nginx (the conf decides which reach workers:
---              `env NAME;`)
---   ready      path to GET until it answers (any HTTP status counts; default "/")
---   files      files (repository paths) copied into the prefix, beside conf/
---   timeout    seconds to wait for it (default 15)
---   limit      seconds after which timeout(1) stops a forgotten nginx (default 1800)
---   memory_mb  address-space limit (ulimit -v) for nginx and its workers
--- Returns a server with .url, .port, .prefix, :get, :request, :request_bg, :parallel,
--- :log_tail, :stop. Raises with the error.log tail when nginx does not come up.
function M.start(opts)
  opts = opts or {}
  local text = opts.conf or assert(read_file(ROOT .. "/" .. opts.template), "no template " .. tostring(opts.template))
  local last_err
  for _ = 1, 3 do -- a port taken between the check and nginx's bind: try another one
    local prefix = make_prefix()
    local port = random_port()
    local vars = {
      ROOT = ROOT,
      PREFIX = prefix,
      PORT = port,
      MODULES = M.modules,
      -- the library, the handler modules, and spec.support.* modules they share with specs
      LUA_PATH = ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. ROOT .. "/spec/nginx/?.lua;"
        .. ROOT .. "/?.lua;;",
      LUA_CPATH = ROOT .. "/build/luajit/?.so;;",
    }
    for k, v in pairs(opts.vars or {}) do vars[k] = v end
    local rendered, conf = pcall(M.render, text, vars)
    if not rendered then
      os.execute("rm -rf " .. sh_quote(prefix))
      error(conf, 0)
    end
    write_file(prefix .. "/conf/nginx.conf", conf)
    for _, f in ipairs(opts.files or {}) do -- beside the conf, as a user's copy would be
      write_file(prefix .. "/" .. f:match("[^/]+$"), assert(read_file(ROOT .. "/" .. f), "no file " .. f))
    end
    -- what the conf does not say itself: in the foreground, the pid file in the prefix,
    -- workers as root when we are root (they must read the 0700 temp directories)
    local globals = {}
    local function has(directive)
      return conf:find("\n%s*" .. directive .. "%s") or conf:find("^%s*" .. directive .. "%s")
    end
    if not has("daemon") then globals[#globals + 1] = "daemon off;" end
    if not has("pid") then globals[#globals + 1] = "pid " .. prefix .. "/logs/nginx.pid;" end
    if not has("user") and run("id -u"):match("^0") then globals[#globals + 1] = "user root;" end
    globals = table.concat(globals, " ")
    local envs = {}
    for k, v in pairs(opts.env or {}) do envs[#envs + 1] = k .. "=" .. sh_quote(v) end
    -- timeout(1) puts nginx in a process group of its own and bounds a forgotten run
    -- a bound on its address space (opts.memory_mb): a worker that grows is killed by
    -- the allocation that fails, not by the kernel's OOM killer after the machine's RAM
    local ulimit = opts.memory_mb and ("ulimit -v " .. math.floor(opts.memory_mb * 1024) .. "; ") or ""
    local cmd = ("%s%s exec timeout -k 5 %d nginx -p %s -c %s -e %s -g %s > %s 2>&1 < /dev/null & echo $!")
      :format(ulimit, table.concat(envs, " "), opts.limit or 1800, sh_quote(prefix .. "/"),
        sh_quote(prefix .. "/conf/nginx.conf"), sh_quote(prefix .. "/logs/error.log"),
        sh_quote(globals), sh_quote(prefix .. "/logs/stdout.log"))
    local pgid = run("sh -c " .. sh_quote(cmd)):match("%d+")
    assert(pgid, "nginx harness: could not start nginx")
    local srv = setmetatable({ prefix = prefix, port = port, url = "http://127.0.0.1:" .. port, pgid = pgid }, Server)
    local up = false
    for _ = 1, math.floor((opts.timeout or 15) / 0.05) do
      if not srv:running() then break end
      local code = run(("curl -s --noproxy '*' -o /dev/null --max-time 2 -w '%%{http_code}' %s")
        :format(sh_quote(srv.url .. (opts.ready or "/"))))
      if code ~= "" and code ~= "000" then up = true break end
      sleep(0.05)
    end
    if up then return srv end
    local log = (read_file(prefix .. "/logs/error.log") or "") .. (read_file(prefix .. "/logs/stdout.log") or "")
    srv:stop({ grace = 1, keep = true })
    last_err = ("nginx did not come up on %s (prefix %s); error.log:\n%s"):format(srv.url, prefix,
      log:sub(-3000))
    os.execute("rm -rf " .. sh_quote(prefix))
    if not log:find("Address already in use", 1, true) then break end
  end
  error(last_err, 0)
end

return M
