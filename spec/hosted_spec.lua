-- Hosting the loop (docs/loop.md): client:pollfds() / client:timeout() and the luv and
-- cqueues adapters, against the real server. Each host test runs its body inside the
-- host's own loop (uv.run(), cq:loop()) with no poll loop of ours.
local rivet = require("rivet")
local env = require("spec.support.env")
local proxy = require("spec.support.proxy")

local now = require("rivet.compat").now
local luv = require("luv")
local cqueues = require("cqueues")

local WATCHDOG = 30 -- seconds a host test may run before it is failed

-- Each host runs body(client) in its own loop and returns what body returned (or raises
-- what it raised). body runs in a client task under luv and in a cqueues coroutine under
-- cqueues: in both, calls wait without blocking the host's other work.
local HOSTS = {
  luv = {
    -- body(client, host_sleep): host_sleep(s) yields to the host for s seconds
    run = function(client, body)
      rivet.luv(client)
      local done, ok, res = false, nil, nil
      client:spawn(function()
        ok, res = pcall(body, client, function(s) client:sleep(s) end)
        done = true
        client:dispose()
      end)
      local dog = luv.new_timer()
      dog:start(WATCHDOG * 1000, 0, function() client:dispose(); dog:close() end)
      dog:unref()
      luv.run()
      if not dog:is_closing() then dog:close() end
      luv.run("nowait") -- lets libuv finish closing the handles
      assert(done, "the host loop ended before the body did")
      if not ok then error(res, 0) end
      return res
    end,
    -- a callback of the host's own, outside any task, after s seconds
    later = function(s, fn)
      local t = luv.new_timer()
      t:start(math.floor(s * 1000), 0, function() t:close(); fn() end)
    end,
  },
  cqueues = {
    run = function(client, body)
      local cq = cqueues.new()
      rivet.cqueues(client, cq)
      local done, ok, res = false, nil, nil
      cq:wrap(function()
        ok, res = pcall(body, client, cqueues.sleep)
        done = true
        client:dispose()
      end)
      local lok, lerr = cq:loop(WATCHDOG)
      if not done then client:dispose() end
      assert(lok, tostring(lerr))
      assert(done, "the host loop ended before the body did (or the watchdog fired)")
      if not ok then error(res, 0) end
      return res
    end,
  },
}

-- Puts a stand-in in front of the client's C loop that counts the calls made to each of
-- its methods (what a host asks of it); override[name] replaces a method.
local function count_loop_calls(client, override)
  local sched = client._sched
  local real = sched.loop
  local calls = setmetatable({}, { __index = function() return 0 end })
  sched.loop = setmetatable({}, {
    __index = function(_, k)
      local f = override and override[k] or real[k]
      if type(f) ~= "function" then return f end
      return function(_, ...)
        calls[k] = calls[k] + 1
        return f(real, ...)
      end
    end,
  })
  return calls
end

