-- Specs for the codecs of rivet.core: values in CBOR/JSON/BARE, protocol messages with the
-- wire examples of protocol.md, and hostile input (every decoder must return nil, err).
local core = require("rivet.core")
local ints = require("spec.support.ints") -- integers on Lua 5.4 and LuaJIT alike
local I, P = ints.I, ints.P

-- X"02 00 1b" -> bytes
local function X(hex)
  return (hex:gsub("%s+", ""):gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function leb(n)
  local out = {}
  repeat
    local b = n % 128
    n = (n - b) / 128
    if n ~= 0 then b = b + 128 end
    out[#out + 1] = string.char(b)
  until n == 0
  return table.concat(out)
end

local function bare_data(s) return leb(#s) .. s end

local ENCODINGS = {
  { enc = "json", tagged = true },
  { enc = "cbor", tagged = false },
  { enc = "cbor", tagged = true },
  { enc = "bare", tagged = false },
  { enc = "bare", tagged = true },
}

-- Sends v the way a server would (an HttpActionResponse in enc) and decodes it.
local function through(enc, tagged, v)
  local body
  if enc == "json" then
    body = '{"output":' .. core.json_encode(v) .. "}"
  elseif enc == "cbor" then
    body = core.cbor_encode(setmetatable({ output = v }, core.map_mt), tagged)
  else
    body = X"04 00" .. bare_data(core.cbor_encode(v, tagged))
  end
  local ok, out = core.decode_http_action_response(enc, body, tagged)
  assert(ok, out)
  return out
end

local function label(e) return e.enc .. (e.tagged and " (tagged)" or "") end

describe("value round trips", function()
  for _, e in ipairs(ENCODINGS) do
    describe(label(e), function()
      it("keeps integers integers", function()
        -- beyond 2^53 these are int64_t cdata on LuaJIT (spec/support/ints.lua)
        local list = { 0, 1, -1, 23, 24, -24, -25, 255, 256, 65535, 65536, P(31), -P(31),
          P(32) - 1, P(32), -P(32), -P(32) - 1, P(40), -P(40), P(53), -P(53),
          I"9007199254740993", I"-9007199254740993", ints.MAX, ints.MIN, I"9223372036854775806",
          I"-9223372036854775807" }
        for _, n in ipairs(list) do
          local out = through(e.enc, e.tagged, n)
          assert.are.equal(n, out)
          assert.are.equal("integer", ints.type(out), "type of " .. tostring(n))
        end
      end)

      it("keeps floats exact", function()
        for _, f in ipairs({ 0.1, -2.4999999999999999e-07, 1e300, -1e-300, 2.5, 1 / 3, 123456.789,
          5e-324, 1.7976931348623157e308 }) do
          local out = through(e.enc, e.tagged, f)
          assert.are.equal(f, out)
          assert.are.equal("float", ints.type(out))
        end
      end)

      it("turns integral floats within 2^53 into integers (JavaScript numbers)", function()
        local out = through(e.enc, e.tagged, 5.0)
        assert.are.equal(5, out)
        assert.are.equal("integer", ints.type(out))
      end)

      it("carries strings, unicode and a 200 KB string", function()
        for _, s in ipairs({ "", "hello", "héllo wörld", "日本語", "😀 emoji", "quote\" back\\ nl\n tab\t \0 nul",
          string.rep("abcdefghij", 20 * 1024) }) do
          assert.are.equal(s, through(e.enc, e.tagged, s))
        end
      end)

      it("carries binary strings and rivet.bytes as the same Lua string", function()
        local bin = "\255\0\1\2\128binary\192"
        assert.are.equal(bin, through(e.enc, e.tagged, bin))
        assert.are.equal("abc", through(e.enc, e.tagged, setmetatable({ "abc" }, core.bytes_mt)))
        assert.are.equal("", through(e.enc, e.tagged, setmetatable({ "" }, core.bytes_mt)))
        local all = {}
        for i = 0, 255 do all[#all + 1] = string.char(i) end
        all = table.concat(all)
        assert.are.equal(all, through(e.enc, e.tagged, all))
      end)

      it("carries nested maps and arrays with their markers", function()
        local v = { a = { 1, 2, { b = "c", d = { true, false } } }, e = {}, f = setmetatable({}, core.array_mt),
          g = { core.null, 1, core.null } }
        local out = through(e.enc, e.tagged, v)
        assert.are.equal(core.map_mt, getmetatable(out))
        assert.are.equal(core.array_mt, getmetatable(out.a))
        assert.are.equal(2, out.a[2])
        assert.are.equal("c", out.a[3].b)
        assert.are.same({ true, false }, { out.a[3].d[1], out.a[3].d[2] })
        assert.are.equal(core.map_mt, getmetatable(out.e))
        assert.is_nil(next(out.e))
        assert.are.equal(core.array_mt, getmetatable(out.f))
        assert.is_nil(next(out.f))
        assert.are.equal(3, #out.g)
        assert.are.equal(core.null, out.g[1])
        assert.are.equal(core.null, out.g[3])
      end)

      it("returns a top-level null as core.null", function()
        assert.are.equal(core.null, through(e.enc, e.tagged, core.null))
        assert.are.equal(core.null, through(e.enc, e.tagged, nil))
      end)

      it("writes integer map keys as strings", function()
        local out = through(e.enc, e.tagged, { [1] = "a", [3] = "b", x = 1 })
        assert.are.equal("a", out["1"])
        assert.are.equal("b", out["3"])
        assert.are.equal(1, out.x)
      end)
    end)
  end
end)

describe("compat tags", function()
  it("bytes that start with $ as the first of two elements are bytes, not a tag name", function()
    -- found by the value_roundtrip fuzzer (fuzz/corpus/value_roundtrip/regress-bytes-...)
    local v = core.json_decode('[["$Uint8Array","JCQ="],1]', true)
    assert.are.equal(2, #v)
    assert.are.equal("$$", v[1])
    assert.are.equal(1, v[2])
    local w = core.json_decode('[["$Uint8Array","JFVpbnQ4QXJyYXk="],"AAE="]', true)
    assert.are.equal(2, #w)
    assert.are.equal("$Uint8Array", w[1])
    assert.are.equal("AAE=", w[2])
    for _, e in ipairs(ENCODINGS) do
      local out = through(e.enc, e.tagged, { setmetatable({ "$BigInt" }, core.bytes_mt), "5" })
      assert.are.equal(2, #out, label(e))
      assert.are.equal("$BigInt", out[1], label(e))
      assert.are.equal("5", out[2], label(e))
    end
  end)

  it("escapes 2-element $-arrays in tagged mode and strips the escape on decode", function()
    assert.are.equal('["$$x",1]', core.json_encode({ "$x", 1 }))
    assert.are.equal('["$$$y",2]', core.json_encode({ "$$y", 2 }))
    assert.are.equal('["$x",1,2]', core.json_encode({ "$x", 1, 2 }))
    assert.are.equal(X"82 63" .. "$$x" .. X"01", core.cbor_encode({ "$x", 1 }, true))
    assert.are.equal(X"82 62" .. "$x" .. X"01", core.cbor_encode({ "$x", 1 }, false))
    for _, e in ipairs(ENCODINGS) do
      local out = through(e.enc, e.tagged, { "$x", 1 })
      assert.are.equal("$x", out[1], label(e))
      assert.are.equal(1, out[2])
      out = through(e.enc, e.tagged, { "$BigInt", "5" })
      assert.are.equal("$BigInt", out[1], label(e))
    end
  end)

  it("decodes the compat tags only in tagged mode", function()
    local j = '[["$BigInt","123456789012345678"],["$BigInt","-9223372036854775808"],["$BigInt","99999999999999999999"],'
      .. '["$Uint8Array","AQID"],["$ArrayBuffer","AQI"],["$Undefined",0],["$Set",[1,2]],["$$x",1],["$other",1]]'
    local v = assert(core.json_decode(j))
    assert.are.equal(I"123456789012345678", v[1])
    assert.are.equal(ints.MIN, v[2])
    assert.are.equal("float", ints.type(v[3]))
    assert.are.equal(1e20, v[3])
    assert.are.equal("\1\2\3", v[4])
    assert.are.equal("\1\2", v[5])
    assert.are.equal(core.null, v[6])
    assert.are.same({ 1, 2 }, { v[7][1], v[7][2] })
    assert.are.equal(core.array_mt, getmetatable(v[7]))
    assert.are.equal("$x", v[8][1])
    assert.are.equal("$other", v[9][1])
    local raw = assert(core.json_decode(j, false))
    assert.are.equal("$BigInt", raw[1][1])
    assert.are.equal("$$x", raw[8][1])
    local c = X"82 67" .. "$BigInt" .. X"61" .. "7"
    assert.are.equal(7, core.cbor_decode(c, true))
    assert.are.equal("$BigInt", core.cbor_decode(c, false)[1])
  end)

  it("writes bytes as tag 64 untagged and as $Uint8Array tagged", function()
    local b = setmetatable({ "\1\2\3" }, core.bytes_mt)
    assert.are.equal(X"d8 40 43 01 02 03", core.cbor_encode(b, false))
    assert.are.equal(X"82 6b" .. "$Uint8Array" .. X"64" .. "AQID", core.cbor_encode(b, true))
    assert.are.equal('["$Uint8Array","AQID"]', core.json_encode(b))
    assert.are.equal('["$Uint8Array","/w=="]', core.json_encode("\255"))
  end)

  it("writes big integers as $BigInt in JSON and natively in CBOR", function()
    assert.are.equal('[9007199254740992.0,["$BigInt","9007199254740993"],["$BigInt","-9223372036854775808"]]',
      core.json_encode({ P(53), I"9007199254740993", ints.MIN }))
    assert.are.equal(X"1b 00 20 00 00 00 00 00 01", core.cbor_encode(I"9007199254740993", true))
    assert.are.equal(X"3b 7f ff ff ff ff ff ff ff", core.cbor_encode(ints.MIN))
    -- more than 32 bits but exact in a double: float64, like cbor-x
    assert.are.equal(X"fb 42 70 00 00 00 00 00 00", core.cbor_encode(P(40)))
    assert.are.equal(X"1a ff ff ff ff", core.cbor_encode(P(32) - 1))
    assert.are.equal(X"3a ff ff ff ff", core.cbor_encode(-P(32)))
  end)
end)

describe("CBOR decoding", function()
  it("accepts every header form, float16/32/64, indefinite items and tags", function()
    local function d(h, tagged) return core.cbor_decode(X(h), tagged) end
    assert.are.equal(1, d("b9 00 01 61 61 01").a)
    assert.are.equal(1, d("ba 00 00 00 01 61 61 01").a)
    assert.are.equal(1, d("bb 00 00 00 00 00 00 00 01 61 61 01").a)
    assert.are.equal(2, d("98 02 01 02")[2])
    assert.are.equal(2, d("99 00 02 01 02")[2])
    assert.are.equal(2, d("9b 00 00 00 00 00 00 00 02 01 02")[2])
    assert.are.equal(269, d("19 01 0d"))
    assert.are.equal(1, d("f9 3c 00"))
    assert.are.equal("integer", ints.type(d("f9 3c 00")))
    assert.are.equal(1.5, d("f9 3e 00"))
    assert.are.equal(-2, d("f9 c0 00"))
    assert.are.equal(5.960464477539063e-08, d("f9 00 01"))
    assert.are.equal(math.huge, d("f9 7c 00"))
    assert.is_true(d("f9 7e 00") ~= d("f9 7e 00")) -- NaN
    assert.are.equal(1.5, d("fa 3f c0 00 00"))
    assert.are.equal(0.1, d("fb 3f b9 99 99 99 99 99 9a"))
    assert.are.equal(core.null, d("f6"))
    assert.are.equal(core.null, d("f7"))
    assert.are.equal(core.null, d("82 01 f7")[2])
    local arr = d("9f 01 9f 02 ff ff")
    assert.are.equal(core.array_mt, getmetatable(arr))
    assert.are.equal(2, arr[2][1])
    assert.are.equal(1, d("bf 61 61 01 ff").a)
    assert.are.equal("hello", d("7f 62 68 65 63 6c 6c 6f ff"))
    assert.are.equal("\1\2\3", d("5f 41 01 42 02 03 ff"))
    assert.are.equal("\1\2\3", d("d8 40 43 01 02 03"))
    assert.are.equal("\0\1", d("d8 45 42 00 01")) -- another typed-array tag
    assert.are.equal("2013-03-21", d("c0 6a 32 30 31 33 2d 30 33 2d 32 31"))
    assert.are.equal(256, d("c2 42 01 00"))
    assert.are.equal(-257, d("c3 42 01 00"))
    assert.are.equal(ints.MAX, d("c2 48 7f ff ff ff ff ff ff ff"))
    assert.are.equal(2.0 ^ 64, d("c2 49 01 00 00 00 00 00 00 00 00"))
    assert.are.equal(-1 - 2.0 ^ 64, d("c3 49 01 00 00 00 00 00 00 00 00"))
    -- above INT64_MAX: 5.4 has no such integer (the nearest float), LuaJIT a uint64_t
    assert.are.equal(ints.luajit and I"18446744073709551615" or 2.0 ^ 64 - 1, d("1b ff ff ff ff ff ff ff ff"))
    assert.are.equal(ints.MIN, d("3b 7f ff ff ff ff ff ff ff"))
    assert.are.equal(5, d("a1 01 05")[1]) -- integer keys stay integers
  end)

  it("rejects malformed input with nil, err", function()
    local bad = {
      "", "18", "19 01", "1b 00 00", "62 61", "82 01", "a1 61 61", "9f 01", "bf 61 61", "5f 41 01",
      "5f 61 61 ff", -- text chunk in a byte string
      "5f 5f ff ff", -- nested indefinite chunk
      "1c", "3d", "ff", "01 02", "f8 20", "e0", "c2 01", "a1 81 01 02", "a1 a0 01", "a1 f6 01",
      "5b 10 00 00 00 00 00 00 00 00", -- a 2^60 byte string
      "7b 10 00 00 00 00 00 00 00 41", "9b 10 00 00 00 00 00 00 00 00", "bb 10 00 00 00 00 00 00 00 00",
      "9b ff ff ff ff ff ff ff ff", "bb ff ff ff ff ff ff ff ff 01",
      "9a ff ff ff ff 01", "c0",
    }
    for _, h in ipairs(bad) do
      for _, tagged in ipairs({ false, true }) do
        local v, err = core.cbor_decode(X(h), tagged)
        assert.is_nil(v, h)
        assert.is_string(err, h)
        assert.truthy(err:match("^cbor: "), err)
      end
    end
    local v, err = core.cbor_decode(X"82 67" .. "$BigInt" .. X"62" .. "zz", true)
    assert.is_nil(v)
    assert.truthy(err:match("BigInt"))
  end)

  it("rejects nesting 100000 deep without crashing", function()
    for _, s in ipairs({ string.rep("\129", 100000) .. "\0", string.rep("\159", 100000),
      string.rep("\161\97\97", 100000) .. "\0", string.rep("\216\64", 100000) .. "\0" }) do
      local v, err = core.cbor_decode(s)
      assert.is_nil(v)
      assert.truthy(err:match("too deep"), err)
    end
    -- 512 levels are fine
    local ok = core.cbor_decode(string.rep("\129", 512) .. "\0")
    assert.is_table(ok)
  end)
end)

describe("JSON", function()
  it("decodes numbers as integers when exact", function()
    local v = assert(core.json_decode(
      "[5, 5.0, 2.5, 1e2, -0, 9007199254740993, 1e300, -12, 0.1, 1E-7, 123456789012345678901]"))
    assert.are.equal("integer", ints.type(v[1]))
    assert.are.equal("integer", ints.type(v[2]))
    assert.are.equal(2.5, v[3])
    assert.are.equal(100, v[4])
    assert.are.equal("integer", ints.type(v[4]))
    assert.are.equal(0, v[5])
    -- a JSON number is a JavaScript number: 9007199254740993 reads as 2^53, as in JSON.parse
    assert.are.equal(P(53), v[6])
    assert.are.equal("integer", ints.type(v[6]))
    assert.are.equal(1e300, v[7])
    assert.are.equal(-12, v[8])
    assert.are.equal(0.1, v[9])
    assert.are.equal(1e-7, v[10])
    assert.are.equal("float", ints.type(v[11]))
    -- beyond 2^53 the double the text stands for (JSON.stringify(2 ** 60)), not another integer
    local big = assert(core.json_decode("[1152921504606847000, -1152921504606847000]"))
    assert.are.equal(2 ^ 60, big[1])
    assert.are.equal(-2 ^ 60, big[2])
    assert.are.equal("float", ints.type(big[1]))
  end)

  it("writes floats in the shortest exact form", function()
    assert.are.equal("[0.1,-2.5e-07,1e+300,2.5,0.30000000000000004]",
      core.json_encode({ 0.1, -2.4999999999999999e-07, 1e300, 2.5, 0.1 + 0.2 }))
  end)

  it("refuses NaN and infinity", function()
    for _, v in ipairs({ 0 / 0, math.huge, -math.huge }) do
      local ok, err = pcall(core.json_encode, { x = v })
      assert.is_false(ok)
      assert.truthy(err:match("cannot encode NaN or infinity as JSON"), err)
    end
    -- CBOR carries them
    assert.are.equal(math.huge, core.cbor_decode(core.cbor_encode(math.huge)))
  end)

  it("handles string escapes, surrogate pairs and lone surrogates", function()
    local v = assert(core.json_decode([["a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00\ud800x\udc00"]]))
    assert.are.equal("a\"b\\c/d\b\f\n\r\tAé€😀\u{FFFD}x\u{FFFD}", v)
    -- control characters are escaped, DEL is not
    assert.are.equal([["a\"b\\\n\u0001\u001f]] .. "\127\"", core.json_encode("a\"b\\\n\1\31\127"))
    assert.are.equal('"h\\u00e9llo \\ud83d\\ude00"', core.json_encode_ascii("héllo 😀"))
    assert.are.equal('"héllo"', core.json_encode("héllo"))
    assert.are.equal('{"token":"\\u00e9"}', core.json_encode_ascii({ token = "é" }))
  end)

  it("keeps [] and {} apart and marks decoded tables", function()
    local v = assert(core.json_decode('{"a":[],"b":{},"c":[null,1]}'))
    assert.are.equal(core.array_mt, getmetatable(v.a))
    assert.are.equal(core.map_mt, getmetatable(v.b))
    assert.are.equal(core.null, v.c[1])
    assert.are.equal('{"a":[]}', core.json_encode({ a = v.a }))
    assert.are.equal('{"b":{}}', core.json_encode({ b = v.b }))
    assert.are.equal("{}", core.json_encode({}))
    assert.are.equal("[]", core.json_encode(setmetatable({}, core.array_mt)))
    assert.are.equal("[1,2]", core.json_encode(setmetatable({ 1, 2 }, core.array_mt)))
    assert.are.equal('{"1":1,"2":2}', core.json_encode(setmetatable({ 1, 2 }, core.map_mt)))
  end)

  it("rejects invalid JSON with nil, err", function()
    local bad = { "", " ", "[", "]", "{", "[1,]", "[1 2]", "{\"a\"}", "{\"a\":}", "{a:1}", "{\"a\":1,}",
      "01", "1.", ".5", "-", "1e", "+1", "0x10", "NaN", "Infinity", "tru", "nul", "\"abc", "\"\\x\"",
      "\"\\u12\"", "\"a\nb\"", "\"\1\"", "\"\255\"", "\"\192\128\"", "\"\237\160\128\"", "[1] x", "'a'",
      "[\"a\" \"b\"]", "{\"a\" 1}", "\239\187\191{}", "1 2", "[1,,2]", "{,}", "\"\\", "\"\\u",
      "[" .. string.rep(" ", 10) }
    for _, s in ipairs(bad) do
      local v, err = core.json_decode(s)
      assert.is_nil(v, s)
      assert.truthy(err:match("^json: "), err)
    end
  end)

  it("rejects nesting 100000 deep without crashing", function()
    for _, s in ipairs({ string.rep("[", 100000), string.rep('{"a":', 100000) .. "1" .. string.rep("}", 100000) }) do
      local v, err = core.json_decode(s)
      assert.is_nil(v)
      assert.truthy(err:match("too deep"), err)
    end
  end)
end)

describe("encoding errors", function()
  local function fails(fn, pattern)
    local ok, err = pcall(fn)
    assert.is_false(ok)
    assert.truthy(tostring(err):match(pattern), tostring(err))
  end

  it("names functions, coroutines and userdata with their path", function()
    for _, enc in ipairs({ core.cbor_encode, core.json_encode }) do
      fails(function() enc(print) end, "cannot encode a value of type function")
      fails(function() enc({ 1, { x = coroutine.create(print) } }) end, "type thread at value%[2%]%.x")
      fails(function() enc({ a = io.stdout }) end, "type userdata at value%.a")
    end
    fails(function() core.encode_http_action_request("bare", { 1, { x = print } }) end,
      "cannot encode a value of type function at args%[2%]%.x")
    fails(function() core.encode_to_server("json", { tag = "ActionRequest", id = 1, name = "f", args = { print } }) end,
      "type function at args%[1%]")
  end)

  it("detects cycles and excessive nesting", function()
    local t = {}
    t.self = t
    local a = setmetatable({}, core.array_mt)
    a[1] = a
    for _, enc in ipairs({ core.cbor_encode, core.json_encode }) do
      fails(function() enc(t) end, "cannot encode: nesting too deep %(cycle%?%)")
      fails(function() enc(a) end, "nesting too deep")
    end
    local deep = {}
    local cur = deep
    for _ = 1, 511 do
      cur[1] = {}
      cur = cur[1]
    end
    assert.is_string(core.json_encode(deep)) -- 512 levels are fine
  end)

  it("refuses map keys that JSON and JavaScript cannot have", function()
    fails(function() core.json_encode({ [true] = 1 }) end, "map key of type boolean")
    fails(function() core.cbor_encode({ [1.5] = 1 }) end, "map key of type number")
    fails(function() core.cbor_encode({ a = { [{}] = 1 } }) end, "map key of type table at value%.a")
    fails(function() core.json_encode({ ["\255"] = 1 }) end, "not valid UTF%-8")
  end)

  it("validates messages", function()
    fails(function() core.encode_to_server("bare", { tag = "Nope" }) end, "unknown message tag")
    fails(function() core.encode_to_server("bare", { tag = "ActionRequest", id = -1, name = "x" }) end, "id")
    fails(function() core.encode_to_server("json", { tag = "ActionRequest", id = 1.5, name = "x" }) end, "id")
    fails(function() core.encode_to_server("cbor", { tag = "ActionRequest", id = 1 }) end, "name")
    fails(function() core.encode_to_server("cbor", { tag = "SubscriptionRequest", eventName = "x" }) end, "subscribe")
    fails(function() core.encode_to_server("xml", { tag = "SubscriptionRequest" }) end, "invalid option")
  end)
end)

describe("HTTP bodies (protocol.md §8)", function()
  it("encodes action requests", function()
    assert.are.equal(X"02 00 02 81 05", core.encode_http_action_request("bare", { 5 }))
    assert.are.equal(X"02 00 01 80", core.encode_http_action_request("bare", {}))
    assert.are.equal(X"a1 64" .. "args" .. X"81 02", core.encode_http_action_request("cbor", { 2 }))
    assert.are.equal('{"args":[5]}', core.encode_http_action_request("json", { 5 }))
    assert.are.equal('{"args":[]}', core.encode_http_action_request("json", {}))
    assert.are.equal('{"args":[]}', core.encode_http_action_request("json", nil))
    assert.are.equal('{"args":[["$$x",1]]}', core.encode_http_action_request("json", { { "$x", 1 } }))
    -- the args array itself is an array of 2 starting with "$": escaped too
    assert.are.equal('{"args":["$$x",1]}', core.encode_http_action_request("json", { "$x", 1 }))
  end)

  it("decodes action responses of both servers", function()
    local cases = {
      { "json", '{"output":12}', 12 },
      { "json", '{"output":null}', core.null },
      { "json", '{"other":1}', core.null },
      { "cbor", X"b9 00 01 66" .. "output" .. X"08", 8 },
      { "cbor", X"a1 66" .. "output" .. X"19 01 0a", 266 },
      { "bare", X"02 00 01 0c", 12 },
      { "bare", X"04 00 01 05", 5 },
      { "bare", X"04 00 01 f6", core.null },
    }
    for _, c in ipairs(cases) do
      local ok, out = core.decode_http_action_response(c[1], c[2], true)
      assert.is_true(ok)
      assert.are.equal(c[3], out)
    end
  end)

  it("decodes the BARE user-error bodies of 2.0 and 2.3", function()
    local e20 = X"02 00 04" .. "user" .. X"07" .. "my_code" .. X"09" .. "bad thing" .. X"01 06 b9 00 01 61 61 01"
    local err = assert(core.decode_http_error("bare", e20, false))
    assert.are.equal("user", err.group)
    assert.are.equal("my_code", err.code)
    assert.are.equal("bad thing", err.message)
    assert.are.equal(1, err.metadata.a)
    assert.is_nil(err.actor)
    assert.are.equal(2, err.version)

    local e23 = X"04 00 04" .. "user" .. X"07" .. "my_code" .. X"09" .. "bad thing" .. X"01 04 a1 61 61 01"
      .. X"01 1e" .. "dh904ivlwdp56evwk868v7dilnbl00" .. X"01 01 08" .. "cap/bare"
    err = assert(core.decode_http_error("bare", e23, true))
    assert.are.equal("my_code", err.code)
    assert.are.equal(1, err.metadata.a)
    assert.are.same({ actorId = "dh904ivlwdp56evwk868v7dilnbl00", generation = 1, key = "cap/bare" }, err.actor)
    assert.are.equal(4, err.version)
  end)

  it("decodes JSON and CBOR error bodies", function()
    local err = assert(core.decode_http_error("json",
      '{"actor":{"actorId":"xgerlat6bytk2e8ho2zrojl17sbl00","generation":1,"key":"cap/json"},"code":"my_code",'
      .. '"group":"user","message":"bad thing","metadata":{"a":1}}'))
    assert.are.equal("user", err.group)
    assert.are.equal("my_code", err.code)
    assert.are.equal("bad thing", err.message)
    assert.are.equal(1, err.metadata.a)
    assert.are.same({ actorId = "xgerlat6bytk2e8ho2zrojl17sbl00", generation = 1, key = "cap/json" }, err.actor)
    err = assert(core.decode_http_error("json", '{"group":"actor","code":"not_found","message":"gone"}'))
    assert.are.equal("not_found", err.code)
    assert.is_nil(err.metadata)
    local cb = core.cbor_encode(setmetatable({ group = "user", code = "c", message = "m", extra = 1 }, core.map_mt))
    err = assert(core.decode_http_error("cbor", cb, false))
    assert.are.equal("c", err.code)
    local v, msg = core.decode_http_error("json", '{"success":false,"error":{"name":"ZodError"}}')
    assert.is_nil(v)
    assert.truthy(msg:match("group"))
  end)
end)

describe("WebSocket frames", function()
  describe("BARE (§9.6)", function()
    it("encodes requests byte for byte", function()
      assert.are.equal(X"02 00 01 08" .. "newCount" .. X"01",
        core.encode_to_server("bare", { tag = "SubscriptionRequest", eventName = "newCount", subscribe = true }))
      assert.are.equal(X"02 00 01 08" .. "newCount" .. X"00",
        core.encode_to_server("bare", { tag = "SubscriptionRequest", eventName = "newCount", subscribe = false }))
      assert.are.equal(X"02 00 00 00 09" .. "increment" .. X"02 81 02",
        core.encode_to_server("bare", { tag = "ActionRequest", id = 0, name = "increment", args = { 2 } }))
      assert.are.equal(X"02 00 00 c8 01 08" .. "getCount" .. X"01 80",
        core.encode_to_server("bare", { tag = "ActionRequest", id = 200, name = "getCount", args = {} }))
      assert.are.equal(X"02 00 00 ff ff ff ff ff ff ff ff 7f 01" .. "f" .. X"01 80",
        core.encode_to_server("bare", { tag = "ActionRequest", id = ints.MAX, name = "f" }))
    end)

    it("decodes Init, Event, ActionResponse and Error", function()
      local m = assert(core.decode_to_client("bare",
        X"02 00 00 10" .. "7b69b7c8f5e274d6" .. X"24" .. "c7264795-94f2-4c66-8213-2be01c4617fc"))
      assert.are.same({ tag = "Init", actorId = "7b69b7c8f5e274d6",
        connectionId = "c7264795-94f2-4c66-8213-2be01c4617fc", version = 2 }, m)
      m = assert(core.decode_to_client("bare",
        X"04 00 00 1e" .. "dh904ivlwdp56evwk868v7dilnbl00" .. X"24" .. "5875b6b1-94f2-4c66-8213-2be01c4617fc", true))
      assert.are.equal("dh904ivlwdp56evwk868v7dilnbl00", m.actorId)
      assert.are.equal(4, m.version)
      m = assert(core.decode_to_client("bare", X"01 00 00 01" .. "a" .. X"01" .. "b" .. X"01" .. "t"))
      assert.are.equal("t", m.connectionToken)
      assert.are.equal(1, m.version)

      m = assert(core.decode_to_client("bare", X"02 00 03 08" .. "newCount" .. X"02 81 0e"))
      assert.are.equal("Event", m.tag)
      assert.are.equal("newCount", m.name)
      assert.are.equal(14, m.args[1])
      assert.are.equal(core.array_mt, getmetatable(m.args))

      m = assert(core.decode_to_client("bare", X"02 00 02 00 01 0e"))
      assert.are.same({ tag = "ActionResponse", id = 0, output = 14, version = 2 }, m)
      assert.are.equal("integer", ints.type(m.id))

      m = assert(core.decode_to_client("bare", X"02 00 01 04" .. "user" .. X"07" .. "my_code" .. X"09"
        .. "bad thing" .. X"01 06 b9 00 01 61 61 01 01 01"))
      assert.are.equal("Error", m.tag)
      assert.are.equal("user", m.group)
      assert.are.equal("my_code", m.code)
      assert.are.equal("bad thing", m.message)
      assert.are.equal(1, m.metadata.a)
      assert.are.equal(1, m.actionId)

      m = assert(core.decode_to_client("bare", X"04 00 01 05" .. "actor" .. X"10" .. "action_not_found" .. X"1c"
        .. "Action `nope` was not found." .. X"00 01 02 01 1e" .. "dh904ivlwdp56evwk868v7dilnbl00" .. X"01 01 08"
        .. "cap/bare", true))
      assert.are.equal("action_not_found", m.code)
      assert.is_nil(m.metadata)
      assert.are.equal(2, m.actionId)
      assert.are.same({ actorId = "dh904ivlwdp56evwk868v7dilnbl00", generation = 1, key = "cap/bare" }, m.actor)

      -- action id 0 is present, not absent; connection-level error has none
      m = assert(core.decode_to_client("bare", X"02 00 01 01" .. "a" .. X"01" .. "b" .. X"00 00 01 00"))
      assert.are.equal(0, m.actionId)
      m = assert(core.decode_to_client("bare", X"02 00 01 01" .. "a" .. X"01" .. "b" .. X"00 00 00"))
      assert.is_nil(m.actionId)
    end)

    it("applies compat tags inside data fields in tagged mode", function()
      local out = core.cbor_encode({ "$Uint8Array", "AQID" }, false)
      local frame = X"04 00 02 05" .. bare_data(out)
      assert.are.equal("\1\2\3", core.decode_to_client("bare", frame, true).output)
      assert.are.equal("$Uint8Array", core.decode_to_client("bare", frame, false).output[1])
    end)
  end)

  describe("JSON (§9.4)", function()
    it("encodes requests byte for byte", function()
      assert.are.equal('{"body":{"tag":"SubscriptionRequest","val":{"eventName":"newCount","subscribe":true}}}',
        core.encode_to_server("json", { tag = "SubscriptionRequest", eventName = "newCount", subscribe = true }))
      assert.are.equal('{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","0"],"name":"increment","args":[1]}}}',
        core.encode_to_server("json", { tag = "ActionRequest", id = 0, name = "increment", args = { 1 } }))
    end)

    it("decodes every frame", function()
      local m = assert(core.decode_to_client("json",
        '{"body":{"tag":"Init","val":{"actorId":"b0aef2fe7cf6d48d",'
        .. '"connectionId":"66c8f215-65db-4159-bf2b-91911fd88ec5"}}}'))
      assert.are.same(
        { tag = "Init", actorId = "b0aef2fe7cf6d48d", connectionId = "66c8f215-65db-4159-bf2b-91911fd88ec5" }, m)
      m = assert(core.decode_to_client("json", '{"body":{"tag":"Event","val":{"name":"newCount","args":[15]}}}'))
      assert.are.equal("newCount", m.name)
      assert.are.equal(15, m.args[1])
      m = assert(core.decode_to_client("json",
        '{"body":{"tag":"ActionResponse","val":{"id":["$BigInt","0"],"output":15}}}'))
      assert.are.equal(0, m.id)
      assert.are.equal("integer", ints.type(m.id))
      assert.are.equal(15, m.output)
      m = assert(core.decode_to_client("json", '{"body":{"tag":"ActionResponse","val":{"id":7}}}'))
      assert.are.equal(7, m.id)
      assert.are.equal(core.null, m.output)
      m = assert(core.decode_to_client("json",
        '{"body":{"tag":"Error","val":{"group":"user","code":"my_code","message":"bad thing","metadata":{"a":1},'
        .. '"actionId":["$BigInt","1"]}}}'))
      assert.are.equal(1, m.actionId)
      assert.are.equal(1, m.metadata.a)
      assert.is_nil(m.actor)
      m = assert(core.decode_to_client("json",
        '{"body":{"tag":"Error","val":{"actionId":["$BigInt","1"],'
        .. '"actor":{"actorId":"5vuzl00","generation":3,"key":"bench"},'
        .. '"code":"my_code","group":"user","message":"bad thing","metadata":{"a":1}}}}'))
      assert.are.same({ actorId = "5vuzl00", generation = 3, key = "bench" }, m.actor)
      m = assert(core.decode_to_client("json",
        '{"body":{"tag":"Error","val":{"actionId":null,"code":"forbidden","group":"user",'
        .. '"message":"forbidden by onBeforeConnect","metadata":{"reason":"bad token"}}}}'))
      assert.is_nil(m.actionId)
      assert.are.equal("bad token", m.metadata.reason)
      assert.is_nil(m.version)
    end)
  end)

  describe("CBOR (§9.5)", function()
    it("writes action ids in the 8-byte form", function()
      assert.are.equal(X"a1 64" .. "body" .. X"a2 63" .. "tag" .. X"6d" .. "ActionRequest" .. X"63" .. "val" .. X"a3 62"
        .. "id" .. X"1b 00 00 00 00 00 00 00 00 64" .. "name" .. X"69" .. "increment" .. X"64" .. "args" .. X"81 01",
        core.encode_to_server("cbor", { tag = "ActionRequest", id = 0, name = "increment", args = { 1 } }))
      assert.are.equal(X"a1 64" .. "body" .. X"a2 63" .. "tag" .. X"73" .. "SubscriptionRequest" .. X"63" .. "val"
        .. X"a2 69" .. "eventName" .. X"68" .. "newCount" .. X"69" .. "subscribe" .. X"f5",
        core.encode_to_server("cbor", { tag = "SubscriptionRequest", eventName = "newCount", subscribe = true }))
    end)

    it("decodes the 2.3 and 2.0 frames", function()
      local id30 = "9ahquvlckwgncggyvpqk29l0yecl00"
      local conn = "66c8f215-65db-4159-bf2b-91911fd88ec5"
      local m = assert(core.decode_to_client("cbor", X"a1 64" .. "body" .. X"a2 63" .. "tag" .. X"64" .. "Init" .. X"63"
        .. "val" .. X"a2 67" .. "actorId" .. X"78 1e" .. id30 .. X"6c" .. "connectionId" .. X"78 24" .. conn, true))
      assert.are.same({ tag = "Init", actorId = id30, connectionId = conn }, m)
      m = assert(core.decode_to_client("cbor", X"a1 64" .. "body" .. X"a2 63" .. "tag" .. X"65" .. "Event" .. X"63"
        .. "val" .. X"a2 64" .. "name" .. X"68" .. "newCount" .. X"64" .. "args" .. X"81 19 01 15", true))
      assert.are.equal(277, m.args[1])
      m = assert(core.decode_to_client("cbor", X"a1 64" .. "body" .. X"a2 63" .. "tag" .. X"6e" .. "ActionResponse"
        .. X"63" .. "val" .. X"a2 62" .. "id" .. X"1b 00 00 00 00 00 00 00 00 66" .. "output" .. X"19 01 15", true))
      assert.are.same({ tag = "ActionResponse", id = 0, output = 277 }, m)
      m = assert(core.decode_to_client("cbor", X"b9 00 01 64" .. "body" .. X"b9 00 02 63" .. "tag" .. X"6e"
        .. "ActionResponse" .. X"63" .. "val" .. X"b9 00 02 62" .. "id" .. X"1b 00 00 00 00 00 00 00 05 66" .. "output"
        .. X"d8 40 42 01 02", false))
      assert.are.equal(5, m.id)
      assert.are.equal("\1\2", m.output)
    end)
  end)
end)

describe("hostile input", function()
  local valid = {
    { "bare", X"02 00 00 10" .. "7b69b7c8f5e274d6" .. X"24" .. "c7264795-94f2-4c66-8213-2be01c4617fc" },
    { "bare", X"02 00 03 08" .. "newCount" .. X"02 81 0e" },
    { "bare", X"02 00 02 00 01 0e" },
    { "bare", X"04 00 01 05" .. "actor" .. X"10" .. "action_not_found" .. X"1c" .. "Action `nope` was not found."
      .. X"00 01 02 01 1e" .. "dh904ivlwdp56evwk868v7dilnbl00" .. X"01 01 08" .. "cap/bare" },
    { "json", '{"body":{"tag":"ActionResponse","val":{"id":["$BigInt","0"],"output":15}}}' },
    { "cbor", X"a1 64" .. "body" .. X"a2 63" .. "tag" .. X"6e" .. "ActionResponse" .. X"63" .. "val" .. X"a2 62"
      .. "id" .. X"1b 00 00 00 00 00 00 00 00 66" .. "output" .. X"19 01 15" },
  }

  it("rejects every truncation of valid frames", function()
    for _, f in ipairs(valid) do
      assert.is_table(core.decode_to_client(f[1], f[2], true))
      for n = 0, #f[2] - 1 do
        local m, err = core.decode_to_client(f[1], f[2]:sub(1, n), true)
        assert.is_nil(m, f[1] .. " prefix " .. n)
        assert.is_string(err)
      end
      local m, err = core.decode_to_client(f[1], f[2] .. "\0", true)
      assert.is_nil(m)
      assert.truthy(err:match("trailing"), err)
    end
  end)

  it("rejects unknown tags, bad versions, absurd varints and lengths", function()
    local bad = {
      { "bare", X"02 00 04" },                              -- unknown union tag
      { "bare", X"02 00 c8 01" },                           -- tag 200
      { "bare", X"02 00 ff ff ff ff ff ff ff ff ff ff 01" }, -- varint of 11 bytes
      { "bare", X"02 00 02 ff ff ff ff ff ff ff ff ff 02" }, -- id overflows 64 bits
      { "bare", X"02 00 02 ff ff ff ff ff ff ff ff ff 01 01 00" }, -- id 2^64-1 > int64
      { "bare", X"02 00 03 ff ff ff ff ff ff ff ff 7f" },   -- string length 2^63
      { "bare", X"02 00 02 00 ff ff ff ff 0f 00" },         -- data length 4 GB
      { "bare", X"02 00 02 00 02 01 02" },                  -- data with two CBOR items
      { "bare", X"02 00 03 01" .. "x" .. X"01 01" },        -- Event args not an array
      { "bare", X"02 00 01 01" .. "a" .. X"01" .. "b" .. X"00 02" }, -- optional flag 2
      { "bare", X"00 00 02 00 01 0e" },                     -- version 0
      { "bare", X"05 00 02 00 01 0e" },                     -- version 5
      { "bare", "" },
      { "json", '{"body":{"tag":"Nope","val":{}}}' },
      { "json", '{"body":{"tag":"ActionResponse","val":{"id":-1}}}' },
      { "json", '{"body":{"tag":"ActionResponse","val":{"id":1.5}}}' },
      { "json", '{"body":{"tag":"ActionResponse","val":{"id":["$BigInt","x"]}}}' },
      { "json", '{"body":{"tag":"Init","val":{"actorId":1}}}' },
      { "json", '{"body":{"tag":"Event","val":{"name":"x","args":5}}}' },
      { "json", '{"body":1}' },
      { "json", '[1,2]' },
      { "json", 'null' },
      { "cbor", X"a1 64" .. "body" .. X"a2 63" .. "tag" .. X"64" .. "Nope" .. X"63" .. "val" .. X"a0" },
      { "cbor", X"f6" },
    }
    for _, b in ipairs(bad) do
      local m, err = core.decode_to_client(b[1], b[2], true)
      assert.is_nil(m, b[1] .. " " .. hex(b[2]))
      assert.is_string(err)
    end
    assert.is_nil((core.decode_http_error("bare", X"05 00 01 61 01 62 01 63 00")))
    assert.is_nil((core.decode_http_error("bare", X"02 00 01 61 01 62 01 63 00 00")))
    assert.is_nil((core.decode_http_action_response("bare", X"02 00 05 01")))
    assert.is_nil((core.decode_http_action_response("json", "[")))
    assert.is_nil((core.decode_http_action_response("cbor", X"82 01")))
    assert.is_nil((core.decode_http_action_response("json", "5")))
  end)

  it("survives random and mutated bytes", function()
    math.randomseed(12345)
    local decoders = {
      function(s) return core.decode_to_client("bare", s, true) end,
      function(s) return core.decode_to_client("cbor", s, false) end,
      function(s) return core.decode_to_client("json", s) end,
      function(s) return core.cbor_decode(s, true) end,
      function(s) return core.json_decode(s) end,
      function(s) return core.decode_http_error("bare", s, true) end,
    }
    local function check(fn, s)
      local ok, v, err = pcall(fn, s)
      assert.is_true(ok, "decoder raised: " .. tostring(v))
      if v == nil then assert.is_string(err) end
    end
    for _ = 1, 1500 do
      local n = math.random(0, 40)
      local t = {}
      for i = 1, n do t[i] = string.char(math.random(0, 255)) end
      local s = table.concat(t)
      for _, fn in ipairs(decoders) do check(fn, s) end
    end
    for _, f in ipairs(valid) do
      for _ = 1, 300 do
        local s = f[2]
        local i = math.random(1, #s)
        s = s:sub(1, i - 1) .. string.char(math.random(0, 255)) .. s:sub(i + 1)
        for _, fn in ipairs(decoders) do check(fn, s) end
      end
    end
  end)
end)

describe("base64", function()
  it("encodes and decodes both alphabets", function()
    assert.are.equal("", core.base64_encode(""))
    assert.are.equal("YQ==", core.base64_encode("a"))
    assert.are.equal("YWI=", core.base64_encode("ab"))
    assert.are.equal("YWJj", core.base64_encode("abc"))
    assert.are.equal("uQABZWhlbGxvYXg=", core.base64_encode(X"b9 00 01 65 68 65 6c 6c 6f 61 78"))
    assert.are.equal("uQABZWhlbGxvYXg", core.base64url_encode(X"b9 00 01 65 68 65 6c 6c 6f 61 78"))
    assert.are.equal("-_8", core.base64url_encode("\251\255"))
    assert.are.equal("+/8=", core.base64_encode("\251\255"))
    assert.are.equal("\251\255", core.base64_decode("-_8"))
    assert.are.equal("\251\255", core.base64_decode("+/8="))
    assert.are.equal("a", core.base64_decode("YQ"))
    for _ = 1, 200 do
      local t = {}
      for i = 1, math.random(0, 50) do t[i] = string.char(math.random(0, 255)) end
      local s = table.concat(t)
      assert.are.equal(s, core.base64_decode(core.base64_encode(s)))
      assert.are.equal(s, core.base64_decode(core.base64url_encode(s)))
    end
  end)

  it("rejects invalid base64 with nil, err", function()
    for _, s in ipairs({ "Y", "YQ===", "Y=Q=", "YQ*=", "a b=" }) do
      local v, err = core.base64_decode(s)
      assert.is_nil(v, s)
      assert.is_string(err)
    end
  end)
end)
