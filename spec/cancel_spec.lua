-- future:cancel(): the future fails with client.cancelled at once, and what would have
-- settled it stops (stateless transfer aborted, connection call forgotten, task woken).
local rivet = require("rivet")
local env = require("spec.support.env")

local function is_cancelled(f)
  local ok, e = f:result()
  return not ok and rivet.isActorError(e, "client.cancelled"), e
end

for _, enc in ipairs(env.encodings) do
describe("cancellation (" .. env.server .. ", " .. enc .. ")", function()
  local client
  before_each(function() client = env.client(enc) end)
  after_each(function() client:dispose() end)

  it("a stateless call: fails at once, its transfer is aborted, the client goes on", function()
    local h = client.slow:getOrCreate(env.key("slow"))
    h:resolve()
    local f = h:async("sleep", 5000)
    env.wait_for(client, function() return client._transport:pending() == 1 end, 5, "the request on the wire")
    assert.is_true(f:cancel())
    assert.is_true(f.done)
    assert.is_true(is_cancelled(f))
    assert.are.equal(0, client._transport:pending()) -- the transfer is gone, not left running
    -- the same client (and its connection pool) serves the next call
    local c = client.counter:getOrCreate(env.key("after"))
    assert.are.equal(1, c:increment(1))
  end)

  it("cancel on a settled future is a no-op", function()
    local c = client.counter:getOrCreate(env.key("settled"))
    local f = c:async("increment", 1)
    assert.are.equal(1, f:await())
    assert.is_false(f:cancel())
    assert.are.equal(1, f:await())
  end)

  it("a connection call in flight: fails at once, its late reply is dropped", function()
    local conn = client.slow:getOrCreate(env.key("slow-conn")):connect()
    assert.are.equal(1, conn:sleep(1)) -- open
    local f = conn:async("sleep", 300)
    assert.is_true(f:cancel())
    assert.is_true(is_cancelled(f))
    -- the reply to the cancelled call arrives meanwhile and must not settle anything else
    assert.are.equal(600, conn:sleep(600))
    assert.is_true(is_cancelled(f))
    assert.are.equal(0, conn._sm:pending())
    conn:dispose()
  end)

  it("a queued connection call is never sent", function()
    local h = client.counter:getOrCreate(env.key("queued"))
    local conn = h:connect()
    local f = conn:async("increment", 1) -- not open yet: queued
    assert.is_true(f:cancel())
    assert.is_true(is_cancelled(f))
    assert.are.equal(5, conn:increment(5)) -- the cancelled increment never ran
    assert.are.equal(5, h:getCount())
    conn:dispose()
  end)

  it("inside a task, and a task's own future", function()
    local h = client.slow:getOrCreate(env.key("slow-task"))
    h:resolve()
    local inner_ok, inner_err
    local t = client:spawn(function()
      local f = h:async("sleep", 5000)
      client:sleep(0.05)
      f:cancel()
      inner_ok, inner_err = f:result()
      -- cancelling the task itself: its current wait raises client.cancelled
      return h:sleep(5000)
    end)
    env.wait_for(client, function() return inner_ok ~= nil end, 5, "the inner cancel")
    assert.is_false(inner_ok)
    assert.is_true(rivet.isActorError(inner_err, "client.cancelled"), tostring(inner_err))
    env.wait_for(client, function() return client._transport:pending() == 1 end, 5, "the task's request")
    assert.is_true(t:cancel())
    assert.is_true(is_cancelled(t))
    client:poll(0)
    assert.are.equal(0, client._transport:pending())
    client:run(1) -- the task ended (no error escapes)
  end)

  it("in a game loop", function()
    local h = client.slow:getOrCreate(env.key("slow-loop"))
    h:resolve()
    local f = h:async("sleep", 5000)
    local ticks, cancelled_at = 0, nil
    while not f.done do
      client:poll(0)
      ticks = ticks + 1
      if ticks == 20 then
        f:cancel()
        cancelled_at = ticks
      end
    end
    assert.are.equal(20, cancelled_at)
    assert.is_true(is_cancelled(f))
    client:poll(0)
    assert.are.equal(0, client._transport:pending())
  end)
end)
end
