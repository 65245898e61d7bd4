-- Value round trips through a real actor (echo), identical in every encoding.
local rivet = require("rivet")
local env = require("spec.support.env")

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
      for _, n in ipairs({ 0, 1, -1, 255, 65536, 2 ^ 31 | 0, 1 << 40, (1 << 53), (1 << 53) + 1,
        -((1 << 53) + 1), math.maxinteger, math.mininteger }) do
        local got = echo:echo(n)
        assert.are.equal(n, got)
        assert.are.equal("integer", math.type(got), "for " .. tostring(n))
      end
    end)

    it("sends integers up to 2^53 as JavaScript numbers and larger ones as BigInt", function()
      assert.are.equal("number", echo:typeOf(42))
      assert.are.equal("number", echo:typeOf(1 << 40))
      assert.are.equal("bigint", echo:typeOf((1 << 53) + 1))
    end)

    it("receives a BigInt from the actor as an integer", function()
      local v = echo:makeBigInt()
      assert.are.equal(9007199254740993, v)
      assert.are.equal("integer", math.type(v))
    end)

    it("keeps floats exact", function()
      for _, x in ipairs({ 0.5, -0.1, 3.141592653589793, 1e300, -2.4999999999999999e-07, 1 / 3 }) do
        local got = echo:echo(x)
        assert.are.equal(x, got)
        assert.are.equal("float", math.type(got))
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
