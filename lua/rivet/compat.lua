-- What Lua 5.4 and LuaJIT 2.1 (the 5.1 language) spell differently, in one place, so
-- that every other file of the library parses and runs on both.
local M = {}

--- table.pack: {n = select("#", ...), ...}.
M.pack = table.pack or function(...) return { n = select("#", ...), ... } end

--- table.unpack (5.1: the global unpack).
M.unpack = table.unpack or unpack -- luacheck: ignore 113

--- Monotonic seconds, the clock of every deadline (core.now). On LuaJIT on Linux it is
--- read through the FFI: a classic C function ends a JIT trace at every call (the library
--- calls now() several times per action), an FFI call is compiled into the trace. Same
--- clock and arithmetic as rv_mono_now (csrc/loop.c), so the two are interchangeable;
--- core.now wherever the FFI is missing or clock_gettime was declared differently by
--- someone else (the FFI clock is tried once).
M.now = require("rivet.core").now
do
  local jit_ = rawget(_G, "jit")
  local okf, ffi = false, nil
  if jit_ and jit_.os == "Linux" then okf, ffi = pcall(require, "ffi") end
  if okf then
    pcall(ffi.cdef, "typedef struct { long tv_sec; long tv_nsec; } rivet_timespec;"
      .. " int clock_gettime(int clk_id, rivet_timespec *tp);")
    local ok, ts = pcall(ffi.new, "rivet_timespec")
    if ok then
      local C = ffi.C
      local now
      -- Reading a 64-bit field boxes it (a cdata allocation) wherever the code runs in
      -- the interpreter rather than in a trace: 48 bytes per now(), a third of what a
      -- connection action allocated. On a little-endian 64-bit ABI the same two longs
      -- read as 32-bit halves are plain numbers, and the sum is the same double.
      if ffi.abi("le") and ffi.abi("64bit") and ffi.sizeof("long") == 8 then
        local w = ffi.cast("const uint32_t *", ts)
        function now()
          C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
          return (w[0] + w[1] * 4294967296) + w[2] / 1e9
        end
      else
        function now()
          C.clock_gettime(1, ts)
          return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
        end
      end
      if pcall(now) then M.now = now end
    end
  end
end

local math_type = math.type
local floor = math.floor

--- True when v is an integer: the integer subtype on 5.4; on LuaJIT, which has no
--- subtype, an integral number within ±2^53 (exact as a double).
if math_type then
  function M.is_integer(v) return math_type(v) == "integer" end
else
  function M.is_integer(v)
    return type(v) == "number" and v == floor(v) and v >= -9007199254740992 and v <= 9007199254740992
  end
end

--- Makes obj's metatable __gc run on LuaJIT too: Lua 5.4 calls __gc for tables, the
--- 5.1 language only for userdata, so there a proxy userdata stored in obj carries it
--- (it and obj become unreachable together). The proxies share one metatable and find
--- obj in their environment (a 5.1 userdata has one): no closure per object, which
--- LuaJIT could not compile.
local newproxy = rawget(_G, "newproxy")
if newproxy then
  local getfenv, setfenv = debug.getfenv, debug.setfenv
  local template = newproxy(true)
  getmetatable(template).__gc = function(p)
    if p == template then return end
    local obj = getfenv(p)
    local gc = getmetatable(obj).__gc
    if gc then gc(obj) end
  end
  function M.collectable(obj)
    local p = newproxy(template)
    setfenv(p, obj)
    rawset(obj, "_gc_proxy", p)
    return obj
  end
else
  function M.collectable(obj) return obj end
end

--- Whether s is valid UTF-8 (utf8.len where the library has it).
if utf8 and utf8.len then
  local len = utf8.len
  function M.valid_utf8(s) return len(s) ~= nil end
else
  local byte = string.byte
  -- RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF
  function M.valid_utf8(s)
    local i, n = 1, #s
    while i <= n do
      local c = byte(s, i)
      if c < 0x80 then
        i = i + 1
      else
        local need, lo, hi
        if c >= 0xC2 and c <= 0xDF then
          need, lo, hi = 1, 0x80, 0xBF
        elseif c == 0xE0 then
          need, lo, hi = 2, 0xA0, 0xBF
        elseif c == 0xED then
          need, lo, hi = 2, 0x80, 0x9F
        elseif c >= 0xE1 and c <= 0xEF then
          need, lo, hi = 2, 0x80, 0xBF
        elseif c == 0xF0 then
          need, lo, hi = 3, 0x90, 0xBF
        elseif c >= 0xF1 and c <= 0xF3 then
          need, lo, hi = 3, 0x80, 0xBF
        elseif c == 0xF4 then
          need, lo, hi = 3, 0x80, 0x8F
        else
          return false
        end
        if i + need > n then return false end
        local c2 = byte(s, i + 1)
        if c2 < lo or c2 > hi then return false end
        for k = i + 2, i + need do
          local ck = byte(s, k)
          if ck < 0x80 or ck > 0xBF then return false end
        end
        i = i + need + 1
      end
    end
    return true
  end
end

return M
