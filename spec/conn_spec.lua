-- Connections (handle:connect) against the real servers, in every encoding: actions over
-- the socket, events, lifecycle callbacks, deadlines, refused connects, dispose, and the
-- loop that delivers it all.
local rivet = require("rivet")
local core = require("rivet.core")
local env = require("spec.support.env")

local now = core.now

local wait_for = env.wait_for

-- Records the frames a connection sends (wraps the client's loop; conn.lua sends
-- through client._transport).
local function spy_sends(client)
  local real = client._transport
  local sent = {}
  client._transport = setmetatable({
    ws_send = function(_, id, data, binary)
      sent[#sent + 1] = data
      return real:ws_send(id, data, binary)
    end,
  }, { __index = function(_, k) return function(_, ...) return real[k](real, ...) end end })
  return sent, function() client._transport = real end
end

for _, enc in ipairs(env.encodings) do
  describe("connections (" .. env.server .. ", " .. enc .. ")", function()
    local client
    setup(function() client = env.client(enc, { timeout = 15 }) end)
    teardown(function() client:dispose() end)

    describe("actions", function()
      it("calls actions over the connection: method form, action(), async futures", function()
        local conn = client.counter:getOrCreate(env.key("c-act")):connect()
        assert.are.equal(1, conn:increment(1))
        assert.are.equal(3, conn:action("increment", 2))
        local f = conn:async("getCount")
        assert.are.equal(3, f:await())
        assert.are.equal("connected", conn.status)
        assert.is_string(conn.actorId)
        assert.is_string(conn.connectionId)
        conn:dispose()
      end)

      it("keeps many calls in flight and matches each response to its call", function()
        local conn = client.counter:getOrCreate(env.key("c-many")):connect()
        local fs = {}
        for i = 1, 50 do fs[i] = conn:async("increment", 1) end
        local res = rivet.all(fs)
        local seen = {}
        for i = 1, 50 do
          assert.is_nil(seen[res[i]])
          seen[res[i]] = true
          assert.is_true(res[i] >= 1 and res[i] <= 50)
        end
        assert.are.equal(50, conn:getCount())
        conn:dispose()
      end)

      it("matches responses that arrive out of order", function()
        local conn = client.slow:getOrCreate(env.key("c-ooo")):connect()
        conn:sleep(1) -- wake the actor
        local long = conn:async("sleep", 400)
        local short = conn:async("sleep", 10)
        assert.are.equal(10, short:await())
        assert.is_false(long.done) -- the later call finished first
        assert.are.equal(400, long:await())
        conn:dispose()
      end)

      it("an error for action id 0 fails only that call; the connection stays up", function()
        local conn = client.echo:getOrCreate(env.key("c-id0")):connect()
        local errs = {}
        conn:onError(function(e) errs[#errs + 1] = e end)
        local first = conn:async("nope")          -- id 0
        local second = conn:async("echo", "still here") -- in flight at the same time
        local ok, err = first:result()
        assert.is_false(ok)
        assert.is_true(rivet.isActorError(err, env.pick("actor.action_not_found", "action.not_found")), tostring(err))
        assert.are.equal("still here", second:await())
        client:poll(0.05)
        assert.are.equal(0, #errs)
        assert.are.equal("connected", conn.status)
        local err2 = env.catch(function() return client.errors:getOrCreate(env.key("c-id0e")):connect():throwUser() end)
        assert.is_true(rivet.isActorError(err2, "user.my_code"), tostring(err2))
        assert.are.same({ a = 1 }, err2.metadata)
        conn:dispose()
      end)

      it("raises a plain Lua error for a bad argument and an unusable value", function()
        local conn = client.echo:getOrCreate(env.key("c-bad")):connect()
        assert.has_error(function() conn.echo(1) end)
        assert.has_error(function() conn:action(42) end)
        assert.has_error(function() conn:echo(function() end) end)
        assert.are.equal(5, conn:echo(5)) -- and the connection still works
        conn:dispose()
      end)
    end)

    describe("events", function()
      it("delivers events to on() listeners and stops after the unsubscribe function", function()
        local h = client.counter:getOrCreate(env.key("c-ev"))
        local conn = h:connect()
        local got = {}
        local off = conn:on("newCount", function(n) got[#got + 1] = n end)
        conn:increment(1)
        conn:increment(1)
        assert.are.same({ 1, 2 }, got)
        off()
        off() -- twice is harmless
        conn:increment(1)
        h:increment(1) -- from outside the connection too
        conn:getCount()
        client:poll(0.05)
        assert.are.same({ 1, 2 }, got)
        conn:dispose()
      end)

      it("once() fires for the next event only", function()
        local conn = client.counter:getOrCreate(env.key("c-once")):connect()
        local got = {}
        conn:once("newCount", function(n) got[#got + 1] = n end)
        conn:increment(5)
        conn:increment(5)
        client:poll(0.05)
        assert.are.same({ 5 }, got)
        conn:dispose()
      end)

      it("passes every argument of an event, nils included", function()
        local conn = client.echo:getOrCreate(env.key("c-args")):connect()
        local got
        conn:on("multi", function(...) got = require("spec.support.compat").pack(...) end)
        conn:emit("multi", 1, "two", rivet.null, { x = 3 })
        assert.are.equal(4, got.n)
        assert.are.equal(1, got[1])
        assert.are.equal("two", got[2])
        assert.is_nil(got[3])
        assert.are.same({ x = 3 }, got[4])
        conn:dispose()
      end)

      it("sends one subscribe for the first listener and one unsubscribe after the last", function()
        local conn = client.echo:getOrCreate(env.key("c-subs")):connect()
        conn:echo(1) -- connected
        local sent, restore = spy_sends(client)
        -- counts SubscriptionRequest frames with subscribe == flag (frames per §9.4-9.6)
        local function subs(flag)
          local n = 0
          for _, data in ipairs(sent) do
            local yes
            if enc == "json" then
              yes = data:find('"SubscriptionRequest"', 1, true) and data:find('"subscribe":' .. tostring(flag), 1, true)
            elseif enc == "cbor" then
              yes = data:find("SubscriptionRequest", 1, true)
                and data:find("subscribe" .. (flag and "\245" or "\244"), 1, true)
            else
              yes = data:byte(3) == 1 and data:byte(#data) == (flag and 1 or 0)
            end
            if yes then n = n + 1 end
          end
          return n
        end
        local a, b = 0, 0
        local offa = conn:on("ping", function() a = a + 1 end)
        local offb = conn:on("ping", function() b = b + 1 end)
        conn:emit("ping")
        assert.are.equal(1, subs(true))
        assert.are.same({ 1, 1 }, { a, b })
        offa()
        assert.are.equal(0, subs(false))
        conn:emit("ping")
        assert.are.same({ 1, 2 }, { a, b })
        offb()
        assert.are.equal(1, subs(false))
        conn:emit("ping")
        client:poll(0.05)
        assert.are.same({ 1, 2 }, { a, b })
        restore()
        conn:dispose()
      end)

      it("delivers a burst of 1,000 events in order, none lost", function()
        local conn = client.echo:getOrCreate(env.key("c-burst")):connect()
        local got = {}
        conn:on("tick", function(i) got[#got + 1] = i end)
        assert.are.equal(1000, conn:emitMany(1000))
        wait_for(client, function() return #got >= 1000 end, 10, "1000 events")
        for i = 1, 1000 do
          if got[i] ~= i - 1 then error("event " .. i .. " is " .. tostring(got[i]) .. ", expected " .. (i - 1)) end
        end
        conn:dispose()
      end)

      it("runs a burst of handlers on reused coroutines; a handler that waits keeps its own", function()
        local conn = client.echo:getOrCreate(env.key("c-hpool")):connect()
        local cos, running, done, waited, shared = {}, {}, 0, 0, false
        conn:on("tick", function(i)
          local co = coroutine.running()
          if running[co] then shared = true end -- two handlers on one coroutine at once
          running[co] = true
          cos[co] = true
          if i % 50 == 0 then
            conn:echo(i) -- waits: later handlers run meanwhile, on other coroutines
            waited = waited + 1
          end
          running[co] = nil
          done = done + 1
        end)
        conn:emitMany(400)
        wait_for(client, function() return done >= 400 end, 20, "400 handlers")
        assert.are.equal(8, waited)
        assert.is_false(shared)
        local distinct = 0
        for _ in pairs(cos) do distinct = distinct + 1 end
        assert.is_true(distinct < 50, distinct .. " coroutines for 400 handlers")
        conn:dispose()
      end)

      it("runs each handler in its own coroutine, so a handler may call actions", function()
        local conn = client.counter:getOrCreate(env.key("c-hcall")):connect()
        local seen = {}
        conn:on("newCount", function(n)
          if n == 1 then
            -- waits inside the handler; other events keep flowing meanwhile
            seen[#seen + 1] = "got 1, count now " .. conn:increment(10)
          end
        end)
        conn:increment(1)
        wait_for(client, function() return #seen == 1 end, 10, "the handler's call")
        assert.are.equal("got 1, count now 11", seen[1])
        conn:dispose()
      end)

      it("an error in a handler goes to onError, never out of poll", function()
        local conn = client.echo:getOrCreate(env.key("c-herr")):connect()
        local errs = {}
        conn:onError(function(e) errs[#errs + 1] = e end)
        conn:on("boom", function() error("handler exploded") end)
        conn:on("boom2", function()
          error(rivet.ActorError and setmetatable({ group = "app", code = "bad", message = "typed" }, rivet.ActorError))
        end)
        conn:emit("boom")
        conn:emit("boom2")
        wait_for(client, function() return #errs == 2 end, 5, "two handler errors")
        assert.is_true(rivet.isActorError(errs[1], "client.handler_failed"), tostring(errs[1]))
        assert.truthy(errs[1].message:find("handler exploded", 1, true))
        assert.is_true(rivet.isActorError(errs[2], "app.bad"), tostring(errs[2]))
        assert.are.equal("connected", conn.status)
        assert.are.equal(3, conn:echo(3))
        conn:dispose()
      end)

      it("handlers run from client:run() and from spawned tasks' waits", function()
        local conn = client.counter:getOrCreate(env.key("c-run")):connect()
        local got = {}
        conn:on("newCount", function(n) got[#got + 1] = n end)
        client:spawn(function()
          for _ = 1, 3 do conn:increment(1) end
        end)
        client:run(10)
        assert.are.same({ 1, 2, 3 }, got)
        conn:dispose()
      end)
    end)

    describe("lifecycle", function()
      it("reports status changes, open and close, and disposed", function()
        local conn = client.counter:getOrCreate(env.key("c-life")):connect()
        local statuses, opens, closes = {}, 0, {}
        conn:onStatusChange(function(s) statuses[#statuses + 1] = s end)
        conn:onOpen(function() opens = opens + 1 end)
        conn:onClose(function(code) closes[#closes + 1] = code end)
        assert.are.equal("connecting", conn.status)
        conn:increment(1)
        client:poll(0.01)
        assert.are.same({ "connecting", "connected" }, statuses)
        assert.are.equal(1, opens)
        conn:dispose()
        assert.are.equal("disposed", conn.status)
        client:poll(0.01)
        assert.are.same({ "connecting", "connected", "disposed" }, statuses)
      end)

      it("dispose fails pending calls with client.disposed, removes listeners, later calls fail too", function()
        local conn = client.slow:getOrCreate(env.key("c-disp")):connect()
        conn:sleep(1)
        local got = 0
        conn:on("x", function() got = got + 1 end)
        local f = conn:async("sleep", 3000)
        client:poll(0.05)
        conn:dispose()
        local ok, err = f:result()
        assert.is_false(ok)
        assert.is_true(rivet.isActorError(err, "client.disposed"), tostring(err))
        err = env.catch(conn.sleep, conn, 1)
        assert.is_true(rivet.isActorError(err, "client.disposed"), tostring(err))
        assert.is_nil(next(conn._listeners))
        conn:dispose() -- twice is harmless
      end)

      if rawget(_G, "jit") then
        pending("a <close> variable disposes the connection at scope end (Lua 5.4 only: <close>)")
      else
        it("a <close> variable disposes the connection at scope end", function()
          local seen = require("spec.support.lua54").in_close_scope(
            function() return client.counter:getOrCreate(env.key("c-close")):connect() end,
            function(conn) conn:increment(1) end)
          assert.are.equal("disposed", seen.status)
        end)
      end

      it("a connection nobody references is collected and its socket closed", function()
        local weak = setmetatable({}, { __mode = "v" })
        local ws
        do
          local conn = client.counter:getOrCreate(env.key("c-gc")):connect()
          conn:increment(1)
          ws = conn._ws
          weak[1] = conn
        end
        for _ = 1, 5 do
          client:poll(0.02)
          collectgarbage()
          collectgarbage()
        end
        assert.is_nil(weak[1])
        -- the socket is gone: the loop refuses to send on it
        wait_for(client, function() return client._transport:ws_send(ws, "x", true) == false end, 5,
          "the socket to close")
      end)
    end)

    describe("many at once", function()
      it("opens 60 connections at once, at most a few connecting at a time; "
        .. "disposing waiting ones stops them", function()
        local h = client.counter:getOrCreate(env.key("c-many"))
        h:resolve()
        local c0 = client._transport:ws_counts() -- sockets of other tests still closing
        local base = c0.open + c0.connecting + c0.waiting
        local conns = {}
        for i = 1, 60 do conns[i] = h:connect() end
        local counts = client._transport:ws_counts()
        assert.is_true(counts.waiting > 0, "the burst waits for connect slots")
        -- the last ten have not started: disposing them ends them without a socket
        for i = 51, 60 do conns[i]:dispose() end
        local most = 0
        wait_for(client, function()
          local c = client._transport:ws_counts()
          most = math.max(most, c.connecting)
          for i = 1, 50 do if conns[i].status ~= "connected" then return false end end
          return true
        end, 30, "50 connections")
        assert.is_true(most <= counts.max_connecting, most .. " connecting at once")
        local before = h:getCount()
        for i = 1, 50 do assert.is_number(conns[i]:increment(1)) end
        assert.are.equal(before + 50, h:getCount())
        for i = 51, 60 do assert.are.equal("disposed", conns[i].status) end
        for i = 1, 50 do conns[i]:dispose() end
        wait_for(client, function()
          local c = client._transport:ws_counts()
          return c.open + c.connecting + c.waiting <= base
        end, 10, "every socket to close")
      end)
    end)

    describe("deadlines", function()
      it("a call past its handle timeout fails with client.timeout; the late answer is dropped", function()
        local key = env.key("c-dl")
        client.slow:getOrCreate(key):sleep(1) -- wake the actor without a tight deadline
        local conn = client.slow:getOrCreate(key, { timeout = 0.3 }):connect()
        wait_for(client, function() return conn.status == "connected" end, 10, "the connection")
        local t0 = now()
        local err = env.catch(conn.sleep, conn, 1200)
        assert.is_true(rivet.isActorError(err, "client.timeout"), tostring(err))
        assert.is_true(now() - t0 < 1.1)
        -- the connection keeps working, before and after the late response arrives
        assert.are.equal(5, conn:sleep(5))
        client:sleep(1.1)
        assert.are.equal(6, conn:sleep(6))
        assert.are.equal("connected", conn.status)
        conn:dispose()
      end)

      it("the client timeout bounds connection calls too", function()
        local key = env.key("c-dl2")
        client.slow:getOrCreate(key):sleep(1) -- wake the actor without a tight deadline
        local c2 = env.client(enc, { timeout = 0.3 })
        local conn = c2.slow:getOrCreate(key):connect()
        wait_for(c2, function() return conn.status == "connected" end, 10, "the connection")
        local err = env.catch(conn.sleep, conn, 1000)
        assert.is_true(rivet.isActorError(err, "client.timeout"), tostring(err))
        c2:dispose()
      end)
    end)

    describe("onBeforeConnect", function()
      it("a refused connection reports the user error, fails queued calls and stops retrying", function()
        local conn = client.auth:getOrCreate(env.key("c-auth")):connect({ token = "wrong" })
        local errs, statuses = {}, {}
        conn:onError(function(e) errs[#errs + 1] = e end)
        conn:onStatusChange(function(s) statuses[#statuses + 1] = s end)
        local err = env.catch(conn.whoami, conn)
        assert.is_true(rivet.isActorError(err, "user.forbidden"), tostring(err))
        wait_for(client, function() return #errs > 0 end, 5, "onError")
        assert.is_true(rivet.isActorError(errs[1], "user.forbidden"), tostring(errs[1]))
        assert.are.equal("idle", conn.status)
        -- no further attempts on its own
        client:sleep(1)
        assert.are.equal(1, #errs)
        assert.are.same({ "connecting", "idle" }, statuses)
        -- a new call is one new attempt (not a retry loop): it fails the same way
        err = env.catch(conn.whoami, conn)
        assert.is_true(rivet.isActorError(err, "user.forbidden"), tostring(err))
        client:poll(0.05)
        assert.are.equal("idle", conn.status)
        conn:dispose()
      end)

      it("the right token connects and the actor sees the params", function()
        local h = client.auth:getOrCreate(env.key("c-auth2"))
        local conn = h:connect({ token = "secret-lua" })
        assert.are.equal("secret-lua", conn:whoami())
        assert.are.same({ token = "secret-lua" }, conn:getParams())
        conn:dispose()
        -- params from the handle options
        local h2 = client.auth:getOrCreate(env.key("c-auth3"), { params = { token = "secret-h" } })
        local c2 = h2:connect()
        assert.are.equal("secret-h", c2:whoami())
        c2:dispose()
      end)
    end)

    describe("the loop", function()
      it("a game loop calling poll(0) each tick never sleeps while tasks call and events arrive", function()
        local conn = client.counter:getOrCreate(env.key("c-game")):connect()
        local slow = client.slow:getOrCreate(env.key("c-game-slow")):connect()
        conn:getCount()
        slow:sleep(1)
        local events, done, longest = 0, 0, 0
        conn:on("newCount", function() events = events + 1 end)
        client:spawn(function() slow:sleep(300); done = done + 1 end) -- keeps a call pending
        for i = 1, 10 do
          client:spawn(function() conn:increment(1); done = done + 1 end)
          if i % 2 == 0 then client:spawn(function() client:sleep(0.01 * i); done = done + 1 end) end
        end
        local t_end = now() + 3
        local ticks = 0
        while (done < 16 or events < 10) and now() < t_end do
          local t0 = now()
          client:poll(0)
          longest = math.max(longest, now() - t0)
          ticks = ticks + 1
          -- the "frame": busy work instead of sleeping, as a game would render
          local x = 0
          for k = 1, 2000 do x = x + k end
        end
        assert.are.equal(16, done)
        assert.are.equal(10, events)
        assert.are.equal(10, conn:getCount())
        assert.is_true(ticks > 16)
        -- poll(0) never waited for the 300 ms call (generous bound for a loaded machine)
        assert.is_true(longest < 0.2, "poll(0) took " .. longest .. " s")
        conn:dispose()
        slow:dispose()
      end)
    end)

    if env.line == "2.3" then
      it("a key-based connection reaches the new actor after its actor is destroyed", function()
        local h = client.counter:getOrCreate(env.key("c-destroy"))
        local conn = h:connect()
        local opens = 0
        conn:onOpen(function() opens = opens + 1 end)
        conn:increment(5)
        local old = conn.actorId
        client:_rest("DELETE", "/actors/" .. old, nil, nil, now() + 10)
        wait_for(client, function() return opens >= 2 and conn.status == "connected" end, 15, "a reconnect")
        assert.are.equal(1, conn:increment(1))
        assert.are_not.equal(old, conn.actorId)
        conn:dispose()
      end)
    end
  end)
end
