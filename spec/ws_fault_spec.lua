-- A misbehaving connection endpoint (spec/fake/ws_server.mjs): after a valid Init it
-- sends malformed frames. Each must fail the connection with a typed error reported
-- through onError (client.malformed_message), fail the call in flight, and leave the
-- process (and the client) working.
local rivet = require("rivet")
local core = require("rivet.core")
local fake = require("spec.support.fake")

local now = core.now

local CASES = {
  bare = { "garbage", "truncated", "absurd-length", "unknown-tag", "bad-json" },
  cbor = { "garbage", "truncated", "bad-cbor", "unknown-tag" },
  json = { "garbage", "bad-json", "unknown-tag", "bad-cbor" },
}

describe("a misbehaving connection endpoint", function()
  local srv
  setup(function() srv = fake.start("spec/fake/ws_server.mjs") end)
  teardown(function() srv.stop() end)

  local function connect(enc, behaviour, timeout)
    local client = rivet.client(srv.endpoint, { encoding = enc, timeout = timeout or 5 })
    local conn = client.thing:getForId(behaviour):connect()
    local errs = {}
    conn:onError(function(e) errs[#errs + 1] = e end)
    return client, conn, errs
  end

  for _, enc in ipairs({ "bare", "cbor", "json" }) do
    it("answers a well-formed exchange (" .. enc .. ")", function()
      local client, conn, errs = connect(enc, "ok")
      assert.are.equal(7, conn:action("work"))
      assert.are.equal(0, #errs)
      client:dispose()
    end)

    for _, b in ipairs(CASES[enc]) do
      it(b .. " after Init fails the connection with client.malformed_message (" .. enc .. ")", function()
        local client, conn, errs = connect(enc, b)
        local ok, err = pcall(conn.action, conn, "work")
        assert.is_false(ok)
        assert.is_true(rivet.isActorError(err, "client.malformed_message"), tostring(err))
        local deadline = now() + 2
        while #errs == 0 and now() < deadline do client:poll(0.02) end
        assert.is_true(rivet.isActorError(errs[1], "client.malformed_message"), tostring(errs[1]))
        -- still alive: the client keeps working and the connection is retried, not stuck
        client:poll(0.05)
        assert.is_true(conn.status == "disconnected" or conn.status == "connecting" or conn.status == "connected")
        conn:dispose()
        assert.are.equal("disposed", conn.status)
        client:dispose()
      end)
    end

    it("a WebSocket frame announcing 2^62 bytes, then a drop, fails the call (" .. enc .. ")", function()
      local client, conn = connect(enc, "huge-frame")
      local ok, err = pcall(conn.action, conn, "work")
      assert.is_false(ok)
      assert.is_true(rivet.isActorError(err, "client.connection_lost")
        or rivet.isActorError(err, "client.malformed_message"), tostring(err))
      client:dispose()
    end)
  end

  it("a server that never sends Init: the call fails by its deadline and the attempt is abandoned", function()
    local client, conn, errs = connect("bare", "no-init", 0.5)
    local t0 = now()
    local ok, err = pcall(conn.action, conn, "work")
    assert.is_false(ok)
    assert.is_true(rivet.isActorError(err, "client.timeout"), tostring(err))
    assert.is_true(now() - t0 < 2)
    -- the attempt deadline (the client timeout) gives up on the silent socket and retries
    local deadline = now() + 3
    while #errs == 0 and now() < deadline do client:poll(0.02) end
    assert.is_true(#errs >= 1)
    assert.is_true(rivet.isActorError(errs[1], "client"), tostring(errs[1]))
    client:dispose()
  end)
end)
