--- Raw HTTP (handle:fetch) and raw WebSocket (handle:websocket) to an actor's own
-- onRequest / onWebSocket handlers (protocol.md §10). Both carry the handle's connection
-- params and the client's token the way the official client does (§11), never in
-- anything printed. A response (rivet.Response) has the fields `status` (integer), `ok`
-- (a 2xx status), `headers` (lower-case names) and `body` (a string; nil when streamed).
-- @module rivet.raw
local core = require("rivet.core")
local compat = require("rivet.compat")
local dispatch = require("rivet.dispatch")
local errors = require("rivet.errors")
local protocol = require("rivet.protocol")
local log = require("rivet.log")
local options = require("rivet.options")

local now = compat.now
local null = core.null

local M = {}


--------------------------------------------------------------------------------------
-- Shared helpers
-- @section helpers
--------------------------------------------------------------------------------------

local function pct_byte(c) return string.format("%%%02X", c:byte()) end

-- Percent-encodes what may not appear raw in a URL; keeps existing %XX escapes and the
-- URL delimiters, so a path given already encoded is sent as is (like fetch()).
local function url_safe(s)
  return (s:gsub("[%c \"<>\\^`{|}\127-\255]", pct_byte))
end

-- "/a/b?x=1", "a/b" or a full URL -> "a/b", "?x=1" (fragment dropped)
local function split_target(s)
  local rest = s:match("^%a[%w+.-]*://[^/?#]*(.*)$") or s
  rest = rest:gsub("#.*$", "")
  local path, query = rest:match("^([^?]*)(.*)$")
  path = path:gsub("^/+", "")
  return url_safe(path), url_safe(query)
end

-- Raises a plain error when a raw path has a "." or ".." segment (also percent-encoded:
-- %2e): libcurl and URL parsers remove them, so "/../x" would leave the actor's
-- handler and reach another gateway route.
local function check_path(s, what, level)
  local path = (s:match("^%a[%w+.-]*://[^/?#]*(.*)$") or s):match("^[^?#]*")
  for seg in path:gmatch("[^/]+") do
    local d = seg:gsub("%%2[eE]", ".")
    if d == "." or d == ".." then
      error("bad argument #1 to '" .. what .. "': the path may not have '.' or '..' segments", level + 1)
    end
  end
end

