-- The cosocket transport (rivet.runtime, "resty"): HTTP in the calling light thread,
-- WebSockets owned by background light threads.
--
-- A cosocket belongs to the light thread context that created it, and a connection must
-- outlive the request that opened it, so every WebSocket gets a timer (ngx.timer.at) of
-- its own: its main thread connects, does the handshake, then writes what ws_send queued
-- (woken by a semaphore); a second light thread of that timer reads frames and hands
-- each event to the scheduler (Scheduler:_ws_event), which gives it to the socket's
-- owner (a connection or a raw WebSocket) exactly as the native loop's poll does. The
-- timer ends with the socket, so a reconnect is a new timer (nothing long-lived to
-- recycle). Requests only ever touch the queue and the semaphore.
--
-- Events and their values are those of the native loop (csrc/ws.c): open (protocol),
-- message (data, binary), close (code, reason), error (kind, message).
local http = require("rivet.resty.http")
local semaphore = require("ngx.semaphore")
local wsframe = require("rivet.resty.wsframe")
local now = require("rivet.core").now

local ngx = ngx

local T = {}
T.__index = T

local DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024
local IDLE_READ_MS = 600000 -- a quiet socket's reader wakes this often, and only this
local CLOSE_GRACE = 1       -- seconds to wait for the server's answer to our close

local OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10

function T.new(sched)
  return setmetatable({ sched = sched, socks = {}, next_id = 0, closed = false }, T)
end

--- One HTTP request in the calling light thread (rivet.resty.http).
function T:http(req)
  if self.closed then return { err = "disposed", message = "the client was disposed" } end
  return http.request(req)
end

function T:set_quickack() end

-- The socket's final event, once: delivered now from its own threads, or through the
-- runner when the user's code is on the stack (ws_close), as the native loop would on
-- its next poll.
local function finish(self, w, deferred, kind, a, b)
  if w.done then return end
  w.done = true
  self.socks[w.id] = nil
  w.sema:post(1)
  if deferred then
    self.sched:defer(self.sched._ws_event, self.sched, w.id, kind, a, b)
  else
    self.sched:_ws_event(w.id, kind, a, b)
  end
end

local function deliver(self, w, kind, a, b)
  local ok, err = pcall(self.sched._ws_event, self.sched, w.id, kind, a, b)
  if not ok then ngx.log(ngx.ERR, "rivet: a WebSocket event handler failed: ", tostring(err)) end
end

-- The outbox is out[ohead .. otail]; control frames (pong, close) go first.
local function queue_frame(w, op, data, front)
  local q = w.out
  if front then
    local h = w.ohead - 1
    if h < 1 then
      -- no room before the head: shift the pending frames up by one
      for i = w.otail, w.ohead, -1 do q[i + 1] = q[i] end
      w.otail = w.otail + 1
      h = w.ohead
    else
      w.ohead = h
    end
    q[h] = { op, data }
  else
    local t = w.otail + 1
    w.otail = t
    q[t] = { op, data }
  end
  w.sema:post(1)
end

