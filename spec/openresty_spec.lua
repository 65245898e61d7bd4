-- The library inside nginx (Debian's nginx + lua module, LuaJIT, the cosocket transport),
-- driven over plain HTTP (curl) against a private nginx (spec/support/nginx.lua) whose
-- handlers (spec/nginx/*.lua) call the test server: stateless actions in every encoding,
-- errors, timeouts, raw fetch, HTTPS by host name, connections and raw WebSockets that
-- outlive the request that opened them, events recorded by handlers in the background,
-- reconnect after a cut through the fault proxy, dispose, phases without cosockets, tasks
-- and futures across light threads, a worker that is never blocked, the example in
-- examples/openresty/, and a graceful stop.
local env = require("spec.support.env")

if rawget(_G, "jit") then
  -- nginx runs its own LuaJIT whichever interpreter runs busted; the lua5.4 passes
  -- already drive the same nginx against both servers
  describe("openresty (" .. env.server .. ")", function()
    pending("skipped on LuaJIT: nginx embeds its own LuaJIT, so the lua5.4 pass runs these same nginx specs")
  end)
  return
end

local core = require("rivet.core")
local fake = require("spec.support.fake")
local nginx = require("spec.support.nginx")
local proxy = require("spec.support.proxy")
local tls = require("spec.support.tls")

local function json(res)
  local ok, v = pcall(core.json_decode, res.body, false)
  assert(ok and v ~= nil, "not JSON (" .. tostring(res.status) .. "): " .. res.body)
  return v
end

local function file_exists(p)
  local f = io.open(p)
  if f then f:close() end
  return f ~= nil
end

local query = nginx.query

describe("openresty (" .. env.server .. ")", function()
  local srv, px, certs, good, wrong, dns

  setup(function()
    assert(file_exists(nginx.root .. "/build/luajit/rivet/core.so"),
      "build/luajit/rivet/core.so is missing: run `make LUA=luajit`")
    assert(os.execute("command -v nginx >/dev/null"),
      "nginx is not installed (apt-get install nginx libnginx-mod-http-lua)")
    px = proxy.start(env.endpoint)
    certs = tls.make_certs()
    good = tls.proxy(env.endpoint, { cert = certs.good_cert, key = certs.good_key })
    wrong = tls.proxy(env.endpoint, { cert = certs.wrong_cert, key = certs.wrong_key })
    local out, port, pid = fake.spawn("spec/support/dns_server.mjs", "^(%d+) (%d+)$", "the name server")
    dns = { out = out, port = port, pid = pid }
    srv = nginx.start({
      template = "spec/nginx/nginx.conf",
      ready = "/ping",
      vars = { DNS_PORT = dns.port, TLS_CA = certs.ca, MAX_RUNNING_TIMERS = 256 },
      env = {
        RIVET_ENDPOINT = env.endpoint,
        RIVET_PROXY_ENDPOINT = px.endpoint,
        RIVET_TLS_ENDPOINT = "https://localhost:" .. good.port,
        RIVET_TLS_WRONG_ENDPOINT = "https://localhost:" .. wrong.port,
      },
    })
  end)

  teardown(function()
    if srv then srv:stop() end
    if px then px:stop() end
    if good then good.stop() end
    if wrong then wrong.stop() end
    if certs then certs.remove() end
    if dns then
      os.execute("kill " .. dns.pid .. " 2>/dev/null")
      os.remove(dns.out)
    end
  end)

  -- it() whose failures show nginx's error.log
  local function test(name, fn)
    it(name, function() return srv:wrap(fn)() end)
  end

  -- GET /module/fn?args; asserts a 200 and returns the decoded JSON
  local function call(path, args)
    local res = srv:get(path .. (args and ("?" .. query(args)) or ""))
    assert(res.status == 200, path .. " -> HTTP " .. res.status .. ": " .. res.body)
    return json(res)
  end

  -- Repeats fetch() until pred(result) holds (at most `secs`, default 10); returns the last result.
  local function eventually(fetch, pred, secs, what)
    local deadline = core.now() + (secs or 10)
    while true do
      local r = fetch()
      if pred(r) then return r end
      assert(core.now() < deadline, "never happened: " .. (what or "the condition"))
      os.execute("sleep 0.05")
    end
  end

  describe("stateless calls from a content handler", function()
    for _, enc in ipairs(env.encodings) do
      test("actions, the action() form, resolve and a value round trip (" .. enc .. ")", function()
        local r = call("/actions/stateless", { enc = enc, key = env.key("or-st-" .. enc), by = 2 })
        assert.are.same({ 2, 4, 4 }, { r.first, r.second, r.count })
        assert.is_string(r.id)
        assert.are.same({ text = "héllo", list = { 1, 2, 3 }, nested = { ok = true }, big = 1099511627776 }, r.echoed)
        assert.are.same({ "number", "string", "boolean", "array", "object" }, r.types)
        assert.are.equal("content", r.phase)
      end)

      test("actor errors reach the handler as rivet.ActorError with group and code (" .. enc .. ")", function()
        local key = env.key("or-err-" .. enc)
        local r = call("/actions/error", { enc = enc, key = key, which = "throwUser" })
        assert.is_true(r.raised)
        assert.is_true(r.actor_error)
        assert.are.same({ "user", "my_code", "bad thing", { a = 1 } }, { r.group, r.code, r.message, r.metadata })
        r = call("/actions/error", { enc = enc, key = key, which = "missing" })
        assert.is_true(r.actor_error)
        assert.are.equal(env.pick("actor.action_not_found", "action.not_found"), r.group .. "." .. r.code)
        r = call("/actions/error", { enc = enc, key = key, which = "throwInternal" })
        assert.are.equal(env.pick("rivetkit", "internal") .. ".internal_error", r.group .. "." .. r.code)
      end)
    end

    test("a raw fetch reaches the actor's onRequest handler", function()
      local r = call("/actions/fetch", { key = env.key("or-raw") })
      assert.are.equal(200, r.status)
      assert.is_true(r.ok)
      assert.are.equal("application/json", r.content_type)
      local echo = json({ status = 200, body = r.body })
      assert.are.same({ "POST", "/echo", "?x=1", "hello from nginx", "openresty" },
        { echo.method, echo.path, echo.query, echo.body, echo.headers["x-spec"] })
    end)

    test("a call that outlives its timeout fails with client.timeout; the client goes on working", function()
      local key = env.key("or-timeout")
      call("/actions/slow", { key = key, ms = 1, tag = "timeout-warm" }) -- create the actor first
      local r = call("/actions/timeout", { key = key, timeout = 0.5, ms = 3000 })
      assert.are.equal("client.timeout", r.group .. "." .. r.code)
      assert.are.equal(1, r.after)
    end)
  end)

  describe("TLS and host names", function()
    test("https:// by host name: nginx's resolver, lua_ssl_trusted_certificate; HTTP and wss", function()
      local r = call("/tls/calls", { which = "good", key = env.key("or-tls") })
      assert.is_nil(r.error)
      assert.are.same({ 1, 2 }, { r.stateless, r.conn })
    end)

    test("a certificate for another host name fails with client.tls_failed", function()
      local r = call("/tls/calls", { which = "wrong", key = env.key("or-tls-wrong") })
      assert.are.equal("http", r.failed)
      assert.are.equal("client.tls_failed", r.group .. "." .. r.code)
    end)
  end)

  describe("a worker is never blocked", function()
    test("20 requests made while a 3 s action is pending all complete before it does", function()
      local slow_key, quick_key, tag = env.key("or-slow"), env.key("or-quick"), env.key("tag")
      -- create both actors first, so that only the 3 s sleep is slow
      call("/actions/slow", { key = slow_key, ms = 1, tag = tag .. "-warm" })
      call("/actions/quick", { key = quick_key })
      local slow = srv:request_bg("/actions/slow?" .. query({ key = slow_key, ms = 3000, tag = tag }))
      local started = eventually(function() return call("/actions/marks", { tag = tag }) end,
        function(m) return m.started ~= nil end, 10, "the slow request's start").started
      local paths = {}
      for i = 1, 20 do paths[i] = "/actions/quick?" .. query({ key = quick_key, i = i }) end
      local results = srv:parallel(paths)
      local last = 0
      for i, res in ipairs(results) do
        assert(res.status == 200, "quick request " .. i .. " -> HTTP " .. res.status .. ": " .. res.body)
        local r = json(res)
        assert.is_true(r.seq > started)
        last = math.max(last, r.seq)
      end
      -- all 20 have answered; the slow one has not finished yet
      assert.is_nil(call("/actions/marks", { tag = tag }).done)
      local res = slow:wait()
      assert(res.status == 200, "slow request -> HTTP " .. res.status .. ": " .. res.body)
      local r = json(res)
      assert.are.equal(3000, r.value)
      assert.is_true(r.done > last, "the slow call finished at " .. r.done .. ", before quick call " .. last)
    end)
  end)

  describe("connections held by the worker", function()
    for _, enc in ipairs(env.encodings) do
      test("one request opens it, later requests call actions on it and read the events (" .. enc .. ")", function()
        local id = env.key("c-" .. enc)
        local key = env.key("or-conn-" .. enc)
        call("/conns/open", { id = id, enc = enc, key = key })
        local a = call("/conns/call", { id = id, action = "increment", arg = 1 })
        assert.are.equal(1, a.value)
        assert.are.equal("connected", a.status)
        local b = call("/conns/call", { id = id, action = "increment", arg = 2 })
        assert.are.equal(3, b.value)
        assert.are.equal(a.connection_id, b.connection_id)
        local ev = call("/conns/events", { id = id, want = 2 })
        assert.is_true(ev.complete)
        assert.are.same({ 1, 3 }, ev.events)
        assert.are.equal("timer", ev.phase) -- handlers run in the worker's background light thread
        local d = call("/conns/dispose", { id = id })
        assert.are.equal("disposed", d.status)
        assert.are.equal("client.disposed", d.call_after.group .. "." .. d.call_after.code)
      end)
    end

    test("reconnects after a cut through the fault proxy and resubscribes", function()
      local id = env.key("c-cut")
      call("/conns/open", { id = id, via = "proxy", key = env.key("or-cut") })
      local a = call("/conns/call", { id = id, action = "increment", arg = 1 })
      assert.are.equal(1, a.value)
      assert.are.same({ 1 }, call("/conns/events", { id = id, want = 1 }).events)
      assert.is_true(px:stats().live >= 1)
      px:cut()
      local w = call("/conns/wait_open", { id = id, opens = 2 })
      assert.is_true(w.reached, "no reconnect: " .. table.concat(w.statuses, ","))
      assert.are_not.equal(a.connection_id, w.connection_id)
      local seen_disconnected = false
      for _, s in ipairs(w.statuses) do seen_disconnected = seen_disconnected or s == "disconnected" end
      assert.is_true(seen_disconnected, table.concat(w.statuses, ","))
      assert.are.equal(2, call("/conns/call", { id = id, action = "increment", arg = 1 }).value)
      local ev = call("/conns/events", { id = id, want = 2 })
      assert.are.same({ 1, 2 }, ev.events) -- events flow again: the subscription was re-sent
      call("/conns/dispose", { id = id })
    end)

    test("a burst of 1500 events all reaches the handler, in order", function()
      -- more than one background runner takes (it makes way for a new timer every 1000)
      local id = env.key("c-burst")
      call("/conns/open", { id = id, actor = "echo", event = "tick", key = env.key("or-burst") })
      assert.are.equal(1500, call("/conns/call", { id = id, action = "emitMany", arg = 1500 }).value)
      local ev = call("/conns/events", { id = id, want = 1500, wait = 20 })
      assert.is_true(ev.complete, #ev.events .. " events")
      assert.are.equal(1500, #ev.events)
      for i = 1, 1500 do
        if ev.events[i] ~= i - 1 then error("event " .. i .. " is " .. tostring(ev.events[i])) end
      end
      call("/conns/dispose", { id = id })
    end)

    test("a raw WebSocket opened by one request, used by later ones", function()
      local id = env.key("ws")
      local o = call("/conns/ws_open", { id = id, key = env.key("or-ws") })
      assert.are.same({ "hello", "text", "open" }, { o.first, o.kind, o.status })
      local e = call("/conns/ws_echo", { id = id, text = "from a later request" })
      assert.are.same({ true, "from a later request", "text" }, { e.sent, e.data, e.kind })
      e = call("/conns/ws_echo", { id = id, text = "bin\1\2", binary = 1 })
      assert.are.same({ "bin\1\2", "binary" }, { e.data, e.kind })
      call("/conns/ws_close", { id = id })
    end)

    test("client:dispose() closes its connections and later calls fail with client.disposed", function()
      local r = call("/conns/dispose_client", { key = env.key("or-dispose") })
      assert.are.equal(1, r.first)
      assert.are.equal("disposed", r.conn_status)
      assert.are.equal("client.disposed", r.handle_call.group .. "." .. r.handle_call.code)
      assert.are.equal("client.disposed", r.conn_call.group .. "." .. r.conn_call.code)
    end)
  end)

  describe("tasks and futures in light threads", function()
    test("client:spawn tasks gathered with rivet.all; a future awaited from another light thread", function()
      local r = call("/tasks/spawn", { key = env.key("or-spawn"), n = 5 })
      assert.are.same({ 1, 2, 3, 4, 5 }, r.spawned)
      assert.are.equal(1005, r.across)
      assert.are.same({ 15, 25, 35 }, r.asyncs)
      assert.are.equal(35, r.count)
    end)

    test("client:run() in a handler returns once the spawned tasks are done", function()
      local r = call("/tasks/run", { key = env.key("or-run") })
      assert.are.same({ 0, 3, 3 }, { r.before, r.after_run, r.count })
    end)
  end)

  describe("phases without cosockets", function()
    local function expect_clear(phase, msg)
      assert.is_string(msg, phase .. ": nothing recorded")
      local prefix = "rivet: cosockets are not available in the " .. phase .. " phase"
      assert(msg:sub(1, #prefix) == prefix, phase .. ": " .. msg)
    end

    test("set_by_lua: a clear error, not a hang", function()
      local res = srv:get("/phase/set")
      assert.are.equal(200, res.status)
      expect_clear("set", res.body)
    end)

    test("header_filter_by_lua: a clear error, the response still goes out", function()
      local res = srv:get("/phase/header_filter")
      assert.are.equal(200, res.status)
      assert.are.equal("body\n", res.body)
      expect_clear("header_filter", res.headers["x-rivet-result"])
    end)

    test("body_filter_by_lua and log_by_lua: a clear error, recorded for a later request", function()
      assert.are.equal("body\n", srv:get("/phase/body_filter").body)
      assert.are.equal("body\n", srv:get("/phase/log").body)
      local rec = eventually(function() return call("/phases/recorded") end,
        function(r) return r.log ~= nil end, 10, "the log phase's record")
      expect_clear("body_filter", rec.body_filter)
      expect_clear("log", rec.log)
    end)

    test("init_by_lua and init_worker_by_lua: a clear error; a timer started in init_worker works", function()
      local rec = eventually(function() return call("/phases/recorded") end,
        function(r) return r.timer ~= nil end, 10, "the init_worker timer's record")
      expect_clear("init", rec.init)
      expect_clear("init_worker", rec.init_worker)
      assert(rec.timer:match("^ok "), "timer: " .. rec.timer)
    end)

    test("a client made at load time (init_by_lua) works in requests", function()
      local r = call("/phases/load_time_client")
      assert.is_number(r.value)
      assert.are.equal("content", r.phase)
    end)
  end)

  describe("limits", function()
    test("with lua_max_running_timers used up, connection calls still end by their deadline", function()
      -- a second nginx whose worker may run only 4 timers at once: each connection's
      -- socket needs one for its life, so 6 connections cannot all get theirs
      local small = nginx.start({
        template = "spec/nginx/nginx.conf",
        ready = "/ping",
        vars = { DNS_PORT = dns.port, TLS_CA = certs.ca, MAX_RUNNING_TIMERS = 4 },
        env = { RIVET_ENDPOINT = env.endpoint, RIVET_PROXY_ENDPOINT = px.endpoint },
      })
      local ok, err = xpcall(function()
        local res = small:get("/conns/many?" .. query({ n = 6, timeout = 2, key = env.key("or-many") }),
          { timeout = 30 })
        assert(res.status == 200, "/conns/many -> HTTP " .. res.status .. " (0: no answer within 30 s): " .. res.body)
        local r = json(res)
        assert.are.equal(6, #r.results)
        for i, x in ipairs(r.results) do
          assert(x.value ~= nil or x.actor_error, "call " .. i .. ": " .. tostring(x.error))
        end
      end, debug.traceback)
      if not ok then small:show_log(20) end
      small:stop({ grace = 1 })
      if not ok then error(err, 0) end
    end)
  end)

  describe("examples/openresty", function()
    test("the example conf starts and its locations work (increment, a watched counter)", function()
      local conf = assert(io.open(nginx.root .. "/examples/openresty/nginx.conf")):read("a")
      -- what a user edits: the port, and where the library is (here: this checkout)
      local n
      conf, n = conf:gsub("\n(%s*)listen 127%.0%.0%.1:8080;", "\n%1listen 127.0.0.1:${PORT};")
      assert.are.equal(1, n)
      conf, n = conf:gsub("/opt/lua%-rivetkit/", "${ROOT}/")
      assert.is_true(n >= 3)
      local ex = nginx.start({
        conf = conf,
        ready = "/count", -- a 404 from the handler module once it loads
        files = { "examples/openresty/counter.lua" },
        env = { RIVET_ENDPOINT = env.endpoint },
      })
      local ok, err = xpcall(function()
        local key = env.key("or-example")
        local w = ex:get("/watch?key=" .. key)
        assert(w.status == 200, "/watch -> " .. w.status .. ": " .. w.body)
        local inc = ex:get("/increment?key=" .. key)
        assert(inc.status == 200, "/increment -> " .. inc.status .. ": " .. inc.body)
        assert.are.equal("1\n", inc.body)
        eventually(function() return ex:get("/count?key=" .. key) end,
          function(r) return r.body == "1\n" end, 10, "the watched count to reach 1")
      end, debug.traceback)
      if not ok then ex:show_log(40) end
      ex:stop()
      if not ok then error(err, 0) end
    end)
  end)

  describe("shutdown", function()
    test("nginx stops on SIGQUIT (graceful) with connections open: their light threads end", function()
      local id = env.key("c-quit")
      call("/conns/open", { id = id, key = env.key("or-quit") })
      assert.are.equal(1, call("/conns/call", { id = id, action = "increment", arg = 1 }).value)
      local how = srv:stop({ grace = 5 })
      srv = nil
      assert.are.equal("quit", how)
    end)
  end)
end)
