-- The loop's edges a user meets: run() with tasks that never wait, every way of waiting
-- after dispose(), and what rivet.all returns.
local rivet = require("rivet")
local env = require("spec.support.env")
local now = require("rivet.core").now

describe("the loop (" .. env.server .. ")", function()
  local client
  before_each(function() client = env.client("bare") end)
  after_each(function() client:dispose() end)

  it("run() returns at once when every task finished without waiting", function()
    local ran = 0
    client:spawn(function() ran = ran + 1 end)
    client:spawn(function() ran = ran + 1 end)
    -- a timer due in 1 s: a run() that waits for I/O instead of returning lets it fire
    local late = false
    client._sched:timer(now() + 1, function() late = true end)
    client:run()
    assert.are.equal(2, ran)
    assert.is_false(late)
    client:spawn(function() ran = ran + 1 end)
    client:run(3)
    assert.are.equal(3, ran)
    assert.is_false(late)
  end)

  it("awaiting a spawned task that did not wait returns at once", function()
    local late = false
    client._sched:timer(now() + 1, function() late = true end)
    local t = client:spawn(function() return 42 end)
    assert.are.equal(42, t:await())
    assert.is_false(late)
  end)

  describe("a stateless call still pending at dispose()", function()
    local function pending_call()
      local h = client.slow:getOrCreate(env.key("slow"))
      h:resolve()
      local f = h:async("sleep", 3000)
      client:poll(0.05) -- the request is on the wire
      assert.is_false(f.done)
      return h, f
    end

    it("fails await, result, rivet.all and waits inside a task with client.disposed", function()
      local h, f = pending_call()
      client:dispose()
      local e = env.catch(f.await, f)
      assert.is_true(rivet.isActorError(e, "client.disposed"), tostring(e))
      local ok, e2 = f:result()
      assert.is_false(ok)
      assert.is_true(rivet.isActorError(e2, "client.disposed"), tostring(e2))
      local e3 = env.catch(rivet.all, { f })
      assert.is_true(rivet.isActorError(e3, "client.disposed"), tostring(e3))
      local t = client:spawn(function() return f:await() end)
      local e4 = env.catch(t.await, t)
      assert.is_true(rivet.isActorError(e4, "client.disposed"), tostring(e4))
      -- a blocking call from the main chunk after dispose
      local e5 = env.catch(h.sleep, h, 1)
      assert.is_true(rivet.isActorError(e5, "client.disposed"), tostring(e5))
      local f6 = h:async("sleep", 1)
      local e6 = env.catch(f6.await, f6)
      assert.is_true(rivet.isActorError(e6, "client.disposed"), tostring(e6))
    end)
  end)

  it("rivet.all returns a plain array (and the count) that travels back as an array", function()
    local echo = client.echo:getOrCreate(env.key("echo"))
    local fs = { echo:async("echo", 1), echo:async("echo", "two"), echo:async("echo", 3) }
    local res, n = rivet.all(fs)
    assert.are.equal(3, n)
    assert.are.same({ 1, "two", 3 }, res)
    assert.is_nil(res.n)
    assert.is_true(rivet.isArray(res))
    assert.are.same({ 1, "two", 3 }, echo:echo(res))
    assert.are.equal("array", echo:typeOf(res))
    local empty, zero = rivet.all({})
    assert.are.equal(0, zero)
    assert.are.equal("array", echo:typeOf(empty))
  end)
end)
