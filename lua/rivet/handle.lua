--- Actor handles: client.counter:getOrCreate("k") returns one; any method name that is
-- not one of the handle's own becomes a stateless action over HTTP.
-- @module rivet.handle
local core = require("rivet.core")
local dispatch = require("rivet.dispatch")
local errors = require("rivet.errors")
local options = require("rivet.options")
local protocol = require("rivet.protocol")

local now = require("rivet.compat").now
local null = core.null
local pack_args = dispatch.pack_args

local Handle = {}
local methods = {}
Handle.methods = methods


local handle_mt = {
  __name = "rivet.ActorHandle",
  __tostring = function(self)
    local key = self._key and protocol.serialize_key(self._key) or nil
    return "rivet.ActorHandle(" .. self._name .. (key and (", key " .. key) or "")
        .. (self._id and (", id " .. self._id) or "") .. ")"
  end,
}
Handle.mt = handle_mt
dispatch.actions(methods, handle_mt, "handle")

-- Internal: builds a handle. mode is "get", "getOrCreate", "create" or "id".
function Handle.new(client, name, key, mode, opts)
  return setmetatable({
    _client = client,
    _name = name,
    _key = key or false,
    _mode = mode,
    _id = false,
    _resolving = false,
    _params = opts.params,
    _input = opts.input,
    _region = opts.region or false,
    _pool = opts.pool or false,
    _timeout = opts.timeout or false,
    _schema = client._schema and client._schema.actors[name] or false, -- rivet/schema.lua
  }, handle_mt)
end

function methods:_deadline()
  return now() + (self._timeout or self._client._timeout)
end

--------------------------------------------------------------------------------------
-- Resolving the actor id
-- @section resolving
--------------------------------------------------------------------------------------

local function create_body(self, p)
  local c = self._client
  local body = {
    name = self._name,
    key = protocol.serialize_key(self._key or {}),
    runner_name_selector = self._pool or c._pool,
    crash_policy = "sleep",
  }
  if self._input ~= nil then
    body.input = core.base64_encode(core.cbor_encode(self._input, p.tagged_cbor))
  end
  if self._region then body.datacenter = self._region end
  return body
end

-- REST create calls may meet an actor destroyed while it was being created (2.3):
-- that is transient, try again.
local function rest_retry(self, method, path, query, body, deadline)
  local c = self._client
  local attempt = 0
  while true do
    local ok, res = pcall(c._rest, c, method, path, query, body, deadline)
    if ok then return res end
    if not errors.is(res) then error(res, 0) end
    attempt = dispatch.retry_after(c._sched, res, attempt, deadline,
      "retrying an actor look-up after a transient error", { actor = self._name })
  end
end

local function take_actor(self, actor, what)
  if type(actor) ~= "table" or type(actor.actor_id) ~= "string" then
    error(errors.new("client", "malformed_response", "the server's answer to " .. what .. " has no actor id"), 0)
  end
  self._id = actor.actor_id
  return self._id
end

local function lookup(self, deadline)
  local c = self._client
  local p = c:_server(deadline)
  local mode = self._mode
  if mode == "getOrCreate" then
    local res = rest_retry(self, "PUT", "/actors", nil, create_body(self, p), deadline)
    return take_actor(self, res.actor, "PUT /actors")
  elseif mode == "get" then
    local q = "name=" .. protocol.pct(self._name) .. "&key=" .. protocol.pct(protocol.serialize_key(self._key))
    local res = c:_rest("GET", "/actors", q, nil, deadline)
    local a = type(res.actors) == "table" and res.actors[1]
    if not a then
      error(errors.new("actor", "not_found", "no actor '" .. self._name .. "' with key "
        .. protocol.serialize_key(self._key)), 0)
    end
    return take_actor(self, a, "GET /actors")
  end
  error(errors.new("actor", "not_found", "the actor of this handle no longer exists"), 0)
end

