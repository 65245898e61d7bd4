-- A small HTTP/1.1 client over nginx cosockets (Debian packages none): one request per
-- call, in the calling light thread, with keep-alive pools (setkeepalive), TLS through
-- sslhandshake with verification on, Content-Length and chunked bodies, every wait
-- bounded by the request's timeout, every line and head by LINE_MAX and HEAD_MAX.
-- Results have the shape of the native loop's: {status=, headers={lower-case name =
-- value, repeated ones joined by ", "}, body=}, or {err=kind, message=} with the kinds
-- of protocol.transport_error.
local ngx = ngx
local now = require("rivet.core").now

local M = {}

local KEEPALIVE_IDLE_MS = 4000 -- below Node's 5 s keepAliveTimeout: we close first
local POOL_SIZE = 64

-- scheme, host, port, target ("/path?query") of an http(s) URL
local function parse_url(url)
  local scheme, rest = url:match("^(https?)://(.*)$")
  if not scheme then return nil end
  local hostport, target = rest:match("^([^/?#]*)(.*)$")
  local host, port = hostport:match("^%[(.-)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
  if not host or host == "" then return nil end
  local tls = scheme == "https"
  if target == "" then target = "/" elseif target:sub(1, 1) ~= "/" then target = "/" .. target end
  target = target:gsub("#.*$", "")
  return tls, host, tonumber(port) or (tls and 443 or 80), target, hostport
end
M.parse_url = parse_url

local TOO_LARGE = "response_too_large"
-- errors that mean the server sent more than this client takes (filled in below)
local TOO_LARGE_ERRS = { [TOO_LARGE] = true }

--- The kind of a cosocket error message (as protocol.transport_error names them); a
--- message of ours starting with "malformed" means the answer is not valid HTTP.
function M.classify(err, during)
  err = tostring(err)
  if TOO_LARGE_ERRS[err] then return TOO_LARGE end
  if err:find("^malformed") then return "malformed_response" end
  if err:find("timeout", 1, true) then return "timeout" end
  if during == "tls" or err:find("ssl", 1, true) or err:find("certificate", 1, true) then return "tls_failed" end
  if err:find("resolve", 1, true) or err:find("resolver", 1, true) then return "dns_failed" end
  if during == "connect" then return "connection_refused" end
  return "connection_lost"
end
local classify = M.classify

local function fail(kind, msg) return { err = kind, message = msg } end

-- Milliseconds left before `deadline`, at least 1.
local function ms_left(deadline)
  local ms = math.floor((deadline - now()) * 1000)
  return ms > 0 and ms or 1
end

--- Connects (or takes a pooled connection) and does the TLS handshake. Returns sock, or
--- nil, kind, message.
--- `pool`: the keep-alive pool's prefix ("rivet-http" for requests; WebSockets pass a
--- name whose pool stays empty, so they always get a fresh connection).
function M.connect(tls, host, port, deadline, insecure, pool)
  local sock = ngx.socket.tcp()
  local ms = ms_left(deadline)
  sock:settimeouts(ms, ms, ms)
  pool = (pool or "rivet-http") .. (tls and "s:" or ":") .. host .. ":" .. port .. (insecure and ":insecure" or "")
  local ok, err = sock:connect(host, port, { pool = pool, pool_size = POOL_SIZE })
  if not ok then return nil, classify(err, "connect"), "connect to " .. host .. ":" .. port .. ": " .. tostring(err) end
  if tls and sock:getreusedtimes() == 0 then
    ok, err = sock:sslhandshake(nil, host, not insecure)
    if not ok then
      sock:close()
      return nil, classify(err, "tls"), "TLS handshake with " .. host .. ": " .. tostring(err)
    end
  end
  return sock
end

