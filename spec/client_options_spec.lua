-- What a client is told: strict option tables with the official client's names,
-- /metadata redirects (clientEndpoint / clientNamespace / clientToken), skipping the
-- look-up, connections opened while /metadata is unreachable, the gateway URL, and the
-- fields errors carry.
local rivet = require("rivet")
local env = require("spec.support.env")
local fake = require("spec.support.fake")

local function start_metadata(args)
  local out, port, pid = fake.spawn("spec/fake/metadata_server.mjs " .. args, "^(%d+) (%d+)$", "the metadata server")
  local srv = { endpoint = "http://127.0.0.1:" .. port, pid = pid }
  function srv.stop()
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.remove(out)
  end
  function srv.hits() return fake.counter(srv.endpoint, "/hits", "hits") end
  return srv
end

describe("client options (" .. env.server .. ")", function()
  it("rivet.client takes the endpoint in the options table", function()
    local c = rivet.client({ endpoint = env.endpoint, encoding = "cbor" })
    assert.are.equal(1, c.counter:getOrCreate(env.key("opt")):increment(1))
    c:dispose()
  end)

  it("unknown option keys raise a plain error naming the key and the valid ones", function()
    local e = env.catch(rivet.client, env.endpoint, { encodng = "cbor" })
    assert.is_string(e)
    assert.truthy(e:find("unknown option 'encodng'", 1, true), e)
    assert.truthy(e:find("encoding", 1, true), e)
    local c = env.client("bare")
    local cases = {
      { c.counter.get, c.counter, "k", { input = 1 }, "'input'" },
      { c.counter.getOrCreate, c.counter, "k", { createWithInputs = 1 }, "'createWithInputs'" },
      { c.counter.create, c.counter, "k", { createInRegion = "x" }, "'createInRegion'" },
      { c.counter.getForId, c.counter, "id", { region = "x" }, "'region'" },
    }
    for _, case in ipairs(cases) do
      local err = env.catch(case[1], case[2], case[3], case[4])
      assert.truthy(tostring(err):find("unknown option " .. case[5], 1, true), tostring(err))
      assert.truthy(tostring(err):find("valid: ", 1, true), tostring(err))
    end
    local h = c.raw:getOrCreate(env.key("raw"))
    local e2 = env.catch(h.connect, h, nil, { timout = 1 })
    assert.truthy(tostring(e2):find("unknown option 'timout'", 1, true), tostring(e2))
    local e3 = env.catch(h.fetch, h, "/x", { methd = "POST" })
    assert.truthy(tostring(e3):find("unknown option 'methd'", 1, true), tostring(e3))
    local e4 = env.catch(h.websocket, h, "/x", nil, { max = 1 })
    assert.truthy(tostring(e4):find("unknown option 'max'", 1, true), tostring(e4))
    local e5 = env.catch(rivet.client, env.endpoint, { endpoint = env.endpoint })
    assert.truthy(tostring(e5):find("given twice", 1, true), tostring(e5))
    c:dispose()
  end)

  it("accepts the official names createWithInput, createInRegion, poolName and getParams", function()
    local c = rivet.client(env.endpoint, { poolName = "default" })
    local h = c.input:getOrCreate(env.key("input"), { createWithInput = { mode = "ranked" } })
    assert.are.same({ mode = "ranked" }, h:getInput())
    local calls = 0
    local hp = c.auth:getOrCreate(env.key("auth"), { getParams = function()
      calls = calls + 1
      return { token = "secret-from-getParams" }
    end })
    assert.are.equal("secret-from-getParams", hp:whoami())
    assert.is_true(calls >= 1)
    local e = env.catch(c.auth.getOrCreate, c.auth, "k", { getParams = {} })
    assert.truthy(tostring(e):find("getParams must be a function", 1, true), tostring(e))
    c:dispose()
  end)

  it("errors carry statusCode beside status, and public", function()
    local c = env.client("json")
    local e = env.catch(function() return c.errors:getOrCreate(env.key("e")):throwUser() end)
    assert.is_true(e.public)
    assert.are.equal(e.status, e.statusCode)
    assert.is_number(e.statusCode)
    local t = env.catch(function() return rivet.client("http://127.0.0.1:1", { timeout = 1 }):server() end)
    assert.is_false(t.public)
    assert.are.equal(500, t.statusCode)
    c:dispose()
  end)
end)

