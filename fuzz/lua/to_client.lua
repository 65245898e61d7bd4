-- ToClient WebSocket messages (Init, ActionResponse, Event, Error) of both server lines
-- (BARE versions 2.0 and 2.3 are in the bytes), in every encoding.
-- Input: byte 1 = encoding (% 3: bare, cbor, json) + 4 * tagged; the rest is the frame.
local ENCS = { "bare", "cbor", "json" }
local TAGS = { Init = true, ActionResponse = true, Event = true, Error = true }
function fuzz(data)
  local b = data:byte(1) or 0
  local enc, tagged = ENCS[b % 3 + 1], b & 4 ~= 0
  local msg = decode(core.decode_to_client, enc, data:sub(2), tagged)
  if msg == nil then return end
  if type(msg) ~= "table" then finding("decoded message is a %s", type(msg)) end
  if not TAGS[msg.tag] then finding("decoded message has tag %s", tostring(msg.tag)) end
end
