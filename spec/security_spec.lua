-- Security promises (docs/reliability.md, "Security"), one describe each, against servers
-- of our own on 127.0.0.1 (no real server needed): spec/fake/hostile_server.mjs records
-- the raw bytes of every request it gets and answers with endless bodies, endless
-- headers or a WebSocket frame announcing 2^62 bytes; spec/support/tls_proxy.mjs puts a
-- self-signed certificate in front of it. spec/tls_spec.lua covers TLS against the real
-- server (private CA, other CA, host name check, insecure on every path); here: a
-- self-signed certificate.
local rivet = require("rivet")
local tls = require("spec.support.tls")

local TOKEN = "tokS3CR3T-9f27c1"
local PARAM = "parS3CR3T-51d0ab"
local SECRET_PARTS = { TOKEN, PARAM, "S3CR3T" } -- also a piece of either

local start_hostile = require("spec.support.hostile").start

local function rss_mb()
  local f = io.open("/proc/self/statm")
  local _, pages = f:read("n", "n")
  f:close()
  return pages * 4096 / 1048576
end

local function name(e)
  return rivet.isActorError(e) and (e.group .. "." .. e.code) or ("not an ActorError: " .. tostring(e))
end

-- The hostile server, and a TLS proxy in front of it with a self-signed certificate:
-- srv, cert, proxy; stop_all() stops and removes them.
local function behind_self_signed()
  local srv = start_hostile()
  local cert = tls.self_signed()
  local proxy = tls.proxy(srv.endpoint, cert)
  local function stop_all()
    proxy.stop()
    srv.stop()
    cert.remove()
  end
  return srv, cert, proxy, stop_all
end

describe("security: TLS verification is on by default (self-signed certificate)", function()
  local cert, proxy, stop_all
  setup(function()
    local _
    _, cert, proxy, stop_all = behind_self_signed()
  end)
  teardown(function() stop_all() end)

  local function try(opts)
    local o = { encoding = "json", timeout = 5 }
    for k, v in pairs(opts) do o[k] = v end
    local c = rivet.client("https://localhost:" .. proxy.port, o)
    local h = c.a:getForId("ok")
    local r = { pcall(h.work, h) }
    r.fetch = { pcall(function() return h:fetch("/x").status end) }
    c:dispose()
    return r
  end

  it("refuses a self-signed server with client.tls_failed and a clear message", function()
    local r = try({})
    assert.is_false(r[1])
    assert.are.equal("client.tls_failed", name(r[2]))
    assert.truthy(tostring(r[2]):find("certificate", 1, true), tostring(r[2]))
    assert.are.equal("client.tls_failed", name(r.fetch[2]))
  end)

  it("accepts it with ca_file naming that certificate", function()
    local r = try({ ca_file = cert.cert })
    assert.are.same({ true, 1 }, { r[1], r[2] })
    assert.are.same({ true, 200 }, r.fetch)
  end)

  it("needs insecure = true to skip verification (insecure = false keeps it on)", function()
    assert.are.equal("client.tls_failed", name(try({ insecure = false })[2]))
    local r = try({ insecure = true })
    assert.are.same({ true, 1 }, { r[1], r[2] })
  end)
end)

