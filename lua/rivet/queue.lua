-- Queues (RivetKit 2.3): handle:send / conn:send. POST /gateway/{id}/queue/{name} with
-- the body in the client's encoding, as rivetkit 2.3.19's client/queue.ts sends it:
--   json  {"body": value, "name": name, "wait": bool, "timeout": ms} (compat tags)
--   cbor  the same map in CBOR
--   bare  HttpQueueSendRequest v4: u16 version, data body (CBOR), optional<string>
--         name, optional<bool> wait, optional<u64> timeout (ms)
-- and the answer HttpQueueSendResponse {status, response?} likewise.
local core = require("rivet.core")
local dispatch = require("rivet.dispatch")
local errors = require("rivet.errors")
local options = require("rivet.options")
local protocol = require("rivet.protocol")

local now = require("rivet.compat").now
local null = core.null
local byte, char = string.byte, string.char
local floor = math.floor

local M = {}

local BARE_VERSION = 4
local SEND_OPTIONS = { "wait", "timeout" }
local WAIT_MARGIN = 5 -- seconds the HTTP request may take beyond a wait's own timeout

local function uvarint(n)
  local out = {}
  repeat
    local b = n % 128
    n = floor(n / 128)
    out[#out + 1] = char(n > 0 and b + 128 or b)
  until n == 0
  return table.concat(out)
end

local function u64le(n)
  local out = {}
  for i = 1, 8 do
    local b = n % 256
    out[i] = char(b)
    n = floor(n / 256)
  end
  return table.concat(out)
end

local function bare_string(s) return uvarint(#s) .. s end

--- The request body of one send. body: a Lua value; timeout_ms: integer or nil.
function M.encode(encoding, tagged, name, body, wait, timeout_ms)
  if body == nil then body = null end
  if encoding == "bare" then
    local payload = core.cbor_encode(body, tagged)
    return char(BARE_VERSION % 256, floor(BARE_VERSION / 256)) .. bare_string(payload)
      .. "\1" .. bare_string(name)
      .. "\1" .. (wait and "\1" or "\0")
      .. (timeout_ms and ("\1" .. u64le(timeout_ms)) or "\0")
  end
  local t = { body = body, name = name, wait = wait, timeout = timeout_ms }
  if encoding == "cbor" then return core.cbor_encode(t, tagged) end
  return core.json_encode(t, true)
end

local function read_uvarint(s, pos)
  local n, mul = 0, 1
  for _ = 1, 10 do
    local b = byte(s, pos)
    if not b then return nil end
    pos = pos + 1
    n = n + (b % 128) * mul
    if b < 128 then return n, pos end
    mul = mul * 128
  end
  return nil
end

-- status, response, or nil, err
local function decode_bare(s, tagged)
  if #s < 2 then return nil, "too short" end
  local pos = 3
  local len
  len, pos = read_uvarint(s, pos)
  if not len or pos + len - 1 > #s then return nil, "bad status string" end
  local status = s:sub(pos, pos + len - 1)
  pos = pos + len
  local opt = byte(s, pos)
  if opt == 0 then
    if pos ~= #s then return nil, "trailing bytes" end
    return status, nil
  elseif opt ~= 1 then
    return nil, "bad optional tag"
  end
  len, pos = read_uvarint(s, pos + 1)
  if not len or pos + len - 1 ~= #s then return nil, "bad response data" end
  local v, err = core.cbor_decode(s:sub(pos, pos + len - 1), tagged)
  if v == nil then return nil, tostring(err) end
  return status, v
end

--- Decodes an answer: {status=, response=} or nil, err.
function M.decode(encoding, tagged, s)
  local status, response
  if encoding == "bare" then
    status, response = decode_bare(s, tagged)
    if not status then return nil, response end
  else
    local v
    if encoding == "cbor" then v = core.cbor_decode(s, tagged) else v = core.json_decode(s, true) end
    if type(v) ~= "table" then return nil, "not a map" end
    status, response = v.status, v.response
  end
  if status ~= "completed" and status ~= "timedOut" then
    return nil, "unknown status " .. tostring(status)
  end
  if response == null then response = nil end
  return { status = status, response = response }
end

local function check_opts(opts, level)
  if opts == nil then return false, nil end
  if type(opts) ~= "table" then
    error("bad argument #3 to 'send': options must be a table, got " .. type(opts), level + 1)
  end
  options.check_keys(opts, SEND_OPTIONS, "bad argument #3 to 'send'", level + 1)
  if opts.wait ~= nil and type(opts.wait) ~= "boolean" then
    error("bad argument #3 to 'send': wait must be a boolean", level + 1)
  end
  local t = opts.timeout
  if t ~= nil then
    if type(t) ~= "number" or t < 0 or t ~= t or t == math.huge then
      error("bad argument #3 to 'send': timeout must be a non-negative number of seconds", level + 1)
    end
    if not opts.wait then
      error("bad argument #3 to 'send': timeout needs wait = true (it bounds the wait for completion)", level + 1)
    end
  end
  return opts.wait == true, t
end

--- handle:send(name, body [, opts]) with `params` (nil: the handle's): nil once the
--- message is accepted, or with opts.wait {status = "completed"|"timedOut", response}.
function M.send(h, params, name, body, opts, level)
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'send': queue name must be a non-empty string, got " .. type(name), level + 1)
  end
  local wait, timeout = check_opts(opts, level + 1)
  if h._schema then h._schema:queue(name, body) end -- rivet/schema.lua
  local c = h._client
  local enc = c._encoding
  -- bad values raise here, at the caller, before anything is sent
  local ok, err = pcall(core.cbor_encode, body == nil and null or body, false)
  if not ok then
    error("bad argument #2 to 'send': " .. tostring(err):gsub("^[^:]*:%d+: ", ""), level + 1)
  end
  local span = h._timeout or c._timeout
  if timeout and timeout + WAIT_MARGIN > span then span = timeout + WAIT_MARGIN end
  local deadline = now() + span
  local p = c:_server(deadline)
  if p.line ~= "2.3" then
    error(errors.new("client", "unsupported", "queues need a RivetKit 2.3 server (this one is " .. p.version .. ")"), 0)
  end
  local tagged = protocol.tagged(p, enc)
  local timeout_ms = timeout and floor(timeout * 1000 + 0.5) or nil
  local req_body = M.encode(enc, tagged, name, body, wait, timeout_ms)
  local st = { reresolved = false, attempt = 0 }
  while true do
    local id = h:_resolve(deadline)
    local res = c:_http({
      method = "POST",
      url = c._endpoint .. "/gateway/" .. protocol.seg(id) .. "/queue/" .. protocol.seg(name),
      headers = h:_gateway_headers(enc, params),
      body = req_body,
    }, deadline)
    local e
    if res.status == 200 then
      local out, derr = M.decode(enc, tagged, res.body)
      if out then
        if wait then return out end
        return nil
      end
      e = errors.new("client", "malformed_response", "could not decode the queue's answer: " .. tostring(derr))
      error(e, 0)
    end
    e = protocol.http_error(res, enc, tagged)
    dispatch.after_failure(h, e, st, id, deadline, "send", { actor = h._name, queue = name })
  end
end

return M
