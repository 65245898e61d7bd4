-- TLS: the real server behind a local TLS-terminating proxy whose certificate comes from
-- a throw-away CA. Verification (chain and host name) is on by default, ca_file trusts
-- a private CA, insecure = true turns verification off.
local rivet = require("rivet")
local env = require("spec.support.env")
local tls = require("spec.support.tls")

describe("TLS (" .. env.server .. ")", function()
  local certs, good, wrong, id, profile

  setup(function()
    certs = tls.make_certs()
    good = tls.proxy(env.endpoint, { cert = certs.good_cert, key = certs.good_key })
    wrong = tls.proxy(env.endpoint, { cert = certs.wrong_cert, key = certs.wrong_key })
    -- an actor id and the server profile, fetched in plain HTTP, so the WebSocket
    -- checks below reach the socket without a (failing) HTTPS look-up first
    local c = env.client("bare")
    id = c.raw:getOrCreate(env.key("tls")):resolve()
    profile = c:server()
    c:dispose()
  end)
  teardown(function()
    good.stop()
    wrong.stop()
    certs.remove()
  end)

  local function client(port, opts, host)
    local o = { timeout = 10, encoding = "bare" }
    for k, v in pairs(opts or {}) do o[k] = v end
    return rivet.client("https://" .. (host or "localhost") .. ":" .. port, o)
  end

  -- every path a client uses, with one verdict each
  local function exercise(c)
    local h = c.raw:getForId(id)
    local out = {}
    out.action = { pcall(h.ping, h) }
    out.fetch = { pcall(function() return h:fetch("/tls"):json().path end) }
    -- the socket paths start from a known profile: what fails must be the WebSocket
    c._profile = profile
    local ws = h:websocket("/tls")
    out.websocket = { ws:receive(10) }
    ws:close()
    local conn = h:connect()
    local statuses, errs = {}, {}
    conn:onStatusChange(function(s) statuses[#statuses + 1] = s end)
    conn:onError(function(e) errs[#errs + 1] = e.group .. "." .. e.code end)
    local ok, v = pcall(conn.ping, conn)
    out.conn = { ok, v, statuses, errs }
    conn:dispose()
    return out
  end

  it("works with ca_file for actions, fetch, WebSocket and connections", function()
    local c = client(good.port, { ca_file = certs.ca })
    local r = exercise(c)
    c:dispose()
    assert.are.same({ true, "pong" }, r.action)
    assert.are.same({ true, "/tls" }, r.fetch)
    assert.are.same({ "hello", "text" }, r.websocket)
    assert.are.same({ true, "pong" }, { r.conn[1], r.conn[2] })
    assert.are.same({}, r.conn[4])
  end)

  it("fails verification without the CA (client.tls_failed)", function()
    local c = client(good.port, { timeout = 2 })
    local r = exercise(c)
    c:dispose()
    assert.is_false(r.action[1])
    assert.are.equal("client.tls_failed", r.action[2].group .. "." .. r.action[2].code)
    assert.are.equal("client.tls_failed", r.fetch[2].group .. "." .. r.fetch[2].code)
    assert.is_nil(r.websocket[1])
    assert.are.equal("client.tls_failed", r.websocket[2].group .. "." .. r.websocket[2].code)
    -- the connection never opens; its call fails when its time is up; onError hears of
    -- the TLS failure once, not once per retry
    assert.is_false(r.conn[1])
    for _, s in ipairs(r.conn[3]) do assert.are_not.equal("connected", s) end
    assert.are.same({ "client.tls_failed" }, r.conn[4])
  end)

  it("fails verification with another CA", function()
    local c = client(good.port, { ca_file = certs.other_ca, timeout = 2 })
    local r = exercise(c)
    c:dispose()
    assert.are.equal("client.tls_failed", r.action[2].group .. "." .. r.action[2].code)
    assert.are.equal("client.tls_failed", r.websocket[2].group .. "." .. r.websocket[2].code)
    assert.is_false(r.conn[1])
    assert.are.same({ "client.tls_failed" }, r.conn[4])
  end)

  it("checks the host name: a certificate for another name fails even with the right CA", function()
    local c = client(wrong.port, { ca_file = certs.ca, timeout = 2 })
    local r = exercise(c)
    c:dispose()
    assert.are.equal("client.tls_failed", r.action[2].group .. "." .. r.action[2].code)
    assert.are.equal("client.tls_failed", r.fetch[2].group .. "." .. r.fetch[2].code)
    assert.is_nil(r.websocket[1])
    assert.are.equal("client.tls_failed", r.websocket[2].group .. "." .. r.websocket[2].code)
    assert.is_false(r.conn[1])
    assert.are.same({ "client.tls_failed" }, r.conn[4])
  end)

  it("connects without any check with insecure = true", function()
    local c = client(wrong.port, { insecure = true })
    local r = exercise(c)
    c:dispose()
    assert.are.same({ true, "pong" }, r.action)
    assert.are.same({ true, "/tls" }, r.fetch)
    assert.are.same({ "hello", "text" }, r.websocket)
    assert.are.same({ true, "pong" }, { r.conn[1], r.conn[2] })
    assert.are.same({}, r.conn[4])
  end)

  it("resolves and creates actors over HTTPS (REST with the CA)", function()
    local c = client(good.port, { ca_file = certs.ca })
    local h = c.raw:getOrCreate(env.key("tlsrest"))
    assert.are.equal("pong", h:ping())
    assert.are.equal(env.line, c:server().line)
    c:dispose()
  end)
end)
