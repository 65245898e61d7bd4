-- A misbehaving server (spec/fake/http_server.mjs): garbage replies become typed
-- errors, transient errors are retried a bounded number of times, hangs time out.
local rivet = require("rivet")
local core = require("rivet.core")
local fake = require("spec.support.fake")

describe("a misbehaving server", function()
  local srv
  setup(function() srv = fake.start() end)
  teardown(function() srv.stop() end)

  local function call(id, enc, opts)
    local o = { encoding = enc or "bare", timeout = 5 }
    for k, v in pairs(opts or {}) do o[k] = v end
    local c = rivet.client(srv.endpoint, o)
    local ok, res = pcall(function() return c.thing:getOrCreate(id):work() end)
    c:dispose()
    return ok, res
  end

  it("garbage bytes in a reply become client.malformed_response", function()
    local ok, err = call("garbage", "bare")
    assert.is_false(ok)
    assert.is_true(rivet.isActorError(err, "client.malformed_response"), tostring(err))
    ok, err = call("garbage", "cbor")
    assert.is_false(ok)
    assert.is_true(rivet.isActorError(err, "client.malformed_response"), tostring(err))
  end)

  it("a truncated BARE reply with an absurd length becomes client.malformed_response", function()
    local ok, err = call("truncated", "bare")
    assert.is_false(ok)
    assert.is_true(rivet.isActorError(err, "client.malformed_response"), tostring(err))
  end)

  it("invalid JSON becomes client.malformed_response", function()
    local ok, err = call("badjson", "json")
    assert.is_false(ok)
    assert.is_true(rivet.isActorError(err, "client.malformed_response"), tostring(err))
  end)

  it("an undecodable error body still becomes an ActorError with the status", function()
    local ok, err = call("bad-error", "bare")
    assert.is_false(ok)
    assert.is_true(rivet.isActorError(err), tostring(err))
    assert.are.equal(500, err.status)
  end)

  it("an HTML error page becomes http.status_502", function()
    local ok, err = call("html", "json")
    assert.is_false(ok)
    assert.is_true(rivet.isActorError(err, "http.status_502"), tostring(err))
    assert.truthy(err.message:find("Bad gateway", 1, true))
  end)

  it("retries transient gateway errors with a short bounded backoff", function()
    local ok, v = call("flaky", "json")
    assert.is_true(ok, tostring(v))
    assert.are.equal(4, v) -- three 503s, then the fourth attempt succeeds
  end)

  it("retries a transient error until the call's deadline, then raises that error", function()
    local t0 = core.now()
    local ok, err = call("always-unavailable", "json", { timeout = 1.5 })
    assert.is_false(ok)
    assert.is_true(rivet.isActorError(err, "guard.service_unavailable"), tostring(err))
    assert.is_true(core.now() - t0 < 3)
    -- more attempts than the old fixed bound of six: it kept trying for the whole deadline
    local f = io.popen("curl -s " .. srv.endpoint .. "/hits/always-unavailable")
    local hits = tonumber(f:read("*a"))
    f:close()
    assert.is_true(hits > 6, tostring(hits))
  end)

  it("resolves a key-based handle again when its actor is gone", function()
    local ok, v = call("stale", "json")
    assert.is_true(ok, tostring(v))
    assert.are.equal(7, v)
  end)

  it("a server that never answers fails the call with client.timeout", function()
    local t0 = core.now()
    local ok, err = call("hang", "json", { timeout = 0.5 })
    assert.is_false(ok)
    assert.is_true(rivet.isActorError(err, "client.timeout"), tostring(err))
    assert.is_true(core.now() - t0 < 2)
  end)
end)
