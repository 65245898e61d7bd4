--- rivet.client(endpoint, opts): options, the loop, server detection and accessors.
-- @module rivet.client
local core = require("rivet.core")
local errors = require("rivet.errors")
local log = require("rivet.log")
local protocol = require("rivet.protocol")
local options = require("rivet.options")
local runtime = require("rivet.runtime")
local Handle = require("rivet.handle")

local now = require("rivet.compat").now

local Client = {}
local methods = {}

local ENCODINGS = { bare = true, cbor = true, json = true }
local CLIENT_OPTIONS = {
  "endpoint", "encoding", "timeout", "token", "namespace", "pool", "headers", "ca_file", "insecure",
  "transport", "disableMetadataLookup", "max_response", "schema",
}
local CLIENT_ALIASES = { poolName = "pool" }

local function check_opt(opts, k, ty, level)
  local v = opts[k]
  if v ~= nil and type(v) ~= ty then
    error("rivet.client: option '" .. k .. "' must be a " .. ty .. ", got " .. type(v), level + 1)
  end
  return v
end

-- Splits "https://ns:token@host:port/path" into the endpoint without credentials and them.
local function split_userinfo(endpoint)
  local scheme, rest = endpoint:match("^(%a[%w+.-]*://)(.*)$")
  if not scheme then return endpoint end
  local userinfo, host = rest:match("^([^/@]*)@(.*)$")
  if not userinfo then return endpoint end
  local ns, token = userinfo:match("^([^:]*):(.*)$")
  local function unpct(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
  if ns then return scheme .. host, unpct(ns), unpct(token) end
  return scheme .. host, unpct(userinfo), nil
end

-- host, port, tls and path prefix of an http(s) endpoint, for WebSocket connections
local function parse_endpoint(endpoint)
  local scheme, rest = endpoint:match("^(https?)://(.*)$")
  local hostport, path = rest:match("^([^/]*)(.*)$")
  local host, port = hostport:match("^%[(.-)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
  local tls = scheme == "https"
  port = tonumber(port) or (tls and 443 or 80)
  return { host = host, port = port, tls = tls, path = path }
end

-- Creates a client: Client.new([endpoint], [opts]) or Client.new(opts) with
-- opts.endpoint. The endpoint may be omitted (RIVET_ENDPOINT, else http://127.0.0.1:6420).
function Client.new(endpoint, opts)
  if type(endpoint) == "table" and opts == nil then endpoint, opts = nil, endpoint end
  if endpoint ~= nil and type(endpoint) ~= "string" then
    error("rivet.client: endpoint must be a string URL, got " .. type(endpoint), 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("rivet.client: options must be a table, got " .. type(opts), 3)
  end
  opts = options.aliases(opts or {}, CLIENT_ALIASES, "rivet.client", 3)
  options.check_keys(opts, CLIENT_OPTIONS, "rivet.client", 3)
  if opts.endpoint ~= nil then
    if endpoint ~= nil then error("rivet.client: the endpoint is given twice (argument and option)", 3) end
    endpoint = check_opt(opts, "endpoint", "string", 3)
  end
  endpoint = endpoint or os.getenv("RIVET_ENDPOINT") or os.getenv("RIVET_ENGINE") or "http://127.0.0.1:6420"
  local url_ns, url_token
  endpoint, url_ns, url_token = split_userinfo(endpoint)
  if not endpoint:match("^https?://[^/]") then
    error("rivet.client: endpoint must start with http:// or https://, got '" .. endpoint .. "'", 3)
  end
  endpoint = endpoint:gsub("/+$", "")

  local encoding = check_opt(opts, "encoding", "string", 3) or "bare"
  if not ENCODINGS[encoding] then
    error("rivet.client: encoding must be \"bare\", \"cbor\" or \"json\", got \"" .. encoding .. "\"", 3)
  end
  local timeout = check_opt(opts, "timeout", "number", 3) or 30
  if not (timeout > 0) then -- luacheck: ignore 581 (NaN fails too)
    error("rivet.client: timeout must be a positive number of seconds", 3)
  end
  local headers = check_opt(opts, "headers", "table", 3) or {}
  local extra = {}
  for k, v in pairs(headers) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
      error("rivet.client: headers must map header names to strings", 3)
    end
    if not k:match("^[%w!#%$%%&'%*%+%-%.%^_`|~]+$") or tostring(v):find("[%c]") then
      error("rivet.client: header " .. string.format("%q", k) .. ": the name must be an HTTP token and the value "
        .. "may not contain control characters (CR, LF, NUL, ...)", 3)
    end
    extra[#extra + 1] = k .. ": " .. tostring(v)
  end
  local token = check_opt(opts, "token", "string", 3) or url_token or os.getenv("RIVET_TOKEN")
  if token then protocol.check_header_value(token, "rivet.client: the token", 3) end
  local namespace = check_opt(opts, "namespace", "string", 3) or url_ns or os.getenv("RIVET_NAMESPACE") or "default"
  local pool = check_opt(opts, "pool", "string", 3) or os.getenv("RIVET_POOL") or os.getenv("RIVET_RUNNER") or "default"
  local ca_file = check_opt(opts, "ca_file", "string", 3)
  local insecure = opts.insecure == true
  local max_response = opts.max_response
  if max_response ~= nil
    and (type(max_response) ~= "number" or not (max_response >= 1)) then -- luacheck: ignore 581 (NaN fails too)
    error("rivet.client: option 'max_response' must be a positive number of bytes", 3)
  end
  if opts.disableMetadataLookup ~= nil and type(opts.disableMetadataLookup) ~= "boolean" then
    error("rivet.client: option 'disableMetadataLookup' must be a boolean, got " .. type(opts.disableMetadataLookup), 3)
  end
  local kind = runtime.pick(opts.transport, 3)
  -- schema: every call is checked against it before it is sent (rivet/schema.lua)
  local schema = opts.schema ~= nil and require("rivet.schema").compile(opts.schema) or false

  local transport, sched = runtime.new(kind)
  if kind == "resty" and ca_file then
    -- cosockets trust what lua_ssl_trusted_certificate names (docs/openresty.md)
    local n = rawget(_G, "ngx")
    n.log(n.WARN, "rivet: the ca_file option has no effect inside nginx; use lua_ssl_trusted_certificate")
  end
  local self = {
    _endpoint = endpoint,
    _url = parse_endpoint(endpoint),
    _encoding = encoding,
    _timeout = timeout,
    _extra_headers = extra,
    _token = token,
    _namespace = namespace,
    _pool = pool,
    _ca_file = ca_file,
    _insecure = insecure,
    _max_response = max_response,
    _transport = transport,
    _transport_kind = kind,
    _sched = sched,
    _accessors = {},
    _schema = schema,
    _no_metadata = opts.disableMetadataLookup == true,
    _profile = false,
    _profiling = false,
    _disposed = false,
  }
  return setmetatable(self, Client)
end

--------------------------------------------------------------------------------------
-- Requests
-- @section requests
--------------------------------------------------------------------------------------

-- Sends one HTTP request and waits (yield or loop) for its result table, bounded by
-- `deadline` (monotonic seconds). Raises client.timeout when no time is left.
function methods:_http(req, deadline)
  if self._disposed then error(errors.new("client", "disposed", "the client was disposed"), 0) end
  local left = deadline - now()
  if left <= 0 then error(errors.new("client", "timeout", "the call timed out"), 0) end
  req.timeout = left
  req.ca_file = self._ca_file
  req.insecure = self._insecure
  req.max_response = self._max_response
  local sched = self._sched
  local fut = sched:request(req)
  local res
  if req.owner then
    -- a stream's transfer has no overall timeout (it may last): bound the wait for its
    -- head here, and end the transfer when that runs out
    local ok, r = pcall(sched.await, sched, fut, left)
    if not ok then
      if errors.is(r, "client.timeout") and not fut.done then
        req.owner:close()
        error(errors.new("client", "timeout", "the call timed out"), 0)
      end
      error(r, 0)
    end
    res = r
  else
    res = sched:await(fut)
  end
  if res.error then error(res.error, 0) end -- a streamed exchange that failed with an ActorError
  if res.err then
    if res.err == "timeout" then
      error(errors.new("client", "timeout", "the call timed out"), 0)
    elseif res.err == "disposed" then
      error(errors.new("client", "disposed", "the client was disposed"), 0)
    elseif res.err == "cancelled" then
      error(errors.new("client", "cancelled", "the call was cancelled"), 0)
    end
    error(protocol.transport_error(res), 0)
  end
  return res
end

-- Headers of every manager-API call.
function methods:_rest_headers(with_body)
  local h = { "accept: application/json" }
  if with_body then h[#h + 1] = "content-type: application/json" end
  if self._token then h[#h + 1] = "authorization: Bearer " .. self._token end
  for _, x in ipairs(self._extra_headers) do h[#h + 1] = x end
  return h
end

-- A manager-API call: returns the decoded JSON of a 2xx answer, raises an ActorError
-- otherwise.
function methods:_rest(method, path, query, body, deadline)
  local q = "namespace=" .. protocol.pct(self._namespace)
  if query then q = q .. "&" .. query end
  local res = self:_http({
    method = method,
    url = self._endpoint .. path .. "?" .. q,
    headers = self:_rest_headers(body ~= nil),
    body = body and core.json_encode(body, false) or nil,
  }, deadline)
  if res.status < 200 or res.status >= 300 then error(protocol.rest_error(res), 0) end
  local v, err = core.json_decode(res.body, false)
  if v == nil then
    error(errors.new("client", "malformed_response",
      "could not decode the server's answer to " .. method .. " " .. path .. ": " .. tostring(err)), 0)
  end
  return v
end

-- /metadata may send clients elsewhere (serverless runners and cloud set-ups name the
-- engine clients should use): from now on every request goes there, with the namespace
-- and token it gives, as the official client does.
local function follow_redirect(self, meta)
  local ep = meta.clientEndpoint
  if type(ep) ~= "string" or ep == "" then return end
  ep = ep:gsub("/+$", "")
  if not ep:match("^https?://[^/]") then
    log.emit("warn", "ignoring a clientEndpoint from /metadata that is not an http(s) URL", nil)
    return
  end
  self._endpoint = ep
  self._url = parse_endpoint(ep)
  if type(meta.clientNamespace) == "string" and meta.clientNamespace ~= "" then
    self._namespace = meta.clientNamespace
  end
  if type(meta.clientToken) == "string" and meta.clientToken ~= "" then
    if meta.clientToken:find("[%c]") then
      log.emit("warn", "ignoring a clientToken from /metadata with control characters", nil)
    else
      self._token = meta.clientToken
    end
  end
  -- never the token itself in a log
  log.emit("info", "the server redirects clients", { endpoint = ep, namespace = self._namespace })
end

-- The server profile (protocol.lua), fetched once from GET /metadata (or assumed, with
-- disableMetadataLookup).
function methods:_server(deadline)
  local p = self._profile
  if p then return p end
  if self._no_metadata then
    p = protocol.assumed_profile()
    self._profile = p
    self._transport:set_quickack(true)
    return p
  end
  if self._profiling then return self._sched:await(self._profiling) end
  local fut = self._sched:future()
  self._profiling = fut
  local ok, res = pcall(self._rest, self, "GET", "/metadata", nil, nil, deadline)
  self._profiling = false
  if ok then
    p = protocol.profile(res)
    if not p then
      ok, res = false, errors.new("client", "unknown_server", "GET /metadata did not describe a RivetKit server")
    else
      follow_redirect(self, res)
    end
  end
  if not ok then
    fut:reject(res)
    error(res, 0)
  end
  self._profile = p
  -- only the 2.3 engine needs immediate ACKs (protocol.md §15); elsewhere they cost
  -- a syscall and a packet per read
  self._transport:set_quickack(p.line == "2.3")
  fut:resolve(p)
  return p
end

--- Server information: {line = "2.3"|"2.0", version = "2.3.19", ...} (fetches /metadata once).
-- @treturn table `line` ("2.3" or "2.0") and `version` of the server
function methods:server()
  return self:_server(now() + self._timeout)
end

--------------------------------------------------------------------------------------
-- Accessors
-- @section accessors
--------------------------------------------------------------------------------------

local Accessor = {}
Accessor.__index = Accessor

function Accessor:__tostring() return "rivet.Accessor(" .. self._name .. ")" end

-- Handle options by accessor call, and the official client's names for them.
local HANDLE_OPTIONS = {
  get = { "params", "getParams", "timeout" },
  getForId = { "params", "getParams", "timeout" },
  getOrCreate = { "params", "getParams", "timeout", "input", "region", "pool",
    "createWithInput", "createInRegion", "poolName" },
  create = { "params", "getParams", "timeout", "input", "region", "pool", "poolName" },
}
local HANDLE_ALIASES = { createWithInput = "input", createInRegion = "region", poolName = "pool" }

local function check_opts(opts, fname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error("bad argument #2 to '" .. fname .. "': options must be a table, got " .. type(opts), 3)
  end
  options.check_keys(opts, HANDLE_OPTIONS[fname], "bad argument #2 to '" .. fname .. "'", 3)
  opts = options.aliases(opts, HANDLE_ALIASES, "bad argument #2 to '" .. fname .. "'", 3)
  if opts.getParams ~= nil then
    if type(opts.getParams) ~= "function" then
      error("bad argument #2 to '" .. fname .. "': getParams must be a function, got " .. type(opts.getParams), 3)
    end
    if opts.params ~= nil then
      error("bad argument #2 to '" .. fname .. "': give params or getParams, not both", 3)
    end
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.params, o.getParams = opts.getParams, nil
    opts = o
  end
  if opts.pool ~= nil and type(opts.pool) ~= "string" then
    error("bad argument #2 to '" .. fname .. "': pool must be a string", 3)
  end
  if opts.timeout ~= nil
    and (type(opts.timeout) ~= "number" or not (opts.timeout > 0)) then -- luacheck: ignore 581 (NaN fails too)
    error("bad argument #2 to '" .. fname .. "': timeout must be a positive number of seconds", 3)
  end
  if opts.region ~= nil and type(opts.region) ~= "string" then
    error("bad argument #2 to '" .. fname .. "': region must be a string", 3)
  end
  local p = opts.params
  if p ~= nil and type(p) ~= "table" and type(p) ~= "function" and type(p) ~= "string"
      and type(p) ~= "number" and type(p) ~= "boolean" then
    error("bad argument #2 to '" .. fname .. "': params must be a table or a function, got " .. type(p), 3)
  end
  return opts
end

local function accessor_call(self, fname, key, opts, mode)
  if getmetatable(self) ~= Accessor then
    error("'" .. fname .. "' must be called with a colon: client.name:" .. fname .. "(...)", 3)
  end
  local parts = protocol.check_key(key, 3)
  opts = check_opts(opts, fname)
  return Handle.new(self._client, self._name, parts, mode, opts)
end

--- A handle to the actor with this key; nothing is sent until it is used.
-- @tparam string|{string,...}|nil key the actor's key ("k" and {"k"} are the same key)
-- @tparam[opt] table opts `params`, `getParams`, `timeout`
-- @treturn rivet.Handle
function Accessor:get(key, opts) return accessor_call(self, "get", key, opts, "get") end
--- A handle that creates the actor on first use if it does not exist (with opts.input).
-- @tparam string|{string,...}|nil key the actor's key ("k" and {"k"} are the same key)
-- @tparam[opt] table opts `params`, `getParams`, `timeout`, `input`, `region`, `pool` (and the official names
-- `createWithInput`, `createInRegion`, `poolName`)
-- @treturn rivet.Handle
function Accessor:getOrCreate(key, opts) return accessor_call(self, "getOrCreate", key, opts, "getOrCreate") end

--- Creates the actor now (fails with actor.duplicate_key if the key is taken).
-- @tparam string|{string,...}|nil key the actor's key ("k" and {"k"} are the same key)
-- @tparam[opt] table opts as for getOrCreate
-- @treturn rivet.Handle
function Accessor:create(key, opts)
  local h = accessor_call(self, "create", key, opts, "create")
  h:_create()
  return h
end

--- A handle to the actor with this id.
-- @tparam string id the actor id
-- @tparam[opt] table opts `params`, `getParams`, `timeout`
-- @treturn rivet.Handle
function Accessor:getForId(id, opts)
  if getmetatable(self) ~= Accessor then
    error("'getForId' must be called with a colon: client.name:getForId(id)", 2)
  end
  if type(id) ~= "string" or id == "" then
    error("bad argument #1 to 'getForId': actor id must be a non-empty string, got " .. type(id), 2)
  end
  opts = check_opts(opts, "getForId")
  local h = Handle.new(self._client, self._name, nil, "id", opts)
  h._id = id
  return h
end

--- The accessor for actor `name` (for names that are not Lua identifiers).
-- @tparam string name the actor's name in the registry
-- @treturn rivet.ActorAccessor the same as `client[name]`
function methods:actor(name)
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'actor': actor name must be a non-empty string, got " .. type(name), 2)
  end
  local a = self._accessors[name]
  if not a then
    if self._schema then self._schema:actor(name) end -- raises for an actor it does not have
    a = setmetatable({ _client = self, _name = name }, Accessor)
    self._accessors[name] = a
  end
  return a
end

--------------------------------------------------------------------------------------
-- The loop
-- @section loop
--------------------------------------------------------------------------------------

--- Runs fn(...) in a task: calls inside it yield instead of blocking. Returns a future.
-- @tparam function fn the task's body
-- @param ... its arguments
-- @treturn rivet.Future of what fn returns
function methods:spawn(fn, ...)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'spawn': expected a function, got " .. type(fn), 2)
  end
  return self._sched:spawn(fn, false, ...)
end

--- Does ready I/O, fires events and resumes tasks, waiting at most `timeout` seconds
--- (default 0: never waits).
-- @tparam[opt=0] number timeout seconds
function methods:poll(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    error("bad argument #1 to 'poll': timeout must be a non-negative number of seconds", 2)
  end
  self._sched:step(timeout or 0)
end

-- Hosting the loop (docs/loop.md): only the native loop has descriptors to hand out.
local function host_sched(self, what)
  local sched = self._sched
  if not sched.pollfds then
    error("rivet: client:" .. what .. "() is not available on the \"" .. self._transport_kind
      .. "\" transport (nginx runs that loop)", 3)
  end
  return sched
end

--- The descriptors a host loop should watch: { {fd=, events="r"|"w"|"rw"}, ... } (one, the
--- same while the client is open). Call poll(0) when one is ready or timeout() has passed,
--- then ask timeout() again.
function methods:pollfds()
  local sched = host_sched(self, "pollfds")
  if self._disposed then return {} end
  return sched:pollfds()
end

--- Seconds until poll(0) has timed work to do (0: now), or nil when none is due.
function methods:timeout()
  local sched = host_sched(self, "timeout")
  if self._disposed then return nil end
  return sched:timeout()
end

--- Runs the loop until every spawned task has finished (or stop() is called).
-- @tparam[opt] number timeout seconds; past them it raises client.timeout
function methods:run(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    error("bad argument #1 to 'run': timeout must be a non-negative number of seconds", 2)
  end
  self._sched:run(timeout)
end

--- Makes run() return after the current step.
function methods:stop() self._sched.stopped = true end

--- Sleeps (yielding inside a task, running the loop elsewhere).
-- @tparam number seconds
function methods:sleep(seconds)
  if type(seconds) ~= "number" or seconds < 0 then
    error("bad argument #1 to 'sleep': expected a non-negative number of seconds", 2)
  end
  self._sched:sleep(seconds)
end

--- Closes everything; later calls fail with client.disposed.
function methods:dispose()
  if self._disposed then return end
  self._disposed = true
  local disposed = errors.new("client", "disposed", "the client was disposed")
  local sched = self._sched
  for id, fut in pairs(sched.inflight) do
    sched.inflight[id] = nil
    fut:resolve({ id = id, err = "disposed", message = "the client was disposed" })
  end
  local streams = sched.stream_owners or {}
  for _, st in pairs(streams) do st:_fail(disposed) end
  for src in pairs(sched.sources) do
    if src.dispose then src:dispose() end
  end
  sched.closed = true -- waits after this find nothing to poll, only the failures above
  -- a host loop stops watching the descriptors before they are closed (epoll and
  -- cqueues must not be left watching numbers that may be reused)
  if self._host then self._host:close() end
  self._transport:close()
  self._disposed_error = disposed
end

methods.close = methods.dispose

function methods:__tostring()
  return "rivet.Client(" .. self._endpoint .. ", " .. self._encoding .. ")"
end

Client.__index = function(self, k)
  local m = methods[k]
  if m ~= nil then return m end
  if type(k) == "string" and k:sub(1, 1) ~= "_" then return methods.actor(self, k) end
  return nil
end
Client.__tostring = methods.__tostring
Client.__close = function(self) self:dispose() end
Client.__name = "rivet.Client"

Client.methods = methods
return Client
