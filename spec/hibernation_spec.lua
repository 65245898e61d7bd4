-- 2.3 engine hibernation: the gateway keeps the client's WebSocket open while the actor
-- sleeps and wakes again; the connection must go on without any reconnect (protocol.md
-- §13.2). The 2.0 file-system driver has no hibernation.
local env = require("spec.support.env")

describe("hibernation (" .. env.server .. ")", function()
  if env.line ~= "2.3" then
    pending("2.0 has no hibernating WebSockets")
    return
  end

  for _, enc in ipairs(env.encodings) do
    it("a connection survives the actor sleeping and waking without reconnecting (" .. enc .. ")", function()
      local client = env.client(enc)
      local h = client.sleepy:getOrCreate(env.key("sleepy"))
      local conn = h:connect()
      local statuses, counts = {}, {}
      conn:onStatusChange(function(s) statuses[#statuses + 1] = s end)
      conn:on("newCount", function(n) counts[#counts + 1] = n end)
      assert.are.equal(1, conn:increment(1))
      local connection_id = conn.connectionId
      local wakes = conn:getWakes()
      assert.is_true(conn:sleepNow())
      -- let the actor go to sleep; the socket stays open on the engine's side. The first
      -- wake comes 1 s later: a wake that races the actor going to sleep sometimes left
      -- rivetkit 2.3.19 with a socket it no longer routes (no answer, or
      -- guard.websocket_garbage_collected)
      local slept = false
      client:sleep(1)
      for _ = 1, 50 do
        client:sleep(0.1)
        local fresh = env.client(enc)
        local w = fresh.sleepy:getForId(h:resolve()):getWakes()
        fresh:dispose()
        if w > wakes then slept = true break end -- that call woke it again
      end
      assert.is_true(slept, "the actor never went to sleep and woke again")
      -- the same socket still works: actions and events, no new Init, no reconnect
      assert.are.equal(2, conn:increment(1))
      client:poll(0.2)
      assert.are.equal("connected", conn.status)
      assert.are.equal(connection_id, conn.connectionId)
      for _, s in ipairs(statuses) do
        assert.are_not.equal("disconnected", s)
      end
      assert.are.same({ 1, 2 }, counts)
      conn:dispose()
      client:dispose()
    end)
  end
end)
