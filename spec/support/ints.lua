-- Integers in specs that run on Lua 5.4 and on LuaJIT.
--
-- LuaJIT has no integer subtype and cannot parse 5.4's bitwise operators, and a literal
-- beyond 2^53 silently rounds there. The specs write such values through this module:
--   I("9007199254740993")  the integer with that decimal text: a 5.4 integer; on LuaJIT a
--                          number within ±2^53, else int64_t (uint64_t above INT64_MAX)
--                          cdata, as rivet.core decodes it (docs/values.md)
--   P(n)                   2^n as such an integer (0 <= n <= 62)
--   MAX, MIN               math.maxinteger / math.mininteger
--   type(v)                math.type(v); on LuaJIT "integer" for an integral number within
--                          ±2^53 or an int64_t / uint64_t cdata, "float" for any other
--                          number, nil otherwise
local M = {}

M.luajit = rawget(_G, "jit") ~= nil

local floor = math.floor
local SAFE = 9007199254740992 -- 2^53

if not M.luajit then
  M.type = math.type
  function M.I(s)
    local v = math.tointeger(tonumber(s))
    assert(v, "not a 64-bit integer: " .. s)
    return v
  end
  function M.P(n) return math.tointeger(2 ^ n) end
else
  local ffi = require("ffi")
  local i64, u64 = ffi.typeof("int64_t"), ffi.typeof("uint64_t")

  function M.type(v)
    if type(v) == "number" then
      if v == floor(v) and v >= -SAFE and v <= SAFE then return "integer" end
      return "float"
    end
    if type(v) == "cdata" and (ffi.istype(i64, v) or ffi.istype(u64, v)) then return "integer" end
    return nil
  end

  function M.I(s)
    local neg = s:sub(1, 1) == "-"
    local digits = neg and s:sub(2) or s
    assert(digits:match("^%d+$"), "not an integer: " .. s)
    -- exact: accumulate in 64 bits (towards the sign, so that INT64_MIN is reachable)
    local unsigned = not neg and (#digits > 19 or (#digits == 19 and digits > "9223372036854775807"))
    local v = unsigned and u64(0) or i64(0)
    for c in digits:gmatch("%d") do
      if neg then v = v * 10 - tonumber(c) else v = v * 10 + tonumber(c) end
    end
    if v >= -SAFE and v <= SAFE then return tonumber(v) end
    return v
  end

  function M.P(n)
    assert(n >= 0 and n <= 62)
    if n <= 53 then return 2 ^ n end
    return i64(2 ^ n)
  end
end

M.MAX = M.I("9223372036854775807")
M.MIN = M.I("-9223372036854775808")

return M