-- The request head. Header lines are "Name: value"; as with libcurl, "Name;" sends the
-- header with an empty value and "Name:" removes a header this client would add.
-- body: a string, true for a chunked body that follows (an upload function), or nil.
local function build_head(method, target, hostport, headers, body)
  local out = { method, " ", target, " HTTP/1.1\r\n" }
  local removed, given = {}, {}
  local lines = {}
  for i = 1, #(headers or {}) do
    local h = headers[i]
    local name, value = h:match("^([^:;]+):%s*(.*)$")
    if name then
      local ln = name:lower()
      if value == "" then
        removed[ln] = true
      else
        given[ln] = true
        lines[#lines + 1] = name .. ": " .. value
      end
    else
      name = h:match("^([^:;]+);$")
      if name then
        given[name:lower()] = true
        lines[#lines + 1] = name .. ": "
      end
    end
  end
  local function add(name, value)
    local ln = name:lower()
    if not removed[ln] and not given[ln] then out[#out + 1] = name .. ": " .. value .. "\r\n" end
  end
  add("Host", hostport)
  add("Accept", "*/*")
  if body == true then
    out[#out + 1] = "Transfer-Encoding: chunked\r\n"
  elseif body then
    out[#out + 1] = "Content-Length: " .. #body .. "\r\n"
  elseif method == "POST" or method == "PUT" or method == "PATCH" then
    out[#out + 1] = "Content-Length: 0\r\n"
  end
  for i = 1, #lines do out[#out + 1] = lines[i] .. "\r\n" end
  out[#out + 1] = "\r\n"
  return table.concat(out)
end

-- Bounds on what the server's framing may cost, as libcurl's (CURL_MAX_HTTP_HEADER and
-- MAX_HTTP_RESP_HEADER_SIZE in 7.88): a line (status line, header, chunk size, trailer)
-- of more than LINE_MAX bytes, or a head (status line and headers, with the 1xx answers
-- before it; or a body's trailers) of more than HEAD_MAX fails the call with
-- client.response_too_large. receive("*l") has no bound of its own: lua-nginx-module
-- adds buffers of lua_socket_buffer_size to its chain, from the request's pool, until
-- the line ends, so an endless header line grew the worker until the kernel killed it.
local LINE_MAX = 100 * 1024
local HEAD_MAX = 300 * 1024
local LINE_TOO_LONG = "a line of the response's head or chunked framing exceeded " .. LINE_MAX .. " bytes"
local HEAD_TOO_LARGE = "the response's head or trailers exceeded " .. HEAD_MAX .. " bytes"
TOO_LARGE_ERRS[LINE_TOO_LONG], TOO_LARGE_ERRS[HEAD_TOO_LARGE] = true, true

--- A line reader on sock: read(prefix) returns the next line without its LF (nor the
--- CR before it), or nil, err, partial (err is LINE_TOO_LONG past LINE_MAX bytes);
--- prefix: the partial line a timed-out read returned. The receiveuntil iterator given a
--- size hands back at most that many bytes a call, and after a line owes one more call,
--- which returns nil at once and resets it for the next line.
local function line_reader(sock)
  local until_lf = sock:receiveuntil("\n")
  return function(prefix)
    prefix = prefix or ""
    local piece, err, partial = until_lf(LINE_MAX + 1 - #prefix)
    if not piece then
      partial = prefix .. (partial or "")
      if #partial > LINE_MAX then return nil, LINE_TOO_LONG end
      return nil, err, partial
    end
    local line = prefix .. piece
    if #line > LINE_MAX then return nil, LINE_TOO_LONG end
    until_lf()
    if line:byte(-1) == 13 then line = line:sub(1, -2) end
    return line
  end
end
M.line_reader = line_reader

-- Reads lines through read_line up to an empty one, at most HEAD_MAX bytes in all
-- (counting `used` already); calls each(line) for the others. Returns the bytes used,
-- or nil, err.
local function read_block(read_line, used, each)
  while true do
    local line, err = read_line()
    if not line then return nil, err end
    used = used + #line + 2
    if used > HEAD_MAX then return nil, HEAD_TOO_LARGE end
    if line == "" then return used end
    each(line)
  end
end

--- Reads the status line and headers on sock (through read_line, a line_reader of it).
--- Returns status, headers, version, or nil, err.
local function read_head(sock, read_line)
  read_line = read_line or line_reader(sock)
  local used = 0
  while true do
    local sl, err = read_line()
    if not sl then return nil, err end
    used = used + #sl + 2
    local version, status = sl:match("^HTTP/(%d%.%d) (%d%d%d)")
    if not status then return nil, "malformed status line" end
    status = tonumber(status)
    local headers = {}
    used, err = read_block(read_line, used, function(h)
      local name, value = h:match("^([^:]+):%s*(.-)%s*$")
      if name then
        name = name:lower()
        local prev = headers[name]
        headers[name] = prev and (prev .. ", " .. value) or value
      end
    end)
    if not used then return nil, err end
    -- 1xx answers (100 Continue) come before the real one
    if status >= 200 or status == 101 then return status, headers, version end
  end
end
M.read_head = read_head

local function ignore() end

-- The length a Content-Length value gives (decimal digits only), or nil.
local function content_length(v)
  return v:match("^%d+$") and tonumber(v)
end

-- The size a chunk-size line gives (hex digits, then maybe ";extension"), or nil.
-- (tonumber(nil, 16) raises: a line without digits must not.)
local function chunk_size(line)
  local hex = line:match("^%s*(%x+)")
  return hex and tonumber(hex, 16)
end

-- The most body bytes a request reads unless req.max_response says otherwise (as
-- csrc/loop.c): a longer body fails the call with client.response_too_large.
local MAX_RESPONSE_DEFAULT = 64 * 1024 * 1024

-- Reads a chunked body of at most max bytes; returns body, or nil, err.
local function read_chunked(sock, read_line, max)
  local parts = {}
  local total = 0
  while true do
    local line, err = read_line()
    if not line then return nil, err end
    local size = chunk_size(line)
    if not size then return nil, "malformed chunk size" end
    total = total + size
    if total > max then return nil, TOO_LARGE end
    if size == 0 then
      local used, terr = read_block(read_line, 0, ignore) -- trailers
      if not used then return nil, terr end
      return table.concat(parts)
    end
    local data, derr = sock:receive(size)
    if not data then return nil, derr end
    parts[#parts + 1] = data
    local crlf, cerr = sock:receive(2)
    if crlf ~= "\r\n" then return nil, cerr or "malformed chunk" end
  end
end

--------------------------------------------------------------------------------------
-- Streamed bodies
--------------------------------------------------------------------------------------

local Reader = {}
Reader.__index = Reader

local PIECE = 65536

local function timeout_err(t)
  return require("rivet.errors").new("client", "timeout", "no body data within " .. tostring(t) .. " s")
end

function Reader:_finish(ok)
  self.done = true
  if ok and self.keep then self.sock:setkeepalive(KEEPALIVE_IDLE_MS, POOL_SIZE) else self.sock:close() end
end

function Reader:_fail(err)
  self.err = require("rivet.protocol").transport_error({ err = classify(err), message = tostring(err) })
  self.done = true
  self.sock:close()
  return nil, self.err
end

-- A piece of at most n bytes; nil, err ("timeout" only when the caller gave one)
function Reader:_piece(n, timeout)
  local sock = self.sock
  while true do
    local data, err = sock:receiveany(n)
    if data then return data end
    if err ~= "timeout" or timeout then return nil, err end
  end
end

-- A line of the chunked framing; keeps what a timed-out read had got so far
function Reader:_line(timeout)
  while true do
    local line, err, partial = self.read_line(self.linebuf)
    if line then
      self.linebuf = nil
      return line
    end
    self.linebuf = partial
    if err ~= "timeout" or timeout then return nil, err end
  end
end

-- The next piece of at most self.left bytes (length and chunked framing); nil, err
local function take(self, timeout)
  local data, err = self:_piece(self.left < PIECE and self.left or PIECE, timeout)
  if not data then
    if err == "timeout" then return nil, timeout_err(timeout) end
    return self:_fail(err)
  end
  self.left = self.left - #data
  return data
end

--- The next piece of the body, nil at its end; nil, err on failure or timeout.
function Reader:read(timeout)
  if self.err then return nil, self.err end
  if self.done then return nil end
  local sock = self.sock
  sock:settimeout(timeout and math.max(1, math.floor(timeout * 1000)) or 3600000)
  local mode = self.mode
  if mode == "length" then
    if self.left == 0 then self:_finish(true) return nil end
    local data, err = take(self, timeout)
    if data and self.left == 0 then self:_finish(true) end
    return data, err
  elseif mode == "close" then
    local data, err = self:_piece(PIECE, timeout)
    if not data then
      if err == "closed" then self:_finish(false) return nil end
      if err == "timeout" then return nil, timeout_err(timeout) end
      return self:_fail(err)
    end
    return data
  end
  -- chunked
  while true do
    if self.left > 0 then
      local data, err = take(self, timeout)
      if data and self.left == 0 then self.need_crlf = true end
      return data, err
    end
    local line, err = self:_line(timeout)
    if not line then
      if err == "timeout" then return nil, timeout_err(timeout) end
      return self:_fail(err)
    end
    if self.need_crlf then
      self.need_crlf = false
      if line ~= "" then return self:_fail("malformed chunk") end
    elseif self.trailers then
      if line == "" then self:_finish(true) return nil end
      self.trailers = self.trailers + #line + 2
      if self.trailers > HEAD_MAX then return self:_fail(HEAD_TOO_LARGE) end
    else
      local size = chunk_size(line)
      if not size then return self:_fail("malformed chunk size") end
      if size == 0 then self.trailers = 2 + #line else self.left = size end
    end
  end
end

function Reader:close()
  if self.done then return end
  self.done = true
  self.sock:close()
end

-- Sends a chunked body taken from upload(): true, or nil, err, fatal (the function failed).
local function send_chunked(sock, upload)
  while true do
    local ok, chunk = pcall(upload)
    if not ok then return nil, "the request body function failed: " .. tostring(chunk), true end
    if chunk == nil then return sock:send("0\r\n\r\n") end
    if type(chunk) ~= "string" then
      return nil, "the request body function returned a " .. type(chunk) .. " (chunks must be strings)", true
    end
    if #chunk > 0 then
      local sent, err = sock:send({ string.format("%x", #chunk), "\r\n", chunk, "\r\n" })
      if not sent then return nil, err end
    end
  end
end

--- One request: req = {method=, url=, headers={"Name: value"}, body=, timeout=s,
--- insecure=, stream=, upload_fn=}. Returns the result table (see the top of this
--- file); with stream, {status, headers, reader} where reader:read([timeout]) gives the
--- body in pieces (in this light thread's request context only: cosockets belong to it).
function M.request(req)
  local deadline = now() + (req.timeout or 30)
  local tls, host, port, target, hostport = parse_url(req.url)
  if not tls and tls ~= false then return fail("bad_url", "not an http(s) URL") end
  local method = req.method or "GET"
  local upload = req.upload_fn
  local head = build_head(method, target, hostport, req.headers, upload and true or req.body)
  for attempt = 1, upload and 1 or 2 do
    local sock, kind, msg = M.connect(tls, host, port, deadline, req.insecure)
    if not sock then return fail(kind, msg) end
    local reused = sock:getreusedtimes() > 0
    local ok, err = sock:send(req.body and { head, req.body } or head)
    if ok and upload then
      local fatal
      ok, err, fatal = send_chunked(sock, upload)
      if fatal then
        sock:close()
        return { error = require("rivet.errors").new("client", "body_failed", err) }
      end
    end
    local status, headers, version
    local read_line = line_reader(sock)
    if ok then
      status, headers, version = read_head(sock, read_line)
      if not status then err = headers end
    end
    if status then
      local body, berr = "", nil
      local keep = version == "1.1"
      local conn = headers["connection"]
      if conn and conn:lower():find("close", 1, true) then keep = false end
      local te = headers["transfer-encoding"]
      local chunked = te and te:lower():find("chunked", 1, true)
      if req.stream and not (method == "HEAD" or status == 204 or status == 304) then
        local r = setmetatable({ sock = sock, read_line = read_line, keep = keep, done = false, err = false,
          left = 0 }, Reader)
        if chunked then
          r.mode = "chunked"
        elseif headers["content-length"] then
          local n = content_length(headers["content-length"])
          if not n then
            sock:close()
            return fail("malformed_response", "malformed content-length")
          end
          r.mode, r.left = "length", n
        else
          r.mode, r.keep = "close", false
        end
        return { status = status, headers = headers, reader = r }
      end
      local max = req.max_response or MAX_RESPONSE_DEFAULT
      if method == "HEAD" or status == 204 or status == 304 or status == 101 then
        body = ""
      elseif chunked then
        body, berr = read_chunked(sock, read_line, max)
      elseif headers["content-length"] then
        local n = content_length(headers["content-length"])
        if not n then
          body, berr = nil, "malformed content-length"
        elseif n > max then
          body, berr = nil, TOO_LARGE
        elseif n > 0 then
          body, berr = sock:receive(n)
        end
      else
        -- to the end of the connection, in pieces, so that an endless body stops at max
        keep = false
        local parts, total = {}, 0
        while true do
          local d, e, partial = sock:receive(PIECE)
          d = d or partial
          if d and #d > 0 then
            total = total + #d
            if total > max then body, berr = nil, TOO_LARGE break end
            parts[#parts + 1] = d
          end
          if e == "closed" then body = table.concat(parts) break end
          if e then body, berr = nil, e break end
        end
      end
      if berr == TOO_LARGE then
        sock:close()
        return fail(TOO_LARGE, "the response body exceeded " .. max .. " bytes")
      end
      if not body then
        sock:close()
        return fail(classify(berr), "reading the response body: " .. tostring(berr))
      end
      if keep then sock:setkeepalive(KEEPALIVE_IDLE_MS, POOL_SIZE) else sock:close() end
      return { status = status, headers = headers, body = body }
    end
    sock:close()
    -- a pooled connection the server had closed meanwhile: nothing was answered, so a
    -- GET or HEAD is tried once on a new one; anything else could have reached the
    -- server (an action must not run twice): it fails
    local idempotent = method == "GET" or method == "HEAD"
    if not (reused and attempt == 1 and err == "closed" and idempotent) then
      return fail(classify(err), tostring(err))
    end
  end
end

return M