describe("security: tokens and connection params never appear in what the library prints", function()
  local srv, proxy, stop_all
  setup(function()
    local _
    srv, _, proxy, stop_all = behind_self_signed()
  end)
  teardown(function()
    rivet.setLogger(nil)
    stop_all()
  end)

  it("in errors (every field), tostring, log messages and setLogger fields of calls failing in many ways", function()
    local printed = {}
    local function add(v, depth, seen)
      depth, seen = depth or 0, seen or {}
      -- library objects (client, handle, connection, WebSocket) by tostring only: their
      -- private fields hold the token; errors and plain tables (log fields) field by field
      local plain = type(v) == "table" and (getmetatable(v) == nil or rivet.isActorError(v))
      if plain and not seen[v] and depth < 6 then
        seen[v] = true
        printed[#printed + 1] = tostring(v)
        for k, x in pairs(v) do
          add(k, depth + 1, seen)
          add(x, depth + 1, seen)
        end
      elseif v ~= nil then
        printed[#printed + 1] = tostring(v)
      end
    end
    rivet.setLogger(function(level, msg, fields) add({ level, msg, fields }) end)
    local outcomes = {}
    local function run(label, fn)
      local r = { pcall(fn) }
      add(r)
      outcomes[#outcomes + 1] = label .. "=" .. (r[1] and "ok" or name(r[2]))
      return r
    end
    local params = { token = PARAM, nested = { PARAM } }
    local endpoints = {
      srv.endpoint,                                             -- the hostile server
      "http://127.0.0.1:1",                                     -- connection refused
      "https://localhost:" .. proxy.port,                       -- TLS verification fails
      (srv.endpoint:gsub("^http://", "http://default:" .. TOKEN .. "@")), -- token in the URL
    }
    for i, ep in ipairs(endpoints) do
      for _, enc in ipairs({ "json", "bare" }) do
        local c = rivet.client(ep,
          { encoding = enc, timeout = 2, token = i < 4 and TOKEN or nil, max_response = 65536 })
        add(c)
        local big = c.a:getForId("endless-body", { params = params })
        add(big)
        run("action", function() return big:work(PARAM) end)
        run("fetch", function() return big:fetch("/p?q=" .. PARAM, { headers = { ["x-p"] = PARAM } }) end)
        run("header", function() return c.a:getForId("endless-header", { params = params }):fetch("/x") end)
        run("ok", function() return c.a:getForId("ok", { params = params }):work() end)
        run("create", function() return c.a:getOrCreate({ "k" }, { params = params }):resolve() end)
        run("params fn", function()
          return c.a:getForId("ok", { params = function() error("vault down") end }):work()
        end)
        local h = c.a:getForId("huge-frame", { params = params })
        run("conn", function()
          local conn = h:connect({ token = PARAM }, { timeout = 0.5 })
          conn:onError(function(e) add(e) end)
          conn:onStatusChange(function(s) add(s) end)
          add(conn)
          local r = { pcall(conn.work, conn, PARAM) }
          add(r)
          add(conn)
          conn:dispose()
          if not r[1] then error(r[2], 0) end
        end)
        run("websocket", function()
          local ws = h:websocket("/w?q=" .. PARAM)
          add(ws)
          local r = { ws:receive(3) }
          add(r)
          add(ws)
          ws:close()
          if r[1] == nil then error(r[2], 0) end
        end)
        run("no websocket", function()
          local ws = c.a:getForId("nows", { params = params }):websocket("/w")
          local r = { ws:receive(3) }
          add(r)
          ws:close()
          if r[1] == nil then error(r[2], 0) end
        end)
        c:dispose()
        add(c)
        run("disposed", function() return big:work() end)
      end
    end
    rivet.setLogger(nil)
    local by = {}
    for _, o in ipairs(outcomes) do local k = o:match("=(.*)$"); by[k] = (by[k] or 0) + 1 end
    local summary = {}
    for k, n in pairs(by) do summary[#summary + 1] = k .. " " .. n end
    table.sort(summary)
    print("# secrets: " .. #printed .. " strings checked; " .. #outcomes .. " calls: " .. table.concat(summary, ", "))
    -- the calls did fail in many ways
    local kinds = {}
    for _, o in ipairs(outcomes) do kinds[o:match("=(.*)$")] = true end
    for _, k in ipairs({ "client.response_too_large", "client.connection_refused", "client.tls_failed",
      "client.get_params_failed", "client.disposed", "client.message_too_big", "ok" }) do
      assert.truthy(kinds[k], "no call ended with " .. k .. ": " .. table.concat(outcomes, " "))
    end
    assert.is_true(#printed > 500, "collected " .. #printed)
    for _, s in ipairs(printed) do
      for _, secret in ipairs(SECRET_PARTS) do
        assert.is_nil(s:find(secret, 1, true), "a secret in: " .. s)
      end
    end
    -- and they were really sent (so the check above is not vacuous)
    local wire = {}
    for _, r in ipairs(srv.requests()) do wire[#wire + 1] = r.head .. r.body end
    wire = table.concat(wire)
    assert.truthy(wire:find(TOKEN, 1, true))
    assert.truthy(wire:find(PARAM, 1, true))
  end)
end)

describe("security: header and path injection", function()
  local srv
  setup(function() srv = start_hostile() end)
  teardown(function() srv.stop() end)

  local HEADER_LINE = "^[!#$%%&'*+%-.^_`|~%w]+:[\t -~]*$"

  -- Every recorded request head is well formed: one request line, header lines that are
  -- "token: printable", no NUL, no injected header, no dot segment in the target.
  local function check_wire(reqs)
    for _, r in ipairs(reqs) do
      local head = r.head
      assert.is_nil(head:find("%z"), "NUL on the wire: " .. head)
      local lines = {}
      for l in head:gmatch("(.-)\r\n") do lines[#lines + 1] = l end
      assert.truthy(lines[1]:match("^[A-Z]+ /[!-~]* HTTP/1%.1$"), "request line: " .. lines[1])
      local target = lines[1]:match("^%S+ (%S+)")
      local path = target:match("^[^?]*")
      for seg in path:gmatch("[^/]+") do
        assert.is_true(seg ~= "." and seg ~= "..", "dot segment in " .. target)
      end
      for i = 2, #lines - 1 do
        assert.truthy(lines[i]:match(HEADER_LINE), "header line: " .. lines[i])
        assert.is_nil(lines[i]:lower():find("^x%-injected"), "injected header: " .. lines[i])
      end
      assert.are.equal("", lines[#lines])
      assert.is_nil(head:lower():find("\nx%-injected"), "injected header in " .. head)
      assert.is_nil(r.body:find("\r\nx-injected", 1, true) and r.body:find("^%u+ /"), "smuggled request")
    end
  end

  local EVIL = { "a\r\nX-Injected: 1", "a\nX-Injected: 1", "a\0X-Injected: 1", "a\rX-Injected: 1" }

  it("rejects CR, LF and NUL in the token, client headers and raw fetch headers and methods before sending", function()
    local before = #srv.requests()
    for _, evil in ipairs(EVIL) do
      local ok, err = pcall(rivet.client, srv.endpoint, { token = evil })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("control characters", 1, true), tostring(err))
      assert.is_nil(tostring(err):find("Injected", 1, true), "the token was shown: " .. tostring(err))
      assert.is_false(pcall(rivet.client, srv.endpoint, { headers = { ["x-a"] = evil } }))
      assert.is_false(pcall(rivet.client, srv.endpoint, { headers = { [evil] = "v" } }))
      local c = rivet.client(srv.endpoint, { encoding = "json", timeout = 5 })
      local h = c.a:getForId("ok")
      assert.is_false(pcall(h.fetch, h, "/x", { headers = { ["x-a"] = evil } }))
      assert.is_false(pcall(h.fetch, h, "/x", { headers = { [evil] = "v" } }))
      assert.is_false(pcall(h.fetch, h, "/x", { method = "GET " .. evil }))
      assert.is_false(pcall(h.websocket, h, "/x", { evil }))
      c:dispose()
    end
    assert.are.equal(before, #srv.requests(), "a request was sent")
  end)

  it("rejects '.' and '..' segments (also as %2e) in raw fetch and WebSocket paths", function()
    local c = rivet.client(srv.endpoint, { encoding = "json", timeout = 5 })
    local h = c.a:getForId("ok")
    for _, p in ipairs({ "/../actors", "/a/../../x", "..", "/./x", "/%2e%2e/x", "/a/.%2E/b", "http://h/../x" }) do
      local ok, err = pcall(h.fetch, h, p)
      assert.is_false(ok, p)
      assert.truthy(tostring(err):find("'..' segments", 1, true), tostring(err))
      assert.is_false(pcall(h.websocket, h, p), p)
    end
    -- dots inside a segment are fine
    assert.are.equal(200, h:fetch("/a..b/.x/x.").status)
    c:dispose()
  end)

  it("encodes CR, LF, NUL, spaces and dot segments in actor ids, names, keys, action names, paths "
    .. "and params", function()
    local first = #srv.requests() + 1
    for _, enc in ipairs({ "json", "bare" }) do
      local c = rivet.client(srv.endpoint, { encoding = enc, timeout = 5, namespace = "ns\r\nX-Injected: 1",
        token = "plain-token" })
      for _, evil in ipairs({ "..", ".", "a\r\nX-Injected: 1", "a\0b", "a b/../c", "%2e%2e" }) do
        local params = { p = evil }
        -- the key becomes the actor id the server answers: ids from the server too
        local h = c:actor("n" .. evil):getOrCreate({ evil, "k" }, { params = params })
        assert.are.equal(1, h:action(evil, evil))
        assert.are.equal(1, h:action("x"))
        local g = c:actor(evil):get(evil, { params = params })
        assert.are.equal(1, g:action(evil))
        assert.are.equal(200, h:fetch("/p" .. evil:gsub("%.", "x") .. "?q=" .. evil).status)
        assert.are.equal(200, h:fetch({ url = "/q", headers = { ["x-v"] = evil:gsub("%c", "") } }).status)
      end
      c:dispose()
    end
    local reqs = srv.requests()
    local mine = {}
    for i = first, #reqs do mine[#mine + 1] = reqs[i] end
    assert.is_true(#mine >= 48, "requests recorded: " .. #mine)
    check_wire(mine)
    -- the dot ids and action names reached the wire encoded
    local heads = {}
    for _, r in ipairs(mine) do heads[#heads + 1] = r.head end
    heads = table.concat(heads)
    assert.truthy(heads:find("POST /gateway/%2E%2E/action/%2E%2E HTTP/1.1", 1, true))
    assert.truthy(heads:find("POST /gateway/%2E/action/%2E HTTP/1.1", 1, true))
  end)
end)

describe("security: hostile servers cost bounded memory and fail the call with a typed error", function()
  local srv
  setup(function() srv = start_hostile() end)
  teardown(function() srv.stop() end)

  -- Runs fn `times` times; returns the errors, the growth of Lua's heap and of the RSS
  -- (MB), and the bytes the server sent meanwhile.
  local function measure(times, fn)
    collectgarbage("collect")
    local lua0, rss0, sent0 = collectgarbage("count"), rss_mb(), srv.sent()
    local errs = {}
    for i = 1, times do
      local ok, err = pcall(fn)
      assert.is_false(ok, "the call succeeded")
      errs[i] = err
    end
    collectgarbage("collect")
    return errs, (collectgarbage("count") - lua0) / 1024, rss_mb() - rss0, srv.sent() - sent0
  end

  local BOUND = 64 * 1024 * 1024 -- the default max_response and max_message

  for _, case in ipairs({
    { "an endless body (action)", "endless-body", function(h) return h:work() end, 2 },
    { "an endless body (raw fetch)", "endless-body", function(h) return h:fetch("/x") end, 1 },
    { "an endless chunked body (raw fetch)", "endless-chunked", function(h) return h:fetch("/x") end, 1 },
  }) do
    it(case[1] .. ": client.response_too_large at the 64 MiB default max_response", function()
      local c = rivet.client(srv.endpoint, { encoding = "json", timeout = 20 })
      local h = c.a:getForId(case[2])
      local errs, dlua, drss, sent = measure(case[4], function() return case[3](h) end)
      for _, e in ipairs(errs) do
        assert.are.equal("client.response_too_large", name(e))
        assert.truthy(e.message:find(tostring(BOUND), 1, true), e.message)
      end
      assert.is_true(sent >= case[4] * BOUND, "the server sent " .. tostring(sent))
      assert.is_true(drss < 100, "RSS grew by " .. drss .. " MB")
      assert.is_true(dlua < 10, "the Lua heap grew by " .. dlua .. " MB")
      -- still usable
      assert.are.equal(1, c.a:getForId("ok"):work())
      c:dispose()
    end)
  end

  it("max_response lowers the bound", function()
    local c = rivet.client(srv.endpoint, { encoding = "bare", timeout = 20, max_response = 1048576 })
    local errs, _, drss = measure(2, function() return c.a:getForId("endless-body"):fetch("/x") end)
    assert.are.equal("client.response_too_large", name(errs[1]))
    assert.truthy(errs[1].message:find("1048576", 1, true), errs[1].message)
    assert.is_true(drss < 100)
    assert.are.equal(1, c.a:getForId("ok"):work())
    c:dispose()
    assert.has_error(function() rivet.client(srv.endpoint, { max_response = 0 }) end)
  end)

  it("an endless header line or endless header lines: client.response_too_large "
    .. "(libcurl's 100 KiB per line, 300 KiB per head)", function()
    local c = rivet.client(srv.endpoint, { encoding = "json", timeout = 20 })
    for _, id in ipairs({ "endless-header", "many-headers" }) do
      local h = c.a:getForId(id)
      local errs, _, drss, sent = measure(2, function() return h:fetch("/x") end)
      for _, e in ipairs(errs) do assert.are.equal("client.response_too_large", name(e)) end
      local errs2 = measure(1, function() return h:work() end)
      assert.are.equal("client.response_too_large", name(errs2[1]))
      assert.is_true(sent > 200 * 1024, tostring(sent))
      assert.is_true(drss < 100, "RSS grew by " .. drss .. " MB")
    end
    assert.are.equal(1, c.a:getForId("ok"):work())
    c:dispose()
  end)

  it("a WebSocket frame announcing 2^62 bytes, then endless payload: client.message_too_big "
    .. "at max_message (64 MiB default)", function()
    local c = rivet.client(srv.endpoint, { encoding = "bare", timeout = 20 })
    local h = c.a:getForId("huge-frame")
    local errs, _, drss, sent = measure(1, function()
      local ws = h:websocket("/w")
      local data, err = ws:receive(20)
      ws:close()
      error(err or ("received " .. tostring(data and #data)), 0)
    end)
    for _, e in ipairs(errs) do
      assert.are.equal("client.message_too_big", name(e))
    end
    assert.is_true(sent >= BOUND, "the server sent " .. tostring(sent))
    assert.is_true(drss < 100, "RSS grew by " .. drss .. " MB")
    -- a smaller bound per socket
    local ws = h:websocket("/w", nil, { max_message = 65536 })
    local _, err = ws:receive(20)
    ws:close()
    assert.are.equal("client.message_too_big", name(err))
    assert.are.equal(1, c.a:getForId("ok"):work())
    c:dispose()
  end)

  it("the same frame on an actor connection: the call fails with a typed error by its deadline, no crash", function()
    local c = rivet.client(srv.endpoint, { encoding = "bare", timeout = 3 })
    local conn = c.a:getForId("huge-frame"):connect()
    local reported = {}
    conn:onError(function(e) reported[#reported + 1] = name(e) end)
    local errs, _, drss = measure(1, function() return conn:ping() end)
    assert.is_true(rivet.isActorError(errs[1]), tostring(errs[1]))
    assert.is_true(drss < 100, "RSS grew by " .. drss .. " MB")
    conn:dispose()
    assert.are.equal(1, c.a:getForId("ok"):work())
    c:dispose()
  end)
end)