-- The actor id, resolved once and cached. Concurrent callers share one lookup.
function methods:_resolve(deadline)
  if self._id then return self._id end
  local sched = self._client._sched
  if self._resolving then return sched:await(self._resolving) end
  local fut = sched:future()
  self._resolving = fut
  local ok, id = pcall(lookup, self, deadline)
  self._resolving = false
  if ok then fut:resolve(id) else fut:reject(id); error(id, 0) end
  return id
end

function methods:_create()
  local deadline = self:_deadline()
  local p = self._client:_server(deadline)
  local res = rest_retry(self, "POST", "/actors", nil, create_body(self, p), deadline)
  take_actor(self, res.actor, "POST /actors")
  self._mode = "id"
end

-- After a 2.3 scheduling error (guard.actor_ready_timeout / actor_runner_failed) for
-- actor `id`: raises the error with the engine's reason in its metadata ({actorId,
-- details}) when the actor records one (it failed to start: retrying will not help),
-- as the official client does; returns otherwise (the caller retries).
function methods:_check_scheduling(err, id, deadline)
  if not (err.group == "guard" and (err.code == "actor_ready_timeout" or err.code == "actor_runner_failed")) then
    return
  end
  local c = self._client
  local ok, res = pcall(c._rest, c, "GET", "/actors", "actor_ids=" .. protocol.pct(id), nil, deadline)
  local a = ok and type(res) == "table" and type(res.actors) == "table" and res.actors[1]
  local details = type(a) == "table" and a.error
  if details == nil or details == null then return end
  error(errors.new(err.group, err.code, "Actor failed to start (" .. id .. "): " .. core.json_encode(details), {
    metadata = { actorId = id, details = details },
    status = err.status,
    rayId = err.rayId,
  }), 0)
end

--- Returns the actor id (looking it up, or creating the actor for getOrCreate handles).
-- @treturn string the actor id (cached on the handle)
function methods:resolve()
  if getmetatable(self) ~= handle_mt then error("'resolve' must be called with a colon: handle:resolve()", 2) end
  return self:_resolve(self:_deadline())
end

