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
local core = require("rivet.core")
local fake = require("spec.support.fake")

local now = core.now

local ITERATIONS = tonumber(os.getenv("RIVET_NETFUZZ_ITERATIONS") or "") or 200
local SEED = tonumber(os.getenv("RIVET_NETFUZZ_SEED") or "") or (os.time() % 1000000)
local BATCH = 25    -- calls in flight at once
local TIMEOUT = 1   -- each call's deadline (s)
local SLACK = 4     -- generous: a call must have ended by TIMEOUT + SLACK
local ENCODINGS = { "bare", "cbor", "json" }

-- One call of kind k on actor id `id`; returns a short description of a value, or
-- raises what the library raised.
local KINDS = {
  action = function(c, id) return c.a:getForId(id):work(1, "x") end,
  resolve = function(c, id) return c.a:getOrCreate(id):resolve() end,
  fetch = function(c, id)
    local res = c.a:getForId(id):fetch("/p", { method = "POST", body = "hi" })
    local _, _, _ = res.status, res.headers, res.body
    local ok, v = pcall(res.json, res)
    if not ok and not rivet.isActorError(v) then error(v, 0) end
    return res.status
  end,
  stream = function(c, id)
    local res = c.a:getForId(id):fetch("/s", { stream = true })
    local n = 0
    while true do
      local piece, err = res:read(TIMEOUT)
      if err then error(err, 0) end
      if piece == nil then break end
      n = n + #piece
    end
    return n
  end,
  connection = function(c, id)
    local conn = c.a:getForId(id):connect()
    conn:onError(function() end)
    local ok, v = pcall(conn.work, conn, 1)
    conn:dispose()
    if not ok then error(v, 0) end
    return v
  end,
  websocket = function(c, id)
    local ws = c.a:getForId(id):websocket("/w")
    local got = 0
    while true do
      local data, err = ws:receive(TIMEOUT)
      if data == nil then
        ws:close()
        if err == nil or rivet.isActorError(err) then return got end
        error(err, 0)
      end
      got = got + 1
    end
  end,
}
local KIND_NAMES = { "action", "resolve", "fetch", "stream", "connection", "websocket" }

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
    local outcomes, bad, late = {}, {}, {}
    local done = 0
    local pending, hung = {}, {}
    local samples = {} -- one message per outcome (RIVET_NETFUZZ_VERBOSE=1 prints them)
    local sanity_retries = 0
    local i = 0
    while i < ITERATIONS do
      local s = math.floor(i / BATCH) % 2
      local srv = servers[s]
      local enc = ENCODINGS[math.floor(i / (2 * BATCH)) % 3 + 1]
      local c = rivet.client(srv.endpoint, { encoding = enc, timeout = TIMEOUT })
      local n = math.min(BATCH, ITERATIONS - i)
      for j = 1, n do
        local k = KIND_NAMES[(i + j) % #KIND_NAMES + 1]
        local id = "fz-" .. (i + j)
        local call = ("%s %s (%s, server %d)"):format(k, id, enc, s)
        pending[call] = true
        c:spawn(function()
          local t0 = now()
          local ok, v = pcall(KINDS[k], c, id)
          local dt = now() - t0
          local key
          if ok then
            key = "ok"
          elseif rivet.isActorError(v) then
            -- the client's own codes one by one; what the server named, as one class
            key = (v.group == "client" or v.group == "http") and (v.group .. "." .. v.code) or "server-sent code"
          else
            key = "plain Lua error"
            bad[#bad + 1] = ("%s %s (%s, server %d): %s"):format(k, id, enc, s, tostring(v))
          end
          outcomes[key] = (outcomes[key] or 0) + 1
          if not ok and not samples[key] then samples[key] = k .. ": " .. tostring(v) end
          if dt > TIMEOUT + SLACK then late[#late + 1] = ("%s %s took %.1f s"):format(k, id, dt) end
          done = done + 1
          pending[call] = nil
        end)
      end
      -- every call has its deadline: the batch must end; what has not is reported
      local limit = now() + TIMEOUT + SLACK + 5
      while next(pending) and now() < limit do c:poll(0.05) end
      for call in pairs(pending) do hung[#hung + 1] = call end
      if #hung > 0 then break end
      -- still usable after the batch: a proper server answer gets through (a pooled
      -- connection that the fuzz server left with junk after a complete answer may
      -- fail one call, typed, before libcurl drops it: hence up to three tries)
      local sane, errs = false, {}
      for try = 1, 3 do
        local ok, v = pcall(function() return c.a:getForId("sane-" .. i .. "-" .. try):work() end)
        if ok and v == 1 then sane = true break end
        assert.is_true(rivet.isActorError(v), tostring(v))
        errs[#errs + 1] = tostring(v)
      end
      assert.is_true(sane, "the client no longer works: " .. table.concat(errs, "; "))
      sanity_retries = sanity_retries + #errs
      c:dispose()
      i = i + n
    end
    local keys = {}
    for k, v in pairs(outcomes) do keys[#keys + 1] = k .. " " .. v end
    table.sort(keys)
    print("# network fuzz seed " .. SEED .. ": " .. done .. " calls; " .. table.concat(keys, ", ")
      .. "; sanity calls that needed a second try: " .. sanity_retries)
    if os.getenv("RIVET_NETFUZZ_VERBOSE") == "1" then
      for _, k in ipairs(keys) do
        local code = k:match("^(.-) %d+$")
        if samples[code] then print("#   " .. code .. ": " .. samples[code]:gsub("[%c]", "?"):sub(1, 200)) end
      end
    end
    assert.are.same({}, hung, "calls that never ended")
    assert.are.equal(ITERATIONS, done)
    assert.are.same({}, bad)
    assert.are.same({}, late)
  end)
end)
