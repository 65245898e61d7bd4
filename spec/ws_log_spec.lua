-- libwebsockets' own log lines reach rivet.setLogger (and nothing is logged without one).
local rivet = require("rivet")
local env = require("spec.support.env")

describe("libwebsockets logging (" .. env.server .. ")", function()
  after_each(function() rivet.setLogger(nil) end)

  local function open_socket(enc)
    local client = env.client(enc)
    local ws = client.raw:getOrCreate(env.key("wslog")):websocket("/log")
    assert.are.equal("hello", (ws:receive(10)))
    ws:close()
    client:dispose()
  end

  it("routes libwebsockets' lines to the logger", function()
    local lines = {}
    rivet.setLogger(function(level, msg) lines[#lines + 1] = { level = level, msg = msg } end)
    open_socket("bare")
    local lws = 0
    for _, l in ipairs(lines) do
      if l.msg:find("^libwebsockets: ") then
        lws = lws + 1
        assert.truthy(({ error = true, warn = true, info = true, debug = true })[l.level])
      end
    end
    assert.is_true(lws > 0, "no libwebsockets line reached the logger")
  end)

  it("is silent after setLogger(nil)", function()
    local lines = {}
    rivet.setLogger(function(_, msg) lines[#lines + 1] = msg end)
    rivet.setLogger(nil)
    open_socket("bare")
    assert.are.equal(0, #lines)
  end)
end)
