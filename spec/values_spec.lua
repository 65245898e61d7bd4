-- Value round trips through a real actor (echo), identical in every encoding.
local rivet = require("rivet")
local env = require("spec.support.env")
local ints = require("spec.support.ints") -- integers on Lua 5.4 and LuaJIT alike
local I, P = ints.I, ints.P

-- LuaJIT has no integer subtype: beyond 2^53 integers are int64_t / uint64_t cdata
-- (docs/values.md, "Integers on LuaJIT"). These specs need cdata; on Lua 5.4 they are
-- listed as pending with the reason.
local jit_it = ints.luajit and it
  or function(name) pending(name .. " (LuaJIT only: int64_t / uint64_t cdata)") end
local ffi = ints.luajit and require("ffi")
local function ctype_of(v)
  if type(v) ~= "cdata" then return type(v) end
  if ffi.istype("int64_t", v) then return "int64_t" end
  if ffi.istype("uint64_t", v) then return "uint64_t" end
  return "other cdata"
end

local function bin(n)
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = string.char(i % 256) end
  return table.concat(t)
end

for _, enc in ipairs(env.encodings) do
  describe("values (" .. env.server .. ", " .. enc .. ")", function()
    local client, echo
    setup(function()
      client = env.client(enc)
      echo = client.echo:getOrCreate(env.key("echo-" .. enc))
    end)
    teardown(function() client:dispose() end)

    it("keeps integers integers, up to 64 bits", function()
      for _, n in ipairs({ 0, 1, -1, 255, 65536, P(31), P(40), P(53), I"9007199254740993",
        I"-9007199254740993", ints.MAX, ints.MIN }) do
        local got = echo:echo(n)
        assert.are.equal(n, got)
        assert.are.equal("integer", ints.type(got), "for " .. tostring(n))
      end
    end)

    it("sends integers up to 2^53 as JavaScript numbers and larger ones as BigInt", function()
      assert.are.equal("number", echo:typeOf(42))
      assert.are.equal("number", echo:typeOf(P(40)))
      assert.are.equal("bigint", echo:typeOf(I"9007199254740993"))
    end)

    it("receives a BigInt from the actor as an integer", function()
      local v = echo:makeBigInt()
      assert.are.equal(I"9007199254740993", v)
      assert.are.equal("integer", ints.type(v))
    end)

    it("keeps floats exact", function()
      -- 2^60: a float beyond 2^53 is the same double again, in JSON too (1152921504606847000)
      for _, x in ipairs({ 0.5, -0.1, 3.141592653589793, 1e300, -2.4999999999999999e-07, 1 / 3, 2 ^ 60, -2 ^ 60 }) do
        local got = echo:echo(x)
        assert.are.equal(x, got)
        assert.are.equal("float", ints.type(got))
      end
    end)

    it("keeps strings, unicode and 200 KB strings", function()
      assert.are.equal("", echo:echo(""))
      assert.are.equal("héllo wörld ✓ 𝄞", echo:echo("héllo wörld ✓ 𝄞"))
      local big = string.rep("abcdefghij", 20 * 1024)
      assert.are.equal(big, echo:echo(big))
      local made = echo:bigString(200 * 1024)
      assert.are.equal(200 * 1024, #made)
    end)

    it("sends binary strings and rivet.bytes as bytes and gets Lua strings back", function()
      local b = bin(300)
      assert.are.equal("Uint8Array", echo:typeOf(b))
      assert.are.equal(b, echo:echo(b))
      assert.are.equal("Uint8Array", echo:typeOf(rivet.bytes("plain ascii")))
      assert.are.equal("plain ascii", echo:echo(rivet.bytes("plain ascii")))
      assert.are.equal(bin(10), echo:makeBytes(10))
    end)

    it("keeps booleans and null", function()
      assert.are.equal(true, echo:echo(true))
      assert.are.equal(false, echo:echo(false))
      assert.is_nil(echo:echo(nil))
      assert.are.equal("null", echo:typeOf(rivet.null))
      local arr = echo:echo({ 1, rivet.null, 3 })
      assert.are.equal(3, #arr)
      assert.are.equal(rivet.null, arr[2])
    end)

    it("keeps nested maps and arrays", function()
      local v = { name = "x", list = { 1, 2, { deep = { "a", "b" } } }, map = { a = { b = { c = 1.5 } } } }
      assert.are.same(v, echo:echo(v))
    end)

    it("keeps empty arrays and empty maps apart", function()
      local got = echo:echo({ a = rivet.array(), m = rivet.map() })
      assert.is_true(rivet.isArray(got.a))
      assert.is_false(rivet.isArray(got.m))
      assert.are.equal("array", echo:typeOf(rivet.array()))
      assert.are.equal("object", echo:typeOf(rivet.map()))
      assert.are.equal("object", echo:typeOf({}))
      -- a decoded empty array stays an array when sent again
      assert.are.equal("array", echo:typeOf(got.a))
    end)

    it("passes several arguments and arrays that look like compat tags", function()
      local all = echo:echoAll(1, "two", { 3 })
      assert.are.same({ 1, "two", { 3 } }, all)
      local tricky = { "$BigInt", "5" }
      assert.are.same(tricky, echo:echo(tricky))
    end)

    jit_it("round-trips integers beyond 2^53 exactly as int64_t / uint64_t cdata", function()
      for _, n in ipairs({ I"9007199254740993", I"-9007199254740993", I"1234567890123456789", ints.MAX,
        ints.MIN, I"9223372036854775808", I"18446744073709551615" }) do
        local got = echo:echo(n)
        assert.are.equal(ctype_of(n), ctype_of(got), "for " .. tostring(n))
        assert.are.equal(tostring(n), tostring(got))
        assert.are.equal("bigint", echo:typeOf(n), "for " .. tostring(n))
      end
      -- what the actor makes itself
      local v = echo:makeBigInt()
      assert.are.equal("int64_t", ctype_of(v))
      assert.are.equal("9007199254740993LL", tostring(v))
      -- inside tables and as several arguments, too
      local all = echo:echoAll(I"-9007199254740995", { n = I"18446744073709551614" }, { ints.MIN })
      assert.are.equal("-9007199254740995LL", tostring(all[1]))
      assert.are.equal("18446744073709551614ULL", tostring(all[2].n))
      assert.are.equal("-9223372036854775808LL", tostring(all[3][1]))
      -- and over a connection
      local conn = echo:connect()
      local back = conn:echoAll(I"18446744073709551615", I"-9007199254740993")
      assert.are.equal("18446744073709551615ULL", tostring(back[1]))
      assert.are.equal("-9007199254740993LL", tostring(back[2]))
      conn:dispose()
    end)

    jit_it("sends int64_t / uint64_t cdata as integers, small ones as numbers", function()
      assert.are.same({ "number", "number", "bigint", "bigint" },
        echo:typesOf(ffi.new("int64_t", 5), ffi.new("uint64_t", 7), I"9007199254740993", I"18446744073709551615"))
      local got = echo:echo(ffi.new("int64_t", -42))
      assert.are.equal("number", type(got))
      assert.are.equal(-42, got)
      -- a plain number beyond 2^53 is the double it is: a JavaScript number, unchanged
      assert.are.equal("number", echo:typeOf(2 ^ 60))
      assert.are.equal(2 ^ 60, echo:echo(2 ^ 60))
      assert.are.equal("number", type(echo:echo(2 ^ 60)))
    end)

    jit_it("refuses cdata that are not 64-bit integers before sending", function()
      for _, v in ipairs({ ffi.new("int32_t", 1), ffi.new("double", 1.5), ffi.new("char[4]") }) do
        local ok, err = pcall(echo.echo, echo, { x = v })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("cannot encode a cdata value that is not an int64_t or uint64_t", 1, true),
          err)
      end
    end)

    it("raises a plain Lua error for values that cannot be sent", function()
      local ok, err = pcall(echo.echo, echo, function() end)
      assert.is_false(ok)
      assert.is_string(err)
      assert.truthy(err:find("function"), err)
      ok, err = pcall(echo.echo, echo, coroutine.create(function() end))
      assert.is_false(ok)
      assert.truthy(err:find("thread"), err)
      local cyclic = {}
      cyclic.self = cyclic
      ok, err = pcall(echo.echo, echo, cyclic)
      assert.is_false(ok)
      assert.is_string(err)
    end)
  end)
end
