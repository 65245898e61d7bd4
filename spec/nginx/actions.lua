-- Stateless calls from request handlers: actions, errors, raw fetch, a slow action,
-- and the sequence counter the "worker is not blocked" spec reads its order from.
local clients = require("clients")

local M = {}

local dict = ngx.shared.rivet_spec

--- The next number of the worker-wide sequence (order of events across requests).
local function next_seq() return dict:incr("seq", 1, 0) end

--- increment twice (method and action forms), getCount, resolve, and a value round trip.
function M.stateless(args)
  local client = clients.get(args)
  local h = client.counter:getOrCreate(args.key)
  local a = h:increment(tonumber(args.by) or 1)
  local b = h:action("increment", tonumber(args.by) or 1)
  local echo = client.echo:getOrCreate(args.key)
  return {
    first = a,
    second = b,
    count = h:getCount(),
    id = h:resolve(),
    echoed = echo:echo({ text = "héllo", list = { 1, 2, 3 }, nested = { ok = true }, big = 2 ^ 40 }),
    types = echo:typesOf(1, "s", true, { 1 }, { a = 1 }),
    phase = ngx.get_phase(),
  }
end

--- The error an action raised, as the handler sees it.
function M.error(args)
  local client = clients.get(args)
  local h = client.errors:getOrCreate(args.key)
  local ok, err
  if args.which == "missing" then
    ok, err = pcall(h.action, h, "noSuchAction")
  else
    ok, err = pcall(h[args.which or "throwUser"], h)
  end
  if ok then return { raised = false } end
  local d = require("reply").describe_error(err)
  d.raised = true
  return d
end

--- A raw fetch to the actor's onRequest handler.
function M.fetch(args)
  local client = clients.get(args)
  local h = client.raw:getOrCreate(args.key)
  local res = h:fetch(args.path or "/echo?x=1", {
    method = args.method or "POST",
    headers = { ["x-spec"] = "openresty" },
    body = args.body or "hello from nginx",
  })
  return { status = res.status, ok = res.ok, content_type = res.headers["content-type"], body = res.body }
end

--- The slow actor's sleep(ms); records its start and end in the sequence.
function M.slow(args)
  local client = clients.get(args)
  local h = client.slow:getOrCreate(args.key)
  local tag = args.tag or "slow"
  dict:set("started:" .. tag, next_seq())
  local v = h:sleep(tonumber(args.ms) or 3000)
  local done = next_seq()
  dict:set("done:" .. tag, done)
  return { value = v, done = done }
end

--- A quick action; returns its place in the sequence once it completed.
function M.quick(args)
  local client = clients.get(args)
  local v = client.counter:getOrCreate(args.key):increment(1)
  return { value = v, seq = next_seq() }
end

--- What the sequence says about a slow call (nil until it happened).
function M.marks(args)
  local tag = args.tag or "slow"
  return { started = dict:get("started:" .. tag), done = dict:get("done:" .. tag), seq = dict:get("seq") }
end

--- A call that outlives its handle's timeout.
function M.timeout(args)
  local client = clients.get(args)
  local h = client.slow:getOrCreate(args.key, { timeout = tonumber(args.timeout) or 0.5 })
  local ok, err = pcall(h.sleep, h, tonumber(args.ms) or 3000)
  local d = ok and { raised = false } or require("reply").describe_error(err)
  d.after = h:sleep(1) -- the client is still usable
  return d
end

return M
