-- CBOR values (action outputs, event args, metadata): decode, and encode -> decode reaches
-- a fixed point. Input: byte 1 bit 0 = tagged (2.3's JSON-compat tags inside CBOR).
function fuzz(data)
  local tagged = (data:byte(1) or 0) & 1 ~= 0
  local v = decode(core.cbor_decode, data:sub(2), tagged)
  if v == nil then return end
  fixpoint(function(x) return core.cbor_encode(x, tagged) end, function(s) return core.cbor_decode(s, tagged) end, v, "cbor")
end
