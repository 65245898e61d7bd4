-- Offline seeds next to the captured ones (fuzz/capture.lua): values encoded with the
-- library's own encoders, close reasons of both lines as protocol.md §9.9 lists them, and
-- generator inputs for value_roundtrip (a fixed pseudo-random sequence).
--   lua5.4 fuzz/make_seeds.lua [OUTDIR]      (default fuzz/corpus)
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local core = require("rivet.core")
local rivet = require("rivet")
local out_dir = arg[1] or "fuzz/corpus"

local function fnv(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do h = ((h ~ s:byte(i)) * 0x100000001b3) & 0xffffffffffffffff end
  return string.format("%016x", h)
end
local function seed(target, bytes)
  os.execute("mkdir -p " .. out_dir .. "/" .. target)
  local f = assert(io.open(out_dir .. "/" .. target .. "/gen-" .. fnv(bytes), "wb"))
  f:write(bytes)
  f:close()
end

local VALUES = {
  rivet.null, true, 0, -1, 23, 24, 255, 65536, 2 ^ 31, 9007199254740993, math.mininteger, 0.1, -0.0, 1e300,
  "", "é€😀", "$BigInt", rivet.bytes("\0\255"), { 1, "two", { 3 } }, { a = { b = { c = rivet.null } } },
  { "$Uint8Array", "AAE=" }, { "$$x", 1 }, rivet.array({}), rivet.map({}),
}
for _, v in ipairs(VALUES) do
  seed("cbor_value", "\0" .. core.cbor_encode(v, false))
  seed("cbor_value", "\1" .. core.cbor_encode(v, true))
  seed("json_value", "\1" .. core.json_encode(v, true))
end
seed("json_value", "\1" .. '[["$BigInt","123456789012345678901"],["$Uint8Array","AP8="],["$Set",[1]],["$$x"]]')
seed("json_value", "\0" .. '{"a":[1,2.5,-3e10,true,false,null,"\\u00e9\\ud83d\\ude00"]}')

local function u16(n) return string.char(n >> 8 & 0xff, n & 0xff) end
-- cfg: encoding + 3 * (line 2.0); 64: no code; 128: handshake failed
for enc = 0, 2 do
  for _, r in ipairs({ "actor.not_found", "actor.not_found#ray-1", "guard.actor_destroyed", "a.b.c#", ".x", "x.", "#",
                       "ws.message_too_big", "" }) do
    seed("close_reason", string.char(enc) .. u16(1011) .. r)
    seed("close_reason", string.char(enc) .. u16(1000) .. r)
  end
  for _, r in ipairs({ "internal_error", "forbidden", "incoming_too_long", "outgoing_too_long", "Disposed", "" }) do
    seed("close_reason", string.char(enc + 3) .. u16(1011) .. r)
  end
  seed("close_reason", string.char(enc + 64) .. u16(0))
  seed("close_reason", string.char(enc + 128 + 3) .. u16(1006))
end

local x = 12345
for _ = 1, 24 do
  local t = {}
  for i = 1, 64 do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(x >> 16 & 0xff)
  end
  seed("value_roundtrip", table.concat(t))
end
