-- HTTP action responses and HTTP error bodies of both server lines, in every encoding.
-- Input: byte 1 = encoding (% 3) + 4 * tagged + 8 * (error body); the rest is the body.
local ENCS = { "bare", "cbor", "json" }
function fuzz(data)
  local b = data:byte(1) or 0
  local enc, tagged, is_err = ENCS[b % 3 + 1], b & 4 ~= 0, b & 8 ~= 0
  local body = data:sub(2)
  if is_err then
    local e = decode(core.decode_http_error, enc, body, tagged)
    if e ~= nil then
      if type(e) ~= "table" then finding("decoded error is a %s", type(e)) end
      for _, f in ipairs({ "group", "code", "message" }) do
        if e[f] ~= nil then check_text(e[f], f) end
      end
    end
  else
    local ok, out = decode(core.decode_http_action_response, enc, body, tagged)
    if ok ~= nil and ok ~= true then finding("decode_http_action_response returned %s", tostring(ok)) end
    if ok == nil then return end
    -- the output goes back to the server as an argument: it must encode and stay the same
    if enc == "json" then
      fixpoint(function(v) return core.json_encode(v, true) end, function(s) return core.json_decode(s, true) end, out, "output")
    else
      fixpoint(function(v) return core.cbor_encode(v, tagged) end, function(s) return core.cbor_decode(s, tagged) end, out, "output")
    end
  end
end