describe("hosting the loop (" .. env.server .. ")", function()
  it("pollfds and timeout: one descriptor to watch; an idle client has no timed work", function()
    local client = env.client("bare")
    local fds = client:pollfds()
    assert.are.equal(1, #fds)
    assert.are.equal("r", fds[1].events)
    assert.is_true(math.type == nil or math.type(fds[1].fd) == "integer")
    assert.is_nil(client:timeout())
    -- work taken on between polls: a task is due at once, and poll(0) does it
    local fut = client:spawn(function() return client.counter:getOrCreate(env.key("hfd")):increment(2) end)
    assert.are.equal(0, client:timeout())
    env.wait_for(client, function() return fut.done end, 10, "the task")
    assert.are.equal(2, fut:await())
    client:dispose()
    assert.are.same({}, client:pollfds())
    assert.is_nil(client:timeout())
  end)

  it("keeps the same descriptor while sockets close and reopen under it (a reconnect)", function()
    local px = proxy.start(env.endpoint)
    local client = rivet.client(px.endpoint, { encoding = "bare", timeout = 20 })
    local fd = client:pollfds()[1].fd
    local conn = client.counter:getOrCreate(env.key("hser")):connect()
    assert.are.equal(1, conn:increment(1))
    local opens = 0
    conn:onOpen(function() opens = opens + 1 end)
    px:cut()
    env.wait_for(client, function() return opens >= 1 end, 15, "the reconnect")
    assert.are.equal(2, conn:increment(1))
    assert.are.same({ { fd = fd, events = "r" } }, client:pollfds())
    client:dispose()
    px:stop()
  end)

  it("refuses a second host and bad arguments with clear errors", function()
    local client = env.client("bare")
    rivet.luv(client)
    local e = env.catch(rivet.cqueues, client, cqueues.new())
    assert.truthy(tostring(e):find("already attached", 1, true), tostring(e))
    e = env.catch(rivet.luv, {}, luv)
    assert.truthy(tostring(e):find("expected a rivet client", 1, true), tostring(e))
    e = env.catch(rivet.luv, env.client("bare"), {})
    assert.truthy(tostring(e):find("expected the luv module", 1, true), tostring(e))
    e = env.catch(rivet.cqueues, env.client("bare"), 42)
    assert.truthy(tostring(e):find("expected a cqueues controller", 1, true), tostring(e))
    client:dispose()
    luv.run("nowait")
  end)

  for _, name in ipairs({ "luv", "cqueues" }) do
    local host = HOSTS[name]
    describe(name, function()
      for _, enc in ipairs(env.encodings) do
        it(enc .. ": actions, a connection's events and pipelined calls", function()
          local client = env.client(enc, { timeout = 20 })
          local got = host.run(client, function(c)
            local h = c.counter:getOrCreate(env.key("h-" .. name))
            assert.are.equal(5, h:increment(5))
            local conn = h:connect()
            local events = {}
            conn:on("newCount", function(n) events[#events + 1] = n end)
            local futs = {}
            for i = 1, 50 do futs[i] = conn:async("increment", 1) end
            -- each ran once (their order of execution is the server's: 2.3 may interleave)
            local results = rivet.all(futs)
            table.sort(results)
            for i = 1, 50 do assert.are.equal(5 + i, results[i]) end
            assert.are.equal(55, conn:getCount())
            -- every event of the 50 calls arrives (the connection was open before them)
            local deadline = os.time() + 10
            while #events < 50 and os.time() < deadline do conn:getCount() end
            conn:dispose()
            return events
          end)
          assert.are.equal(50, #got)
          table.sort(got)
          for i = 1, 50 do assert.are.equal(5 + i, got[i]) end
        end)
      end

      it("takes the descriptor once at attach, then asks only timeout() before each wait", function()
        local client = env.client("bare", { timeout = 20 })
        local calls = count_loop_calls(client)
        host.run(client, function(c)
          local conn = c.counter:getOrCreate(env.key("h-once-" .. name)):connect()
          for i = 1, 5 do assert.are.equal(i, conn:increment(1)) end
          conn:dispose()
        end)
        assert.are.equal(1, calls.pollfds)
        assert.is_true(calls.poll > 5, "polls: " .. calls.poll)
        assert.is_true(calls.timeout > 5, "timeout() calls: " .. calls.timeout)
      end)

      it("refuses a loop that hands out anything but one descriptor to read", function()
        local client = env.client("bare")
        count_loop_calls(client, {
          pollfds = function(loop, flat)
            loop:pollfds(flat)
            flat[3], flat[4] = flat[1], "w"
            return 2
          end,
        })
        local e = env.catch(rivet[name], client, name == "luv" and luv or cqueues.new())
        assert.truthy(tostring(e):find("exactly one, for reading", 1, true), tostring(e))
        assert.is_nil(client._host)
        client:dispose()
      end)

      it("a connection's socket, opened right after the look-ups, is watched at once", function()
        -- connect() looks the actor up over HTTP and opens the WebSocket when the answer
        -- comes: inside the work of the poll that got it (its quiet time: nothing
        -- signals), so the set the host sleeps on next must gain the socket by itself; a
        -- fresh client has no WebSocket yet, so a stale set would sleep until a deadline
        local client = env.client("bare", { timeout = 10 })
        local took
        host.run(client, function(c)
          local t0 = now()
          local conn = c.counter:getOrCreate(env.key("h-fresh-" .. name)):connect()
          assert.are.equal(0, conn:getCount())
          took = now() - t0
          conn:dispose()
        end)
        assert.is_true(took < 2, "connect and one call took " .. took .. " s")
      end)

      it("a pending call does not hold up the host's other work", function()
        local client = env.client("bare", { timeout = 20 })
        local order = {}
        host.run(client, function(c, host_sleep)
          local slow = c.slow:getOrCreate(env.key("h-slow"))
          slow:sleep(1) -- created and warm
          if name == "luv" then
            local n = 0
            local t = luv.new_timer()
            t:start(20, 20, function()
              n = n + 1
              order[#order + 1] = "tick"
              if n == 5 then t:close() end
            end)
          else
            cqueues.running():wrap(function()
              for _ = 1, 5 do
                cqueues.sleep(0.02)
                order[#order + 1] = "tick"
              end
            end)
          end
          order[#order + 1] = "call"
          slow:sleep(500)
          order[#order + 1] = "returned"
          host_sleep(0.01)
        end)
        assert.are.same({ "call", "tick", "tick", "tick", "tick", "tick", "returned" }, order)
      end)

      it("reconnects after a cut and goes on", function()
        local px = proxy.start(env.endpoint)
        local client = rivet.client(px.endpoint, { encoding = "bare", timeout = 20 })
        local opens, values = 0, {}
        host.run(client, function(c, host_sleep)
          local conn = c.counter:getOrCreate(env.key("h-cut")):connect()
          conn:onOpen(function() opens = opens + 1 end)
          values[1] = conn:increment(1)
          px:cut()
          for _ = 1, 300 do
            if opens >= 2 then break end
            host_sleep(0.05)
          end
          values[2] = conn:increment(1)
          values[3] = conn:getCount()
          conn:dispose()
        end)
        px:stop()
        assert.are.same({ 1, 2, 2 }, values)
        assert.is_true(opens >= 2, "opened again after the cut (" .. opens .. ")")
      end)

      it("work given between polls wakes the host", function()
        local client = env.client("bare", { timeout = 20 })
        local got
        if name == "luv" then
          -- nothing is alive when uv.run starts: the timer's spawn must keep luv going
          rivet.luv(client)
          HOSTS.luv.later(0.05, function()
            client:spawn(function()
              got = client.counter:getOrCreate(env.key("h-wake")):increment(3)
              client:dispose()
            end)
          end)
          luv.run()
        else
          -- the watcher sleeps with no timeout at all; another coroutine's call must end it
          local cq = cqueues.new()
          rivet.cqueues(client, cq)
          cq:wrap(function()
            cqueues.sleep(0.05)
            got = client.counter:getOrCreate(env.key("h-wake")):increment(3)
            client:dispose()
          end)
          assert(cq:loop(WATCHDOG))
        end
        assert.are.equal(3, got)
      end)

      it("an idle hosted client with an open connection wakes only for its timers", function()
        local client = env.client("bare", { timeout = 20 })
        local counts
        host.run(client, function(c, host_sleep)
          local conn = c.counter:getOrCreate(env.key("h-idle")):connect()
          assert.are.equal(1, conn:increment(1))
          host_sleep(0.2)
          -- count the polls the host makes over 2 s
          local sched = c._sched
          local step = sched.step
          local polls = 0
          sched.step = function(s, t)
            polls = polls + 1
            step(s, t)
          end
          host_sleep(2)
          sched.step = step
          counts = { polls = polls }
          conn:dispose()
        end)
        -- libwebsockets wants service once a second; the host's own sleep adds its timer
        assert.is_true(counts.polls <= 8, "polls of an idle client in 2 s: " .. counts.polls)
      end)

      it("never sleeps to coalesce a stream (docs/loop.md): the host does the waiting", function()
        local client = env.client("bare", { timeout = 20 })
        local loop = client._transport
        local naps = loop:naps()
        local got, naps_after = {}, nil
        host.run(client, function(c, host_sleep)
          local conn = c.echo:getOrCreate(env.key("h-stream")):connect()
          conn:on("tick", function(i) got[#got + 1] = i end)
          assert.are.equal(2000, conn:emitMany(2000))
          while #got < 2000 do host_sleep(0.01) end
          conn:dispose()
          naps_after = loop:naps()
        end)
        assert.are.equal(naps, naps_after)
        assert.are.equal(2000, #got)
        for i = 1, 2000 do assert.are.equal(i - 1, got[i]) end
      end)
    end)
  end
end)
