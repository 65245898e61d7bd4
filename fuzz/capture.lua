-- Seed corpora for the fuzz targets, from real traffic: runs the library against a running
-- test server (RIVET_TEST_ENDPOINT, line RIVET_TEST_SERVER = v23 | v20) in every encoding
-- and writes what the client received, in each target's input format (fuzz/lua/*.lua):
--   to_client       every WebSocket message the connection state machine was fed
--   http_response   every HTTP action response and HTTP error body that was decoded
--   cbor_value      the CBOR ones among those (whole CBOR frames and bodies)
--   json_value      the JSON ones
--   conn_feed       per connection: start, calls, then its frames in order, then its close
--   close_reason    every (code, reason) a connection closed with, after calls in flight
-- Files are named by a hash of their content (so reruns add nothing twice); at most
-- MAX per target, encoding and server. fuzz/seeds.sh starts the servers and runs this.
--   lua5.4 fuzz/capture.lua OUTDIR
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local core = require("rivet.core")
local out_dir = assert(arg[1], "usage: capture.lua OUTDIR")
local server = os.getenv("RIVET_TEST_SERVER") or "v23"
local endpoint = assert(os.getenv("RIVET_TEST_ENDPOINT"), "RIVET_TEST_ENDPOINT not set")
local MAX = 14 -- per target, encoding and server
local ENC_IDX = { bare = 0, cbor = 1, json = 2 }

