-- The scheduler inside nginx (rivet.runtime, "resty"): the same methods as
-- rivet.scheduler, built on the lua module's light threads instead of a loop.
--
-- * A wait (await, sleep, an HTTP request) yields the calling light thread to nginx on an
--   ngx.semaphore or a cosocket; the worker goes on serving other requests meanwhile.
-- * Work of the library's own (connection attempts, async calls, event handlers,
--   lifecycle callbacks) runs on a background runner: an ngx.timer.at light thread that
--   takes queued items in order and gives each that may wait a light thread of its own
--   (ngx.thread.spawn), so it outlives the request that caused it. The runner ends after
--   a while idle or after RUNNER_MAX items (the lua module advises recycling long-lived
--   timers: a timer's memory is only freed when it ends); the next item starts a new one.
-- * Connection deadlines and backoff (add_source/set_wake) are nginx timers that pump
--   the connection when they fire.
-- * When nginx reloads or shuts down, pending timers fire "premature": every connection
--   is disposed then (a watch timer is kept pending while connections exist so that
--   this happens even when none of them has a deadline).
local Future = require("rivet.future")
local compat = require("rivet.compat")
local core = require("rivet.core")
local errors = require("rivet.errors")
local semaphore = require("ngx.semaphore")

local ngx = ngx
local timer_at = ngx.timer.at
local thread_spawn = ngx.thread.spawn
local get_phase = ngx.get_phase
local now = core.now
local settle = Future.settle
local pack, unpack = compat.pack, compat.unpack

local RUNNER_MAX = 1000 -- items one runner timer takes before it makes way for a new one
local RUNNER_IDLE = 1   -- seconds a runner waits for more work before it ends (a running
                        -- timer holds up a graceful stop or reload this long at most)
local WATCH_PERIOD = 3600
-- A waiting light thread wakes at least this often to pump connections whose deadline
-- has passed: deadlines then hold even when nginx has no timer left for them
-- (lua_max_running_timers / lua_max_pending_timers reached).
local WAIT_SLICE = 1

-- Phases in which cosockets, ngx.sleep and ngx.semaphore waits work.
local YIELDABLE = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

local Scheduler = {}
Scheduler.__index = Scheduler

--- Raises the clear error of a call that has to wait in a phase that cannot.
local function check_phase(what)
  local phase = get_phase()
  if not YIELDABLE[phase] then
    error("rivet: cosockets are not available in the " .. phase .. " phase (" .. what
      .. " must wait; call it from a rewrite, access, content or timer context, e.g. ngx.timer.at)", 0)
  end
end
Scheduler.check_phase = check_phase

function Scheduler.new()
  return setmetatable({
    transport = nil,  -- set by rivet.runtime
    inflight = {},    -- request id -> future (dispose fails them)
    next_request = 0,
    sources = setmetatable({}, { __mode = "k" }),
    ws_owners = setmetatable({}, { __mode = "v" }),
    ntasks = 0,       -- user tasks alive
    user_tasks = {},  -- their futures (run() waits for them)
    queue = {},       -- runner items, in order: queue[qhead .. qtail]
    qhead = 1,
    qtail = 0,
    runner = false,   -- a runner is alive
    runner_sema = false,
    watching = false,
    shut = false,
    stopped = false,
  }, Scheduler)
end

function Scheduler:future() return Future.new(self) end

-- A future's waiter is the semaphore of the light thread waiting for it.
function Scheduler:_wake(sema) sema:post(1) end

--- True when the running code may wait (it always yields to nginx, never blocks).
function Scheduler:in_task() return YIELDABLE[get_phase()] == true end

local function timeout_error(what) return errors.new("client", "timeout", what) end

function Scheduler:await(fut, timeout)
  if not fut.done then
    check_phase("waiting for a result")
    local sema = semaphore.new(0)
    local w = fut._waiters
    if not w then w = {}; fut._waiters = w end
    w[#w + 1] = sema
    local deadline = timeout and now() + timeout
    while not fut.done do
      local left = WAIT_SLICE
      if deadline then
        left = deadline - now()
        if left <= 0 then
          fut:_remove_waiter(sema)
          error(timeout_error("waited " .. timeout .. " s"), 0)
        end
        if left > WAIT_SLICE then left = WAIT_SLICE end
      end
      if not sema:wait(left) and not fut.done then
        if ngx.worker.exiting() then
          -- nginx is stopping: its timers fire at once now, so waiting would spin;
          -- close everything, and end this wait if that did not settle it
          self:_shutdown()
          if not fut.done then
            fut:_remove_waiter(sema)
            error(errors.new("client", "disposed", "nginx is shutting down"), 0)
          end
        else
          self:_pump_due()
        end
      end
    end
  end
  if fut.ok then return fut.value end
  error(fut.value, 0)
end

function Scheduler:sleep(seconds)
  check_phase("sleep")
  ngx.sleep(seconds)
end

local function report_unhandled(err)
  ngx.log(ngx.ERR, "rivet: a task failed and nobody awaited it: ", tostring(err))
end

-- fn(...) as a task settling fut; user tasks count for run().
local function task_body(self, fut, internal, fn, args)
  local ok, v = xpcall(fn, function(e)
    if type(e) == "string" then return debug.traceback(e, 2) end
    return e
  end, unpack(args, 1, args.n))
  if not internal then
    self.ntasks = self.ntasks - 1
    self.user_tasks[fut] = nil
    if not ok and not fut._waiters and not fut._cb1 then report_unhandled(v) end
  end
  settle(fut, ok, v)
end

--------------------------------------------------------------------------------------
-- The runner
--------------------------------------------------------------------------------------

local run_item

local function runner(premature, self)
  if premature then
    self.runner = false
    return self:_shutdown()
  end
  local sema = self.runner_sema
  local taken = 0
  while taken < RUNNER_MAX do
    local q, h = self.queue, self.qhead
    local item = q[h]
    if item then
      q[h] = nil
      self.qhead = h + 1
      taken = taken + 1
      run_item(item)
    else
      self.queue, self.qhead, self.qtail = {}, 1, 0
      -- stopping nginx: what is queued ran; do not wait for more (timers fire at once
      -- now, so an idle wait would not wait)
      if ngx.worker.exiting() then break end
      local ok = sema:wait(RUNNER_IDLE)
      if not ok and not self.queue[self.qhead] then break end
    end
  end
  self.runner = false
  -- work that came in while this runner was leaving
  if self.queue[self.qhead] then self:_start_runner() end
end

function Scheduler:_start_runner()
  if self.runner then return end
  if not self.runner_sema then self.runner_sema = semaphore.new(0) end
  local ok, err = timer_at(0, runner, self)
  if not ok then
    ngx.log(ngx.ERR, "rivet: could not start the background runner: ", tostring(err))
    return
  end
  self.runner = true
end

local function push(self, item)
  local t = self.qtail + 1
  self.qtail = t
  self.queue[t] = item
  if self.runner then
    local s = self.runner_sema
    if s:count() < 1 then s:post(1) end
  else
    self:_start_runner()
  end
end

-- An item: {kind, fn, args}: "call" runs inline in the runner (deferred notifications,
-- which do not wait), "thread" gets a light thread of its own.
function run_item(item)
  if item.kind == "call" then
    local ok, err = pcall(item.fn, unpack(item, 1, item.n))
    if not ok then ngx.log(ngx.ERR, "rivet: a deferred call failed: ", tostring(err)) end
  else
    local co, err = thread_spawn(item.fn, unpack(item, 1, item.n))
    if not co then ngx.log(ngx.ERR, "rivet: could not start a light thread: ", tostring(err)) end
  end
end

local function item(kind, fn, ...)
  local it = pack(...)
  it.kind, it.fn = kind, fn
  return it
end

--------------------------------------------------------------------------------------
-- Tasks
--------------------------------------------------------------------------------------

--- Runs fn(...) in a light thread; returns a future of its result. A user task started
--- from a request phase is a light thread of that request (ngx.thread.spawn: the request
--- waits for it, and ngx.exit ends it); internal ones run on the background runner.
function Scheduler:spawn(fn, internal, ...)
  local fut = Future.new(self)
  local args = pack(...)
  if not internal then
    self.ntasks = self.ntasks + 1
    self.user_tasks[fut] = true
    local phase = get_phase()
    if YIELDABLE[phase] and phase ~= "timer" then
      local co, err = thread_spawn(task_body, self, fut, false, fn, args)
      if not co then error("rivet: could not start a light thread: " .. tostring(err), 2) end
      return fut
    end
  end
  push(self, item("thread", task_body, self, fut, internal, fn, args))
  return fut
end

--- fn(...) on a light thread of the runner, in order with the other items.
function Scheduler:go(fn, ...) push(self, item("thread", fn, ...)) end

--- fn(...) from the runner, in order, without a thread of its own (it must not wait).
function Scheduler:defer(fn, ...) push(self, item("call", fn, ...)) end

--- From a deferred call: starts fn(...) in a light thread now.
function Scheduler:run_task(fn, internal, ...)
  local fut = Future.new(self)
  local co, err = thread_spawn(task_body, self, fut, internal, fn, pack(...))
  if not co then settle(fut, false, "rivet: could not start a light thread: " .. tostring(err)) end
  return fut
end

--------------------------------------------------------------------------------------
-- Timers
--------------------------------------------------------------------------------------

local function fire_timer(premature, self, t)
  local fn = t.fn
  if premature then return self:_shutdown() end
  if fn then
    t.fn = nil
    fn()
  end
end

--- Calls fn() at monotonic time `at` (in a timer light thread of its own).
function Scheduler:timer(at, fn)
  local t = { at = at, fn = fn }
  local d = at - now()
  local ok, err = timer_at(d > 0 and d or 0, fire_timer, self, t)
  if not ok then ngx.log(ngx.ERR, "rivet: could not start a timer: ", tostring(err)) end
  return t
end

function Scheduler:cancel_timer(t)
  if t then t.fn = nil end
end

--------------------------------------------------------------------------------------
-- Connections (sources) and their deadlines
--------------------------------------------------------------------------------------

local watch

function watch(premature, self)
  if premature then return self:_shutdown() end
  if next(self.sources) == nil then
    self.watching = false
    return
  end
  timer_at(WATCH_PERIOD, watch, self)
end

function Scheduler:add_source(src)
  self.sources[src] = true
  if not self.watching then
    local ok = timer_at(WATCH_PERIOD, watch, self)
    self.watching = ok and true or false
  end
end

function Scheduler:remove_source(src) self.sources[src] = nil end

local function pump_timer(premature, self, src, at)
  if src._pump_at == at then src._pump_at = nil end
  if premature then return self:_shutdown() end
  if not self.sources[src] then return end
  local w = src._wake
  if not w then return end
  if w <= now() + 0.0005 then
    src:pump()
  else
    self:set_wake(src, w)
  end
end

--- src._wake = t; src:pump() runs (in a timer) once that time has come.
function Scheduler:set_wake(src, t)
  src._wake = t
  if not t then return end
  local pending = src._pump_at
  if pending and pending <= t then return end
  src._pump_at = t
  local d = t - now()
  local ok, err = timer_at(d > 0 and d or 0, pump_timer, self, src, t)
  if not ok then
    src._pump_at = nil
    ngx.log(ngx.ERR, "rivet: could not start a connection timer: ", tostring(err))
  end
end

-- Pumps the connections whose deadline has passed (a waiting thread's fallback for
-- pump timers that nginx could not start).
function Scheduler:_pump_due()
  local t = now()
  local due
  for src in pairs(self.sources) do
    local w = src._wake
    if w and w <= t then
      if due then due[#due + 1] = src else due = { src } end
    end
  end
  if due then
    for i = 1, #due do
      local src = due[i]
      if self.sources[src] then
        local ok, err = pcall(src.pump, src)
        if not ok then ngx.log(ngx.ERR, "rivet: pumping a connection failed: ", tostring(err)) end
      end
    end
  end
end

-- nginx is reloading or stopping: close every connection, fail what waits.
function Scheduler:_shutdown()
  if self.shut then return end
  self.shut = true
  local list = {}
  for src in pairs(self.sources) do list[#list + 1] = src end
  for i = 1, #list do
    if list[i].dispose then pcall(list[i].dispose, list[i]) end
  end
end

--------------------------------------------------------------------------------------
-- HTTP
--------------------------------------------------------------------------------------

-- A streamed exchange (raw.lua's fetch with stream or a body function): the body is read
-- in the light thread that made the request, on its cosocket.
local RestyStream = {}
RestyStream.__index = RestyStream

function RestyStream:read(timeout)
  local r = self.reader
  if not r then return nil end
  return r:read(timeout)
end

function RestyStream:close()
  if self.reader then self.reader:close() end
end

function RestyStream:_fail() self:close() end

--- A stream object for req.owner (rivet.raw): upload is the body function or nil.
function Scheduler:new_stream(upload)
  return setmetatable({ upload_fn = upload or false, reader = false }, RestyStream)
end

--- Performs the request in the calling light thread (yielding on the cosocket); returns
--- a future of {status, headers, body} or {err, message}.
function Scheduler:request(req)
  check_phase("an HTTP request")
  local id = self.next_request + 1
  self.next_request = id
  local fut = Future.new(self)
  self.inflight[id] = fut
  local owner = req.owner
  if owner then req.upload_fn = owner.upload_fn or nil end
  local res = self.transport:http(req)
  if owner and res.reader then
    owner.reader = res.reader
    res.reader = nil
  end
  if self.inflight[id] == fut then
    self.inflight[id] = nil
    res.id = id
    settle(fut, true, res)
  end
  return fut
end

--- Delivers a WebSocket event to its owner (called by the transport's socket threads).
function Scheduler:_ws_event(id, kind, a, b)
  local o = self.ws_owners[id]
  if o then o:_on_ws(id, kind, a, b, now()) end
end

--------------------------------------------------------------------------------------
-- poll / run
--------------------------------------------------------------------------------------

--- client:poll(t) inside nginx: lets the worker run for t seconds (ngx.sleep; 0 yields
--- once). Background work never needs it. Outside a phase that may wait: does nothing.
function Scheduler:step(timeout)
  if YIELDABLE[get_phase()] then ngx.sleep(timeout or 0) end
end

--- Waits until every user task has finished (or stop() is called).
function Scheduler:run(timeout)
  self.stopped = false
  local deadline = timeout and now() + timeout
  while self.ntasks > 0 and not self.stopped do
    local fut = next(self.user_tasks)
    if not fut then break end
    local left = deadline and deadline - now() or nil
    if left and left <= 0 then error(timeout_error("run() did not finish within " .. timeout .. " s"), 0) end
    pcall(self.await, self, fut, left)
  end
end

return Scheduler