--- The actor's gateway URL, for other programs (a browser, curl, another client): append
--- a gateway path (/action/NAME, /request/PATH, /connect) to reach the actor. On 2.3 a
--- key-based handle gives the engine's query URL (the actor is found or created by the
--- gateway on each request; the path goes before the "?"), as the official client does;
--- otherwise the id is resolved and the URL names it. Carries the client's token.
-- @treturn string the URL
function methods:getGatewayUrl()
  if getmetatable(self) ~= handle_mt then
    error("'getGatewayUrl' must be called with a colon: handle:getGatewayUrl()", 2)
  end
  local c = self._client
  local deadline = self:_deadline()
  local p = c:_server(deadline)
  local pct = protocol.pct
  if p.line == "2.3" and self._key and (self._mode == "get" or self._mode == "getOrCreate") then
    local q = { "rvt-namespace=" .. pct(c._namespace), "rvt-method=" .. self._mode }
    if self._mode == "getOrCreate" then q[#q + 1] = "rvt-runner=" .. pct(self._pool or c._pool) end
    if #self._key > 0 then q[#q + 1] = "rvt-key=" .. pct(table.concat(self._key, ",")) end
    if self._mode == "getOrCreate" then
      if self._input ~= nil then
        q[#q + 1] = "rvt-input=" .. core.base64url_encode(core.cbor_encode(self._input, true))
      end
      if self._region then q[#q + 1] = "rvt-region=" .. pct(self._region) end
      q[#q + 1] = "rvt-crash-policy=sleep"
    end
    if c._token then q[#q + 1] = "rvt-token=" .. pct(c._token) end
    return c._endpoint .. "/gateway/" .. protocol.seg(self._name) .. "?" .. table.concat(q, "&")
  end
  local seg = protocol.seg(self:_resolve(deadline))
  if c._token and p.line == "2.3" then seg = seg .. "@" .. pct(c._token) end
  return c._endpoint .. "/gateway/" .. seg
end

--------------------------------------------------------------------------------------
-- Stateless actions
-- @section actions
--------------------------------------------------------------------------------------

-- connection params: a value, or a function called before each use (token refresh).
-- JSON for a header (ascii: non-ASCII escaped as \uXXXX), or for a WebSocket
-- subprotocol (ascii == false: UTF-8, since it is percent-encoded anyway and \u escapes
-- would make it a third longer)
function methods:_params_json(ascii, params)
  local p = self._params
  if params ~= nil then p = params end
  if type(p) == "function" then
    local ok, v = pcall(p)
    if not ok then
      error(errors.new("client", "get_params_failed", "the params function failed: " .. tostring(v)), 0)
    end
    p = v
  end
  if p == nil then return nil end
  if ascii == false then return core.json_encode(p) end
  return core.json_encode_ascii(p)
end

function methods:_gateway_headers(encoding, params)
  local c = self._client
  local h = {
    "x-rivet-encoding: " .. encoding,
    encoding == "json" and "content-type: application/json" or "content-type: application/octet-stream",
  }
  local pj = self:_params_json(nil, params)
  if pj then h[#h + 1] = "x-rivet-conn-params: " .. pj end
  if c._token then h[#h + 1] = "x-rivet-token: " .. c._token end
  for _, x in ipairs(c._extra_headers) do h[#h + 1] = x end
  return h
end

-- The request body of an action call in the client's encoding for server profile p.
local function encode_body(c, args, p)
  local enc = c._encoding
  return core.encode_http_action_request(enc, args, protocol.tagged(p, enc))
end

-- One attempt: returns output, or nil, err (an ActorError) for the retry policy to judge.
local function send_action(self, id, name, body, p, deadline)
  local c = self._client
  local enc = c._encoding
  local tagged = protocol.tagged(p, enc)
  local res = c:_http({
    method = "POST",
    url = c._endpoint .. "/gateway/" .. protocol.seg(id) .. "/action/" .. protocol.seg(name),
    headers = self:_gateway_headers(enc),
    body = body,
  }, deadline)
  if res.status == 200 then
    local ok, out = core.decode_http_action_response(enc, res.body, tagged)
    if not ok then
      return nil, errors.new("client", "malformed_response",
        "could not decode the action's response: " .. tostring(out))
    end
    if out == null then out = nil end
    return out
  end
  return nil, protocol.http_error(res, enc, tagged)
end

-- body: the encoded arguments, or nil when they were only checked (prepare) and are
-- encoded here, once the server's profile is known.
local function invoke(self, name, args, body, deadline)
  local c = self._client
  local p = c:_server(deadline)
  if not body then body = encode_body(c, args, p) end
  local st = { reresolved = false, attempt = 0 }
  while true do
    local id = self:_resolve(deadline)
    local out, err = send_action(self, id, name, body, p, deadline)
    if not err then return out end
    dispatch.after_failure(self, err, st, id, deadline, "action", { actor = self._name, action = name })
  end
end

-- Encodes the arguments at the caller, so that a bad argument is a plain Lua error there
-- (also for async calls) before anything is sent. Returns the request body; before the
-- server's profile is known (the first call) they are only checked and nil is returned.
local function prepare(self, name, args, level)
  local c = self._client
  local p = c._profile
  local ok, body
  if p then
    ok, body = pcall(encode_body, c, args, p)
  else
    ok, body = pcall(core.cbor_encode, args, false)
    if ok then body = nil end
  end
  if not ok then
    error("bad argument to action '" .. name .. "': " .. tostring(body):gsub("^[^:]*:%d+: ", ""), level + 1)
  end
  return body
end

function methods:_call(name, level, ...)
  local s = self._schema
  if s then s:check(name, ...) end
  local args = pack_args(...)
  local body = prepare(self, name, args, level)
  return invoke(self, name, args, body, self:_deadline())
end

--- Calls action `name` with the given arguments (for names that clash with methods).
-- `handle:name(...)` is the same for any other name.
-- @tparam string name the action
-- @param ... its arguments
-- @return the action's output (nil for undefined or null)
function methods:action(name, ...)
  if getmetatable(self) ~= handle_mt then error("'action' must be called with a colon: handle:action(name, ...)", 2) end
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'action': action name must be a non-empty string, got " .. type(name), 2)
  end
  return self:_call(name, 3, ...)
end

--- Starts action `name` and returns a future at once; many can be in flight.
-- @tparam string name the action
-- @param ... its arguments
-- @treturn rivet.Future of its output
function methods:async(name, ...)
  if getmetatable(self) ~= handle_mt then error("'async' must be called with a colon: handle:async(name, ...)", 2) end
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'async': action name must be a non-empty string, got " .. type(name), 2)
  end
  local s = self._schema
  if s then s:check(name, ...) end
  local args = pack_args(...)
  local body = prepare(self, name, args, 2)
  local deadline = self:_deadline()
  return self._client._sched:spawn(invoke, true, self, name, args, body, deadline)
end

--- Sends a message to the actor's queue `name` (RivetKit 2.3): returns nil once it is
--- accepted, or with opts.wait = true {status = "completed"|"timedOut", response = ...}
--- (opts.timeout: seconds the actor may take to complete it). See docs/queues.md.
-- @tparam string name the queue
-- @param body any value
-- @tparam[opt] table opts `wait` (boolean), `timeout` (seconds)
-- @treturn ?table nil, or with `wait` {status = "completed"|"timedOut", response = ...}
function methods:send(name, body, opts)
  if getmetatable(self) ~= handle_mt then
    error("'send' must be called with a colon: handle:send(name, body [, opts])", 2)
  end
  return require("rivet.queue").send(self, nil, name, body, opts, 2)
end

local CONNECT_OPTIONS = { "timeout" }

--- Opens a live connection (WebSocket) to the actor: connect([params [, opts]]); params
--- override the handle's; opts.timeout is the default deadline of its calls.
-- @param[opt] params connection params (a value, or a function called before every connect)
-- @tparam[opt] table opts `timeout` (seconds)
-- @treturn rivet.Connection
function methods:connect(params, opts)
  if getmetatable(self) ~= handle_mt then
    error("'connect' must be called with a colon: handle:connect([params])", 2)
  end
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("bad argument #2 to 'connect': options must be a table, got " .. type(opts), 2)
    end
    options.check_keys(opts, CONNECT_OPTIONS, "bad argument #2 to 'connect'", 2)
    if opts.timeout ~= nil
      and (type(opts.timeout) ~= "number" or not (opts.timeout > 0)) then -- luacheck: ignore 581 (NaN fails too)
      error("bad argument #2 to 'connect': timeout must be a positive number of seconds", 2)
    end
  end
  return require("rivet.conn").new(self, params, opts)
end

--- Raw HTTP request to the actor's onRequest handler: `fetch(path_or_request [, init])`
--- returns a response {status, ok, headers, body, :json()} (see docs/raw.md).
-- @tparam string|table input a path with optional query, or a request table {url, method, headers, body, ...}
-- @tparam[opt] table init `method`, `headers`, `body` (a string, or a function returning chunks), `timeout`,
-- `stream` (read the body as it arrives); replaces the request table's fields
-- @treturn rivet.Response
function methods:fetch(input, init)
  if getmetatable(self) ~= handle_mt then
    error("'fetch' must be called with a colon: handle:fetch(path [, init])", 2)
  end
  local res = require("rivet.raw").fetch(self, input, init, 2)
  return res
end

--- Raw WebSocket to the actor's onWebSocket handler: websocket([path [, protocols [, opts]]]).
-- @tparam[opt] string path a path with optional query (default: the root)
-- @tparam[opt] string|{string,...} protocols subprotocols to offer
-- @tparam[opt] table opts `timeout` (seconds to open), `max_message` (bytes)
-- @treturn rivet.RawWebSocket (opening; what is sent before it opens waits)
function methods:websocket(path, protocols, opts)
  if getmetatable(self) ~= handle_mt then
    error("'websocket' must be called with a colon: handle:websocket(path [, protocols])", 2)
  end
  local ws = require("rivet.raw").websocket(self, path, protocols, opts, 2)
  return ws
end

return Handle
