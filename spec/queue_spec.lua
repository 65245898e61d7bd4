-- Queues against the real servers: handle:send and conn:send on 2.3 in every encoding
-- (accepted, completed, timed out, refused by canPublish, too large, full), and the
-- clear refusal of a 2.0 server, which has none.
local rivet = require("rivet")
local env = require("spec.support.env")

local function is_error(e, name) return rivet.isActorError(e, name), tostring(e) end

if env.server ~= "v23" then
  describe("queues (" .. env.server .. ")", function()
    it("are refused with client.unsupported by a 2.0 server", function()
      local c = env.client("bare")
      local h = c.counter:getOrCreate(env.key("noq"))
      local e = env.catch(h.send, h, "jobs", { a = 1 })
      assert.is_true(is_error(e, "client.unsupported"))
      assert.truthy(e.message:find("2.3", 1, true))
      local conn = h:connect()
      local e2 = env.catch(conn.send, conn, "jobs", 1, { wait = true })
      assert.is_true(is_error(e2, "client.unsupported"))
      conn:dispose()
      c:dispose()
    end)
  end)
  return
end

for _, enc in ipairs(env.encodings) do
  describe("queues (" .. env.server .. ", " .. enc .. ")", function()
    local client
    before_each(function() client = env.client(enc) end)
    after_each(function() client:dispose() end)

    it("send without wait returns once the message is accepted; the actor gets it", function()
      local h = client.worker:getOrCreate(env.key("q"))
      assert.is_nil(h:send("jobs", { id = 1, tags = rivet.array({}), big = 9007199254740993 }))
      env.wait_for(client, function() return #h:received() >= 1 end, 10, "the message to be handled")
      local got = h:received()[1]
      assert.are.equal("jobs", got.name)
      assert.are.equal(1, got.body.id)
      assert.is_true(rivet.isArray(got.body.tags))
      assert.are.equal(9007199254740993, got.body.big)
    end)

    it("send with wait returns the completion's response", function()
      local h = client.worker:getOrCreate(env.key("q"))
      local r = h:send("jobs", { job = "a" }, { wait = true, timeout = 10 })
      assert.are.equal("completed", r.status)
      assert.are.same({ job = "a" }, r.response.echo)
      assert.are.equal(1, r.response.n)
      local r2 = h:send("jobs", "second", { wait = true })
      assert.are.equal("completed", r2.status)
      assert.are.equal("second", r2.response.echo)
      assert.are.equal(2, r2.response.n)
    end)

    it("a message nobody completes reports timedOut after the wait's timeout", function()
      local h = client.worker:getOrCreate(env.key("q"))
      local r = h:send("silent", { x = 1 }, { wait = true, timeout = 0.3 })
      assert.are.equal("timedOut", r.status)
      assert.is_nil(r.response)
    end)

    it("canPublish refusing a sender is an ActorError with group, code and metadata", function()
      local h = client.worker:getOrCreate(env.key("q"))
      local e = env.catch(h.send, h, "guarded", 1, { wait = true })
      assert.is_true(is_error(e, "user.queue_denied"))
      assert.are.same({ queue = "guarded" }, e.metadata)
      -- params travel as on actions: the right ones are let through
      local ok = client.worker:getOrCreate(h._key, { params = { token = "secret-queue" } })
      assert.are.equal(7, ok:send("guarded", 7, { wait = true }).response.echo)
    end)

    it("conn:send carries the connection's params", function()
      local h = client.worker:getOrCreate(env.key("q"))
      local conn = h:connect({ token = "secret-queue" })
      local r = conn:send("guarded", "via-conn", { wait = true, timeout = 10 })
      assert.are.equal("via-conn", r.response.echo)
      conn:dispose()
    end)

    it("a message over the size limit and a full queue are ActorErrors", function()
      local h = client.worker:getOrCreate(env.key("q"))
      local e = env.catch(h.send, h, "jobs", string.rep("x", 5000))
      assert.is_true(is_error(e, "queue.message_too_large"))
      assert.are.equal(1024, e.metadata.limit)
      for _ = 1, 3 do h:send("silent", 1) end
      local full = env.catch(h.send, h, "silent", 1)
      assert.is_true(is_error(full, "queue.full"))
      assert.are.equal(3, full.metadata.limit)
    end)

    it("bad arguments are plain Lua errors before anything is sent", function()
      local h = client.worker:getOrCreate(env.key("q"))
      local e1 = env.catch(h.send, h, "", 1)
      assert.is_string(e1)
      local e2 = env.catch(h.send, h, "jobs", 1, { timeout = 1 })
      assert.truthy(e2:find("timeout needs wait", 1, true), e2)
      local e3 = env.catch(h.send, h, "jobs", 1, { wiat = true })
      assert.truthy(e3:find("unknown option 'wiat'", 1, true), e3)
      local e4 = env.catch(h.send, h, "jobs", function() end)
      assert.truthy(e4:find("bad argument #2 to 'send'", 1, true), e4)
      assert.are.same({}, h:received())
    end)
  end)
end
