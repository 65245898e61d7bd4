-- The connection state machine (core.conn_new), sans I/O: server frames are built by hand
-- (protocol.md §9.4-9.6), fed with explicit times, and what comes out is drained.
local core = require("rivet.core")
local ints = require("spec.support.ints") -- integers on Lua 5.4 and LuaJIT alike

local NULL = core.null
local floor = math.floor

---------------------------------------------------------------------------------------
-- Value writers for hand-built server frames (deliberately independent of the codecs).

local ARRAY = setmetatable({}, { __mode = "k" })
local function arr(t) ARRAY[t] = true return t end
local U64 = {}
local function u64(n) return setmetatable({ n }, U64) end -- an id as the servers write it

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

-- n >= 0 (below 2^53) as `bytes` big-endian bytes
local function be(n, bytes)
  local t = {}
  for i = bytes, 1, -1 do
    t[i] = string.char(n % 256)
    n = floor(n / 256)
  end
  return table.concat(t)
end

-- a double as 8 big-endian IEEE 754 bytes
local pack_double
if string.pack then
  pack_double = function(v) return string.pack(">d", v) end
else -- LuaJIT: the bytes of a C double (x86-64 and ARM hosts are little-endian)
  local ffi = require("ffi")
  assert(ffi.abi("le"), "a little-endian host")
  pack_double = function(v) return ffi.string(ffi.new("double[1]", v), 8):reverse() end
end

local function cbor_head(major, n)
  if n < 24 then return string.char(major * 32 + n) end
  if n < 0x100 then return string.char(major * 32 + 24, n) end
  if n < 0x10000 then return string.char(major * 32 + 25) .. be(n, 2) end
  if n < 0x100000000 then return string.char(major * 32 + 26) .. be(n, 4) end
  return string.char(major * 32 + 27) .. be(n, 8)
end

