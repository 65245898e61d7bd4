-- Generated Lua values (fuzz/lua/common.lua: gen) within what docs/values.md promises
-- travel unchanged: encode -> decode must give them back (bytes as strings, integral
-- floats as integers) in CBOR without tags (2.0), CBOR with tags (2.3) and JSON; the
-- encoders must accept them. Also base64 both ways, and an ActionRequest that encodes.
-- Input: the generator's bytes.
local MODES = {
  { "cbor", function(v) return core.cbor_encode(v, false) end, function(s) return core.cbor_decode(s, false) end },
  { "cbor tagged", function(v) return core.cbor_encode(v, true) end, function(s) return core.cbor_decode(s, true) end },
  { "json", function(v) return core.json_encode(v, true) end, function(s) return core.json_decode(s, true) end, true },
  { "json ascii", function(v) return core.json_encode_ascii(v, true) end, function(s) return core.json_decode(s, true) end, true },
}
function fuzz(data)
  local r = reader(data)
  local m = MODES[r.u8() % #MODES + 1]
  local v = gen(r, 4, { json = m[4] })
  local ok, e = pcall(m[2], v)
  if not ok then finding("%s: the encoder refused a value it documents: %s", m[1], tostring(e)) end
  local got, err = decode(m[3], e)
  if got == nil then finding("%s: own encoding does not decode: %s", m[1], err) end
  same_sent(expected(v), got, m[1])

  local s = data
  local b = core.base64_encode(s)
  if decode(core.base64_decode, b) ~= s then finding("base64 round trip") end
  if decode(core.base64_decode, core.base64url_encode(s)) ~= s then finding("base64url round trip") end
  decode(core.base64_decode, s) -- arbitrary text: nil, err or bytes, never a raise
end
