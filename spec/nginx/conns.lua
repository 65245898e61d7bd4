-- Connections held by the worker across requests: one request opens a connection, later
-- requests call actions on it, its event handlers (run in the worker's background light
-- thread) write what they see into the shared dict, and later requests read that back.
local clients = require("clients")

local M = {}

local dict = ngx.shared.rivet_spec
local conns = {} -- id -> connection, per worker (worker_processes 1)

local function conn_of(args)
  return assert(conns[args.id], "no connection " .. tostring(args.id))
end

-- Every item of the shared-dict list `name`, in order, without removing them.
local function list(name)
  local out, n = {}, dict:llen(name) or 0
  for i = 1, n do
    local v = dict:lpop(name)
    out[i] = v
    dict:rpush(name, v)
  end
  return out
end

-- Waits (yielding: ngx.sleep) until pred() holds or `secs` pass; returns whether it held.
local function wait_until(pred, secs)
  local deadline = ngx.now() + (secs or 10)
  while not pred() do
    if ngx.now() >= deadline then return false end
    ngx.sleep(0.01)
    ngx.update_time()
  end
  return true
end

local function info(id, conn)
  return {
    status = conn.status,
    connection_id = conn.connectionId,
    actor_id = conn.actorId,
    opens = dict:get("opens:" .. id) or 0,
    statuses = list("status:" .. id),
  }
end

--- Opens a connection (args.id names it) on a counter (or args.actor) and subscribes to
--- newCount (or args.event); handlers record into the shared dict, with the phase they
--- ran in.
function M.open(args)
  local id = assert(args.id, "id")
  local client = clients.get(args)
  local h = client[args.actor or "counter"]:getOrCreate(args.key)
  local conn = h:connect()
  conns[id] = conn
  conn:on(args.event or "newCount", function(n)
    dict:rpush("events:" .. id, n)
    dict:set("event_phase:" .. id, ngx.get_phase())
  end)
  conn:onOpen(function() dict:incr("opens:" .. id, 1, 0) end)
  conn:onStatusChange(function(s) dict:rpush("status:" .. id, s) end)
  conn:onError(function(err) dict:rpush("errors:" .. id, tostring(err)) end)
  return { status = conn.status }
end

--- An action on connection args.id: args.action with the number args.arg (if any).
function M.call(args)
  local conn = conn_of(args)
  local v
  if args.arg then
    v = conn:action(args.action, tonumber(args.arg))
  else
    v = conn:action(args.action)
  end
  local out = info(args.id, conn)
  out.value = v
  return out
end

--- The events recorded so far; waits until there are at least args.want of them.
function M.events(args)
  local id = args.id
  local want = tonumber(args.want) or 0
  local got = wait_until(function() return (dict:llen("events:" .. id) or 0) >= want end, tonumber(args.wait) or 10)
  return { events = list("events:" .. id), complete = got, phase = dict:get("event_phase:" .. id),
    errors = list("errors:" .. id) }
end

--- Waits until the connection has opened args.opens times and is connected again.
function M.wait_open(args)
  local conn = conn_of(args)
  local want = tonumber(args.opens) or 1
  local ok = wait_until(function()
    return (dict:get("opens:" .. args.id) or 0) >= want and conn.status == "connected"
  end, tonumber(args.wait) or 15)
  local out = info(args.id, conn)
  out.reached = ok
  return out
end

--- Status, ids, open count and status history.
function M.info(args) return info(args.id, conn_of(args)) end

--- Disposes the connection, then tries a call on it.
function M.dispose(args)
  local conn = conn_of(args)
  conn:dispose()
  local ok, err = pcall(conn.action, conn, "getCount")
  local out = info(args.id, conn)
  out.call_after = ok and { raised = false } or require("reply").describe_error(err)
  conns[args.id] = nil
  return out
end

--- A client of its own with one open connection, disposed: the connection ends and the
--- client refuses later calls.
function M.dispose_client(args)
  local rivet = require("rivet")
  local client = rivet.client(clients.endpoint(args.via), { encoding = args.enc or "bare", timeout = 15 })
  local h = client.counter:getOrCreate(args.key)
  local conn = h:connect()
  local first = conn:increment(1)
  client:dispose()
  local ok, err = pcall(h.getCount, h)
  local ok2, err2 = pcall(conn.action, conn, "getCount")
  return {
    first = first,
    conn_status = conn.status,
    handle_call = ok and { raised = false } or require("reply").describe_error(err),
    conn_call = ok2 and { raised = false } or require("reply").describe_error(err2),
  }
end

--- Opens args.n connections (timeout args.timeout) and calls increment on each; returns
--- what each call gave (a value or an error), then disposes them.
function M.many(args)
  local rivet = require("rivet")
  local client = rivet.client(clients.endpoint(args.via), { timeout = tonumber(args.timeout) or 2 })
  local n = tonumber(args.n) or 6
  local opened = {}
  for i = 1, n do opened[i] = client.counter:getOrCreate((args.key or "many") .. "-" .. i):connect() end
  local out = {}
  for i = 1, n do
    local ok, v = pcall(opened[i].increment, opened[i], 1)
    out[i] = ok and { value = v } or require("reply").describe_error(v)
  end
  client:dispose()
  return { results = out }
end

local sockets = {} -- id -> raw WebSocket, per worker

--- Opens a raw WebSocket to the raw actor's onWebSocket (it says "hello" first).
function M.ws_open(args)
  local ws = clients.get(args).raw:getOrCreate(args.key):websocket("/stream")
  sockets[args.id] = ws
  local data, kind = ws:receive(10)
  return { first = data, kind = kind, status = ws.status }
end

--- Sends args.text on socket args.id (binary when args.binary) and returns the echo.
function M.ws_echo(args)
  local ws = assert(sockets[args.id], "no socket " .. tostring(args.id))
  local sent = ws:send(args.text, args.binary and "binary" or nil)
  local data, kind = ws:receive(10)
  return { sent = sent, data = data, kind = kind }
end

--- Closes socket args.id.
function M.ws_close(args)
  local ws = assert(sockets[args.id], "no socket " .. tostring(args.id))
  ws:close()
  sockets[args.id] = nil
  return { status = ws.status }
end

return M