describe("/metadata redirects (" .. env.server .. ")", function()
  local srv
  after_each(function() if srv then srv.stop() end srv = nil end)

  it("follows clientEndpoint for stateless calls, connections and raw fetch", function()
    srv = start_metadata(env.endpoint .. " 0")
    local c = rivet.client(srv.endpoint, { encoding = "cbor" })
    local h = c.counter:getOrCreate(env.key("redir"))
    assert.are.equal(1, h:increment(1))
    local conn = h:connect()
    assert.are.equal(2, conn:increment(1))
    conn:dispose()
    local r = c.raw:getOrCreate(env.key("redir-raw")):fetch("/hello")
    assert.are.equal(200, r.status)
    assert.are.equal(1, srv.hits())
    -- the redirected endpoint is where the actor is reached
    local url = c.raw:getForId(c.raw:getOrCreate(env.key("redir-raw2")):resolve()):getGatewayUrl()
    assert.are.equal(env.endpoint, url:sub(1, #env.endpoint))
    c:dispose()
  end)

  it("takes clientNamespace and clientToken (never logged)", function()
    if env.server ~= "v23" then
      pending("2.3 only: namespaces and tokens reach the query gateway URL of the engine")
      return
    end
    srv = start_metadata(env.endpoint .. " 0 default redirected-secret-token")
    local lines = {}
    rivet.setLogger(function(level, msg, fields)
      local s = level .. " " .. msg
      for k, v in pairs(fields or {}) do s = s .. " " .. tostring(k) .. "=" .. tostring(v) end
      lines[#lines + 1] = s
    end)
    local c = rivet.client(srv.endpoint)
    local ok, url = pcall(function() return c.counter:getOrCreate("k"):getGatewayUrl() end)
    rivet.setLogger(nil)
    c:dispose()
    assert.is_true(ok, tostring(url))
    assert.truthy(url:find("rvt-token=redirected-secret-token", 1, true), url)
    assert.truthy(url:find("rvt-namespace=default", 1, true), url)
    local all = table.concat(lines, "\n")
    assert.truthy(all:find("redirects", 1, true), all)
    assert.is_nil(all:find("redirected-secret-token", 1, true))
  end)

  it("disableMetadataLookup sends no /metadata request", function()
    srv = start_metadata(env.endpoint .. " 0")
    local c = rivet.client(srv.endpoint, { disableMetadataLookup = true, timeout = 2 })
    local e = env.catch(function() return c.counter:getOrCreate("k"):increment(1) end)
    -- not redirected: the request went to the fake server, which refuses it
    assert.is_true(rivet.isActorError(e), tostring(e))
    assert.are.equal(0, srv.hits())
    c:dispose()
    if env.server == "v23" then
      local d = rivet.client(env.endpoint, { disableMetadataLookup = true })
      assert.are.equal(1, d.counter:getOrCreate(env.key("nometa")):increment(1))
      assert.is_true(d:server().assumed)
      d:dispose()
    end
  end)

  it("connect() while /metadata is unreachable does not raise; it connects once it answers", function()
    srv = start_metadata(env.endpoint .. " 1500")
    local c = rivet.client(srv.endpoint, { timeout = 20 })
    local h = c.counter:getOrCreate(env.key("unreach"))
    local statuses = {}
    local conn = h:connect()
    conn:onStatusChange(function(s) statuses[#statuses + 1] = s end)
    assert.are.equal("connecting", conn.status)
    assert.is_nil(srv.hits()) -- nothing listens yet
    local got = {}
    conn:on("newCount", function(n) got[#got + 1] = n end)
    assert.are.equal(1, conn:increment(1)) -- waits through the failed look-ups
    env.wait_for(c, function() return #got >= 1 end, 10, "the event")
    assert.are.same({ 1 }, got)
    assert.are.equal("connected", conn.status)
    assert.are.same({ "connecting", "connected" }, statuses)
    conn:dispose()
    c:dispose()
  end)

  it("calls on a connection whose /metadata never answers end by their deadline", function()
    local c = rivet.client("http://127.0.0.1:1", { timeout = 20 })
    local conn = c.counter:getOrCreate("k"):connect(nil, { timeout = 0.3 })
    local e = env.catch(conn.increment, conn, 1)
    assert.is_true(rivet.isActorError(e, "client.timeout"), tostring(e))
    assert.are.equal("connecting", conn.status)
    local f = conn:async("increment", 1)
    conn:dispose()
    local e2 = env.catch(f.await, f)
    assert.is_true(rivet.isActorError(e2, "client.disposed"), tostring(e2))
    assert.are.equal("disposed", conn.status)
    c:dispose()
  end)
end)

describe("handle:getGatewayUrl (" .. env.server .. ")", function()
  local function curl(url)
    local f = io.popen("curl -s '" .. url .. "'")
    local body = f:read("*a")
    f:close()
    return body
  end

  it("names an actor that other programs can reach", function()
    local c = env.client("bare")
    local h = c.raw:getOrCreate(env.key("gw"))
    h:resolve() -- created and started, so that the URL's first use finds it ready
    local url = h:getGatewayUrl()
    assert.are.equal(env.endpoint .. "/gateway/", url:sub(1, #env.endpoint + 9))
    local target = url:find("?", 1, true) and url:gsub("%?", "/request/from-curl?", 1) or (url .. "/request/from-curl")
    local body = curl(target)
    assert.truthy(body:find('"path":"/from-curl"', 1, true), target .. " -> " .. body)
    local byid = c.raw:getForId(h:resolve()):getGatewayUrl()
    assert.truthy(curl(byid .. "/request/by-id"):find('"path":"/by-id"', 1, true))
    c:dispose()
  end)
end)