local function fnv(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do h = ((h ~ s:byte(i)) * 0x100000001b3) & 0xffffffffffffffff end
  return string.format("%016x", h)
end

local written = {}
local current_enc = "?"
local function seed(target, bytes)
  local slot = target .. " " .. current_enc
  written[slot] = written[slot] or 0
  if written[slot] >= MAX or #bytes > 8192 then return end
  os.execute("mkdir -p " .. out_dir .. "/" .. target)
  local path = out_dir .. "/" .. target .. "/" .. server .. "-" .. fnv(bytes)
  local f = io.open(path, "rb")
  if f then f:close() return end
  f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  written[slot] = written[slot] + 1
end

local function value_seeds(enc, tagged, bytes)
  if enc == "cbor" then seed("cbor_value", string.char(tagged and 1 or 0) .. bytes) end
  if enc == "json" then seed("json_value", string.char(tagged and 1 or 0) .. bytes) end
end

-- the state machines: which encoding and line each has, and what it was fed
local sms = setmetatable({}, { __mode = "k" })
local conn_new = core.conn_new
core.conn_new = function(o)
  local sm = conn_new(o)
  local tagged = o.encoding == "json" or (o.tagged == true)
  sms[sm] = { enc = o.encoding or "bare", line = o.line or "2.3", tagged = tagged, frames = {}, calls = 0 }
  return sm
end
local mt = debug.getmetatable(conn_new({})) -- past __metatable
local methods = mt.__index
local function u16(n) return string.char((n >> 8) & 0xff, n & 0xff) end

local function cfg_byte(st) return ENC_IDX[st.enc] + (st.line == "2.0" and 3 or 0) end

local function flush_conn(st, code, reason)
  -- conn_feed: cfg, start (7), one call per call made (8 + name + arg + deadline none),
  -- then each frame (0 + u16 length + bytes + direct flag), then the close (6)
  local parts = { string.char(cfg_byte(st)), "\7" }
  for _ = 1, math.min(st.calls, 8) do parts[#parts + 1] = "\8\0\0\1" end
  for _, f in ipairs(st.frames) do
    if #f < 65536 then parts[#parts + 1] = "\0" .. u16(#f) .. f .. "\0" end
  end
  if code then parts[#parts + 1] = "\6\1" .. string.char(code - 1000 & 0xff) .. string.char(#reason) .. reason .. "\0" end
  seed("conn_feed", table.concat(parts))
end

local feed, closed, call, callv = methods.feed, methods.closed, methods.call, methods.callv
function methods.feed(sm, frame, ...)
  local st = sms[sm]
  if st then
    seed("to_client", string.char(ENC_IDX[st.enc] + (st.tagged and 4 or 0)) .. frame)
    value_seeds(st.enc, st.tagged, frame)
    st.frames[#st.frames + 1] = frame
  end
  return feed(sm, frame, ...)
end
function methods.call(sm, ...)
  if sms[sm] then sms[sm].calls = sms[sm].calls + 1 end
  return call(sm, ...)
end
function methods.callv(sm, ...)
  if sms[sm] then sms[sm].calls = sms[sm].calls + 1 end
  return callv(sm, ...)
end
function methods.closed(sm, code, reason, ...)
  local st = sms[sm]
  if st then
    if code then
      local cfg = cfg_byte(st) + (code and 0 or 64)
      seed("close_reason", string.char(cfg) .. u16(code or 0) .. (reason or ""))
    end
    flush_conn(st, code, reason or "")
    st.frames = {}
  end
  return closed(sm, code, reason, ...)
end

local dar, dhe = core.decode_http_action_response, core.decode_http_error
core.decode_http_action_response = function(enc, body, tagged)
  seed("http_response", string.char(ENC_IDX[enc] + (tagged and 4 or 0)) .. body)
  value_seeds(enc, tagged, body)
  return dar(enc, body, tagged)
end
core.decode_http_error = function(enc, body, tagged)
  seed("http_response", string.char(ENC_IDX[enc] + (tagged and 4 or 0) + 8) .. body)
  value_seeds(enc, tagged, body)
  return dhe(enc, body, tagged)
end

---------------------------------------------------------------------------------------
local rivet = require("rivet")
local run = tostring(os.time()) .. "-" .. math.random(1, 1e6)
local VALUES = {
  1, -7, 2 ^ 40, 9007199254740993, 0.5, "text", "", "$x", { 1, 2, { a = 1 } }, { k = "v", n = rivet.null },
  rivet.bytes("\0\1\2\255"), rivet.array({}), rivet.map({}), { "$Uint8Array", "AAE=" }, true, false,
}

local function wait(client, pred)
  local deadline = core.now() + 5
  while not pred() and core.now() < deadline do client:poll(0.02) end
end

for _, enc in ipairs({ "bare", "cbor", "json" }) do
  current_enc = enc
  local client = rivet.client(endpoint, { encoding = enc, timeout = 10 })
  local key = "fuzz-" .. enc .. "-" .. run
  local counter = client.counter:getOrCreate(key)
  counter:increment(3)
  local echo = client.echo:getOrCreate(key)
  for _, v in ipairs(VALUES) do pcall(echo.echo, echo, v) end
  pcall(echo.makeBytes, echo, 5)
  pcall(echo.makeBigInt, echo)
  local errs = client.errors:getOrCreate(key)
  pcall(errs.throwUser, errs)
  pcall(errs.throwInternal, errs)
  pcall(errs.action, errs, "noSuchAction")

  local conn = counter:connect()
  local got = 0
  conn:on("newCount", function() got = got + 1 end)
  conn:increment(1)
  conn:increment(2)
  wait(client, function() return got >= 2 end)
  conn:dispose()

  local ec = echo:connect()
  local ticks = 0
  ec:on("tick", function() ticks = ticks + 1 end)
  for _, v in ipairs(VALUES) do pcall(ec.echo, ec, v) end
  pcall(ec.emitMany, ec, 3)
  pcall(ec.makeBytes, ec, 3)
  pcall(ec.makeBigInt, ec)
  wait(client, function() return ticks >= 3 end)
  ec:dispose()

  local xc = errs:connect()
  pcall(xc.throwUser, xc)
  pcall(xc.throwInternal, xc)
  pcall(xc.action, xc, "noSuchAction")
  xc:dispose()

  -- a connection the actor refuses (onBeforeConnect throws): its Error frame and close
  local ac = client.auth:getOrCreate(key, { params = { token = "wrong" } }):connect()
  local failed = false
  ac:onError(function() failed = true end)
  wait(client, function() return failed end)
  ac:dispose()
  client:dispose()
end

for t, n in pairs(written) do print(server, t, n) end
