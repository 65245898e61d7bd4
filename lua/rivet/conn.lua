--- ActorConn: a live connection to an actor over WebSocket. The state machine (C,
-- core.conn_new) decides everything about ids, queueing, deadlines, subscriptions and
-- backoff; this file moves bytes between it and the loop's WebSocket and turns what it
-- reports into futures, listeners and callbacks.
-- Its `status` field is "idle", "connecting", "connected", "disconnected" or "disposed".
-- @module rivet.conn
local core = require("rivet.core")
local compat = require("rivet.compat")
local dispatch = require("rivet.dispatch")
local errors = require("rivet.errors")
local log = require("rivet.log")
local protocol = require("rivet.protocol")
local raw = require("rivet.raw")
local new_future = require("rivet.future").new

local now = compat.now
local null = core.null
local log_on = log.enabled
local unpack = compat.unpack

local Conn = {}
local methods = {}
Conn.methods = methods

local conn_mt = {
  __name = "rivet.ActorConn",
  __tostring = function(self)
    return "rivet.ActorConn(" .. self._handle._name .. ", " .. self.status .. ")"
  end,
}
Conn.mt = conn_mt
dispatch.actions(methods, conn_mt, "conn")

local seed_counter = 0

-- fut:cancel() of a connection's call (fut._owner: the connection): the machine forgets
-- the call, or it leaves the queue of calls made before the profile was known. One
-- function for every connection: a closure per connection would keep LuaJIT from
-- compiling connect().
local function cancel_call(fut)
  local self = fut._owner
  local sm = self._sm
  if sm then return sm:cancel(fut) end
  local q = self._early
  if q then
    for i = #q, 1, -1 do if q[i].fut == fut then table.remove(q, i) end end
  end
end

-- The state machine of a connection to a server with profile p.
local function new_sm(client, p)
  seed_counter = seed_counter + 1
  local enc = client._encoding
  return core.conn_new({
    encoding = enc,
    tagged = protocol.tagged(p, enc),
    line = p.line,
    seed = math.floor(now() * 1e6) + seed_counter,
    error_mt = errors.ActorError,
  })
end

-- Internal: handle:connect(params) builds one and starts connecting at once. Until the
-- server's profile is known (GET /metadata, which the state machine's frames depend on)
-- the connection has no state machine yet: calls wait in `_early` with their deadlines,
-- and the look-up is retried like a failed attempt (the `early` functions below).
function Conn.new(handle, params, opts)
  local client = handle._client
  local enc = client._encoding
  local p = client._profile
  local self = setmetatable({
    status = "idle",
    actorId = nil,
    connectionId = nil,
    _handle = handle,
    _client = client,
    _sched = client._sched,
    _params = params,
    _timeout = opts and opts.timeout or handle._timeout or false, -- default deadline of calls
    _sm = p and new_sm(client, p) or false,
    _early = false,     -- calls made before the profile was known: {name, args, deadline, fut}
    _early_failures = 0,
    _early_retry_at = false,
    _ws = false,
    _binary = enc ~= "json", -- how frames go out
    _attempting = false,
    _attempt_deadline = false,
    _wake = false,      -- when pump() is next due (the scheduler reads it), or false
    -- created on first use: most connections never get some of them
    _listeners = false, -- event name -> list of {fn=, once=}
    _cb = false,        -- "open" | "close" | "error" | "status" -> list of functions
    _reported = false,  -- socket failure kinds already sent to onError in this outage
  }, conn_mt)
  compat.collectable(self)
  client._sched:add_source(self)
  self:_start_attempt()
  return self
end

--------------------------------------------------------------------------------------
-- Callbacks (each in its own task, so a handler may call actions; errors go to onError)
-- @section callbacks
--------------------------------------------------------------------------------------

-- Lifecycle callbacks are looked up when the loop delivers the notification, not when it
-- happened: `local conn = h:connect(); conn:onStatusChange(fn)` sees "connecting" too.
-- Each callback runs in its own task, so one that waits does not hold up the others.
local function deliver(self, cb, kind, runner, ...)
  local c = cb or self._cb
  local list = c and c[kind]
  if not list or #list == 0 then return end
  self._sched:run_task(function(...)
    for i = 1, #list do runner(self, list[i], ...) end
  end, true, ...)
end

-- Deferred, not a task of its own: most notifications find no callback, and a task
-- (a coroutine) per notification was most of what a connect allocated.
local function each_cb(self, kind, runner, ...)
  -- false: no callbacks yet; then look again when the loop delivers
  self._sched:defer(deliver, self, self._cb, kind, runner, ...)
