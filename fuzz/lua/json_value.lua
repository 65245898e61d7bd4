-- JSON values with the compat tags ($BigInt, $Uint8Array, $-escapes) or without: decode,
-- and encode -> decode reaches a fixed point (also through the ASCII-only encoder).
-- Input: byte 1 bit 0 = tagged; the rest is JSON text.
function fuzz(data)
  local tagged = (data:byte(1) or 0) & 1 ~= 0
  local v = decode(core.json_decode, data:sub(2), tagged)
  if v == nil then return end
  local function dec(s) return core.json_decode(s, tagged) end
  fixpoint(function(x) return core.json_encode(x, tagged) end, dec, v, "json")
  fixpoint(function(x) return core.json_encode_ascii(x, tagged) end, dec, v, "json ascii")
end
