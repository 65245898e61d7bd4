-- Coalescing a stream (csrc/wait.c, docs/loop.md "Streams of messages"): while WebSocket
-- messages stream in, a waiting poll reads at most once per 50 µs and sleeps the rest
-- with no socket watched. What a user can rely on: nothing is lost or reordered, calls
-- made meanwhile are answered, and poll(0) (a game loop's tick) never sleeps (a hosted
-- loop neither: spec/hosted_spec.lua, where luv is loaded once). How much it saves is a
-- bench figure (bench/README.md), not a test.
local env = require("spec.support.env")

local BURST = 2000

-- A connection subscribed to "tick" whose events land in got.
local function subscribed(client, prefix, got)
  local conn = client.echo:getOrCreate(env.key(prefix)):connect()
  conn:on("tick", function(i) got[#got + 1] = i end)
  return conn
end

local function assert_in_order(got, n)
  assert.are.equal(n, #got)
  for i = 1, n do
    if got[i] ~= i - 1 then error("event " .. i .. " is " .. tostring(got[i]) .. ", expected " .. (i - 1)) end
  end
end

describe("coalescing a stream (" .. env.server .. ")", function()
  for _, enc in ipairs(env.encodings) do
    describe(enc, function()
      local client
      before_each(function() client = env.client(enc) end)
      after_each(function() client:dispose() end)

      it("a burst read by waiting polls arrives whole and in order, with calls answered meanwhile", function()
        local got = {}
        local conn = subscribed(client, "co-wait", got)
        local burst = conn:async("emitMany", BURST)
        local echoes = {}
        for i = 1, 20 do echoes[i] = conn:async("echo", i) end
        env.wait_for(client, function() return #got >= BURST and burst.done end, 20, "the burst")
        assert.are.equal(BURST, burst:await())
        for i = 1, 20 do assert.are.equal(i, echoes[i]:await()) end
        assert_in_order(got, BURST)
        conn:dispose()
      end)

      it("poll(0) never sleeps to coalesce, however fast messages come", function()
        local got = {}
        local conn = subscribed(client, "co-tick", got)
        conn:echo(0) -- the subscription is on the server before the burst
        local loop = client._transport
        local naps = loop:naps()
        local burst = conn:async("emitMany", BURST)
        local now = require("rivet.core").now
        local deadline = now() + 20
        while #got < BURST or not burst.done do
          assert(now() < deadline, "timed out waiting for the burst")
          client:poll(0)
        end
        assert.are.equal(naps, loop:naps())
        assert_in_order(got, BURST)
        conn:dispose()
      end)
    end)
  end
end)