end

local function run_error_cb(self, fn, err)
  self._sched:spawn(function()
    local ok, e = pcall(fn, err)
    if not ok then io.stderr:write("rivet: an onError handler failed: ", tostring(e), "\n") end
  end, true)
end

local function report(self, err) each_cb(self, "error", run_error_cb, err) end

local function handler_task(self, fn, ...)
  local ok, e = pcall(fn, ...)
  if not ok then
    local cb = self._cb
    if not (cb and cb.error and #cb.error > 0) then
      -- nobody listens: do not let a broken handler fail silently
      io.stderr:write("rivet: an event handler failed (add conn:onError to handle this): ", tostring(e), "\n")
      return
    end
    if not errors.is(e) then e = errors.new("client", "handler_failed", tostring(e)) end
    report(self, e)
  end
end

local function run_handler(self, fn, ...) self._sched:go(handler_task, self, fn, ...) end

local function fire(self, kind, ...) each_cb(self, kind, run_handler, ...) end

--------------------------------------------------------------------------------------
-- Moving things between the state machine and the socket
-- @section moving
--------------------------------------------------------------------------------------

-- The kinds of the state machine's outbox items (core.conn_items).
local IT = {}
for i, name in ipairs(core.conn_items) do IT[name] = i end
local IT_SEND, IT_RESULT, IT_EVENT, IT_STATUS, IT_OPEN, IT_ERROR, IT_CLOSE =
  IT.send, IT.result, IT.event, IT.status, IT.open, IT.error, IT.close

-- One empty table per nesting depth for sm:drain to take as the next outbox: a result
-- settles a future whose callback may call an action, which flushes again before the
-- outer loop is done.
local out_pool = {}
local depth = 0
local flush_items

-- Applies everything the state machine reported since the last drain, then notes when
-- pump() is next due (the scheduler pumps only connections whose time has come).
function methods:_flush()
  if not self._sm then return self:_early_wake() end
  depth = depth + 1
  local empty = out_pool[depth] or {}
  local n, wake, out = self._sm:drain(empty)
  if n > 0 then
    out_pool[depth] = false -- `empty` is the machine's outbox now
    flush_items(self, out, n)
    -- cleared as it was read: it is the next drain's empty table, unless a burst made
    -- it large (a table keeps its size)
    out_pool[depth] = n <= 64 and out or {}
  end
  depth = depth - 1
  local a = self._attempt_deadline
  if a and (not wake or a < wake) then wake = a end
  self._sched:set_wake(self, wake or false)
end

-- Applies the drained items: five slots per item, the kind and its values
-- (core.conn_items, csrc/conn.c); each slot is cleared as it is read.
function flush_items(self, out, n)
  local loop = self._client._transport
  for j = 1, n * 5, 5 do
    local kind, a, b, c = out[j], out[j + 1], out[j + 2], out[j + 3]
    out[j], out[j + 1], out[j + 2], out[j + 3], out[j + 4] = nil, nil, nil, nil, nil
    if kind == IT_SEND then
      if self._ws then loop:ws_send(self._ws, a, b) end
    elseif kind == IT_RESULT then -- a: the future, b: ok, c: value or error
      if a then
        if b then
          if c == null then c = nil end
          a:resolve(c)
        else
          a:reject(c)
        end
      end
    elseif kind == IT_EVENT then -- a: name, b: args
      local ls = self._listeners
      ls = ls and ls[a]
      if ls then
        local nargs = #b
        for i = 1, nargs do
          if b[i] == null then b[i] = nil end
        end
        local nls = #ls
        if nls == 1 then
          local l = ls[1]
          if l.once then self:_remove_listener(a, l) end
          run_handler(self, l.fn, unpack(b, 1, nargs))
        else
          -- copy: a once-listener removes itself while we iterate
          local list = table.move(ls, 1, nls, 1, {})
          for i = 1, nls do
            local l = list[i]
            if l.once then self:_remove_listener(a, l) end
            run_handler(self, l.fn, unpack(b, 1, nargs))
          end
        end
      end
    elseif kind == IT_STATUS then
      -- "connecting" may have been reported already, while the profile was looked up
      if a ~= self.status then
        self.status = a
        if log_on() then log.emit("info", "connection status", { actor = self._handle._name, status = a }) end
        fire(self, "status", a)
      end
    elseif kind == IT_OPEN then -- a: actorId, b: connectionId
      self.actorId, self.connectionId = a, b
      self._reported = false -- the outage is over
      if log_on() then
        log.emit("info", "connection open", { actor = self._handle._name, actorId = a, connectionId = b })
      end
      fire(self, "open")
    elseif kind == IT_ERROR then
      if log_on() then log.emit("warn", "connection error", { actor = self._handle._name, error = tostring(a) }) end
      report(self, a)
    elseif kind == IT_CLOSE then -- a: code, b: reason
      if self._ws then loop:ws_close(self._ws, a, b) end
    end
  end
end

-- Socket failures that no retry will fix by itself (a certificate, a host name): the
-- user hears of each kind once per outage instead of a silent retry loop.
local REPORTED_FAILURES = { tls_failed = true, dns_failed = true }

-- A WebSocket event (Scheduler:step): open (a: protocol), message (a: data, b: binary),
-- close (a: code, b: reason), error (a: kind, b: message).
function methods:_on_ws(ws, kind, a, b, t)
  if ws ~= self._ws then return end
  local sm = self._sm
  t = t or now()
  if kind == "message" then
    -- direct: a plain action result comes back at once, with nothing to drain
    local fut, v = sm:feed(a, t, true)
    if fut then
      if v == null then v = nil end
      fut:resolve(v)
      return
    end
    if self._attempt_deadline and sm:status() ~= "connecting" then self._attempt_deadline = false end
  elseif kind == "close" then
    self._ws = false
    self._attempt_deadline = false
    self._client._sched.ws_owners[ws] = nil
    sm:closed(a, b, t, false)
    if log_on() then
      log.emit("info", "connection closed", { actor = self._handle._name, code = a, reason = b })
    end
    fire(self, "close", a, b)
    self:_forget_id()
  elseif kind == "error" then
    self._ws = false
    self._attempt_deadline = false
    self._client._sched.ws_owners[ws] = nil
    sm:closed(nil, b, t, true)
    local ekind = a
    if log_on() then
      log.emit("warn", "connection failed",
        { actor = self._handle._name, kind = ekind, message = raw.redact(self._client, b) })
    end
    if REPORTED_FAILURES[ekind] then
      local seen = self._reported
      if not seen then seen = {}; self._reported = seen end
      if not seen[ekind] then
        seen[ekind] = true
        report(self, errors.new("client", ekind, "the WebSocket failed: " .. tostring(raw.redact(self._client, b))))
      end
    end
    self:_forget_id()
  end
  self:_flush()
end

-- A key-based handle looks its actor up again before every reconnect: the actor may be
-- gone (2.3 closes 1000 with no reason when it is destroyed, or 1011 actor.not_found;
-- 2.0 says internal_error), and a look-up is cheap next to a reconnect. Handles made
-- with getForId keep their id.
function methods:_forget_id()
  local h = self._handle
  if h._key and self._sm and self._sm:status() ~= "disposed" then h._id = false end
end

function methods:pump()
  local sm = self._sm
  if not sm then return self:_early_pump() end
  local t = now()
  -- an attempt that neither opens nor fails in time is abandoned (counts as failed)
  local a = self._attempt_deadline
  if a and t >= a then
    self._attempt_deadline = false
    if self._ws and sm:status() == "connecting" then
      self._client._transport:ws_close(self._ws, 1000, "timeout")
    end
  end
  if sm:tick(t) and not self._attempting and not self._ws then
    if log_on() then log.emit("info", "reconnecting", { actor = self._handle._name }) end
    self:_start_attempt()
  end
  self:_flush()
end

local function ws_target(self, id, deadline)
  local client = self._client
  local u = client._url
  local p = client._profile
  local seg = protocol.seg(id)
  if client._token and p and p.line == "2.3" then seg = seg .. "@" .. protocol.pct(client._token) end
  local protos = { "rivet", "rivet_encoding." .. client._encoding }
  local params = self._params
  if params == nil then params = self._handle._params end
  if type(params) == "function" then
    local ok, v = pcall(params)
    if not ok then
      return nil, errors.new("client", "get_params_failed", "the params function failed: " .. tostring(v))
    end
    params = v
  end
  if params ~= nil then
    protos[#protos + 1] = "rivet_conn_params." .. protocol.pct(core.json_encode(params))
  end
  return {
    host = u.host,
    port = u.port,
    tls = u.tls,
    path = u.path .. "/gateway/" .. seg .. "/connect",
    protocols = table.concat(protos, ", "),
    headers = client._extra_headers,
    ca_file = client._ca_file,
    insecure = client._insecure,
    deadline = deadline,
  }
end

-- Look-up failures that say nothing but "the server could not be reached" (protocol.lua's
-- transport errors): not worth an onError per attempt.
local NETWORK_FAILURES = {
  timeout = true, connection_refused = true, connection_lost = true, dns_failed = true, tls_failed = true,
}

-- Opens the socket of an attempt once the actor id is known (ok) or its look-up failed.
local function open_socket(self, ok, id, deadline)
  local sm, client = self._sm, self._client
  if sm:status() ~= "connecting" then return end
  local target, err
  if ok then
    target, err = ws_target(self, id, deadline)
  else
    err = id
  end
  if not target then
    sm:closed(nil, tostring(err), now(), true)
    -- the server answered with a reason (e.g. no such actor): say so; a network-level
    -- failure is just a failed attempt, like a socket that could not connect
    if errors.is(err) and not (err.group == "client" and NETWORK_FAILURES[err.code]) then report(self, err) end
    self:_flush()
    return
  end
  local ws = client._transport:ws_open(target)
  self._ws = ws
  self._attempt_deadline = deadline
  local w = self._wake
  if not w or deadline < w then client._sched:set_wake(self, deadline) end
  client._sched.ws_owners[ws] = self
end

-- The task of an attempt whose actor must be looked up (or whose params function called).
local function resolve_and_open(self)
  local h = self._handle
  local deadline = now() + self._client._timeout
  local ok, id = pcall(h._resolve, h, deadline)
  self._attempting = false
  open_socket(self, ok, id, deadline)
end

-- One connection attempt: look the actor up if needed, then open the socket. With the
-- id known and no params function to call, that happens at once; otherwise in an
-- internal task, because the look-up (or the params function) may wait.
function methods:_start_attempt()
  local sm = self._sm
  if not sm then return self:_early_lookup() end
  if sm:status() == "disposed" then return end
  if log_on() then log.emit("debug", "connection attempt", { actor = self._handle._name }) end
  sm:start(now())
  self:_flush()
  local client, h = self._client, self._handle
  local params = self._params
  if params == nil then params = h._params end
  if h._id and type(params) ~= "function" then
    return open_socket(self, true, h._id, now() + client._timeout)
  end
  self._attempting = true
  self._sched:spawn(resolve_and_open, true, self)
end

--------------------------------------------------------------------------------------
-- Before the server's profile is known (no state machine yet)
-- @section early
--------------------------------------------------------------------------------------

-- Backoff between look-ups, as the state machine's between attempts: full jitter over
-- 250 ms doubling to 30 s.
local function early_backoff(n)
  local cap = math.min(0.25 * 2 ^ (n - 1), 30)
  return cap * math.random()
end

local function early_status(self, st)
  if self.status == st then return end
  self.status = st
  if log_on() then log.emit("info", "connection status", { actor = self._handle._name, status = st }) end
  fire(self, "status", st)
end

function methods:_early_wake()
  local w = self._early_retry_at
  local q = self._early
  if q then
    for i = 1, #q do
      local d = q[i].deadline
      if not w or d < w then w = d end
    end
  end
  self._sched:set_wake(self, w or false)
end

-- The profile is known: make the state machine, hand it what waited, and connect.
local function early_done(self, p)
  local sm = new_sm(self._client, p)
  self._sm = sm
  local q = self._early
  self._early = false
  if q then
    for i = 1, #q do
      local c = q[i]
      sm:call(c.name, c.args, c.deadline, c.fut)
    end
  end
  if self._listeners then
    for name in pairs(self._listeners) do sm:subscribe(name) end
  end
  self:_start_attempt()
end

function methods:_early_lookup()
  if self._attempting or self.status == "disposed" then return end
  self._attempting = true
  early_status(self, "connecting")
  local client = self._client
  self._sched:spawn(function()
    local ok, p = pcall(client._server, client, now() + client._timeout)
    self._attempting = false
    if self.status == "disposed" then return end
    if ok then return early_done(self, p) end
    -- like a failed attempt: say why unless the server just could not be reached
    if errors.is(p) and not (p.group == "client" and NETWORK_FAILURES[p.code]) then report(self, p) end
    if log_on() then
      log.emit("warn", "connection: the server profile look-up failed",
        { actor = self._handle._name, error = tostring(p) })
    end
    self._early_failures = self._early_failures + 1
    self._early_retry_at = now() + early_backoff(self._early_failures)
    self:_early_wake()
  end, true)
end

function methods:_early_pump()
  local t = now()
  local q = self._early
  if q then
    local keep = {}
    for i = 1, #q do
      local c = q[i]
      if c.deadline <= t then
        c.fut:reject(errors.new("client", "timeout", "the call timed out (the connection never opened)"))
      else
        keep[#keep + 1] = c
      end
    end
    self._early = #keep > 0 and keep or false
  end
  local r = self._early_retry_at
  if r and r <= t then
    self._early_retry_at = false
    self:_early_lookup()
  end
  self:_early_wake()
end

function methods:_early_call(name, level, ...)
  local args = dispatch.pack_args(...)
  -- bad arguments raise here, as they would on a connected connection
  local ok, err = pcall(core.cbor_encode, args, false)
  if not ok then
    error("bad argument to action '" .. name .. "': " .. tostring(err):gsub("^[^:]*:%d+: ", ""), level + 1)
  end
  local fut = new_future(self._sched)
  fut._on_cancel, fut._owner = cancel_call, self
  if self.status == "disposed" then
    fut:reject(errors.new("client", "disposed", "the connection was disposed"))
    return fut
  end
  local q = self._early
  if not q then q = {}; self._early = q end
  q[#q + 1] = { name = name, args = args, deadline = now() + (self._timeout or self._client._timeout), fut = fut }
  self:_early_wake()
  if not self._attempting and not self._early_retry_at then self:_early_lookup() end
  return fut
end

function methods:_early_dispose()
  if self.status == "disposed" then return end
  local q = self._early
  self._early = false
  self._early_retry_at = false
  early_status(self, "disposed")
  if q then
    for i = 1, #q do q[i].fut:reject(errors.new("client", "disposed", "the connection was disposed")) end
  end
  self._listeners = {}
  self._cb = false
  self._sched:remove_source(self)
end

--------------------------------------------------------------------------------------
-- Public API
-- @section api
--------------------------------------------------------------------------------------

function methods:_start_call(name, level, ...)
  local s = self._handle._schema
  if s then s:check(name, ...) end -- rivet/schema.lua
  local sm, sched = self._sm, self._sched
  if not sm then return self:_early_call(name, level + 1, ...) end
  -- the state machine holds the future and hands it back with the result
  local fut = new_future(sched)
  local deadline = now() + (self._timeout or self._client._timeout)
  -- when connected, callv returns the frame to send instead of queueing it
  local ok, err, frame = pcall(sm.callv, sm, name, deadline, fut, ...)
  if not ok then
    error("bad argument to action '" .. name .. "': " .. tostring(err):gsub("^[^:]*:%d+: ", ""), level + 1)
  end
  fut._on_cancel, fut._owner = cancel_call, self
  if frame then
    self._client._transport:ws_send(self._ws, frame, self._binary)
    local w = self._wake -- the earliest deadline of the pending calls
    if not w or deadline < w then sched:set_wake(self, deadline) end
    return fut
  end
  self:_flush()
  -- after a final failure (e.g. refused by onBeforeConnect) the connection stays idle
  -- until it is used again: a new call is a new attempt, not an automatic retry
  if not self._ws and not self._attempting and sm:status() == "idle" then self:_start_attempt() end
  return fut
end

function methods:_call(name, level, ...)
  return self._sched:await(self:_start_call(name, level + 1, ...))
end

--- Sends a message to the actor's queue over HTTP with this connection's params (as the
--- official client does): conn:send(name, body [, opts]), as handle:send.
-- @tparam string name the queue
-- @param body any value
-- @tparam[opt] table opts `wait` (boolean), `timeout` (seconds)
-- @treturn ?table nil, or with `wait` {status = "completed"|"timedOut", response = ...}
function methods:send(name, body, opts)
  if getmetatable(self) ~= conn_mt then
    error("'send' must be called with a colon: conn:send(name, body [, opts])", 2)
  end
  local params = self._params
  if params == nil then params = self._handle._params end
  return require("rivet.queue").send(self._handle, params, name, body, opts, 2)
end

--- Calls action `name` over the connection and waits for its output.
-- `conn:name(...)` is the same for any other name.
-- @tparam string name the action
-- @param ... its arguments
-- @return the action's output
function methods:action(name, ...)
  if getmetatable(self) ~= conn_mt then error("'action' must be called with a colon: conn:action(name, ...)", 2) end
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'action': action name must be a non-empty string, got " .. type(name), 2)
  end
  return self:_call(name, 2, ...)
end

--- Sends action `name` and returns a future at once.
-- @tparam string name the action
-- @param ... its arguments
-- @treturn rivet.Future of its output
function methods:async(name, ...)
  if getmetatable(self) ~= conn_mt then error("'async' must be called with a colon: conn:async(name, ...)", 2) end
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'async': action name must be a non-empty string, got " .. type(name), 2)
  end
  return self:_start_call(name, 2, ...)
end

function methods:_remove_listener(name, l)
  local all = self._listeners
  local ls = all and all[name]
  if not ls then return end
  for i = #ls, 1, -1 do
    if ls[i] == l then table.remove(ls, i) end
  end
  if #ls == 0 then
    all[name] = nil
    if self._sm and self._sm:status() ~= "disposed" then
      self._sm:unsubscribe(name)
      self:_flush()
    end
  end
end

local function add_listener(self, fname, name, fn, once)
  if getmetatable(self) ~= conn_mt then error("'" .. fname .. "' must be called with a colon", 3) end
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to '" .. fname .. "': event name must be a non-empty string, got " .. type(name), 3)
  end
  if type(fn) ~= "function" then
    error("bad argument #2 to '" .. fname .. "': expected a function, got " .. type(fn), 3)
  end
  local s = self._handle._schema
  if s then s:event(name) end -- rivet/schema.lua
  local l = { fn = fn, once = once }
  local all = self._listeners
  if not all then all = {}; self._listeners = all end
  local ls = all[name]
  if not ls then
    ls = {}
    all[name] = ls
    if self._sm and self._sm:status() ~= "disposed" then
      self._sm:subscribe(name)
      self:_flush()
    end
  end
  ls[#ls + 1] = l
  local removed = false
  return function()
    if removed then return end
    removed = true
    self:_remove_listener(name, l)
  end
end

--- Calls fn(...) for every event `name`; returns a function that unsubscribes.
-- @tparam string name the event
-- @tparam function fn called with the event's arguments
-- @treturn function unsubscribes
function methods:on(name, fn) return add_listener(self, "on", name, fn, false) end
--- Like on, for the next event only.
-- @tparam string name the event
-- @tparam function fn called with the event's arguments
-- @treturn function unsubscribes
function methods:once(name, fn) return add_listener(self, "once", name, fn, true) end

local function add_cb(self, kind, fname, fn)
  if type(fn) ~= "function" then
    error("bad argument #1 to '" .. fname .. "': expected a function, got " .. type(fn), 3)
  end
  local cb = self._cb
  if not cb then cb = {}; self._cb = cb end
  local list = cb[kind]
  if not list then list = {}; cb[kind] = list end
  list[#list + 1] = fn
  return function()
    for i = #list, 1, -1 do if list[i] == fn then table.remove(list, i) end end
  end
end

--- fn(err) for connection errors (err is an ActorError); returns a remover.
-- @tparam function fn
-- @treturn function removes fn
function methods:onError(fn) return add_cb(self, "error", "onError", fn) end
--- fn() after every Init (the connection is ready).
-- @tparam function fn
-- @treturn function removes fn
function methods:onOpen(fn) return add_cb(self, "open", "onOpen", fn) end
--- fn(code, reason) when the socket closes.
-- @tparam function fn
-- @treturn function removes fn
function methods:onClose(fn) return add_cb(self, "close", "onClose", fn) end
--- fn(status) on every status change.
-- @tparam function fn
-- @treturn function removes fn
function methods:onStatusChange(fn) return add_cb(self, "status", "onStatusChange", fn) end

--- Closes the connection (1000 "Disposed"), fails pending calls with client.disposed,
--- removes listeners and stops reconnecting.
function methods:dispose()
  if not self._sm then return self:_early_dispose() end
  if self._sm:status() == "disposed" then return end
  self._sm:dispose(now())
  self:_flush()
  self._listeners = {}
  self._cb = false
  self._client._sched:remove_source(self)
end

conn_mt.__close = function(self) self:dispose() end
conn_mt.__gc = function(self)
  -- dropped without dispose(): close the socket; nothing else can reach this object
  local ws = rawget(self, "_ws")
  local client = rawget(self, "_client")
  if ws and client and not client._disposed then
    pcall(client._transport.ws_close, client._transport, ws, 1000, "Disposed")
  end
end

return Conn
