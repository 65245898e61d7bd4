-- Helpers of every fuzz target (loaded before fuzz/lua/<target>.lua; `core` is rivet.core).
-- An error raised from fuzz(data) aborts the run: that is how a target reports a finding.

NULL = core.null
ARRAY_MT, MAP_MT, BYTES_MT = core.array_mt, core.map_mt, core.bytes_mt

function finding(fmt, ...)
  error("FINDING: " .. string.format(fmt, ...), 2)
end

--- Calls a decoder of network bytes: it must return (value) or (nil, message), never
--- raise; the message must be a plain string (no C address leaking into it).
function decode(f, ...)
  local ok, v, err = pcall(f, ...)
  if not ok then finding("decoder raised: %s", tostring(v)) end
  if v == nil then
    if type(err) ~= "string" or err == "" then finding("decoder failed without a message: %s", tostring(err)) end
    check_text(err, "decoder message")
  end
  return v, err
end

--- A message must be text and show no C address ("userdata: 0x..."), unless the input
--- itself carried those words (servers' reasons and messages are quoted as they come).
function check_text(s, what)
  if type(s) ~= "string" then finding("%s is a %s", what, type(s)) end
  for _, w in ipairs({ "userdata: ", "table: 0x", "function: " }) do
    if s:find(w, 1, true) and not (INPUT or ""):find(w, 1, true) then
      finding("%s shows an address: %q", what, s)
    end
  end
end

--- A reader over the fuzz input: bytes run out as zeros (so every input is a valid script).
function reader(s, pos)
  local r = { s = s, pos = pos or 1 }
  function r.u8()
    local b = s:byte(r.pos) or 0
    r.pos = r.pos + 1
    return b
  end
  function r.u16() return r.u8() << 8 | r.u8() end
  function r.take(n)
    local t = s:sub(r.pos, r.pos + n - 1)
    r.pos = r.pos + n
    return t
  end
  function r.left() return #s - r.pos + 1 end
  function r.rest()
    local t = s:sub(r.pos)
    r.pos = #s + 1
    return t
  end
  return r
end

local function is_nan(x) return x ~= x end

--- Strict structural equality of two decoded values: same types (numbers by value, NaN
--- equal to NaN, integers staying integers), same markers on tables, same keys.
function same(a, b, path)
  path = path or "value"
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then
    if is_nan(a) and is_nan(b) then return end
    if a ~= b then finding("%s: %s ~= %s", path, tostring(a), tostring(b)) end
    if math.type(a) == "integer" and math.type(b) ~= "integer" then
      finding("%s: integer %d came back as a float", path, a)
    end
    return
  end
  if ta ~= tb then finding("%s: %s became %s (%s / %s)", path, ta, tb, tostring(a), tostring(b)) end
  if ta ~= "table" then
    if a ~= b then finding("%s: %q ~= %q", path, tostring(a), tostring(b)) end
    return
  end
  if getmetatable(a) ~= getmetatable(b) then finding("%s: table markers differ", path) end
  for k, v in pairs(a) do
    if b[k] == nil then finding("%s: key %s lost", path, tostring(k)) end
    same(v, b[k], path .. "." .. tostring(k))
  end
  for k in pairs(b) do
    if a[k] == nil then finding("%s: key %s appeared", path, tostring(k)) end
  end
end

--- Decoded -> encoded -> decoded must reach a fixed point after one round: v2 = dec(enc(v1))
--- and v3 = dec(enc(v2)) are the same value. Encoding may refuse v1 (e.g. a value beyond
--- what the encoder takes), but once it accepts, its output must decode.
function fixpoint(enc, dec, v1, what)
  local ok, e1 = pcall(enc, v1)
  if not ok then return end
  if type(e1) ~= "string" then finding("%s: encoder returned %s", what, type(e1)) end
  local v2, err = decode(dec, e1)
  if v2 == nil then finding("%s: own encoding does not decode: %s", what, err) end
  local e2 = enc(v2)
  local v3, err3 = decode(dec, e2)
  if v3 == nil then finding("%s: second encoding does not decode: %s", what, err3) end
  same(v2, v3, what)
end

---------------------------------------------------------------------------------------
-- Values generated from the input, within what docs/values.md says travels unchanged.

local function utf8ish(r, n)
  local t = {}
  for i = 1, n do
    local b = r.u8()
    if b < 0x80 then t[i] = string.char(b)
    else t[i] = utf8.char(0x80 + b * 37 % 0x10F000 + (b % 3) * 0x800) end
  end
  local s = table.concat(t)
  if not utf8.len(s) then s = s:gsub("[\128-\255]", "?") end
  return s
end

--- gen(r, depth, opts) -> value: opts.json: no NaN/infinities (JSON has none).
function gen(r, depth, opts)
  local kind = r.u8() % (depth > 0 and 12 or 9)
  if kind == 0 then return NULL end
  if kind == 1 then return r.u8() % 2 == 1 end
  if kind == 2 then return r.u8() - 128 end
  if kind == 3 then return (string.unpack("<i8", r.take(8) .. string.rep("\0", 8))) end
  if kind == 4 then
    local d = string.unpack("<d", r.take(8) .. string.rep("\0", 8))
    if opts.json and (d ~= d or d == math.huge or d == -math.huge) then d = 0.5 end
    return d
  end
  if kind == 5 then return r.take(r.u8() % 24) end -- any bytes: non-UTF-8 travels as bytes
  if kind == 6 then return utf8ish(r, r.u8() % 16) end
  if kind == 7 then return "$" .. utf8ish(r, r.u8() % 12) end -- looks like a compat tag
  if kind == 8 then
    local big = { 9007199254740993, -9007199254740993, math.maxinteger, math.mininteger, 2 ^ 53, 1e300, -0.0,
                  4294967296, 2147483648, -2147483649, 0.1, 1 / 3 }
    return big[r.u8() % #big + 1]
  end
  if kind == 9 then return setmetatable({ r.take(r.u8() % 24) }, BYTES_MT) end
  if kind == 10 then
    local t = {}
    local n = r.u8() % 5
    for i = 1, n do t[i] = gen(r, depth - 1, opts) end
    if n > 0 and r.u8() % 4 == 0 then
      t[1] = "$" .. utf8ish(r, r.u8() % 6) -- ["$x", ...]: must be escaped and come back as is
    end
    return setmetatable(t, ARRAY_MT)
  end
  local t = {}
  for _ = 1, r.u8() % 5 do t[utf8ish(r, r.u8() % 8)] = gen(r, depth - 1, opts) end
  return setmetatable(t, MAP_MT)
end

--- What a generated value must come back as (docs/values.md): bytes as plain strings,
--- integral floats within 2^53 as integers (same() compares by value).
function expected(v)
  if type(v) ~= "table" then return v end
  local mt = getmetatable(v)
  if mt == BYTES_MT then return v[1] end
  local t = {}
  for k, x in pairs(v) do t[k] = expected(x) end
  return setmetatable(t, mt)
end

--- same(), but a float sent may come back an integer of the same value, and strings
--- that are not valid UTF-8 come back as strings (already so in expected()).
function same_sent(want, got, path)
  if type(want) == "number" and type(got) == "number" and math.type(want) == "float" then
    if want ~= got and not (want ~= want and got ~= got) then
      finding("%s: %s came back as %s", path, tostring(want), tostring(got))
    end
    return
  end
  if type(want) ~= "table" or type(got) ~= "table" then return same(want, got, path) end
  if getmetatable(want) ~= getmetatable(got) then finding("%s: table markers differ", path) end
  for k, x in pairs(want) do
    if got[k] == nil then finding("%s: key %s lost", path, tostring(k)) end
    same_sent(x, got[k], path .. "." .. tostring(k))
  end
  for k in pairs(got) do
    if want[k] == nil then finding("%s: key %s appeared", path, tostring(k)) end
  end
end

---------------------------------------------------------------------------------------
-- Server frames for the state machine targets (as the servers write them: protocol.md).

local function varint(n)
  local out = {}
  repeat
    local b = n & 0x7f
    n = n >> 7
    out[#out + 1] = string.char(n > 0 and (b | 0x80) or b)
  until n == 0
  return table.concat(out)
end
local function str(s) return varint(#s) .. s end
local function opt(s) if s then return "\1" .. s end return "\0" end

--- server_frames(enc, line, tagged) -> {init(a, c), response(id, v), event(name, args),
--- error(group, code, message, actionId|nil)}
function server_frames(enc, line, tagged)
  local S = {}
  local function cb(v) return core.cbor_encode(v, tagged) end
  if enc == "bare" then
    local ver = line == "2.0" and "\2\0" or "\4\0"
    function S.init(a, c) return ver .. "\0" .. str(a) .. str(c) end
    function S.response(id, v) return ver .. "\2" .. varint(id) .. str(cb(v)) end
    function S.event(name, args) return ver .. "\3" .. str(name) .. str(cb(setmetatable(args, ARRAY_MT))) end
    function S.error(group, code, message, aid)
      local f = ver .. "\1" .. str(group) .. str(code) .. str(message) .. opt(nil) .. opt(aid and varint(aid) or nil)
      if line ~= "2.0" then f = f .. opt(nil) end
      return f
    end
  else
    local write = enc == "json" and function(v) return core.json_encode(v, true) end or cb
    local function wrap(tag, val) return write({ body = { tag = tag, val = val } }) end
    function S.init(a, c) return wrap("Init", { actorId = a, connectionId = c }) end
    function S.response(id, v) return wrap("ActionResponse", { id = id, output = v }) end
    function S.event(name, args) return wrap("Event", { name = name, args = setmetatable(args, ARRAY_MT) }) end
    function S.error(group, code, message, aid)
      return wrap("Error", { group = group, code = code, message = message, actionId = aid or NULL })
    end
  end
  return S
end

ERROR_MT = { __name = "fuzz.ActorError" }
STATUSES = { idle = true, connecting = true, connected = true, disconnected = true, disposed = true }

function check_error(e, what)
  if type(e) ~= "table" then finding("%s is a %s", what, type(e)) end
  if getmetatable(e) ~= ERROR_MT then finding("%s has no error metatable", what) end
  if type(e.group) ~= "string" or type(e.code) ~= "string" then
    finding("%s: group %s code %s", what, tostring(e.group), tostring(e.code))
  end
  if e.message ~= nil then check_text(e.message, what .. ".message") end
end

--- Drains sm and checks every item; calls[id] goes "pending" -> "done" exactly once.
--- Returns the items as {kind, a, b, c, d}.
function drain_checked(sm, calls)
  local n, _, items = sm:drain()
  local out = {}
  for i = 1, n do
    local j = (i - 1) * 5 + 1
    local kind = core.conn_items[items[j]]
    local a, b, c, d = items[j + 1], items[j + 2], items[j + 3], items[j + 4]
    if kind == "result" then
      if calls[d] ~= "pending" then finding("a result for call %s, which is %s", tostring(d), tostring(calls[d])) end
      calls[d] = "done"
      if not b then check_error(c, "a failed call's error") end
    elseif kind == "error" then
      check_error(a, "a connection error")
    elseif kind == "status" then
      if not STATUSES[a] then finding("status %s", tostring(a)) end
    elseif kind == "send" then
      if type(a) ~= "string" then finding("a send item of %s", type(a)) end
    elseif kind == "event" then
      if type(a) ~= "string" or type(b) ~= "table" then finding("an event %s %s", type(a), type(b)) end
    elseif kind == "close" then
      if math.type(a) ~= "integer" then finding("a close item with code %s", tostring(a)) end
    elseif kind ~= "open" then
      finding("an item of kind %s", tostring(kind))
    end
    out[i] = { kind, a, b, c, d }
  end
  return out
end
