-- Reconnection through a TCP proxy that can cut live connections and refuse new ones
-- (spec/support/proxy.mjs), against the real server behind it.
local rivet = require("rivet")
local core = require("rivet.core")
local env = require("spec.support.env")
local proxy = require("spec.support.proxy")

local now = core.now

local wait_for = env.wait_for

-- Records status changes with their times.
local function track(conn)
  local log = { opens = 0 }
  conn:onStatusChange(function(s) log[#log + 1] = { s = s, t = now() } end)
  conn:onOpen(function() log.opens = log.opens + 1 end)
  return log
end

local function count(log, status)
  local n = 0
  for _, e in ipairs(log) do if e.s == status then n = n + 1 end end
  return n
end

describe("reconnection (" .. env.server .. ")", function()
  local px
  -- a client that reaches the server through the proxy
  local function pclient(enc, timeout)
    return rivet.client(px.endpoint, { encoding = enc, timeout = timeout })
  end
  setup(function() px = proxy.start(env.endpoint) end)
  teardown(function() px:stop() end)
  after_each(function() px:resume() end)

  for _, enc in ipairs(env.encodings) do
    describe(enc, function()
      it("a cut during steady traffic: in-flight calls fail with connection_lost, "
        .. "then it recovers and resubscribes", function()
        local client = pclient(enc, 10)
        local h = client.counter:getOrCreate(env.key("r-cut"))
        local conn = h:connect()
        local log = track(conn)
        local events = {}
        conn:on("newCount", function(n) events[#events + 1] = n end)
        assert.are.equal(1, conn:increment(1))
        local id1 = conn.connectionId
        -- steady traffic: calls in flight when the connection drops
        local inflight = {}
        for i = 1, 5 do inflight[i] = conn:async("increment", 1) end
        local t_cut = now()
        px:cut()
        local lost, okn = 0, 0
        for i = 1, 5 do
          local ok, err = inflight[i]:result()
          if ok then
            okn = okn + 1
          else
            assert.is_true(rivet.isActorError(err, "client.connection_lost"), tostring(err))
            lost = lost + 1
          end
        end
        assert.are.equal(5, lost + okn)
        assert.is_true(now() - t_cut < 10) -- within their deadline, never left hanging
        -- recovery: a new connection, subscriptions re-sent (events flow again)
        wait_for(client, function() return log.opens >= 2 and conn.status == "connected" end, 10, "the reconnect")
        assert.are_not.equal(id1, conn.connectionId)
        local before = #events
        local v = conn:increment(1)
        client:poll(0.05)
        assert.are.equal(v, events[#events])
        assert.is_true(#events > before)
        -- a lost call was never re-sent: each of the 7 calls ran at most once. A lost call
        -- may still have run (its frame left before the cut, its answer did not), so the
        -- count is between 1 + the calls that got through + 1, and 7.
        local ran = conn:getCount()
        assert.is_true(ran >= okn + 2 and ran <= 7, "count " .. ran .. " with " .. okn .. " answered")
        client:dispose()
      end)

      it("calls made during an outage are queued and run exactly once after it", function()
        local client = pclient(enc, 20)
        local h = client.counter:getOrCreate(env.key("r-queue"))
        local conn = h:connect()
        local log = track(conn)
        assert.are.equal(1, conn:increment(1))
        px:outage()
        wait_for(client, function() return conn.status ~= "connected" end, 5, "the drop")
        local fs = {}
        for i = 1, 5 do fs[i] = conn:async("increment", 10) end
        client:sleep(1.5) -- a few refused attempts
        assert.is_true(px:stats().refused >= 1)
        for i = 1, 5 do assert.is_false(fs[i].done) end
        px:resume()
        local res = rivet.all(fs)
        table.sort(res)
        assert.are.same({ 11, 21, 31, 41, 51 }, { res[1], res[2], res[3], res[4], res[5] })
        assert.are.equal(51, conn:getCount())
        assert.are.equal(51, h:getCount()) -- and the actor agrees, over HTTP
        assert.is_true(log.opens >= 2)
        client:dispose()
      end)

      it("a queued call still obeys its deadline during an outage", function()
        local client = pclient(enc, 10)
        local h = client.counter:getOrCreate(env.key("r-qdl"), { timeout = 0.5 })
        local conn = h:connect()
        wait_for(client, function() return conn.status == "connected" end, 10, "the connection")
        px:outage()
        wait_for(client, function() return conn.status ~= "connected" end, 5, "the drop")
        local t0 = now()
        local err = env.catch(conn.increment, conn, 1)
        assert.is_true(rivet.isActorError(err, "client.timeout"), tostring(err))
        assert.is_true(now() - t0 < 2)
        px:resume()
        wait_for(client, function() return conn.status == "connected" end, 10, "the reconnect")
        assert.are.equal(0, conn:getCount()) -- the timed-out call was never sent
        client:dispose()
      end)
    end)
  end

  it("10 s of refused connections: backoff with jitter, then recovery", function()
    local client = pclient("bare", 60)
    local h = client.counter:getOrCreate(env.key("r-long"))
    local conn = h:connect()
    local log = track(conn)
    local events = {}
    conn:on("newCount", function(n) events[#events + 1] = n end)
    assert.are.equal(1, conn:increment(1))
    local refused0 = px:stats().refused
    local t_out = now()
    px:outage()
    wait_for(client, function() return conn.status ~= "connected" end, 5, "the drop")
    local queued = conn:async("increment", 1)
    client:sleep(10 - (now() - t_out))
    local attempts = px:stats().refused - refused0
    px:resume()
    local t_resume = now()
    assert.are.equal(2, queued:await())
    local t_back = now()
    -- every wait between attempts stays under its cap (250 ms doubling) and the number
    -- of attempts stays small: no tight loop; ≥ 4 attempts because the first waits are short
    local starts = {}
    for _, e in ipairs(log) do
      if e.s == "connecting" and e.t >= t_out then starts[#starts + 1] = e.t end
    end
    local prev = t_out
    for i, t in ipairs(starts) do
      local cap = math.min(0.25 * 2 ^ (i - 1), 30)
      assert.is_true(t - prev <= cap + 0.5, string.format("attempt %d waited %.2f s (cap %.2f s)", i, t - prev, cap))
      prev = t
    end
    assert.is_true(attempts >= 4 and attempts <= 20, "attempts at the proxy: " .. attempts)
    -- recovery takes at most the cap of the next wait (plus the connect itself)
    local cap_next = math.min(0.25 * 2 ^ #starts, 30)
    assert.is_true(t_back - t_resume <= cap_next + 3,
      string.format("recovered %.2f s after the outage ended (cap %.2f s)", t_back - t_resume, cap_next))
    client:poll(0.05)
    assert.are.equal(2, events[#events]) -- resubscribed
    print(string.format("\n# %s: %d refused attempts in 10 s, waits %s s; back %.2f s after the outage ended",
      env.server, attempts, (function()
        local w, p = {}, t_out
        for i, t in ipairs(starts) do w[i] = string.format("%.2f", t - p); p = t end
        return table.concat(w, " ")
      end)(), t_back - t_resume))
    client:dispose()
  end)

  it("dispose during a reconnect wait stops all retries", function()
    local client = pclient("bare", 10)
    local conn = client.counter:getOrCreate(env.key("r-disp")):connect()
    local log = track(conn)
    conn:increment(1)
    px:outage()
    wait_for(client, function() return conn.status ~= "connected" end, 5, "the drop")
    local queued = conn:async("increment", 1)
    wait_for(client, function() return count(log, "connecting") >= 3 and conn.status == "disconnected" end, 10,
      "three attempts")
    conn:dispose()
    local ok, err = queued:result()
    assert.is_false(ok)
    assert.is_true(rivet.isActorError(err, "client.disposed"), tostring(err))
    local seen = px:stats().accepted
    client:sleep(4) -- longer than the next backoff cap (2 s)
    assert.are.equal(seen, px:stats().accepted)
    assert.are.equal("disposed", conn.status)
    client:dispose()
  end)

  it("the first attempt failing (server unreachable) is retried, not fatal", function()
    local client = pclient("bare", 20)
    client:server() -- the server profile is known; the actor is not resolved yet
    px:refuse()
    local conn = client.counter:getOrCreate(env.key("r-first")):connect()
    local log = track(conn)
    local f = conn:async("increment", 3)
    wait_for(client, function() return count(log, "disconnected") >= 2 end, 10, "two failed attempts")
    px:resume()
    assert.are.equal(3, f:await())
    client:dispose()
  end)

  it("200 connect/dispose cycles leave the Lua heap and the RSS flat", function()
    local client = pclient("bare", 20)
    local h = client.echo:getOrCreate(env.key("r-mem"))
    h:echo(1)
    local function cycle()
      local conn = h:connect()
      conn:on("tick", function() end)
      assert.are.equal(1, conn:echo(1))
      conn:dispose()
    end
    local function rss_kb()
      local f = io.open("/proc/self/status")
      local s = f:read("a")
      f:close()
      return tonumber(s:match("VmRSS:%s*(%d+)"))
    end
    local function settle()
      client:poll(0.05)
      client:poll(0.05)
      collectgarbage()
      collectgarbage()
    end
    for _ = 1, 50 do cycle() end -- warm up: caches, connection pools, allocator arenas
    settle()
    local heap0, rss0 = collectgarbage("count"), rss_kb()
    for _ = 1, 200 do cycle() end
    settle()
    local heap1, rss1 = collectgarbage("count"), rss_kb()
    print(string.format("\n# %s: 200 cycles: Lua heap %.0f -> %.0f KB (%+.0f), RSS %d -> %d KB (%+d)",
      env.server, heap0, heap1, heap1 - heap0, rss0, rss1, rss1 - rss0))
    -- one leaked connection costs ≥ 4 KB of Lua heap (conn table, state machine, listener,
    -- futures, closures): a leak per cycle would add ≥ 800 KB; 256 KB allows for noise
    assert.is_true(heap1 - heap0 < 256, string.format("Lua heap grew %.0f KB", heap1 - heap0))
    -- RSS: a leaked socket context/buffers per cycle (≥ 16 KB) would add ≥ 3 MB
    assert.is_true(rss1 - rss0 < 3072, string.format("RSS grew %d KB", rss1 - rss0))
    client:dispose()
  end)
end)
