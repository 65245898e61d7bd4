-- A streamed HTTP exchange over the native loop (loop:request{stream=, upload=}): the
-- response body in pieces as they arrive, and a request body taken from a function
-- chunk by chunk. The loop reports progress as events (csrc/loop.c, l_request); the
-- scheduler hands them to the object registered for the request (Scheduler:request's
-- owner). Reading has the same methods on the cosocket transport (rivet.resty.http).
local errors = require("rivet.errors")
local Future = require("rivet.future")

local Stream = {}
Stream.__index = Stream

-- Bytes buffered here before the loop is asked to hold further pieces back, and the
-- level at which it may send them again.
local HIGH_WATER = 1024 * 1024
local LOW_WATER = 256 * 1024

--- A stream for one request; `upload` (a function returning chunks, nil at the end) or
--- nil. `head` settles with the first result: {status, headers} once they are in, or
--- the end/failure of a request that never got that far.
function Stream.new(sched, loop, upload)
  return setmetatable({
    sched = sched,
    loop = loop,
    id = false,
    head = Future.new(sched),
    upload_fn = upload or false,
    queue = {},     -- pieces not read yet: queue[qhead .. qtail]
    qhead = 1,
    qtail = 0,
    bytes = 0,
    paused = false,
    done = false,   -- the transfer ended (ok) or failed (err)
    err = false,
    waiter = false, -- future of a reader waiting for the next piece
    uploading = false,
  }, Stream)
end

local function wake(self)
  local w = self.waiter
  if w then
    self.waiter = false
    w:resolve(true)
  end
end

local function push(self, data)
  if data == "" then return end
  local t = self.qtail + 1
  self.qtail = t
  self.queue[t] = data
  self.bytes = self.bytes + #data
  if not self.paused and self.bytes >= HIGH_WATER and not self.done then
    self.paused = true
    self.loop:stream_pause(self.id, true)
  end
  wake(self)
end

-- The upload function's next chunk, into the loop (in a task: it may wait).
local function feed(self)
  if self.uploading or self.done then return end
  self.uploading = true
  self.sched:go(function()
    local ok, chunk = pcall(self.upload_fn)
    self.uploading = false
    if self.done then return end
    if not ok then
      self:_fail(errors.new("client", "body_failed", "the request body function failed: " .. tostring(chunk)))
      return
    end
    if chunk ~= nil and type(chunk) ~= "string" then
      self:_fail(errors.new("client", "body_failed", "the request body function returned a " .. type(chunk)
        .. " (chunks must be strings, nil at the end)"))
      return
    end
    self.loop:upload(self.id, chunk)
  end)
end

function Stream:_fail(err)
  if self.done then return end
  self.done, self.err = true, err
  self.loop:cancel(self.id)
  self.sched.stream_owners[self.id] = nil
  self.head:resolve({ err = "stream", error = err })
  wake(self)
end

--- A loop event of this request (Scheduler:step): head, data, want or end.
function Stream:_on_stream(kind, r)
  if kind == "data" then
    push(self, r.data)
  elseif kind == "head" then
    self.head:resolve({ status = r.status, headers = r.headers })
  elseif kind == "want" then
    feed(self)
  elseif kind == "end" then
    self.done = true
    if r.err then
      self.err = r
    elseif r.body then
      push(self, r.body)
    end
    -- a request that ended before its head was reported (no stream, or a failure)
    self.head:resolve(r)
    wake(self)
  end
end

--- The next piece of the body, nil at its end; nil, err on failure or when `timeout`
--- seconds pass without one (err client.timeout; the stream stays usable).
function Stream:read(timeout)
  while true do
    local q, h = self.queue, self.qhead
    local data = q[h]
    if data then
      q[h] = nil
      self.qhead = h + 1
      self.bytes = self.bytes - #data
      if h == self.qtail then self.queue, self.qhead, self.qtail = {}, 1, 0 end
      if self.paused and self.bytes <= LOW_WATER and not self.done then
        self.paused = false
        self.loop:stream_pause(self.id, false)
      end
      return data
    end
    if self.done then
      local e = self.err
      if not e then return nil end
      if errors.is(e) then return nil, e end
      return nil, require("rivet.protocol").transport_error(e)
    end
    local w = self.waiter
    if not w then
      w = Future.new(self.sched)
      self.waiter = w
    end
    local ok, err = pcall(self.sched.await, self.sched, w, timeout)
    if not ok then
      if errors.is(err, "client.timeout") then
        return nil, errors.new("client", "timeout", "no body data within " .. tostring(timeout) .. " s")
      end
      error(err, 0)
    end
  end
end

--- Ends the transfer (what was not read is dropped).
function Stream:close()
  if self.done then return end
  self.done = true
  self.loop:cancel(self.id)
  self.sched.stream_owners[self.id] = nil
  self.queue, self.qhead, self.qtail, self.bytes = {}, 1, 0, 0
  wake(self)
end

return Stream
