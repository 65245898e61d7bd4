-- WebSocket client framing over a cosocket (RFC 6455): the opening handshake with the
-- subprotocol check protocol.md needs, masked frames out, frames in with bounded sizes.
-- Our own rather than lua-resty-websocket 0.08: its client accepts any HTTP/1.1 status
-- line as an upgrade and does not expose the selected subprotocol.
local bit = require("bit")
local ffi = require("ffi")
local http = require("rivet.resty.http")

local ngx = ngx
local band, bor, bxor, lshift, rshift = bit.band, bit.bor, bit.bxor, bit.lshift, bit.rshift
local byte, char, concat = string.byte, string.char, table.concat
local random = math.random

local M = {}

local GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

local buf, buf_cap = nil, 0
local function scratch(n)
  if n > buf_cap then
    buf_cap = n < 4096 and 4096 or n
    buf = ffi.new("uint8_t[?]", buf_cap)
  end
  return buf
end

-- payload XOR the 4-byte key (whole words first)
local function mask(payload, k1, k2, k3, k4)
  local n = #payload
  if n == 0 then return "" end
  local b = scratch(n)
  ffi.copy(b, payload, n)
  local key = ffi.new("uint8_t[4]", k1, k2, k3, k4)
  local kw = ffi.cast("uint32_t*", key)[0]
  local words = ffi.cast("uint32_t*", b)
  local nw = rshift(n, 2)
  for i = 0, nw - 1 do words[i] = bxor(words[i], kw) end
  for i = nw * 4, n - 1 do b[i] = bxor(b[i], key[band(i, 3)]) end
  return ffi.string(b, n)
end

--- A masked frame (client to server) of `opcode` with `payload`, final.
function M.frame(opcode, payload)
  local n = #payload
  local head
  if n <= 125 then
    head = char(bor(0x80, opcode), bor(0x80, n))
  elseif n <= 65535 then
    head = char(bor(0x80, opcode), 0x80 + 126, rshift(n, 8), band(n, 0xff))
  else
    local hi = math.floor(n / 4294967296)
    local lo = n - hi * 4294967296
    head = char(bor(0x80, opcode), 0x80 + 127,
      band(rshift(hi, 24), 0xff), band(rshift(hi, 16), 0xff), band(rshift(hi, 8), 0xff), band(hi, 0xff),
      band(rshift(lo, 24), 0xff), band(rshift(lo, 16), 0xff), band(rshift(lo, 8), 0xff), band(lo, 0xff))
  end
  local k1, k2, k3, k4 = random(0, 255), random(0, 255), random(0, 255), random(0, 255)
  return head .. char(k1, k2, k3, k4) .. mask(payload, k1, k2, k3, k4)
end

--- A close frame's payload.
function M.close_payload(code, reason)
  if not code then return "" end
  return char(band(rshift(code, 8), 0xff), band(code, 0xff)) .. (reason or "")
end

-- Reads exactly n bytes; read timeouts only mean "nothing yet" (idle sockets), unless
-- `deadline_fn` says the wait is over. Returns data, or nil, err.
local function read_n(sock, n, idle_ok)
  local parts
  while true do
    local data, err, partial = sock:receive(n)
    if data then
      if parts then
        parts[#parts + 1] = data
        return concat(parts)
      end
      return data
    end
    if err ~= "timeout" or not idle_ok then return nil, err end
    if partial and #partial > 0 then
      parts = parts or {}
      parts[#parts + 1] = partial
      n = n - #partial
    end
  end
end

--- Reads one frame: fin, opcode, payload, or nil, err (err "too_big" when the frame is
--- over `max`; a protocol error otherwise). Waits as long as the socket is idle.
function M.read(sock, max)
  local h, err = read_n(sock, 2, true)
  if not h then return nil, err end
  local b1, b2 = byte(h, 1, 2)
  if band(b1, 0x70) ~= 0 then return nil, "protocol: reserved bits set" end
  if band(b2, 0x80) ~= 0 then return nil, "protocol: a masked frame from the server" end
  local opcode = band(b1, 0x0f)
  local fin = band(b1, 0x80) ~= 0
  local n = band(b2, 0x7f)
  if n == 126 then
    local e, eerr = read_n(sock, 2, true)
    if not e then return nil, eerr end
    n = bor(lshift(byte(e, 1), 8), byte(e, 2))
  elseif n == 127 then
    local e, eerr = read_n(sock, 8, true)
    if not e then return nil, eerr end
    local hi = bor(lshift(byte(e, 1), 24), lshift(byte(e, 2), 16), lshift(byte(e, 3), 8), byte(e, 4))
    if hi ~= 0 then return nil, "too_big" end -- 2^32 bytes or more
    local lo = bor(lshift(byte(e, 5), 24), lshift(byte(e, 6), 16), lshift(byte(e, 7), 8), byte(e, 8))
    n = lo < 0 and lo + 4294967296 or lo
  end
  if opcode >= 8 and (n > 125 or not fin) then return nil, "protocol: bad control frame" end
  if n > max then return nil, "too_big" end
  local payload = ""
  if n > 0 then
    payload, err = read_n(sock, n, true)
    if not payload then return nil, err end
  end
  return fin, opcode, payload
end

--- The opening handshake on a connected socket. target: host, port, path, protocols,
--- headers, origin. Returns the selected subprotocol ("" for none), or nil, kind, message.
function M.handshake(sock, target)
  local kb = {}
  for i = 1, 16 do kb[i] = char(random(0, 255)) end
  local key = ngx.encode_base64(concat(kb))
  local hostport = target.host:find(":", 1, true) and ("[" .. target.host .. "]:" .. target.port)
    or (target.host .. ":" .. target.port)
  local req = {
    "GET ", target.path, " HTTP/1.1\r\n",
    "Host: ", hostport, "\r\n",
    "Upgrade: websocket\r\nConnection: Upgrade\r\n",
    "Sec-WebSocket-Key: ", key, "\r\n",
    "Sec-WebSocket-Version: 13\r\n",
  }
  if target.protocols and target.protocols ~= "" then
    req[#req + 1] = "Sec-WebSocket-Protocol: " .. target.protocols .. "\r\n"
  end
  if target.origin then req[#req + 1] = "Origin: " .. target.origin .. "\r\n" end
  for _, h in ipairs(target.headers or {}) do req[#req + 1] = h .. "\r\n" end
  req[#req + 1] = "\r\n"
  local ok, err = sock:send(concat(req))
  if not ok then return nil, http.classify(err), "sending the upgrade request: " .. tostring(err) end
  local status, headers = http.read_head(sock)
  if not status then
    local kind = headers == "timeout" and "timeout" or "connection_failed"
    return nil, kind, "reading the upgrade response: " .. tostring(headers)
  end
  if status ~= 101 then
    return nil, "handshake_failed", "HS: ws upgrade response not 101 (HTTP " .. status .. ")"
  end
  local accept = headers["sec-websocket-accept"]
  if accept ~= ngx.encode_base64(ngx.sha1_bin(key .. GUID)) then
    return nil, "handshake_failed", "HS: bad Sec-WebSocket-Accept"
  end
  local proto = headers["sec-websocket-protocol"] or ""
  if proto ~= "" then
    local offered = false
    for p in (target.protocols or ""):gmatch("[^,%s]+") do
      if p == proto then offered = true break end
    end
    if not offered then return nil, "handshake_failed", "HS: PROTOCOL malformed (not offered: " .. proto .. ")" end
  end
  return proto
end

return M