local function cbor(v)
  if v == nil or v == NULL then return "\246" end
  if v == true then return "\245" end
  if v == false then return "\244" end
  if type(v) == "string" then return cbor_head(3, #v) .. v end
  if ints.type(v) == "integer" then
    if v >= 0 then return cbor_head(0, v) end
    return cbor_head(1, -1 - v)
  end
  if type(v) == "number" then return "\251" .. pack_double(v) end
  if getmetatable(v) == U64 then return "\27" .. be(v[1], 8) end
  local parts = {}
  if ARRAY[v] or #v > 0 then
    for i = 1, #v do parts[i] = cbor(v[i]) end
    return cbor_head(4, #v) .. table.concat(parts)
  end
  local ks = sorted_keys(v)
  for i, k in ipairs(ks) do parts[i] = cbor(k) .. cbor(v[k]) end
  return cbor_head(5, #ks) .. table.concat(parts)
end

local function json(v)
  if v == nil or v == NULL then return "null" end
  if type(v) == "boolean" then return tostring(v) end
  if type(v) == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  end
  if ints.type(v) == "integer" then return string.format("%d", v) end
  if type(v) == "number" then return string.format("%.17g", v) end
  if getmetatable(v) == U64 then return '["$BigInt","' .. v[1] .. '"]' end
  local parts = {}
  if ARRAY[v] or #v > 0 then
    for i = 1, #v do parts[i] = json(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  for i, k in ipairs(sorted_keys(v)) do parts[i] = json(k) .. ":" .. json(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function varint(n)
  local out = {}
  repeat
    local b = n % 128
    n = (n - b) / 128
    out[#out + 1] = string.char(n > 0 and (b + 128) or b)
  until n == 0
  return table.concat(out)
end
local function str(s) return varint(#s) .. s end
local function opt(s) if s then return "\1" .. s end return "\0" end

--- Server frames for one encoding and server line: init, response, event, error.
local function server(enc, line)
  local S = {}
  if enc == "bare" then
    local ver = line == "2.0" and "\2\0" or "\4\0"
    function S.init(a, c) return ver .. "\0" .. str(a) .. str(c) end
    function S.response(id, out) return ver .. "\2" .. varint(id) .. str(cbor(out)) end
    function S.event(name, args) return ver .. "\3" .. str(name) .. str(cbor(arr(args))) end
    function S.error(e)
      local f = ver .. "\1" .. str(e.group) .. str(e.code) .. str(e.message or "")
        .. opt(e.metadata ~= nil and str(cbor(e.metadata)) or nil)
        .. opt(e.actionId and varint(e.actionId) or nil)
      if line ~= "2.0" then
        local a = e.actor
        f = f .. opt(a and (str(a.actorId) .. varint(a.generation) .. opt(a.key and str(a.key) or nil)) or nil)
      end
      return f
    end
  else
    local write = enc == "json" and json or cbor
    local function wrap(tag, val) return write({ body = { tag = tag, val = val } }) end
    function S.init(a, c) return wrap("Init", { actorId = a, connectionId = c }) end
    function S.response(id, out) return wrap("ActionResponse", { id = u64(id), output = out }) end
    function S.event(name, args) return wrap("Event", { name = name, args = arr(args) }) end
    function S.error(e)
      return wrap("Error", {
        group = e.group, code = e.code, message = e.message or "", metadata = e.metadata,
        actionId = e.actionId and u64(e.actionId) or NULL, actor = e.actor,
      })
    end
  end
  return S
end

---------------------------------------------------------------------------------------
-- Reading what the client sends.

local function read_varint(s, pos)
  local n, shift = 0, 0
  repeat
    local b = s:byte(pos)
    n = n + floor((b % 128) * 2 ^ shift) -- floor: an integer on 5.4
    shift, pos = shift + 7, pos + 1
  until b < 0x80
  return n, pos
end

local function read_str(s, pos)
  local n
  n, pos = read_varint(s, pos)
  return s:sub(pos, pos + n - 1), pos + n
end

--- Decodes a ToServer frame into {tag, id, name, args, eventName, subscribe}.
local function parse_sent(enc, tagged, data)
  if enc == "bare" then
    local tag, pos = read_varint(data, 3)
    if tag == 0 then
      local id, name, args
      id, pos = read_varint(data, pos)
      name, pos = read_str(data, pos)
      args = read_str(data, pos)
      return { tag = "ActionRequest", id = id, name = name, args = core.cbor_decode(args, tagged) }
    end
    local name
    name, pos = read_str(data, pos)
    return { tag = "SubscriptionRequest", eventName = name, subscribe = data:byte(pos) == 1 }
  end
  local t = enc == "json" and core.json_decode(data) or core.cbor_decode(data, tagged)
  local v = t.body.val
  return { tag = t.body.tag, id = v.id, name = v.name, args = v.args, eventName = v.eventName, subscribe = v.subscribe }
end

---------------------------------------------------------------------------------------

local ErrorMT = { __name = "test.ActorError" }

-- The state machine's outbox is flat (five slots per item: kind, then values); as
-- tables, the items read better in assertions.
local ITEM_FIELDS = {
  status = { "status" }, send = { "data", "binary" }, close = { "code", "reason" }, error = { "err" },
  result = { "fut", "ok", "value", "id" }, event = { "name", "args" }, open = { "actorId", "connectionId" },
}

local function items(flat, n)
  local r = {}
  for i = 1, n do
    local j = (i - 1) * 5 + 1
    local kind = core.conn_items[flat[j]]
    assert(kind, "bad item kind at slot " .. j)
    local it = { kind = kind }
    for f, name in ipairs(ITEM_FIELDS[kind]) do it[name] = flat[j + f] end
    if kind == "result" then
      if it.fut == false then it.fut = nil end
      if not it.ok then it.err, it.value = it.value, nil end
    end
    r[i] = it
  end
  return r
end

local function drain(sm)
  local empty = {}
  local n, _, out = sm:drain(empty)
  if n == 0 then
    assert.is_nil(out)
    return {}
  end
  assert.are_not.equal(empty, out)
  assert.is_true(#out <= n * 5)
  return items(out, n)
end

local function of_kind(list, kind)
  local r = {}
  for _, it in ipairs(list) do if it.kind == kind then r[#r + 1] = it end end
  return r
end

local function results_by_id(list)
  local r = {}
  for _, it in ipairs(of_kind(list, "result")) do
    assert.is_nil(r[it.id], "two results for id " .. it.id)
    r[it.id] = it
  end
  return r
end

local configs = {
  { enc = "bare", line = "2.3" },
  { enc = "cbor", line = "2.3" },
  { enc = "json", line = "2.3" },
  { enc = "bare", line = "2.0" },
  { enc = "cbor", line = "2.0" },
  { enc = "json", line = "2.0" },
}

for _, cfg in ipairs(configs) do
  local enc, line = cfg.enc, cfg.line
  local tagged = enc == "json" or line == "2.3"
  local S = server(enc, line)

  local function new(extra)
    local o = { encoding = enc, line = line, seed = 42, error_mt = ErrorMT }
    for k, v in pairs(extra or {}) do o[k] = v end
    return core.conn_new(o)
  end

  local function sends(list)
    local r = {}
    for _, it in ipairs(of_kind(list, "send")) do
      assert.are.equal(enc ~= "json", it.binary)
      r[#r + 1] = parse_sent(enc, tagged, it.data)
    end
    return r
  end

  --- A machine that is connected (Init fed) and drained.
  local function connected(extra)
    local sm = new(extra)
    sm:start(0)
    sm:feed(S.init("actor1", "conn1"), 0)
    drain(sm)
    return sm
  end

  describe("conn_sm (" .. enc .. ", " .. line .. ")", function()
    it("starts idle and reports the status changes of an attempt", function()
      local sm = new()
      assert.are.equal("idle", sm:status())
      assert.is_true(sm:start(0))
      assert.is_false(sm:start(0))
      sm:feed(S.init("actor1", "conn1"), 0.1)
      local out = drain(sm)
      assert.are.same({ kind = "status", status = "connecting" }, out[1])
      assert.are.same({ kind = "status", status = "connected" }, out[2])
      assert.are.same({ kind = "open", actorId = "actor1", connectionId = "conn1" }, out[3])
      assert.are.equal("actor1", sm:actor_id())
      assert.are.equal("conn1", sm:connection_id())
      assert.are.equal(0, sm:drain({}))
    end)

    it("numbers calls from 0 and sends them at once when connected", function()
      local sm = connected()
      assert.are.equal(0, sm:call("a", { 1 }))
      assert.are.equal(1, sm:call("b", {}))
      assert.are.equal(2, sm:call("c"))
      local s = sends(drain(sm))
      assert.are.equal(3, #s)
      for i, name in ipairs({ "a", "b", "c" }) do
        assert.are.equal("ActionRequest", s[i].tag)
        assert.are.equal(i - 1, s[i].id)
        assert.are.equal(name, s[i].name)
      end
      assert.are.same({ 1 }, { require("spec.support.compat").unpack(s[1].args) })
      assert.are.equal(3, sm:pending())
    end)

    it("callv takes the args themselves, nils as null, and returns the frame when connected", function()
      local sm = new()
      assert.are.same({ 0 }, { sm:callv("early", nil, "f0", 1) }) -- not connected: queued
      sm:start(0)
      sm:feed(S.init("actor1", "conn1"), 0)
      assert.are.equal(1, #sends(drain(sm)))
      local id, frame = sm:callv("now", 5, "f1", nil, "x", nil)
      assert.are.equal(1, id)
      local p = parse_sent(enc, tagged, frame)
      assert.are.same({ "ActionRequest", 1, "now", 3 }, { p.tag, p.id, p.name, #p.args })
      assert.are.same({ NULL, "x", NULL }, { p.args[1], p.args[2], p.args[3] })
      frame = select(2, sm:callv("none", nil, nil))
      assert.are.equal(0, #parse_sent(enc, tagged, frame).args)
      assert.has_error(function() sm:callv("bad", nil, nil, function() end) end)
      assert.are.equal(3, sm:pending())
      assert.are.equal(0, #drain(sm))
    end)

    it("a direct feed returns the caller's value and output when nothing else is queued", function()
      local sm = connected()
      sm:call("a", {}, 10, "fut-a")
      sm:call("b", {}, 1, "fut-b")
      drain(sm)
      local fut, out = sm:feed(S.response(0, { x = 1 }), 0.5, true)
      assert.are.equal("fut-a", fut)
      assert.are.equal(1, out.x)
      assert.are.equal(0, #drain(sm))
      assert.are.equal(1, sm:pending())
      -- b's deadline passes first: its timeout is queued, so c's result is queued too
      sm:call("c", {}, 10, "fut-c")
      drain(sm)
      fut = sm:feed(S.response(2, "late-ish"), 2, true)
      assert.is_nil(fut)
      local r = results_by_id(drain(sm))
      assert.are.equal("client.timeout", r[1].err.group .. "." .. r[1].err.code)
      assert.are.equal("fut-c", r[2].fut)
      assert.are.equal("late-ish", r[2].value)
      -- an unknown id is dropped either way
      assert.is_nil(sm:feed(S.response(99, 1), 3, true))
      assert.are.equal(0, #drain(sm))
    end)

    if enc == "bare" then
      -- the reply a sequential connection call waits for: read straight into its call, with
      -- nothing left on the Lua heap (LuaJIT once allocated a closure per decoded output)
      it("a direct feed of a number's reply allocates nothing on the Lua heap", function()
        local sm = connected()
        local next_id = 0
        -- 200 calls and their replies; then the replies fed, summing the outputs
        local function batch()
          local replies = {}
          for i = 1, 200 do
            sm:callv("n", 10, "fut")
            replies[i] = S.response(next_id, i)
            next_id = next_id + 1
          end
          collectgarbage("collect")
          collectgarbage("stop")
          local before, sum = collectgarbage("count"), 0
          for i = 1, 200 do
            local fut, out = sm:feed(replies[i], 1, true)
            if fut == "fut" then sum = sum + out end
          end
          local grown = collectgarbage("count") - before
          collectgarbage("restart")
          return sum, grown
        end
        -- LuaJIT's compiler keeps its traces on the same heap, at moments that depend on
        -- what ran before: the loop runs interpreted there (the allocation this checks
        -- for is made in C either way)
        if jit then jit.off(batch, true) end
        batch() -- the first one also makes what is made once
        local sum, grown = batch()
        assert.are.equal(200 * 201 / 2, sum)
        assert.are.equal(0, grown)
      end)
    end

    it("raises encoding errors of user args before any state changes", function()
      local sm = connected()
      assert.has_error(function() sm:call("bad", { function() end }) end)
      assert.are.equal(0, sm:pending())
      assert.are.equal(0, #drain(sm))
      assert.are.equal(0, sm:call("good", {}))
    end)

    it("sends queued calls exactly once after Init, in order, after the subscriptions", function()
      local sm = new()
      sm:subscribe("ev1")
      sm:subscribe("ev2")
      assert.is_false(sm:subscribe("ev1"))
      assert.are.equal(0, sm:call("first", { 1 }))
      sm:start(0)
      assert.are.equal(1, sm:call("second", { 2 }))
      assert.are.equal(0, #sends(drain(sm)))
      sm:feed(S.init("actor1", "conn1"), 1)
      local out = drain(sm)
      local s = sends(out)
      assert.are.equal(4, #s)
      local subs = {}
      for i = 1, 2 do
        assert.are.equal("SubscriptionRequest", s[i].tag)
        assert.is_true(s[i].subscribe)
        subs[s[i].eventName] = true
      end
      assert.are.same({ ev1 = true, ev2 = true }, subs)
      assert.are.equal("first", s[3].name)
      assert.are.equal(0, s[3].id)
      assert.are.equal("second", s[4].name)
      assert.are.equal(1, s[4].id)
      -- the status and open notifications come before the frames
      assert.are.equal("status", out[1].kind)
      assert.are.equal("open", out[2].kind)

      -- after a drop and a new Init only the subscriptions go out again
      sm:closed(1006, "", 2)
      sm:start(3)
      sm:feed(S.init("actor1", "conn2"), 3)
      s = sends(drain(sm))
      assert.are.equal(2, #s)
      for i = 1, 2 do assert.are.equal("SubscriptionRequest", s[i].tag) end
    end)

    it("sends subscription changes only while connected", function()
      local sm = connected()
      assert.is_true(sm:subscribe("x"))
      local s = sends(drain(sm))
      assert.are.same({ "SubscriptionRequest", "x", true }, { s[1].tag, s[1].eventName, s[1].subscribe })
      assert.is_true(sm:unsubscribe("x"))
      assert.is_false(sm:unsubscribe("x"))
      s = sends(drain(sm))
      assert.are.same({ "SubscriptionRequest", "x", false }, { s[1].tag, s[1].eventName, s[1].subscribe })
      sm:subscribe("y")
      sm:closed(1006, "", 1)
      drain(sm)
      sm:unsubscribe("y")
      sm:subscribe("z")
      assert.are.equal(0, #sends(drain(sm)))
      sm:start(2)
      sm:feed(S.init("a", "c"), 2)
      s = sends(drain(sm))
      assert.are.equal(1, #s)
      assert.are.equal("z", s[1].eventName)
    end)

    it("matches responses out of order", function()
      local sm = connected()
      for i = 0, 2 do sm:call("f", { i }) end
      drain(sm)
      sm:feed(S.response(2, "two"), 1)
      sm:feed(S.response(0, 0), 1)
      sm:feed(S.response(1, { k = "v" }), 1)
      local out = drain(sm)
      assert.are.same({ 2, 0, 1 }, { out[1].id, out[2].id, out[3].id })
      assert.are.equal("two", out[1].value)
      assert.are.equal(0, out[2].value)
      assert.are.equal("v", out[3].value.k)
      for i = 1, 3 do assert.is_true(out[i].ok) end
      assert.are.equal(0, sm:pending())
      -- an unknown id is dropped silently
      sm:feed(S.response(99, 1), 1)
      assert.are.equal(0, #drain(sm))
      assert.are.equal("connected", sm:status())
    end)

    it("treats an Error for action id 0 as a per-action error", function()
      local sm = connected()
      sm:call("a", {})
      sm:call("b", {})
      drain(sm)
      sm:feed(S.error({ group = "user", code = "my_code", message = "bad thing", metadata = { a = 1 },
        actionId = 0 }), 1)
      local out = drain(sm)
      assert.are.equal(1, #out)
      assert.are.equal("result", out[1].kind)
      assert.are.equal(0, out[1].id)
      assert.is_false(out[1].ok)
      local err = out[1].err
      assert.are.equal(ErrorMT, getmetatable(err))
      assert.are.same({ "user", "my_code", "bad thing", 1 }, { err.group, err.code, err.message, err.metadata.a })
      assert.are.equal("connected", sm:status())
      assert.are.equal(1, sm:pending())
      sm:feed(S.response(1, 5), 1)
      out = drain(sm)
      assert.are.same({ 1, true, 5 }, { out[1].id, out[1].ok, out[1].value })
    end)

    if line == "2.3" then
      it("keeps the actor of a 2.3 per-action error", function()
        local sm = connected()
        sm:call("a", {})
        drain(sm)
        sm:feed(S.error({ group = "actor", code = "action_not_found", message = "nope", actionId = 0,
          actor = { actorId = "actor1", generation = 3, key = "k" } }), 1)
        local err = drain(sm)[1].err
        assert.are.equal("action_not_found", err.code)
        assert.are.equal("actor1", err.actor.actorId)
        assert.are.equal(3, err.actor.generation)
        assert.are.equal("k", err.actor.key)
      end)
    end

    it("fails everything in flight on a connection-level Error", function()
      local sm = connected()
      sm:call("a", {})
      sm:call("b", {})
      drain(sm)
      sm:feed(S.error({ group = "rivetkit", code = "internal_error", message = "boom" }), 1)
      local out = drain(sm)
      local r = results_by_id(out)
      for id = 0, 1 do
        assert.is_false(r[id].ok)
        assert.are.equal("rivetkit.internal_error", r[id].err.group .. "." .. r[id].err.code)
      end
      assert.are.equal(1, #of_kind(out, "error"))
      assert.are.equal("boom", of_kind(out, "error")[1].err.message)
      -- a call made before the close arrives waits for the next connection
      local id = sm:call("c", {})
      assert.are.equal(0, #sends(drain(sm)))
      sm:closed(1011, line == "2.3" and "rivetkit.internal_error" or "internal_error", 2)
      out = drain(sm)
      assert.are.equal(0, #of_kind(out, "error"), "notified once, at the Error frame")
      assert.are.equal(0, #of_kind(out, "result"))
      assert.are.equal("disconnected", sm:status())
      sm:start(3)
      sm:feed(S.init("a", "c"), 3)
      local s = sends(drain(sm))
      assert.are.equal(1, #s)
      assert.are.equal(id, s[1].id)
    end)

    it("fails in-flight calls with client.connection_lost on close and never re-sends them", function()
      local sm = connected()
      sm:call("inflight", {})
      drain(sm)
      sm:closed(1006, "", 5)
      local out = drain(sm)
      local r = results_by_id(out)[0]
      assert.is_false(r.ok)
      assert.are.equal("client", r.err.group)
      assert.are.equal("connection_lost", r.err.code)
      assert.truthy(r.err.message:find("1006", 1, true))
      assert.are.equal(1006, r.err.closeCode)
      assert.are.equal(0, #of_kind(out, "error"), "a plain drop is not an error notification")
      assert.are.equal("disconnected", sm:status())
      assert.is_nil(sm:connection_id())
      local q = sm:call("queued", { 7 })
      assert.are.equal(1, sm:pending())
      sm:start(6)
      sm:feed(S.init("actor1", "conn2"), 6)
      local s = sends(drain(sm))
      assert.are.equal(1, #s)
      assert.are.equal(q, s[1].id)
      assert.are.equal("queued", s[1].name)
      sm:feed(S.response(q, "ok"), 7)
      assert.are.equal("ok", results_by_id(drain(sm))[q].value)
      -- a response to the lost call is not expected and dropped if it comes
      sm:feed(S.response(0, "late"), 7)
      assert.are.equal(0, #drain(sm))
    end)

    it("expires queued and in-flight calls with client.timeout and drops late responses", function()
      local sm = new()
      sm:call("q", {}, 5)
      sm:call("never", {})
      assert.are.equal(5, sm:next_wakeup())
      assert.is_false(sm:tick(4.9))
      assert.are.equal(0, #of_kind(drain(sm), "result"))
      sm:tick(5)
      local r = results_by_id(drain(sm))[0]
      assert.are.equal("client.timeout", r.err.group .. "." .. r.err.code)
      assert.truthy(r.err.message:find("q", 1, true))
      assert.is_nil(sm:next_wakeup())
      assert.are.equal(1, sm:pending())

      sm:start(6)
      sm:feed(S.init("a", "c"), 6)
      local s = sends(drain(sm))
      assert.are.equal(1, #s, "the expired call is never sent")
      assert.are.equal(1, s[1].id)
      sm:call("inflight", {}, 10)
      drain(sm)
      assert.are.equal(10, sm:next_wakeup())
      sm:tick(10)
      r = results_by_id(drain(sm))[2]
      assert.are.equal("timeout", r.err.code)
      sm:feed(S.response(2, "late"), 11)
      assert.are.equal(0, #drain(sm))
      assert.are.equal("connected", sm:status())
    end)

    it("fails queued calls whose deadline passed before the Init instead of sending them", function()
      local sm = new()
      sm:call("stale", {}, 1)
      sm:call("fresh", {}, 100)
      sm:start(0)
      drain(sm)
      sm:feed(S.init("a", "c"), 2)
      local out = drain(sm)
      assert.are.equal("timeout", results_by_id(out)[0].err.code)
      local s = sends(out)
      assert.are.equal(1, #s)
      assert.are.equal("fresh", s[1].name)
    end)

    it("backs off with full jitter up to the cap and resets after Init", function()
      local maxima = {}
      for seed = 1, 40 do
        local sm = new({ seed = seed })
        local now = 0
        for n = 0, 10 do
          assert.is_true(sm:start(now))
          sm:closed(nil, nil, now, true)
          assert.are.equal("disconnected", sm:status())
          assert.are.equal(n + 1, sm:attempt())
          local at = sm:next_wakeup()
          local delay = at - now
          local cap = math.min(30, 0.25 * 2 ^ n)
          assert.is_true(delay >= 0 and delay <= cap, ("delay %g outside [0, %g]"):format(delay, cap))
          maxima[n] = math.max(maxima[n] or 0, delay)
          if delay > 0 then assert.is_false(sm:tick(at - delay / 2)) end
          assert.is_true(sm:tick(at))
          now = at
        end
        -- a connection that reaches Init resets the counter
        sm:start(now)
        sm:feed(S.init("a", "c"), now)
        assert.are.equal(0, sm:attempt())
        sm:closed(1006, "", now)
        assert.is_true(sm:next_wakeup() - now <= 0.25)
      end
      -- the delays grow: the largest observed delay at each step approaches its cap
      for n = 0, 10 do
        local cap = math.min(30, 0.25 * 2 ^ n)
        assert.is_true(maxima[n] > cap * 0.7, ("step %d: max %g, cap %g"):format(n, maxima[n], cap))
      end
      assert.is_true(maxima[8] > maxima[2])
    end)

    it("is deterministic for a seed", function()
      local function delays(seed)
        local sm, r = new({ seed = seed }), {}
        for i = 1, 5 do
          sm:start(0)
          sm:closed(1006, "", 0)
          r[i] = sm:next_wakeup()
        end
        return r
      end
      assert.are.same(delays(7), delays(7))
      assert.are_not.same(delays(7), delays(8))
    end)

    if line == "2.3" then
      it("stops on a 2.3 user.forbidden refusal (Error frame, then close 1011)", function()
        local sm = new()
        sm:call("a", {})
        sm:call("b", {}, 50)
        sm:start(0)
        drain(sm)
        sm:feed(S.error({ group = "user", code = "forbidden", message = "forbidden by onBeforeConnect",
          metadata = { reason = "bad token" } }), 0.1)
        sm:closed(1011, "user.forbidden", 0.2)
        local out = drain(sm)
        assert.are.equal("idle", sm:status())
        local r = results_by_id(out)
        for id = 0, 1 do
          assert.is_false(r[id].ok)
          assert.are.equal("user.forbidden", r[id].err.group .. "." .. r[id].err.code)
          assert.are.equal("bad token", r[id].err.metadata.reason)
        end
        local errs = of_kind(out, "error")
        assert.are.equal(1, #errs)
        assert.are.equal("forbidden", errs[1].err.code)
        assert.are.equal(0, sm:pending())
        assert.is_nil(sm:next_wakeup())
        for t = 1, 100 do assert.is_false(sm:tick(t * 10)) end
      end)

      it("stops on a 2.3 final close reason without an Error frame", function()
        for _, reason in ipairs({ "user.forbidden#ray1", "auth.forbidden", "guard.query_invalid" }) do
          local sm = new()
          sm:call("a", {})
          sm:start(0)
          drain(sm)
          sm:closed(reason == "actor.unsupported_websocket_encoding" and 1003 or 1011, reason, 1)
          local out = drain(sm)
          assert.are.equal("idle", sm:status(), reason)
          assert.are.equal(1, #of_kind(out, "error"))
          assert.is_false(results_by_id(out)[0].ok)
          assert.is_false(sm:tick(1000))
        end
        local sm = new()
        sm:start(0)
        sm:closed(1003, "actor.unsupported_websocket_encoding", 1)
        assert.are.equal("idle", sm:status())
      end)

      it("parses the ray id of a 2.3 close reason and retries actor.not_found", function()
        local sm = connected()
        sm:call("a", {})
        drain(sm)
        sm:closed(1011, "actor.not_found#ray-42", 1)
        local out = drain(sm)
        local err = results_by_id(out)[0].err
        assert.are.same({ "actor", "not_found", "ray-42", 1011 }, { err.group, err.code, err.rayId, err.closeCode })
        assert.are.equal(ErrorMT, getmetatable(err))
        assert.are.equal(1, #of_kind(out, "error"))
        assert.are.equal("disconnected", sm:status())
        assert.is_true(sm:tick(sm:next_wakeup()))
      end)
    else
      it("stops on a 2.0 refusal (close 1011 with a bare code, no frame)", function()
        local sm = new()
        sm:call("a", {})
        sm:start(0)
        drain(sm)
        sm:closed(1011, "forbidden", 0.1)
        local out = drain(sm)
        assert.are.equal("idle", sm:status())
        local err = results_by_id(out)[0].err
        assert.are.same({ "user", "forbidden", 1011 }, { err.group, err.code, err.closeCode })
        assert.are.equal(1, #of_kind(out, "error"))
        for t = 1, 100 do assert.is_false(sm:tick(t * 10)) end
        -- a new start after giving up begins again from the first delay
        assert.is_true(sm:start(2000))
        assert.are.equal(0, sm:attempt())
      end)

      it("retries a 2.0 internal_error close", function()
        local sm = connected()
        sm:call("a", {})
        drain(sm)
        sm:closed(1011, "internal_error", 1)
        local out = drain(sm)
        local err0 = results_by_id(out)[0].err
        assert.are.equal("internal.internal_error", err0.group .. "." .. err0.code)
        assert.are.equal("disconnected", sm:status())
      end)
    end

    it("schedules a reconnect after transient closes", function()
      local cases = {
        { 1006, "" }, { nil, nil, true }, { nil, nil, false }, { 1000, "" }, { 1000, "bye" },
        { 1011, line == "2.3" and "actor.not_found#ray" or "internal_error" },
        { 1011, line == "2.3" and "guard.actor_wake_retries_exceeded#r" or "incoming_too_long" },
        { 1001, "" },
      }
      for _, c in ipairs(cases) do
        local what = tostring(c[1]) .. " " .. tostring(c[2])
        local sm = new()
        sm:call("queued", {})
        sm:start(0)
        drain(sm)
        sm:closed(c[1], c[2], 10, c[3])
        local out = drain(sm)
        assert.are.equal("disconnected", sm:status(), what)
        assert.are.equal(1, sm:pending(), what)
        assert.are.equal(0, #of_kind(out, "result"), what)
        if c[1] == 1000 then
          local errs = of_kind(out, "error")
          assert.are.equal(1, #errs, what .. ": a close by the actor is notified")
          assert.are.equal(1000, errs[1].err.closeCode)
        end
        local at = sm:next_wakeup()
        assert.is_true(at >= 10 and at <= 10.25, what)
        assert.is_true(sm:tick(at))
        assert.is_true(sm:start(at))
        assert.are.equal("connecting", sm:status())
      end
    end)

    it("reports the earliest of the next attempt and the next deadline", function()
      local sm = new()
      sm:call("q", {}, 100)
      assert.are.equal(100, sm:next_wakeup())
      sm:start(0)
      sm:closed(1006, "", 1)
      local at = sm:next_wakeup()
      assert.is_true(at >= 1 and at <= 1.25)
      sm:start(at)
      assert.are.equal(100, sm:next_wakeup(), "no attempt is due while connecting")
    end)

    it("ignores a repeated closed() and frames fed while not connected", function()
      local sm = connected()
      sm:closed(1006, "", 1)
      drain(sm)
      sm:closed(1006, "", 1.1)
      sm:feed(S.event("x", { 1 }), 1.2)
      assert.are.equal(0, #drain(sm))
      assert.are.equal(1, sm:attempt())
    end)

    it("delivers events in arrival order", function()
      local sm = connected()
      sm:subscribe("n")
      drain(sm)
      sm:feed(S.event("n", { 1 }), 1)
      sm:feed(S.event("n", { 2, "x" }), 1)
      sm:feed(S.event("other", {}), 1)
      local ev = of_kind(drain(sm), "event")
      assert.are.equal(3, #ev)
      assert.are.same({ "n", 1 }, { ev[1].name, ev[1].args[1] })
      assert.are.same({ 2, "x" }, { ev[2].args[1], ev[2].args[2] })
      assert.are.equal(0, #ev[3].args)
    end)

    it("dispose fails everything with client.disposed and asks to close 1000 Disposed", function()
      local sm = connected()
      sm:call("inflight", {}, 100)
      sm:closed(1006, "", 1)
      sm:start(2)
      sm:feed(S.init("a", "c"), 2)
      sm:call("inflight2", {})
      drain(sm)
      sm:dispose(3)
      local out = drain(sm)
      local r = results_by_id(out)
      assert.are.equal("client.disposed", r[1].err.group .. "." .. r[1].err.code)
      local closes = of_kind(out, "close")
      assert.are.same({ { kind = "close", code = 1000, reason = "Disposed" } }, closes)
      assert.are.equal("disposed", sm:status())
      assert.are.equal(0, sm:pending())
      -- later calls fail at once; events and closes are ignored; no attempts
      local id = sm:call("after", {})
      assert.are.equal(2, id)
      out = drain(sm)
      assert.are.equal("disposed", out[1].err.code)
      sm:closed(1000, "Disposed", 4)
      sm:feed(S.response(1, 1), 4)
      assert.are.equal(0, #drain(sm))
      assert.is_false(sm:tick(1e9))
      assert.is_nil(sm:next_wakeup())
      assert.is_false(sm:start(5))
      assert.is_false(sm:subscribe("x"))
      sm:dispose(6)
      assert.are.equal(0, #drain(sm))
    end)

    it("dispose while disconnected fails queued calls and asks for no close", function()
      local sm = new()
      sm:call("q", {})
      sm:start(0)
      sm:closed(nil, nil, 0, true)
      drain(sm)
      sm:dispose(1)
      local out = drain(sm)
      assert.are.equal(0, #of_kind(out, "close"))
      assert.are.equal("disposed", results_by_id(out)[0].err.code)
      assert.is_false(sm:tick(1e9))
    end)

    it("completes 10,000 calls in flight", function()
      local sm = connected()
      local N = 10000
      for i = 0, N - 1 do assert.are.equal(i, sm:call("f", { i }, 1000 + i)) end
      assert.are.equal(N, #drain(sm))
      assert.are.equal(N, sm:pending())
      -- answer in a scrambled order
      local order = {}
      for i = 0, N - 1 do order[i + 1] = (i * 7919) % N end
      for _, id in ipairs(order) do sm:feed(S.response(id, id * 2), 1) end
      local out = drain(sm)
      assert.are.equal(N, #out)
      local seen = {}
      for k, it in ipairs(out) do
        assert.are.equal(order[k], it.id)
        assert.are.equal(it.id * 2, it.value)
        seen[it.id] = true
      end
      for i = 0, N - 1 do assert.is_true(seen[i]) end
      assert.are.equal(0, sm:pending())
      assert.is_nil(sm:next_wakeup())
    end)

    it("times out thousands of calls in deadline order", function()
      local sm = connected()
      for i = 0, 2999 do sm:call("f", {}, 10 + (i * 37) % 100) end
      drain(sm)
      sm:feed(S.response(5, "early"), 1)
      sm:tick(60)
      local out = drain(sm)
      local last = -1
      for i = 2, #out do
        local d = 10 + (out[i].id * 37) % 100
        assert.is_true(d <= 60 and d >= last)
        last = d
      end
      sm:tick(200)
      drain(sm)
      assert.are.equal(0, sm:pending())
    end)
  end)

  describe("conn_sm malformed input (" .. enc .. ", " .. line .. ")", function()
    local bad = {
      { "empty", "" },
    }
    if enc == "bare" then
      local ver = line == "2.0" and "\2\0" or "\4\0"
      local init = S.init("actor1", "conn1")
      for _, f in ipairs({
        { "truncated Init", init:sub(1, #init - 3) },
        { "version only", ver },
        { "unknown union tag", ver .. "\9" },
        { "absurd string length", ver .. "\0\255\255\255\255\255\255\255\255\255\1" },
        { "length past the end", ver .. "\3\200\1abc" },
        { "overlong varint", ver .. "\2\255\255\255\255\255\255\255\255\255\255\255\1\1\0" },
        { "trailing bytes", init .. "zz" },
        { "bad CBOR in output", ver .. "\2\0\1\255" },
        { "truncated CBOR in event args", ver .. "\3\1n\3\131\1\2" },
        { "event args not an array", ver .. "\3\1n" .. str(cbor(5)) },
      }) do bad[#bad + 1] = f end
    elseif enc == "cbor" then
      for _, f in ipairs({
        { "bad CBOR", "\255\0\1" },
        { "truncated map", cbor({ body = { tag = "Init", val = { actorId = "a", connectionId = "c" } } }):sub(1, 20) },
        { "absurd length", "\186\255\255\255\255" },
        { "absurd string length", "\161\100body\123\255\255\255\255\255\255\255\255" },
        { "not a map", cbor(arr({ 1, 2 })) },
        { "unknown tag", cbor({ body = { tag = "Nope", val = {} } }) },
        { "missing fields", cbor({ body = { tag = "ActionResponse", val = { output = 1 } } }) },
      }) do bad[#bad + 1] = f end
    else
      for _, f in ipairs({
        { "invalid JSON", "{" },
        { "garbage", "\0\1\2" },
        { "not an object", "[1,2]" },
        { "unknown tag", '{"body":{"tag":"Nope","val":{}}}' },
        { "no body", '{"x":1}' },
        { "bad id", '{"body":{"tag":"ActionResponse","val":{"id":"zero","output":1}}}' },
        { "deep nesting", string.rep("[", 100000) },
      }) do bad[#bad + 1] = f end
    end

    for _, case in ipairs(bad) do
      it("closes with client.malformed_message on " .. case[1], function()
        local sm = new()
        sm:start(0)
        sm:feed(S.init("actor1", "conn1"), 0)
        sm:call("inflight", {})
        drain(sm)
        sm:feed(case[2], 1)
        local out = drain(sm)
        local errs = of_kind(out, "error")
        assert.are.equal(1, #errs)
        assert.are.equal("client.malformed_message", errs[1].err.group .. "." .. errs[1].err.code)
        assert.are.equal(ErrorMT, getmetatable(errs[1].err))
        -- the text is the decoder's complaint (it used to show a C address on the BARE
        -- fast paths: "userdata: 0x7ffd...")
        local text = errs[1].err.message
        local prefix = "Malformed message from the server: "
        assert.are.equal(prefix, text:sub(1, #prefix))
        assert.is_nil(text:find("userdata", 1, true), text)
        assert.is_nil(text:find("0x", 1, true), text)
        assert.is_true(#text > #prefix, text)
        local v, derr = core.decode_to_client(enc, case[2], tagged)
        if case[1] == "event args not an array" then -- the fast path's own check
          assert.are.equal(prefix .. "bare: Event args is not an array", text)
        elseif v == nil then
          assert.are.equal(prefix .. derr, text)
        end
        local closes = of_kind(out, "close")
        assert.are.equal(1, #closes)
        assert.are.equal(1002, closes[1].code)
        assert.are.equal("malformed_message", results_by_id(out)[0].err.code)
        -- nothing more is taken from this transport; new calls wait for the next one
        sm:feed(S.response(0, 1), 1)
        sm:call("later", {})
        assert.are.equal(0, #drain(sm))
        sm:closed(1002, "malformed message", 2)
        out = drain(sm)
        assert.are.equal(0, #of_kind(out, "error"), "notified once")
        assert.are.equal("disconnected", sm:status())
        assert.are.equal(1, sm:pending())
        assert.is_not_nil(sm:next_wakeup())
      end)
    end

    it("survives random bytes", function()
      local rng = 12345
      local function rand(n)
        rng = (rng * 1103515245 + 12345) % 2147483648
        return rng % n
      end
      local sm = new()
      for _ = 1, 2000 do
        if sm:status() ~= "connected" then
          sm:closed(nil, nil, 0)
          sm:start(0)
          sm:feed(S.init("a", "c"), 0)
        end
        local len = rand(40)
        local b = {}
        for i = 1, len do b[i] = string.char(rand(256)) end
        local frame = table.concat(b)
        if enc == "bare" and len > 2 then frame = (line == "2.0" and "\2\0" or "\4\0") .. frame end
        sm:feed(frame, 0)
        drain(sm)
      end
    end)
  end)
end

describe("conn_sm options", function()
  it("rejects bad options", function()
    assert.has_error(function() core.conn_new({ encoding = "xml" }) end)
    assert.has_error(function() core.conn_new({ line = "1.0" }) end)
    assert.has_error(function() core.conn_new({ backoff_initial = -1 }) end)
    assert.has_error(function() core.conn_new({ seed = 1.5 }) end)
    assert.has_error(function() core.conn_new({ error_mt = 1 }) end)
  end)

  it("refuses a fraction where an integer is needed (LuaJIT would truncate it)", function()
    local sm = core.conn_new({ encoding = "json" })
    local ok, err = pcall(sm.closed, sm, 1006.5, "", 1)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("number has no integer representation", 1, true), err)
    sm:closed(1006, "", 1) -- the integer itself is fine
    sm:dispose(2)
  end)

  it("uses plain tables for errors without error_mt and checks self", function()
    local sm = core.conn_new({ encoding = "json" })
    sm:dispose(0)
    sm:call("x", {})
    local n, _, flat = sm:drain()
    local out = items(flat, n)
    assert.is_nil(getmetatable(out[2].err))
    assert.has_error(function() sm.status({}) end)
    assert.has_error(function() sm.call(io.stdout, "x") end)
    assert.truthy(tostring(sm):find("rivet.conn_sm", 1, true))
  end)

  it("honours backoff_initial and backoff_max", function()
    local sm = core.conn_new({ encoding = "bare", backoff_initial = 1, backoff_max = 2, seed = 3 })
    for n = 0, 6 do
      sm:start(0)
      sm:closed(1006, "", 0)
      assert.is_true(sm:next_wakeup() <= math.min(2, 2 ^ n))
    end
  end)

  it("frees a machine with pending calls", function()
    for _ = 1, 50 do
      local sm = core.conn_new({ encoding = "cbor" })
      for i = 1, 200 do sm:call("f", { i }, i) end
      sm:start(0)
      sm = nil -- luacheck: ignore 311 (a live register would keep the machine from the collector)
      collectgarbage()
    end
  end)
end)
