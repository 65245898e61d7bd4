-- Stateless actions over HTTP against the real server, in every encoding.
local rivet = require("rivet")
local env = require("spec.support.env")
local ints = require("spec.support.ints") -- integers on Lua 5.4 and LuaJIT alike

for _, enc in ipairs(env.encodings) do
  describe("stateless actions (" .. env.server .. ", " .. enc .. ")", function()
    local client
    before_each(function() client = env.client(enc) end)
    after_each(function() client:dispose() end)

    it("detects the server line from /metadata", function()
      local s = client:server()
      assert.are.equal(env.line, s.line)
      assert.is_string(s.version)
      assert.truthy(s.version:match("^" .. env.line:gsub("%.", "%%.")))
    end)

    it("getOrCreate and calls actions by method name and by action()", function()
      local counter = client.counter:getOrCreate(env.key("counter"))
      assert.are.equal(5, counter:increment(5))
      assert.are.equal(7, counter:action("increment", 2))
      local n = counter:getCount()
      assert.are.equal(7, n)
      assert.are.equal("integer", ints.type(n))
    end)

    it("returns nil for an action that returns undefined", function()
      local echo = client.echo:getOrCreate(env.key("echo"))
      assert.is_nil(echo:echo())
    end)

    it("resolves the actor id once and caches it", function()
      local counter = client.counter:getOrCreate(env.key("counter"))
      local id = counter:resolve()
      assert.is_string(id)
      assert.are.equal(id, counter:resolve())
      -- a second handle with the same key reaches the same actor
      local again = client.counter:getOrCreate(counter._key)
      assert.are.equal(id, again:resolve())
    end)

    it("accepts a key as a string or as an array of strings", function()
      local k = env.key("same")
      local a = client.counter:getOrCreate(k)
      local b = client.counter:getOrCreate({ k })
      a:increment(3)
      assert.are.equal(3, b:getCount())
      assert.are.equal(a:resolve(), b:resolve())
    end)

    it("keeps multi-part keys apart from look-alike single parts", function()
      local k = env.key("mp")
      local multi = client.counter:getOrCreate({ k, "b" })
      local slash = client.counter:getOrCreate({ k .. "/b" })
      multi:increment(1)
      slash:increment(10)
      assert.are.equal(1, multi:getCount())
      assert.are.equal(10, slash:getCount())
      assert.are_not.equal(multi:resolve(), slash:resolve())
    end)

    it("passes input to a created actor", function()
      local h = client.input:getOrCreate(env.key("input"), { input = { mode = "ranked", n = 3 } })
      local got = h:getInput()
      assert.are.equal("ranked", got.mode)
      assert.are.equal(3, got.n)
      assert.are.equal("integer", ints.type(got.n))
    end)

    it("get() on a missing key fails with actor.not_found", function()
      local h = client.counter:get(env.key("missing"))
      local err = env.catch(h.getCount, h)
      assert.is_true(rivet.isActorError(err, "actor.not_found"), tostring(err))
      assert.are.equal("actor", err.group)
      assert.are.equal("not_found", err.code)
    end)

    it("get() finds an existing actor", function()
      local k = env.key("existing")
      client.counter:getOrCreate(k):increment(4)
      assert.are.equal(4, client.counter:get(k):getCount())
    end)

    it("create() creates now and fails with actor.duplicate_key when the key exists", function()
      local k = env.key("create")
      local h = client.counter:create(k, { input = { start = 0 } })
      assert.is_string(h:resolve())
      assert.are.equal(1, h:increment(1))
      local err = env.catch(client.counter.create, client.counter, k)
      assert.is_true(rivet.isActorError(err, "actor.duplicate_key"), tostring(err))
    end)

    it("getForId() addresses an actor by id", function()
      local h = client.counter:getOrCreate(env.key("byid"))
      h:increment(9)
      local byid = client.counter:getForId(h:resolve())
      assert.are.equal(9, byid:getCount())
      assert.are.equal(h:resolve(), byid:resolve())
    end)

    if env.line == "2.3" then
      it("a getOrCreate handle whose actor was destroyed reaches a new actor", function()
        local core = require("rivet.core")
        local h = client.counter:getOrCreate(env.key("gone"))
        h:increment(5)
        local id = h:resolve()
        client:_rest("DELETE", "/actors/" .. id, nil, nil, core.now() + 10)
        -- the cached id now names a destroyed actor: the handle looks its key up again
        assert.are.equal(1, h:increment(1))
        assert.are_not.equal(id, h:resolve())
      end)
    end

    it("client:actor(name) reaches actors whose names are not identifiers", function()
      local h = client:actor("counter"):getOrCreate(env.key("acc"))
      assert.are.equal(2, h:increment(2))
    end)

    it("runs many calls in flight with async and rivet.all", function()
      local h = client.counter:getOrCreate(env.key("many"))
      local futures = {}
      for i = 1, 20 do futures[i] = h:async("increment", 1) end
      local results = rivet.all(futures)
      assert.are.equal(20, #results)
      table.sort(results)
      for i = 1, 20 do assert.are.equal(i, results[i]) end
      assert.are.equal(20, h:getCount())
    end)

    it("calls inside spawned tasks yield instead of blocking each other", function()
      local a = client.slow:getOrCreate(env.key("slowa"))
      local b = client.slow:getOrCreate(env.key("slowb"))
      a:sleep(1); b:sleep(1) -- wake both actors first
      local order = {}
      client:spawn(function() a:sleep(400); order[#order + 1] = "a" end)
      client:spawn(function() b:sleep(50); order[#order + 1] = "b" end)
      local t0 = os.clock()
      client:run(30)
      assert.are.same({ "b", "a" }, order)
      assert.is_true(os.clock() - t0 < 0.4, "the loop should not spin while waiting")
    end)

    it("a task's future gives its return value", function()
      local h = client.counter:getOrCreate(env.key("task"))
      local f = client:spawn(function(x) return h:increment(x) end, 6)
      client:run(30)
      assert.are.equal(6, f:await())
    end)

    it("poll(0) returns at once and completes calls over several ticks", function()
      local core = require("rivet.core")
      local h = client.counter:getOrCreate(env.key("poll"))
      h:resolve()
      local done
      client:spawn(function() done = h:increment(1) end)
      local ticks = 0
      local t0 = core.now()
      while done == nil and core.now() - t0 < 10 do
        client:poll(0)
        ticks = ticks + 1
      end
      assert.are.equal(1, done)
      -- poll(0) returned before the answer was there: it did not wait for the network
      assert.is_true(ticks > 1, "the result should take more than one non-blocking tick")
    end)
  end)
end
