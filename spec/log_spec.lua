-- Logging: rivet.setLogger(fn) hears a connection's lifecycle (attempt, status, open,
-- close) against the real server; without a logger the library says nothing.
local rivet = require("rivet")
local core = require("rivet.core")
local env = require("spec.support.env")

local now = core.now

local wait_for = env.wait_for

describe("logging (" .. env.server .. ")", function()
  local client
  setup(function() client = env.client("bare", { timeout = 15 }) end)
  teardown(function()
    rivet.setLogger(nil)
    client:dispose()
  end)
  after_each(function() rivet.setLogger(nil) end)

  -- connect, one action, dispose, and run the loop until done() (or a while)
  local function lifecycle(key, done)
    local conn = client.counter:getOrCreate(env.key(key)):connect()
    wait_for(client, function() return conn.status == "connected" end, 10, "the connection to open")
    conn:increment(1)
    conn:dispose()
    local t = now() + 0.5
    wait_for(client, done or function() return now() > t end, 10, "the socket to close")
    return conn
  end

  it("hands connection lifecycle messages to the logger", function()
    local got = {}
    rivet.setLogger(function(level, msg, fields) got[#got + 1] = { level = level, msg = msg, fields = fields } end)
    local function find(msg, pred)
      for _, m in ipairs(got) do
        if m.msg == msg and (not pred or pred(m)) then return m end
      end
    end
    local conn = lifecycle("log", function() return find("connection closed") ~= nil end)
    assert.is_truthy(find("connection attempt"), "no attempt logged")
    local open = find("connection open")
    assert.is_truthy(open, "no open logged")
    assert.are.equal("info", open.level)
    assert.are.equal("counter", open.fields.actor)
    assert.are.equal(conn.actorId, open.fields.actorId)
    assert.are.equal(conn.connectionId, open.fields.connectionId)
    for _, s in ipairs({ "connecting", "connected", "disposed" }) do
      assert.is_truthy(find("connection status", function(m) return m.fields.status == s end), "no status " .. s)
    end
    local closed = find("connection closed")
    assert.is_truthy(closed, "no close logged")
    assert.are.equal(1000, closed.fields.code)
    -- nothing that could hold a secret: only plain names, ids, codes
    for _, m in ipairs(got) do
      for k in pairs(m.fields or {}) do
        assert.is_nil(({ params = 1, headers = 1, token = 1, url = 1, endpoint = 1 })[k], m.msg .. " has field " .. k)
      end
    end
  end)

  it("says nothing once the logger is removed", function()
    local got = 0
    rivet.setLogger(function() got = got + 1 end)
    rivet.setLogger(nil)
    lifecycle("nolog")
    assert.are.equal(0, got)
  end)
end)
