-- Network-side fuzzing of the cosocket transport (docs/reliability.md): the calls of
-- spec/network_fuzz_spec.lua (spec/support/netfuzz.lua), made inside a private nginx
-- (spec/nginx/fake.conf, handler spec/nginx/netfuzz.lua: one batch per request) against
-- spec/fake/fuzz_server.mjs, whose random but framed answers (status lines, headers,
-- chunked and Content-Length bodies, early closes, WebSocket frames) go through
-- lua/rivet/resty/http.lua, wsframe.lua and transport.lua. Every call must end by its
-- deadline with a value or a rivet.ActorError, the worker must never die (its pid stays
-- the same, error.log has no worker death and no Lua error from a light thread or
-- timer), and a proper call must get through after every batch.
--
--   RIVET_NETFUZZ_ITERATIONS   calls per pass (default 200)
--   RIVET_NETFUZZ_SEED         the seed (default: from the clock; printed); the same seed
--                              draws the same answers as spec/network_fuzz_spec.lua's
--   RIVET_NETFUZZ_VERBOSE=1    one message per outcome
if rawget(_G, "jit") then
  -- nginx runs its own LuaJIT whichever interpreter runs busted: the lua5.4 passes run this
  describe("network-side fuzzing inside nginx", function()
    pending("skipped on LuaJIT: nginx embeds its own LuaJIT, so the lua5.4 pass runs this same nginx spec")
  end)
  return
end

local fake = require("spec.support.fake")
local netfuzz = require("spec.support.netfuzz")
local nginx = require("spec.support.nginx")

local ITERATIONS = tonumber(os.getenv("RIVET_NETFUZZ_ITERATIONS") or "") or 200
local SEED = tonumber(os.getenv("RIVET_NETFUZZ_SEED") or "") or (os.time() % 1000000)

-- error.log lines of a Lua error that no call returned: a light thread or timer of the
-- library that raised (nginx logs those itself)
local function lua_errors(log)
  local out = {}
  for line in log:gmatch("[^\n]+") do
    if line:find("runtime error", 1, true) or line:find("thread aborted", 1, true)
        or line:find("lua atpanic", 1, true) then
      out[#out + 1] = line
    end
  end
  return #out > 0 and table.concat(out, "\n") or nil
end

describe("network-side fuzzing inside nginx (seed " .. SEED .. ", " .. ITERATIONS .. " calls)", function()
  local servers, srv = {}, nil
  setup(function()
    assert(io.open(nginx.root .. "/build/luajit/rivet/core.so"),
      "build/luajit/rivet/core.so is missing: run `make LUA=luajit`")
    print("# network fuzz inside nginx: RIVET_NETFUZZ_SEED=" .. SEED .. " RIVET_NETFUZZ_ITERATIONS=" .. ITERATIONS)
    for s = 0, 1 do servers[s] = fake.start("spec/fake/fuzz_server.mjs " .. (SEED * 2 + s)) end
    srv = nginx.start({ template = "spec/nginx/fake.conf", ready = "/ping", memory_mb = 2048 })
  end)
  teardown(function()
    if srv then srv:stop() end
    for s = 0, 1 do if servers[s] then servers[s].stop() end end
  end)

  it("every call ends by its deadline with a value or an ActorError; the worker never dies and stays usable", function()
    srv:wrap(function()
      local total = netfuzz.total()
      local sanity_retries, pid = 0, nil
      local i = 0
      while i < ITERATIONS do
        local s, enc = netfuzz.plan(i)
        local n = math.min(netfuzz.BATCH, ITERATIONS - i)
        local rec = srv:call("/netfuzz/batch", { endpoint = servers[s].endpoint, enc = enc, first = i, n = n,
          label = enc .. ", server " .. s }, { timeout = 60 })
        netfuzz.merge(total, rec)
        pid = pid or rec.pid
        assert.are.equal(pid, rec.pid, "another worker answered calls " .. (i + 1) .. ".." .. (i + n) .. ": "
          .. tostring(srv:worker_deaths()))
        if #rec.hung > 0 then break end
        assert.is_falsy(rec.plain, "a sanity call raised " .. tostring(rec.sanity_errors[#rec.sanity_errors]))
        assert.is_true(rec.sane, "the client no longer works: " .. table.concat(rec.sanity_errors, "; "))
        sanity_retries = sanity_retries + #rec.sanity_errors
        i = i + n
      end
      netfuzz.report("network fuzz inside nginx, seed " .. SEED, total,
        "; sanity calls that needed a second try: " .. sanity_retries, os.getenv("RIVET_NETFUZZ_VERBOSE") == "1")
      assert.are.same({}, total.hung, "calls that never ended")
      assert.are.equal(ITERATIONS, total.done)
      assert.are.same({}, total.bad)
      assert.are.same({}, total.late)
      assert.is_nil(srv:worker_deaths())
      assert.is_nil(lua_errors(srv:error_log()))
    end)()
  end)
end)
