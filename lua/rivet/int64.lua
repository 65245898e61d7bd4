-- LuaJIT only: 64-bit integers beyond ±2^53 as int64_t / uint64_t cdata.
--
-- rivet.core decodes integers exactly (docs/values.md, "Integers on LuaJIT"): within
-- ±2^53 they are plain numbers; larger ones must be cdata, and C cannot create cdata.
-- The core requires this module the first time it meets such an integer and keeps
-- M.box in the registry. Encoding needs no Lua code: the core reads int64_t / uint64_t
-- cdata through their tostring ("123LL" / "123ULL").
local ffi = require("ffi")
local bit = require("bit")

local u64 = ffi.typeof("uint64_t")
local i64 = ffi.typeof("int64_t")
local bor, lshift = bit.bor, bit.lshift

local M = {}

--- The 64-bit value whose upper and lower 32 bits are hi and lo (numbers in [0, 2^32)):
--- an int64_t (two's complement) when signed is true, else a uint64_t.
function M.box(hi, lo, signed)
  local v = bor(lshift(u64(hi), 32), u64(lo))
  if signed then return i64(v) end
  return v
end

--- True when v is an int64_t or uint64_t cdata (what the core sends as an integer).
function M.is_int64(v)
  return type(v) == "cdata" and (ffi.istype(i64, v) or ffi.istype(u64, v))
end

return M
