-- Network-side fuzzing (docs/reliability.md): spec/fake/fuzz_server.mjs answers with
-- random but framed HTTP responses and WebSocket messages drawn from a seed. Every call
-- must end by its deadline with a value or a rivet.ActorError (never a plain Lua error
-- from inside the library, never a crash), and the client must stay usable.
--
--   RIVET_NETFUZZ_ITERATIONS   calls per pass (default 200, split over two servers:
--                              an even seed speaks the 2.3 dialect, an odd one 2.0)
--   RIVET_NETFUZZ_SEED         the seed (default: from the clock; printed, so a failing
--                              run can be repeated)
local rivet = require("rivet")
local fake = require("spec.support.fake")
local netfuzz = require("spec.support.netfuzz")

local ITERATIONS = tonumber(os.getenv("RIVET_NETFUZZ_ITERATIONS") or "") or 200
local SEED = tonumber(os.getenv("RIVET_NETFUZZ_SEED") or "") or (os.time() % 1000000)

describe("network-side fuzzing (seed " .. SEED .. ", " .. ITERATIONS .. " calls)", function()
  local servers = {}
  setup(function()
    print("# network fuzz: RIVET_NETFUZZ_SEED=" .. SEED .. " RIVET_NETFUZZ_ITERATIONS=" .. ITERATIONS)
    for s = 0, 1 do servers[s] = fake.start("spec/fake/fuzz_server.mjs " .. (SEED * 2 + s)) end
  end)
  teardown(function()
    for s = 0, 1 do if servers[s] then servers[s].stop() end end
  end)

  it("every call ends by its deadline with a value or an ActorError; the client stays usable", function()
    local total = netfuzz.total()
    local sanity_retries = 0
    local i = 0
    while i < ITERATIONS do
      local s, enc = netfuzz.plan(i)
      local c = rivet.client(servers[s].endpoint, { encoding = enc, timeout = netfuzz.TIMEOUT })
      local n = math.min(netfuzz.BATCH, ITERATIONS - i)
      local rec = netfuzz.batch(c, i, n, enc .. ", server " .. s)
      netfuzz.merge(total, rec)
      if #rec.hung > 0 then break end
      -- still usable after the batch
      local sane, errs, plain = netfuzz.sane(c, i)
      assert.is_falsy(plain, "a sanity call raised " .. tostring(errs[#errs]))
      assert.is_true(sane, "the client no longer works: " .. table.concat(errs, "; "))
      sanity_retries = sanity_retries + #errs
      c:dispose()
      i = i + n
    end
    netfuzz.report("network fuzz seed " .. SEED, total, "; sanity calls that needed a second try: " .. sanity_retries,
      os.getenv("RIVET_NETFUZZ_VERBOSE") == "1")
    assert.are.same({}, total.hung, "calls that never ended")
    assert.are.equal(ITERATIONS, total.done)
    assert.are.same({}, total.bad)
    assert.are.same({}, total.late)
  end)
end)
