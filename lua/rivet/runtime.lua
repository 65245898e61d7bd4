-- Which transport and scheduler a client runs on.
--
-- The library above this file (client, handles, connections, raw sockets) talks to two
-- objects only, and both kinds provide the same methods:
--
--   transport  the I/O: ws_open(target) -> id, ws_send(id, data, binary) -> ok,
--              ws_close(id, code, reason), ws_counts(), set_quickack(on), close()
--   scheduler  waiting and delivery: future(), await(fut [, timeout]), spawn(fn, internal,
--              ...), go(fn, ...), defer(fn, ...), run_task(fn, internal, ...), sleep(s),
--              timer(at, fn), cancel_timer(t), request(req) -> future of the HTTP result,
--              add_source/remove_source/set_wake (connections' deadlines), step(t),
--              run(t), in_task(); tables inflight (request futures), sources and
--              ws_owners (WebSocket id -> object with :_on_ws(id, kind, a, b, now))
--
-- "native": the C loop (libcurl multi + libwebsockets) and rivet.scheduler (coroutine
-- tasks; outside a task a wait runs the loop). Lua 5.4 and LuaJIT.
-- "resty": cosockets inside nginx (rivet.resty.transport) and rivet.resty.scheduler
-- (waits yield to nginx on ngx.semaphore; sockets of connections belong to background
-- light threads).
local M = {}

--- True inside nginx with the lua module (cosockets exist).
function M.in_nginx()
  local n = rawget(_G, "ngx")
  return type(n) == "table" and type(n.socket) == "table" and type(n.socket.tcp) == "function"
      and type(n.get_phase) == "function"
end

--- The transport kind for option value `kind` (nil: "resty" inside nginx, else "native").
function M.pick(kind, level)
  if kind == nil then return M.in_nginx() and "resty" or "native" end
  if kind ~= "native" and kind ~= "resty" then
    error("rivet.client: transport must be \"native\" or \"resty\", got " .. tostring(kind), level + 1)
  end
  if kind == "resty" and not M.in_nginx() then
    error("rivet.client: the \"resty\" transport needs nginx with the lua module (ngx.socket)", level + 1)
  end
  return kind
end

--- transport, scheduler of a new client.
function M.new(kind)
  if kind == "resty" then
    local sched = require("rivet.resty.scheduler").new()
    local transport = require("rivet.resty.transport").new(sched)
    sched.transport = transport
    return transport, sched
  end
  local loop = require("rivet.core").loop()
  return loop, require("rivet.scheduler").new(loop)
end

return M