-- Removes the client's token from a message that came from below (libcurl,
-- libwebsockets): they should never echo it, but a leak would be permanent.
local function redact(client, msg)
  local t = client._token
  if type(msg) ~= "string" or not t or t == "" then return msg end
  for _, form in ipairs({ t, protocol.pct(t) }) do
    local i = msg:find(form, 1, true)
    while i do
      msg = msg:sub(1, i - 1) .. "***" .. msg:sub(i + #form)
      i = msg:find(form, i + 3, true)
    end
  end
  return msg
end

-- conn.lua redacts its socket failures with it too.
M.redact = redact

--------------------------------------------------------------------------------------
-- fetch
-- @section fetch
--------------------------------------------------------------------------------------

local Response = { __name = "rivet.Response" }
local response_methods = {}
Response.__index = response_methods
M.Response = Response

--- The body decoded as JSON (plain Lua values; JSON null inside tables is rivet.null,
--- a top-level null is nil). Raises client.malformed_response if it is not JSON.
-- @return the decoded value
function response_methods:json()
  local v, err = core.json_decode(self:text(), false)
  if v == nil then
    error(errors.new("client", "malformed_response", "the response body is not JSON: " .. tostring(err)), 0)
  end
  if v == null then return nil end
  return v
end

--- The body as a string (a streamed response is read to its end first).
-- @treturn string
function response_methods:text()
  if self.body == nil then
    local parts = {}
    for chunk in self:chunks() do parts[#parts + 1] = chunk end
    self.body = table.concat(parts)
  end
  return self.body
end

--- A streamed response's next piece of body, nil at its end; nil, err when the
--- transfer failed or `timeout` seconds passed without data (err client.timeout; the
--- stream stays usable). On a buffered response: the whole body once, then nil.
-- @tparam[opt] number timeout seconds
-- @treturn ?string a piece of the body
-- @treturn ?rivet.ActorError the error
function response_methods:read(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    error("bad argument #1 to 'read': timeout must be a non-negative number of seconds", 2)
  end
  local st = self._stream
  if not st then
    if self._read_done then return nil end
    self._read_done = true
    return self.body
  end
  return st:read(timeout)
end

--- Iterates the body as it arrives: for chunk in res:chunks() do ... end. Inside a task
--- it yields while waiting, elsewhere it runs the loop. Raises if the transfer fails.
-- @treturn function an iterator of strings
function response_methods:chunks()
  return function()
    local chunk, err = self:read()
    if err then error(err, 0) end
    return chunk
  end
end

--- Ends a streamed transfer now (what was not read is dropped); also on garbage
--- collection and at the end of a `local res <close>` scope.
function response_methods:close()
  local st = self._stream
  if st then st:close() end
end

Response.__close = function(self) self:close() end
Response.__gc = function(self)
  local st = rawget(self, "_stream")
  if st then pcall(st.close, st) end
end

function Response.__tostring(r)
  return "rivet.Response(" .. tostring(r.status) .. ")"
end

local HEADER_NAME = "^[%w!#%$%%&'%*%+%-%.%^_`|~]+$"
local STANDARD_METHODS = {
  GET = true, HEAD = true, POST = true, PUT = true, DELETE = true, OPTIONS = true, PATCH = true,
}
-- computed by libcurl from the body; a user value would contradict it
local DROPPED = { ["content-length"] = true, ["transfer-encoding"] = true }

local function check_headers(headers, level)
  if headers == nil then return {} end
  if type(headers) ~= "table" then
    error("bad argument to 'fetch': headers must be a table mapping names to strings, got " .. type(headers), level + 1)
  end
  local out = {}
  for k, v in pairs(headers) do
    if type(k) ~= "string" or not k:match(HEADER_NAME) then
      error("bad argument to 'fetch': invalid header name " .. string.format("%q", tostring(k)), level + 1)
    end
    local vals = type(v) == "table" and v or { v }
    for i = 1, #vals do
      local x = vals[i]
      if type(x) == "number" then x = tostring(x) end
      if type(x) ~= "string" or x:find("[%z\r\n]") then
        error("bad argument to 'fetch': header '" .. k .. "' must be a string without line breaks", level + 1)
      end
      out[#out + 1] = { k, x }
    end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end) -- deterministic order on the wire
  return out
end

local REQUEST_KEYS = { "url", "path", "method", "headers", "body", "timeout", "stream" }
local INIT_KEYS = { "method", "headers", "body", "timeout", "stream" }

-- {url, method, headers, body, timeout} from fetch(input [, init])
local function normalize(input, init, level)
  local req = {}
  if type(input) == "string" then
    req.url = input
  elseif type(input) == "table" then
    options.check_keys(input, REQUEST_KEYS, "bad argument #1 to 'fetch'", level + 1)
    req.url = input.url or input.path
    req.method, req.headers, req.body, req.timeout = input.method, input.headers, input.body, input.timeout
    req.stream = input.stream
  else
    error("bad argument #1 to 'fetch': expected a path or a request table, got " .. type(input), level + 1)
  end
  if init ~= nil then
    if type(init) ~= "table" then
      error("bad argument #2 to 'fetch': options must be a table, got " .. type(init), level + 1)
    end
    options.check_keys(init, INIT_KEYS, "bad argument #2 to 'fetch'", level + 1)
    if init.method ~= nil then req.method = init.method end
    if init.headers ~= nil then req.headers = init.headers end
    if init.body ~= nil then req.body = init.body end
    if init.timeout ~= nil then req.timeout = init.timeout end
    if init.stream ~= nil then req.stream = init.stream end
  end
  if req.stream ~= nil and type(req.stream) ~= "boolean" then
    error("bad argument to 'fetch': stream must be a boolean", level + 1)
  end
  if type(req.url) ~= "string" then
    error("bad argument #1 to 'fetch': the request needs a url (a path such as \"/api\")", level + 1)
  end
  local method = req.method or "GET"
  if type(method) ~= "string" or not method:match(HEADER_NAME) then
    error("bad argument to 'fetch': method must be an HTTP method name", level + 1)
  end
  if STANDARD_METHODS[method:upper()] then method = method:upper() end
  req.method = method
  if req.body ~= nil and type(req.body) ~= "string" and type(req.body) ~= "function" then
    error("bad argument to 'fetch': body must be a string or a function returning chunks, got " .. type(req.body),
      level + 1)
  end
  if req.body ~= nil and (method == "GET" or method == "HEAD") then
    error("bad argument to 'fetch': a " .. method .. " request cannot have a body", level + 1)
  end
  if req.timeout ~= nil
    and (type(req.timeout) ~= "number" or not (req.timeout > 0)) then -- luacheck: ignore 581 (NaN fails too)
    error("bad argument to 'fetch': timeout must be a positive number of seconds", level + 1)
  end
  req.headers = check_headers(req.headers, level + 1)
  return req
end

-- The header lines of one attempt: the user's, then what the gateway needs unless the
-- user gave it, then the client's extra headers unless the user overrode them.
local function wire_headers(h, req)
  local c = h._client
  local list, seen = {}, {}
  for _, kv in ipairs(req.headers) do
    local lk = kv[1]:lower()
    if not DROPPED[lk] then
      seen[lk] = true
      -- "Name;" is how libcurl sends a header with an empty value
      list[#list + 1] = kv[2] == "" and (kv[1] .. ";") or (kv[1] .. ": " .. kv[2])
    end
  end
  if not seen["x-rivet-conn-params"] then
    local pj = h:_params_json()
    if pj then list[#list + 1] = "x-rivet-conn-params: " .. pj end
  end
  if c._token and not seen["x-rivet-token"] then list[#list + 1] = "x-rivet-token: " .. c._token end
  for _, x in ipairs(c._extra_headers) do
    local name = x:match("^([^:]*)"):lower()
    if not seen[name] then list[#list + 1] = x end
  end
  -- libcurl would label a body application/x-www-form-urlencoded: send none instead
  if req.body ~= nil and not seen["content-type"] then list[#list + 1] = "Content-Type:" end
  return list
end

-- An ActorError when the gateway route itself failed (the request did not reach the
-- actor's handler), nil when this is the handler's own response (any status).
--   * 2.3 guard errors carry x-rivet-error;
--   * structured errors ({group, code, message} JSON: 2.0's missing handler and unknown
--     actor, onBeforeConnect rejections on both) come from the framework;
--   * 2.3 answers a missing onRequest with a bare 404 (no body, no content type).
local function route_error(res, p)
  local st = res.status
  if st >= 200 and st < 300 then return nil end
  local hdr = res.headers or {}
  local body = res.body or ""
  if hdr["x-rivet-error"] then return protocol.http_error(res, "json", true) end
  if body:match("^%s*{") and #body < 65536 then
    local v = core.json_decode(body, false)
    if type(v) == "table" and type(v.group) == "string" and type(v.code) == "string"
        and type(v.message) == "string" then
      return protocol.error_from(v, st, hdr)
    end
  end
  if p.line == "2.3" and st == 404 and body == "" and not hdr["content-type"] then
    return errors.new("handler", "request_not_defined",
      "the actor answered 404 with no body: it has no onRequest handler", { status = 404 })
  end
  return nil
end

local function new_response(res, stream)
  local st = res.status
  local r = setmetatable({
    status = st,
    ok = st >= 200 and st < 300,
    headers = res.headers or {},
    body = (not stream) and (res.body or "") or nil,
    _stream = stream or nil,
  }, Response)
  if stream then compat.collectable(r) end
  return r
end

-- The rest of a streamed body that will not be handed out (an error response), at
-- most `limit` bytes.
-- Reads up to `limit` bytes of a streamed body, until its end or `deadline` (the call's:
-- a body that never ends must not hold the call past it); keeps what came.
local function drain(stream, limit, deadline)
  local parts, n = {}, 0
  while n < limit do
    local left = deadline - now()
    if left <= 0 then break end
    local chunk = stream:read(left)
    if not chunk then break end
    parts[#parts + 1] = chunk
    n = n + #chunk
  end
  stream:close()
  return table.concat(parts)
end

-- handle:fetch(path_or_request [, init]) -> Response. level: for argument errors.
function M.fetch(h, input, init, level)
  level = level or 1
  local req = normalize(input, init, level + 1)
  check_path(req.url, "fetch", level + 1)
  local c = h._client
  local deadline = now() + (req.timeout or h._timeout or c._timeout)
  local p = c:_server(deadline)
  local path, query = split_target(req.url)
  local upload = type(req.body) == "function" and req.body or nil
  local retry = { reresolved = false, attempt = 0 }
  while true do
    local id = h:_resolve(deadline)
    local st = (req.stream or upload) and c._sched:new_stream(upload) or nil
    local res = c:_http({
      method = req.method,
      url = c._endpoint .. "/gateway/" .. protocol.seg(id) .. "/request/" .. path .. query,
      headers = wire_headers(h, req),
      body = not upload and req.body or nil,
      upload = upload and true or nil,
      stream = req.stream or nil,
      owner = st,
    }, deadline)
    local streamed = req.stream and res.body == nil
    if streamed and not (res.status >= 200 and res.status < 300) then
      -- an error response is read whole, so the route's error can be told apart
      res.body = drain(st, 1024 * 1024, deadline)
      streamed = false
    end
    local err = route_error(res, p)
    if not err then return new_response(res, streamed and st or nil) end
    -- a body function cannot be replayed: the first failure is final
    if upload then error(err, 0) end
    -- the route failed before the handler ran, so trying again cannot run it twice
    dispatch.after_failure(h, err, retry, id, deadline, "fetch", { actor = h._name })
  end
end

--------------------------------------------------------------------------------------
-- websocket
-- @section websocket
--------------------------------------------------------------------------------------

local WebSocket = { __name = "rivet.WebSocket" }
local ws_methods = {}
WebSocket.__index = ws_methods
M.WebSocket = WebSocket

local EVENTS = { open = true, message = true, close = true, error = true }

local function pins(c)
  local t = rawget(c, "_raw_pins")
  if not t then
    t = {}
    rawset(c, "_raw_pins", t)
  end
  return t
end

local function report_failure(self, e)
  local msg = tostring(e)
  log.emit("error", "a WebSocket handler failed", { actor = self._name, path = self._path, error = msg })
  if not log.enabled() then io.stderr:write("rivet: a WebSocket handler failed: ", msg, "\n") end
end

local fire

local function handler_task(self, event, fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then return end
  if event == "error" or #self._cb.error == 0 then
    report_failure(self, e)
  else
    if not errors.is(e) then e = errors.new("client", "handler_failed", tostring(e)) end
    fire(self, "error", e)
  end
end

-- Runs every handler of `event` in an internal task of its own (so a handler may wait
-- on other calls; Scheduler:go); an error in one goes to the "error" handlers, never
-- out of poll().
function fire(self, event, ...)
  local list = self._cb[event]
  local n = #list
  if n == 0 then return end
  if n > 1 then list = table.move(list, 1, n, 1, {}) end
  for i = 1, n do self._sched:go(handler_task, self, event, list[i], ...) end
end

-- The socket is gone (close, error, timeout, dispose): wake every receiver with err.
local function finish(self, code, reason, err)
  if self.status == "closed" then return end
  self.status = "closed"
  self.closeCode, self.closeReason = code, reason
  self._final_err = err
  local sched = self._sched
  sched:cancel_timer(self._open_timer)
  if self._ws then sched.ws_owners[self._ws] = nil end
  sched:remove_source(self)
  pins(self._client)[self] = nil
  local waiters = self._waiters
  self._waiters = {}
  for i = 1, #waiters do waiters[i]:resolve({ err = err }) end
  log.emit("info", "raw WebSocket closed",
    { actor = self._name, path = self._path, code = code, reason = reason, error = err and tostring(err) or nil })
end

local function deliver(self, data, kind)
  if #self._cb.message > 0 then
    fire(self, "message", data, kind)
    return
  end
  local w = table.remove(self._waiters, 1)
  if w then
    w:resolve({ data, kind })
  else
    local q = self._queue
    q[#q + 1] = { data, kind }
  end
end

-- loop events of this socket (the scheduler dispatches them through ws_owners)
-- (id, kind, a, b): open (a: protocol), message (a: data, b: binary), close (a: code,
-- b: reason), error (a: kind, b: message)
function ws_methods:_on_ws(ws, kind, a, b)
  if ws ~= self._ws or self.status == "closed" then return end
  local c = self._client
  if kind == "open" then
    self._sched:cancel_timer(self._open_timer)
    if self.status == "connecting" then self.status = "open" end
    self.protocol = a ~= "" and a or nil
    log.emit("info", "raw WebSocket open", { actor = self._name, path = self._path, protocol = self.protocol })
    fire(self, "open", self.protocol)
  elseif kind == "message" then
    deliver(self, a, b and "binary" or "text")
  elseif kind == "close" then
    local code, reason = a, b or ""
    local err
    if self._timed_out then
      err = errors.new("client", "timeout", "the WebSocket did not open in time")
      code, reason = 1006, ""
    else
      err = errors.new("client", "websocket_closed",
        "the WebSocket closed (code " .. tostring(code) .. (reason ~= "" and (", reason: " .. reason) or "") .. ")",
        { closeCode = code, closeReason = reason })
    end
    local h = self._handle
    -- 2.3 names a vanished actor in the reason: let the next call look the key up again
    if h._key and h._id == self._actor_id
      and (reason:find("not_found", 1, true) or reason:find("destroyed", 1, true)) then
      h._id = false
    end
    finish(self, code, reason, err)
    if self._timed_out then fire(self, "error", err) end
    fire(self, "close", code, reason)
  elseif kind == "error" then
    local ekind = type(a) == "string" and a or "connection_failed"
    local msg = redact(c, b or "")
    local err = errors.new("client", ekind, "the WebSocket failed: " .. msg)
    log.emit("warn", "raw WebSocket failed", { actor = self._name, path = self._path, error = tostring(err) })
    finish(self, 1006, "", err)
    fire(self, "error", err)
    fire(self, "close", 1006, "")
  end
end

-- a source of the scheduler while open: keeps blocking waits alive; it never sets
-- _wake (its open timeout is a scheduler timer), so the scheduler never pumps it

function ws_methods:dispose()
  if self.status == "closed" then return end
  local c = self._client
  if self._ws then pcall(c._transport.ws_close, c._transport, self._ws, 1000, "Disposed") end
  finish(self, 1000, "Disposed", errors.new("client", "disposed", "the client was disposed"))
end

local function check_self(self, name, usage)
  if getmetatable(self) ~= WebSocket then
    error("'" .. name .. "' must be called with a colon: " .. usage, 3)
  end
end

--- Sends a text frame, or a binary one with mode "binary". Returns true, or nil, err
--- once the socket is closing or closed. Frames sent before the socket opens wait.
-- @tparam string data
-- @tparam[opt] string mode "binary" for a binary frame
-- @treturn ?boolean true
-- @treturn ?rivet.ActorError the error
function ws_methods:send(data, mode)
  check_self(self, "send", "ws:send(data [, \"binary\"])")
  if type(data) ~= "string" then
    error("bad argument #1 to 'send': expected a string, got " .. type(data), 2)
  end
  if mode ~= nil and mode ~= "text" and mode ~= "binary" then
    error("bad argument #2 to 'send': expected \"text\" or \"binary\", got " .. tostring(mode), 2)
  end
  local binary = mode == "binary"
  if not binary and not compat.valid_utf8(data) then
    error("bad argument #1 to 'send': a text frame must be valid UTF-8 (send bytes with \"binary\")", 2)
  end
  if self.status == "closed" then return nil, self._final_err end
  if self.status == "closing" then
    return nil, errors.new("client", "websocket_closed", "the WebSocket is closing")
  end
  if not self._client._transport:ws_send(self._ws, data, binary) then
    return nil, errors.new("client", "websocket_closed", "the WebSocket is closed")
  end
  return true
end

--- Waits for the next message: data, kind ("text" | "binary"), or nil, err when the
--- socket closed (err.closeCode / err.closeReason), failed, or timeout seconds passed
--- (err client.timeout; the socket stays usable). Messages go to on("message")
--- handlers instead while any is registered.
-- @tparam[opt] number timeout seconds
-- @treturn ?string data
-- @treturn string|rivet.ActorError kind ("text" or "binary"), or the error
function ws_methods:receive(timeout)
  check_self(self, "receive", "ws:receive([timeout])")
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    error("bad argument #1 to 'receive': timeout must be a non-negative number of seconds", 2)
  end
  local q = self._queue
  if #q > 0 then
    local m = table.remove(q, 1)
    return m[1], m[2]
  end
  if self.status == "closed" then return nil, self._final_err end
  local fut = self._sched:future()
  local waiters = self._waiters
  waiters[#waiters + 1] = fut
  local ok, v = pcall(self._sched.await, self._sched, fut, timeout)
  if ok then
    if v.err then return nil, v.err end
    return v[1], v[2]
  end
  for i = #self._waiters, 1, -1 do
    if self._waiters[i] == fut then table.remove(self._waiters, i) end
  end
  if errors.is(v, "client.timeout") then
    return nil, errors.new("client", "timeout", "no message within " .. tostring(timeout) .. " s")
  end
  error(v, 0)
end

--- Registers fn for "open" (fn(protocol)), "message" (fn(data, kind)), "close"
--- (fn(code, reason)) or "error" (fn(err)); returns a function that removes it.
-- @tparam string event "open", "message", "close" or "error"
-- @tparam function fn
-- @treturn function removes fn
function ws_methods:on(event, fn)
  check_self(self, "on", "ws:on(event, fn)")
  if not EVENTS[event] then
    error("bad argument #1 to 'on': expected \"open\", \"message\", \"close\" or \"error\", got " .. tostring(event), 2)
  end
  if type(fn) ~= "function" then
    error("bad argument #2 to 'on': expected a function, got " .. type(fn), 2)
  end
  local list = self._cb[event]
  list[#list + 1] = fn
  -- handlers are the only way to observe a socket nobody holds: keep it alive for them
  if self.status ~= "closed" then pins(self._client)[self] = true end
  if event == "message" then
    -- messages that arrived before the first handler was registered
    local q = self._queue
    self._queue = {}
    for i = 1, #q do fire(self, "message", q[i][1], q[i][2]) end
  end
  return function()
    for i = #list, 1, -1 do if list[i] == fn then table.remove(list, i) end end
  end
end

--- Closes the socket (default 1000); the "close" event and receivers see the outcome.
-- @tparam[opt=1000] integer code 1000 or 3000-4999
-- @tparam[opt] string reason at most 123 bytes
function ws_methods:close(code, reason)
  check_self(self, "close", "ws:close([code [, reason]])")
  if code ~= nil and (not compat.is_integer(code) or not (code == 1000 or (code >= 3000 and code <= 4999))) then
    error("bad argument #1 to 'close': code must be 1000 or an integer in 3000..4999", 2)
  end
  if reason ~= nil and (type(reason) ~= "string" or #reason > 123) then
    error("bad argument #2 to 'close': reason must be a string of at most 123 bytes", 2)
  end
  if self.status == "closed" or self.status == "closing" then return end
  self.status = "closing"
  self._client._transport:ws_close(self._ws, code or 1000, reason or "")
end

function WebSocket.__tostring(self)
  return "rivet.WebSocket(" .. self._name .. " " .. self._path .. ", " .. self.status .. ")"
end

WebSocket.__close = function(self) self:close() end
WebSocket.__gc = function(self)
  local ws, c = rawget(self, "_ws"), rawget(self, "_client")
  if ws and c and not c._disposed and self.status ~= "closed" then
    pcall(c._transport.ws_close, c._transport, ws, 1000, "Disposed")
  end
end

local PROTOCOL_TOKEN = "^[%w!#%$%%&'%*%+%-%.%^_`|~]+$"

local function check_protocols(protocols, level)
  if protocols == nil then return {} end
  if type(protocols) == "string" then protocols = { protocols } end
  if type(protocols) ~= "table" then
    error("bad argument #2 to 'websocket': protocols must be a string or an array of strings, got " .. type(protocols),
      level + 1)
  end
  local out = {}
  for i = 1, #protocols do
    local s = protocols[i]
    if type(s) ~= "string" or not s:match(PROTOCOL_TOKEN) then
      error("bad argument #2 to 'websocket': subprotocol " .. i .. " is not a valid token", level + 1)
    end
    out[#out + 1] = s
  end
  return out
end

local WEBSOCKET_OPTIONS = { "timeout", "max_message" }

-- handle:websocket([path [, protocols [, opts]]]) -> WebSocket (opening; sends wait).
-- opts: timeout (seconds to open), max_message (bytes).
function M.websocket(h, path, protocols, opts, level)
  level = level or 1
  if path == nil then path = "" end
  if type(path) ~= "string" then
    error("bad argument #1 to 'websocket': path must be a string, got " .. type(path), level + 1)
  end
  check_path(path, "websocket", level + 1)
  local user_protos = check_protocols(protocols, level + 1)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #3 to 'websocket': options must be a table, got " .. type(opts), level + 1)
  end
  opts = opts or {}
  options.check_keys(opts, WEBSOCKET_OPTIONS, "bad argument #3 to 'websocket'", level + 1)
  if opts.timeout ~= nil
    and (type(opts.timeout) ~= "number" or not (opts.timeout > 0)) then -- luacheck: ignore 581 (NaN fails too)
    error("bad argument #3 to 'websocket': timeout must be a positive number of seconds", level + 1)
  end
  if opts.max_message ~= nil and not compat.is_integer(opts.max_message) then
    error("bad argument #3 to 'websocket': max_message must be an integer", level + 1)
  end

  local c = h._client
  local sched = c._sched
  local deadline = now() + (opts.timeout or h._timeout or c._timeout)
  local p = c:_server(deadline)
  local id = h:_resolve(deadline)

  -- "rivet" first: 2.3 answers with it whatever was offered, and libwebsockets fails a
  -- handshake whose answer is not among the offers
  local protos, have = { "rivet" }, { rivet = true }
  for _, s in ipairs(user_protos) do
    if not have[s] then
      have[s] = true
      protos[#protos + 1] = s
    end
  end
  local pj = h:_params_json(false)
  if pj then protos[#protos + 1] = "rivet_conn_params." .. protocol.pct(pj) end

  local seg = protocol.seg(id)
  if c._token and p.line == "2.3" then seg = seg .. "@" .. protocol.pct(c._token) end
  local rpath, query = split_target(path)
  local u = c._url
  local wpath = u.path .. "/gateway/" .. seg .. "/websocket" .. (rpath ~= "" and ("/" .. rpath) or "") .. query

  local self = setmetatable({
    status = "connecting",
    protocol = nil,
    closeCode = nil,
    closeReason = nil,
    _client = c,
    _sched = sched,
    _handle = h,
    _actor_id = id,
    _name = h._name,
    _path = "/" .. rpath, -- no query: it may hold secrets
    _ws = false,
    _queue = {},
    _waiters = {},
    _cb = { open = {}, message = {}, close = {}, error = {} },
  }, WebSocket)
  compat.collectable(self)
  local ws = c._transport:ws_open({
    host = u.host,
    port = u.port,
    tls = u.tls,
    path = wpath,
    protocols = table.concat(protos, ", "),
    headers = c._extra_headers,
    ca_file = c._ca_file,
    insecure = c._insecure,
    max_message = opts.max_message,
    deadline = deadline,
  })
  self._ws = ws
  sched.ws_owners[ws] = self
  sched:add_source(self)
  -- a socket that neither opens nor fails in time is abandoned
  self._open_timer = sched:timer(deadline, function()
    if self.status == "connecting" then
      self._timed_out = true
      c._transport:ws_close(ws, 1000, "timeout")
    end
  end)
  log.emit("debug", "raw WebSocket opening", { actor = h._name, path = self._path })
  return self
end

return M
