-- The coroutine scheduler and futures: the only place in the library that yields.
--
-- Every wait goes through Scheduler:await(future). Inside a task started by spawn() it
-- yields the task; anywhere else (the main chunk, a coroutine of the user's own) it runs
-- the loop until the future settles. The C loop never yields and never sleeps longer
-- than the timeout it is given, so one step() is the unit game loops call each tick.
local core = require("rivet.core")
local errors = require("rivet.errors")
local compat = require("rivet.compat")

local now = compat.now
local co_running, co_resume, co_status, co_yield, co_create =
  coroutine.running, coroutine.resume, coroutine.status, coroutine.yield, coroutine.create
local huge = math.huge
local floor = math.floor
local pack, unpack = compat.pack, compat.unpack

local WS_EVENTS = core.ws_events -- "open", "message", "close", "error" by number
local AWAIT = setmetatable({}, { __name = "rivet.await" }) -- what a task yields while it waits
local DONE = setmetatable({}, { __name = "rivet.done" })   -- what a worker yields between tasks
local POOL_MAX = 32 -- idle workers a scheduler keeps

local Future = require("rivet.future")
local settle = Future.settle

-- The body of a pooled coroutine (Scheduler:go): runs one function, then waits for the
-- next. An error ends the coroutine as it would any task's (it is not reused).
local function worker(fn, ...)
  fn(...)
  return worker(co_yield(DONE))
end

--------------------------------------------------------------------------------------
-- Timers: a binary min-heap of {at=, fn=} entries; cancelled entries are skipped.
--------------------------------------------------------------------------------------
local function heap_push(h, t)
  local i = #h + 1
  h[i] = t
  while i > 1 do
    local p = floor(i / 2)
    if h[p].at <= t.at then break end
    h[i], h[p] = h[p], t
    i = p
  end
end

local function heap_pop(h)
  local n = #h
  local top = h[1]
  local last = h[n]
  h[n] = nil
  n = n - 1
  if n > 0 then
    local i = 1
    h[1] = last
    while true do
      local l, r, m = 2 * i, 2 * i + 1, i
      if l <= n and h[l].at < h[m].at then m = l end
      if r <= n and h[r].at < h[m].at then m = r end
      if m == i then break end
      h[i], h[m] = h[m], h[i]
      i = m
    end
  end
  return top
end

--------------------------------------------------------------------------------------
-- Scheduler
--------------------------------------------------------------------------------------
local Scheduler = {}
Scheduler.__index = Scheduler

function Scheduler.new(loop)
  return setmetatable({
    loop = loop,
    tasks = {},       -- coroutine -> task record
    ntasks = 0,       -- user tasks still alive (run() waits for these)
    ready = {},       -- queue of coroutines to resume
    rhead = 1,
    timers = {},      -- heap
    inflight = {},    -- request id -> future
    stream_owners = {}, -- request id -> rivet.stream object of an evented request
    out = {},         -- reused result array for loop:poll
    wsout = {},       -- reused WebSocket event array for loop:poll (4 slots per event)
    -- connections: weak, so a connection the user dropped can be collected (and closed)
    sources = setmetatable({}, { __mode = "k" }), -- objects with :pump() and a _wake field
    next_wake = huge, -- no source's _wake is earlier (set_wake keeps it so; may be stale-early)
    ws_owners = setmetatable({}, { __mode = "v" }), -- WebSocket id -> object with :_on_ws(id, kind, a, b)
    unhandled = nil,  -- errors of user tasks nobody awaited
    pool = {},        -- the task records of idle workers (Scheduler:go)
  }, Scheduler)
end

Scheduler.Future = Future

function Scheduler:future() return Future.new(self) end

local cancel_task
local function cancel_hook(fut) cancel_task(fut._sched, fut._owner) end

local function new_task(self, fn, internal, ...)
  local fut = Future.new(self)
  local co = co_create(fn)
  self.tasks[co] = { co = co, fut = fut, internal = internal, args = pack(...), queued = false }
  if not internal then self.ntasks = self.ntasks + 1 end
  fut._on_cancel = cancel_hook
  fut._owner = co
  return co, fut
end

local function cancelled_error() return errors.new("client", "cancelled", "the call was cancelled") end

-- fut:cancel() of a task's future: its HTTP request in flight is aborted, and its current
-- (or next) wait raises client.cancelled inside it.
function cancel_task(self, co)
  local task = self.tasks[co]
  if not task then return end
  task.cancelled = true
  local id = task.req_id
  if id then
    task.req_id = nil
    local rf = self.inflight[id]
    local so = self.stream_owners[id]
    if rf then
      self.inflight[id] = nil
      self.loop:cancel(id)
      settle(rf, true, { id = id, err = "cancelled", message = "the call was cancelled" })
    elseif so then
      so:_fail(errors.new("client", "cancelled", "the call was cancelled"))
    end
  end
  self:_wake(co)
end

--- Runs fn(...) in a new task; returns a future of its return value.
--- internal tasks (the library's own) do not keep run() going.
function Scheduler:spawn(fn, internal, ...)
  local co, fut = new_task(self, fn, internal, ...)
  self:_wake(co)
  return fut
end

-- A host loop sleeps on loop:pollfds(); work the scheduler takes on between polls (a task
-- woken or spawned, a timer set, a request or connection started) must wake it (the C
-- loop ignores this during a poll's work), and an adapter may want to know (host_kick:
-- rivet.luv keeps libuv's loop alive while the client has work).
local function wake_host(self)
  if self.hosted then
    self.loop:wakeup()
    local k = self.host_kick
    if k then k() end
  end
end

--- Runs fn(...) as an internal task nobody waits for (event handlers): like
--- spawn(fn, true, ...), but without a future, and on a pooled coroutine that it takes
--- only when its turn comes, so the handlers of a burst of events run one after the
--- other on the same few coroutines (as many as wait at the same time).
function Scheduler:go(fn, ...)
  -- pack(fn, ...) with the mark in the same constructor (setting it after grew the table)
  self.ready[#self.ready + 1] = { go = true, n = select("#", ...) + 1, fn, ... }
  wake_host(self)
end

-- Starts a go() record on an idle worker: the pool holds their task records, which are
-- used again (a burst of events runs one handler per event on the same few workers).
local function start_worker(self, rec)
  local pool = self.pool
  local n = #pool
  local task
  if n > 0 then
    task = pool[n]
    pool[n] = nil
    task.args, task.queued, task.req_id = rec, false, nil
  else
    task = { co = co_create(worker), fut = false, internal = true, args = rec, queued = false, req_id = nil }
  end
  self.tasks[task.co] = task
  self:_resume(task.co)
end

--- Calls fn(...) from the loop, in order with the tasks that are ready, without a
--- coroutine of its own: for notifications that usually find nothing to do, and that
--- start a task (run_task) only when they do.
function Scheduler:defer(fn, ...)
  local rec = pack(...)
  rec.fn = fn
  self.ready[#self.ready + 1] = rec
  wake_host(self)
end

--- Starts fn(...) in a new task at once (from a deferred call: keeps its place in line).
function Scheduler:run_task(fn, internal, ...)
  local co, fut = new_task(self, fn, internal, ...)
  self:_resume(co)
  return fut
end

--- True when the running code is a task of this scheduler (so it may yield).
function Scheduler:in_task()
  local co, main = co_running()
  return not main and self.tasks[co] ~= nil
end

function Scheduler:_wake(co)
  local task = self.tasks[co]
  if task and not task.queued then
    task.queued = true
    local r = self.ready
    r[#r + 1] = co
    if self.hosted then wake_host(self) end
  end
end

local function finish(self, task, ok, value)
  local co = task.co
  self.tasks[co] = nil
  if not task.internal then self.ntasks = self.ntasks - 1 end
  local fut = task.fut
  if not fut then return end -- a worker's task (go)
  if not ok and not task.internal and not fut.done and not fut._waiters and not fut._cb1 then
    -- nobody is waiting for this task: its error must not vanish
    local u = self.unhandled
    if not u then u = {}; self.unhandled = u end
    u[#u + 1] = value
  end
  settle(fut, ok, value)
end

local function traceback(co, err)
  if type(err) == "string" then return debug.traceback(co, err) end
  return err
end

function Scheduler:_resume(co)
  local task = self.tasks[co]
  if not task or co_status(co) ~= "suspended" then return end
  task.queued = false
  local ok, a
  local args = task.args
  if args then
    task.args = nil
    ok, a = co_resume(co, unpack(args, 1, args.n))
  else
    ok, a = co_resume(co)
  end
  if co_status(co) == "dead" then
    finish(self, task, ok, ok and a or traceback(co, a))
  elseif a == DONE and not task.fut then
    finish(self, task, true, nil)
    local pool = self.pool
    if #pool < POOL_MAX then pool[#pool + 1] = task end
  elseif a ~= AWAIT then
    self:_wake(co) -- a plain coroutine.yield() inside a task: let the others run, then go on
  end
end

function Scheduler:_run_ready()
  -- Only the coroutines queued when this round starts run now; ones woken meanwhile
  -- run in the next round, so a task that keeps yielding cannot starve the loop.
  local r = self.ready
  local n = #r
  if n == 0 then return end
  self.ready = {}
  for i = 1, n do
    local x = r[i]
    if type(x) == "thread" then
      self:_resume(x)
    elseif x.go then
      start_worker(self, x)
    else
      x.fn(unpack(x, 1, x.n)) -- a deferred call (defer)
    end
  end
end

--- Schedules fn() at monotonic time `at`; returns the timer (pass it to cancel_timer).
function Scheduler:timer(at, fn)
  local t = { at = at, fn = fn }
  heap_push(self.timers, t)
  if self.hosted then wake_host(self) end
  return t
end

function Scheduler:cancel_timer(t)
  if t then t.fn = nil end
end

function Scheduler:_fire_timers()
  local h = self.timers
  local t0 = now()
  while h[1] and h[1].at <= t0 do
    local t = heap_pop(h)
    local fn = t.fn
    if fn then
      t.fn = nil
      fn()
    end
  end
end

function Scheduler:_next_timer()
  local h = self.timers
  while h[1] and not h[1].fn do heap_pop(h) end
  return h[1] and h[1].at
end

--- Registers an HTTP request with the loop; returns a future of its result table.
--- A rivet.stream for a request with stream/upload (raw.lua passes it as req.owner).
function Scheduler:new_stream(upload)
  return require("rivet.stream").new(self, self.loop, upload)
end

--- With req.stream or req.upload, req.owner (a rivet.stream) gets the request's events
--- and the future returned is its `head`.
function Scheduler:request(req)
  local id = self.loop:request(req)
  if self.hosted then wake_host(self) end
  local owner = req.owner
  if owner then
    owner.id = id
    self.stream_owners[id] = owner
    local co = co_running()
    local task = co and self.tasks[co]
    if task then task.req_id = id end
    return owner.head
  end
  local fut = Future.new(self)
  self.inflight[id] = fut
  local co = co_running()
  local task = co and self.tasks[co]
  if task then task.req_id = id end -- what cancelling the task aborts
  return fut
end

--- Registers an object (a connection) whose field `_wake` (a time, or false/nil) bounds
--- how long a step may sleep; its :pump() runs in the first step at or after that time.
--- The object keeps `_wake` current itself (conn.lua after every state machine drain),
--- always through set_wake, so that steps need not look at every source.
function Scheduler:add_source(src)
  self.sources[src] = true
  if self.hosted then wake_host(self) end
end

--- Sets src._wake = t (a time, or false).
function Scheduler:set_wake(src, t)
  src._wake = t
  if t and t < self.next_wake then self.next_wake = t end
end
function Scheduler:remove_source(src) self.sources[src] = nil end

local function raise_unhandled(self)
  local u = self.unhandled
  if u then
    self.unhandled = nil
    local e = u[1]
    if type(e) == "string" then e = "rivet task failed: " .. e end
    error(e, 0)
  end
end

--- One turn of the loop: resume ready tasks, wait for I/O at most `timeout` seconds
--- (less if a timer is due, none if a task is ready), complete requests, fire timers,
--- resume the tasks that became ready.
function Scheduler:step(timeout)
  local wait = timeout or 0
  if self.ready[1] then
    -- tasks ran: what the caller waits for may have happened, so do not sleep now
    self:_run_ready()
    wait = 0
  end
  local at = self.timers[1] and self:_next_timer()
  local nw = self.next_wake
  if nw ~= huge and (not at or nw < at) then at = nw end
  if at then
    local d = at - now()
    if d < wait then wait = d > 0 and d or 0 end
  end
  if wait == huge then wait = 3600 end
  local out, wsout = self.out, self.wsout
  local n, m = 0, 0
  if not self.closed then n, m = self.loop:poll(wait, out, wsout) end
  local inflight, t = self.inflight, nil
  for i = 1, n do
    local r = out[i]
    out[i] = nil
    local ev = r.stream
    if ev then
      local o = self.stream_owners[r.id]
      if o then
        if ev == "end" then self.stream_owners[r.id] = nil end
        o:_on_stream(ev, r)
      end
    else
      local fut = inflight[r.id]
      if fut then
        inflight[r.id] = nil
        settle(fut, true, r)
      end
    end
  end
  if m > 0 then
    -- id, kind, then the event's two values (loop:poll, csrc/ws.c rv_ws_collect)
    local owners = self.ws_owners
    t = now()
    for j = 1, m * 4, 4 do
      local id, kind, a, b = wsout[j], WS_EVENTS[wsout[j + 1]], wsout[j + 2], wsout[j + 3]
      wsout[j], wsout[j + 1], wsout[j + 2], wsout[j + 3] = nil, nil, nil, nil
      local o = owners[id]
      if o then o:_on_ws(id, kind, a, b, t) end
    end
  end
  -- Only sources whose time has come are pumped (their socket events were handled
  -- above), and the sources are only looked at when next_wake says one may be due;
  -- the walk also finds the next next_wake. Due sources are collected first, without
  -- calling anything, because a pump may add a source (a callback opens a connection),
  -- and a table must not gain keys while pairs() walks it.
  nw = self.next_wake
  if nw ~= huge then
    t = t or now() -- (a source that fell due while the events ran is pumped next step)
    if nw <= t then
      local sources, due, next_wake = self.sources, nil, huge
      for src in pairs(sources) do
        local w = src._wake
        if w then
          if w <= t then
            if due then due[#due + 1] = src else due = { src } end
          elseif w < next_wake then
            next_wake = w
          end
        end
      end
      self.next_wake = next_wake
      if due then
        for i = 1, #due do
          local src = due[i]
          if sources[src] then src:pump() end
        end
      end
    end
  end
  if self.timers[1] then self:_fire_timers() end
  if self.ready[1] then self:_run_ready() end
  if self.unhandled then raise_unhandled(self) end
end

--- The descriptors a host loop watches now: { {fd=, events="r"|"w"|"rw"}, ... } (csrc/host.c:
--- one epoll descriptor today). From now on work taken on between polls wakes the host.
function Scheduler:pollfds()
  local flat = self.fdflat
  if not flat then flat = {}; self.fdflat = flat end
  self.hosted = true
  local n = self.loop:pollfds(flat)
  local out = {}
  for i = 1, n do out[i] = { fd = flat[2 * i - 1], events = flat[2 * i] } end
  return out
end

--- The one descriptor a host adapter watches for reading (csrc/host.c: the same while
--- the loop is open, so it is asked for once). From now on work taken on between polls
--- wakes the host. Raises if the loop ever hands out anything else.
function Scheduler:host_fd()
  local flat = self.fdflat
  if not flat then flat = {}; self.fdflat = flat end
  self.hosted = true
  local n = self.loop:pollfds(flat)
  if n ~= 1 or flat[2] ~= "r" then
    error("rivet: the loop handed out " .. n .. " descriptor(s) (first events: " .. tostring(flat[2])
      .. "); a host adapter watches exactly one, for reading", 2)
  end
  return flat[1]
end

--- Seconds until step(0) has timed work to do (0: now), or nil when only I/O can bring any.
function Scheduler:timeout()
  if self.ready[1] then
    self.loop:timeout() -- (ends the loop's quiet time all the same)
    return 0
  end
  local t = self.loop:timeout()
  local at = self.timers[1] and self:_next_timer()
  local nw = self.next_wake
  if nw ~= huge and (not at or nw < at) then at = nw end
  if at then
    local d = at - now()
    if d < 0 then d = 0 end
    if not t or d < t then t = d end
  end
  return t
end

--- True when something could still wake a waiting task.
function Scheduler:_alive()
  return #self.ready > 0 or next(self.inflight) ~= nil or next(self.sources) ~= nil
      or next(self.stream_owners) ~= nil
      or self:_next_timer() ~= nil
end

local function timeout_error(what)
  return errors.new("client", "timeout", what or "timed out")
end

-- A task waits by yielding (its own function: the timer's closure captures co, and a
-- function with captured locals ends in UCLO, which LuaJIT does not compile).
local function await_in_task(self, fut, timeout, co, task)
  if task.cancelled then error(cancelled_error(), 0) end
  local w = fut._waiters
  if not w then w = {}; fut._waiters = w end
  w[#w + 1] = co
  local timer, expired
  if timeout then
    timer = self:timer(now() + timeout, function() expired = true; self:_wake(co) end)
  end
  repeat co_yield(AWAIT) until fut.done or expired or task.cancelled
  self:cancel_timer(timer)
  if not fut.done then
    fut:_remove_waiter(co)
    if task.cancelled then error(cancelled_error(), 0) end
    error(timeout_error("waited " .. timeout .. " s"), 0)
  end
end

function Scheduler:await(fut, timeout)
  if not fut.done then
    local co, main = co_running()
    local task = not main and self.tasks[co]
    if task then
      await_in_task(self, fut, timeout, co, task)
    elseif not (co and not main and self.foreign_await and self.foreign_await(fut, timeout)) then
      -- (foreign_await: a host loop's adapter (rivet.cqueues) waits in a coroutine of
      -- its own by yielding to its loop; it returns false where it cannot)
      local deadline = timeout and now() + timeout or huge
      while not fut.done do
        local left = huge
        if timeout then
          left = deadline - now()
          if left <= 0 then error(timeout_error("waited " .. timeout .. " s"), 0) end
        end
        if not (self.ready[1] or next(self.sources) or next(self.inflight) or next(self.stream_owners)
            or self:_next_timer()) then
          error("rivet: waiting for a result that nothing can produce (no request, timer or connection is active)", 0)
        end
        self:step(left)
      end
    end
  end
  if fut.ok then return fut.value end
  error(fut.value, 0)
end

--- Sleeps `seconds` (yields inside a task, runs the loop elsewhere).
function Scheduler:sleep(seconds)
  local fut = Future.new(self)
  self:timer(now() + seconds, function() settle(fut, true, nil) end)
  return self:await(fut)
end

--- Runs the loop until every user task has finished (or stop() is called).
function Scheduler:run(timeout)
  self.stopped = false
  local deadline = timeout and now() + timeout or huge
  while self.ntasks > 0 and not self.stopped do
    local left = deadline - now()
    if left <= 0 then error(timeout_error("run() did not finish within " .. timeout .. " s"), 0) end
    if not self:_alive() then
      error("rivet: " .. self.ntasks .. " task(s) are waiting for something that nothing can produce", 0)
    end
    self:step(left)
  end
  raise_unhandled(self)
end

return Scheduler
