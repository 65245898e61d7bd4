-- Every failure raises a rivet.ActorError with group, code, message, metadata (and actor
-- on 2.3); programmer mistakes raise plain Lua errors.
local rivet = require("rivet")
local core = require("rivet.core")
local env = require("spec.support.env")
local ints = require("spec.support.ints") -- integers on Lua 5.4 and LuaJIT alike

for _, enc in ipairs(env.encodings) do
  describe("errors (" .. env.server .. ", " .. enc .. ")", function()
    local client, errs
    setup(function()
      client = env.client(enc)
      errs = client.errors:getOrCreate(env.key("errors-" .. enc))
    end)
    teardown(function() client:dispose() end)

    it("user errors carry group, code, message and metadata", function()
      local err = env.catch(errs.throwUser, errs)
      assert.are.equal(rivet.ActorError, getmetatable(err))
      assert.are.equal("user", err.group)
      assert.are.equal("my_code", err.code)
      assert.are.equal("bad thing", err.message)
      assert.are.same({ a = 1 }, err.metadata)
      assert.are.equal("user.my_code: bad thing", tostring(err))
      if env.line == "2.3" then
        assert.is_table(err.actor)
        assert.are.equal(errs:resolve(), err.actor.actorId)
        assert.are.equal("integer", ints.type(err.actor.generation))
      end
    end)

    it("a user error without a code", function()
      local err = env.catch(errs.throwUserPlain, errs)
      assert.are.equal("user", err.group)
      assert.are.equal("plain", err.message)
    end)

    it("an unknown action fails with the server's not-found code", function()
      local err = env.catch(errs.action, errs, "noSuchAction")
      assert.is_true(rivet.isActorError(err))
      assert.are.equal(env.pick("actor.action_not_found", "action.not_found"), err.group .. "." .. err.code)
    end)

    it("internal errors are masked by the server", function()
      local err = env.catch(errs.throwInternal, errs)
      assert.are.equal(env.pick("rivetkit", "internal"), err.group)
      assert.are.equal("internal_error", err.code)
      assert.is_nil(err.message:find("secret internal detail", 1, true))
    end)

    it("is raised by pcall as false, err", function()
      local ok, err = pcall(errs.throwUser, errs)
      assert.is_false(ok)
      assert.is_true(rivet.isActorError(err, "user.my_code"))
      assert.is_true(rivet.isActorError(err, "user"))
      assert.is_false(rivet.isActorError(err, "actor"))
    end)

    it("a call that outlives its timeout fails with client.timeout", function()
      local k = env.key("slow")
      client.slow:getOrCreate(k):sleep(1) -- create and wake the actor with the long timeout
      local short = env.client(enc, { timeout = 0.5 })
      local slow = short.slow:getOrCreate(k)
      slow:resolve()
      local t0 = core.now()
      local err = env.catch(slow.sleep, slow, 3000)
      local took = core.now() - t0
      assert.is_true(rivet.isActorError(err, "client.timeout"), tostring(err))
      assert.is_true(took >= 0.45 and took < 2.5, "took " .. took)
      -- the client is still usable afterwards
      assert.are.equal(5, slow:sleep(5))
      short:dispose()
    end)

    it("a per-handle timeout overrides the client's", function()
      local k = env.key("slow2")
      client.slow:getOrCreate(k):sleep(1) -- create and wake the actor with the long timeout
      local slow = client.slow:getOrCreate(k, { timeout = 0.3 })
      slow:resolve()
      local err = env.catch(slow.sleep, slow, 2000)
      assert.is_true(rivet.isActorError(err, "client.timeout"), tostring(err))
    end)

    it("async futures carry errors to await and rivet.all", function()
      local f = errs:async("throwUser")
      local ok, err = f:result()
      assert.is_false(ok)
      assert.is_true(rivet.isActorError(err, "user.my_code"))
      local e2 = env.catch(rivet.all, { errs:async("throwUser") })
      assert.is_true(rivet.isActorError(e2, "user.my_code"))
    end)
  end)
end

describe("transport errors", function()
  it("a refused connection is client.connection_refused", function()
    -- port 9 (discard) is not served on the test machines
    local c = rivet.client("http://127.0.0.1:9", { timeout = 5 })
    local err = env.catch(function() return c.counter:getOrCreate("x"):increment(1) end)
    assert.is_true(rivet.isActorError(err, "client.connection_refused"), tostring(err))
    c:dispose()
  end)

  it("an unresolvable host is client.dns_failed", function()
    local c = rivet.client("http://no-such-host.invalid:6420", { timeout = 10 })
    local err = env.catch(function() return c.counter:getOrCreate("x"):increment(1) end)
    assert.is_true(rivet.isActorError(err, "client.dns_failed"), tostring(err))
    c:dispose()
  end)

  it("a disposed client fails calls with client.disposed", function()
    local c = env.client("bare")
    local h = c.counter:getOrCreate(env.key("disp"))
    h:increment(1)
    c:dispose()
    local err = env.catch(h.increment, h, 1)
    assert.is_true(rivet.isActorError(err, "client.disposed"), tostring(err))
  end)
end)

describe("programmer mistakes raise plain Lua errors", function()
  local client
  setup(function() client = env.client("bare") end)
  teardown(function() client:dispose() end)

  local function plain(fn, pattern)
    local ok, err = pcall(fn)
    assert.is_false(ok)
    assert.is_string(err, "expected a plain string error, got " .. tostring(err))
    assert.truthy(err:find(pattern), err)
  end

  it("for bad client options", function()
    plain(function() rivet.client(42) end, "endpoint must be a string")
    plain(function() rivet.client("ftp://x") end, "http")
    plain(function() rivet.client("http://x", { encoding = "xml" }) end, "encoding")
    plain(function() rivet.client("http://x", { timeout = -1 }) end, "timeout")
    plain(function() rivet.client("http://x", { headers = { ["a\nb"] = "c" } }) end, "header")
  end)

  it("for bad actor names and keys", function()
    plain(function() client:actor(42) end, "actor name must be")
    plain(function() client.counter:getOrCreate(42) end, "key must be")
    plain(function() client.counter:getOrCreate({ "a", 1 }) end, "key part 2")
    plain(function() client.counter:getForId(nil) end, "actor id")
    plain(function() client.counter:getOrCreate("k", "opts") end, "options must be a table")
    plain(function() client.counter.getOrCreate("k") end, "colon")
  end)

  it("for bad action names and arguments", function()
    local h = client.counter:getOrCreate(env.key("bad"))
    plain(function() h:action(42) end, "action name")
    plain(function() h:increment(function() end) end, "function")
    plain(function() h:async("increment", print) end, "function")
    plain(function() h.increment(5) end, "colon")
  end)
end)