-- The reading light thread of an open socket.
local function reader(self, w, sock)
  local max = w.target.max_message or DEFAULT_MAX_MESSAGE
  local parts, size, binary = nil, 0, false
  while not w.done do
    local fin, op, payload = wsframe.read(sock, max - size)
    if w.done then return end
    if fin == nil then
      local err = op
      if err == "too_big" then
        queue_frame(w, OP_CLOSE, wsframe.close_payload(1009, "message too big"), true)
        w.closing = true
        finish(self, w, false, "error", "message_too_big", "a message exceeded max_message")
      elseif tostring(err):find("^protocol") then
        queue_frame(w, OP_CLOSE, wsframe.close_payload(1002, "protocol error"), true)
        w.closing = true
        finish(self, w, false, "error", "protocol_error", err)
      elseif w.closing then
        finish(self, w, false, "close", w.code, w.reason)
      else
        finish(self, w, false, "close", 1006, "") -- dropped without a close frame
      end
      return
    end
    if op == OP_TEXT or op == OP_BINARY or op == 0 then
      if op ~= 0 then parts, size, binary = {}, 0, op == OP_BINARY end
      if parts then
        parts[#parts + 1] = payload
        size = size + #payload
        if fin then
          local data = #parts == 1 and parts[1] or table.concat(parts)
          parts, size = nil, 0
          deliver(self, w, "message", data, binary)
        end
      end
    elseif op == OP_CLOSE then
      local code, reason = 1005, ""
      if #payload >= 2 then
        code = payload:byte(1) * 256 + payload:byte(2)
        reason = payload:sub(3)
      end
      if not w.closing then
        -- answer it, then report at once (as the native loop does)
        w.closing = true
        queue_frame(w, OP_CLOSE, payload:sub(1, 2), true)
        finish(self, w, false, "close", code, reason)
      else
        finish(self, w, false, "close", w.code, w.reason)
      end
      return
    elseif op == OP_PING then
      queue_frame(w, OP_PONG, payload, true)
    end
  end
end

-- Sends what is queued; false when the socket failed.
local function flush(w, sock)
  local q = w.out
  while true do
    local h = w.ohead
    local f = q[h]
    if not f then
      if h > 1 then w.out, w.ohead, w.otail = {}, 1, 0 end
      return true
    end
    q[h] = nil
    w.ohead = h + 1
    local ok = sock:send(wsframe.frame(f[1], f[2]))
    if not ok then return false end
    if f[1] == OP_CLOSE then w.sent_close = true end
  end
end

-- The timer that owns one WebSocket.
local function owner(premature, self, w)
  if premature then
    return finish(self, w, false, "error", "connection_failed", "nginx is shutting down")
  end
  if w.done then return end
  local t = w.target
  local deadline = t.deadline or (now() + 30)
  local sock, kind, msg = http.connect(t.tls, t.host, t.port, deadline, t.insecure, "rivet-ws-nopool")
  if not sock then return finish(self, w, false, "error", kind, msg) end
  if w.done then return sock:close() end
  local proto
  proto, kind, msg = wsframe.handshake(sock, t)
  if not proto then
    sock:close()
    return finish(self, w, false, "error", kind, msg)
  end
  if w.done then return sock:close() end
  sock:settimeouts(30000, 30000, IDLE_READ_MS)
  w.state = "open"
  deliver(self, w, "open", proto)
  local rd = ngx.thread.spawn(reader, self, w, sock)
  local failed = false
  while true do
    if not flush(w, sock) then failed = true break end
    if w.done or w.closing then break end
    if ngx.worker.exiting() then
      -- nginx is stopping (its timers fire at once now: waiting would spin)
      w.closing, w.code, w.reason = true, 1001, "Going Away"
      break
    end
    w.sema:wait(3600)
  end
  if not failed and w.closing then
    if not w.sent_close then
      queue_frame(w, OP_CLOSE, wsframe.close_payload(w.code, w.reason))
      flush(w, sock)
    end
    -- the server's answer ends the reader; do not wait for it longer than the grace
    -- (the time left is taken once per turn: checked, then read again, it could be
    -- negative, which semaphore:wait raises on, aborting this timer before finish())
    local until_t = now() + CLOSE_GRACE
    while not w.done and not ngx.worker.exiting() do
      local left = until_t - now()
      if left <= 0 then break end
      w.sema:wait(left)
    end
    flush(w, sock) -- an answer to the server's close, if that came meanwhile
  end
  ngx.thread.kill(rd)
  sock:close()
  if failed then
    finish(self, w, false, "close", 1006, "")
  else
    finish(self, w, false, "close", w.code or 1000, w.reason or "")
  end
end

--- Starts connecting target {host, port, tls, path, protocols, headers, origin,
--- insecure, max_message, deadline}; returns the socket's id. Its events reach the
--- scheduler's ws_owners[id].
function T:ws_open(target)
  local id = self.next_id + 1
  self.next_id = id
  local w = { id = id, target = target, state = "connecting", out = {}, ohead = 1, otail = 0, sema = semaphore.new(0),
    closing = false, done = false, sent_close = false }
  self.socks[id] = w
  if self.closed then
    finish(self, w, true, "error", "connection_failed", "the client was disposed")
    return id
  end
  local ok, err = ngx.timer.at(0, owner, self, w)
  if not ok then finish(self, w, true, "error", "connection_failed", "could not start a timer: " .. tostring(err)) end
  return id
end

--- Queues a frame (sent in order once the socket is open); false when the socket is
--- closing or gone.
function T:ws_send(id, data, binary)
  local w = self.socks[id]
  if not w or w.done or w.closing then return false end
  queue_frame(w, binary and OP_BINARY or OP_TEXT, data)
  return true
end

--- Starts closing: an open socket sends a close frame after what is queued; one still
--- connecting is dropped. Either way a final close (or error) event follows.
function T:ws_close(id, code, reason)
  local w = self.socks[id]
  if not w or w.done or w.closing then return false end
  w.closing = true
  w.code, w.reason = code or 1000, (reason or ""):sub(1, 123)
  if w.state == "connecting" then
    finish(self, w, true, "close", w.code, w.reason)
  else
    w.sema:post(1)
  end
  return true
end

--- {connecting=, open=} (and the native loop's other keys, 0 here).
function T:ws_counts()
  local c = { resolving = 0, waiting = 0, connecting = 0, open = 0, max_connecting = math.huge }
  for _, w in pairs(self.socks) do
    if w.state == "open" then c.open = c.open + 1 else c.connecting = c.connecting + 1 end
  end
  return c
end

--- Closes every socket (client:dispose).
function T:close()
  if self.closed then return end
  self.closed = true
  local ids = {}
  for id in pairs(self.socks) do ids[#ids + 1] = id end
  for i = 1, #ids do self:ws_close(ids[i], 1000, "Disposed") end
end

return T
