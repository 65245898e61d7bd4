-- Schemas (docs/schema.md): rivet.client(url, { schema = require("my_schema") }) checks
-- every call against the module rivet-schema wrote, before anything is sent: the actor's
-- name, the action's name and arguments, the event name of conn:on / conn:once, the
-- queue name and message of send. A mistake is a plain Lua error naming the actor, the
-- action, the argument and the expected type, with a suggestion for a misspelt name.
--
-- Everything is compiled when the client is created; a call that passes allocates
-- nothing. The checks live in the shared Lua layer, so they work the same on every
-- transport (native and OpenResty).
local core = require("rivet.core")
local typecheck = require("rivet.typecheck")
local suggest = require("rivet.suggest")

local null = core.null
local select, type = select, type

local M = {}

local Actor = {}
Actor.__index = Actor

-- The library's own directory: errors point at the first caller outside it (a call
-- reaches a check through one or more of its functions, some by tail calls).
local LIB_DIR = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or false

local function raise(msg)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then level = 0; break end
    local src = info.source
    if info.what ~= "C" and not (LIB_DIR and src:sub(1, #LIB_DIR + 1) == "@" .. LIB_DIR) then break end
    level = level + 1
  end
  error(msg, level)
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function plural(n, word) return n .. " " .. word .. (n == 1 and "" or "s") end

--------------------------------------------------------------------------------------
-- Arguments
--------------------------------------------------------------------------------------

-- "takes 1 argument (x), got 2"
local function too_many(params, n)
  local names, min = {}, 0
  for i, p in ipairs(params) do
    names[i] = p.name .. (p.optional and "?" or "")
    if not p.optional then min = i end
  end
  if #params == 0 then return "takes no arguments, got " .. n end
  local count = (min == #params and "" or "at most ") .. plural(#params, "argument")
  return "takes " .. count .. " (" .. table.concat(names, ", ") .. "), got " .. n
end

-- Extra arguments are fine when they are nil (they travel as nulls JavaScript ignores).
local function extras_set(first, n, ...)
  for i = first, n do
    if select(i, ...) ~= nil then return true end
  end
  return false
end

-- Checks parameter number i: returns nothing, or the message.
local function param_checker(i, p, check)
  local name, optional = p.name, p.optional == true
  return function(v, n)
    if v == nil or v == null then
      if optional then return end
      local m = check(v)
      if not m then return end
      if v == nil and i > n then m = m:gsub("got nil$", "got no value") end
      return "argument #" .. i .. " (" .. name .. ") " .. m
    end
    local m, path = check(v)
    if m then return "argument #" .. i .. " (" .. name .. (path or "") .. ") " .. m end
  end
end

-- The arguments of one action: function(n, ...) -> nothing, or the message. Up to four
-- parameters (and no rest parameter) get a function with fixed parameters, which LuaJIT
-- compiles; the others walk `...` with select.
local function args_checker(params, ctx, where)
  local fixed, rest = {}, nil
  for i, p in ipairs(params) do
    if type(p) ~= "table" or type(p.name) ~= "string" then
      ctx.fail(where .. ".params[" .. i .. "]: expected { name = ..., type = ... }")
    end
    local check = typecheck.compile(p.type, ctx, where .. ".params[" .. i .. "].type")
    if p.rest then
      if i ~= #params then
        ctx.fail(where .. ".params[" .. i .. "]: only the last parameter can be a rest parameter")
      end
      rest = { name = p.name, check = check }
    else
      fixed[i] = param_checker(i, p, check)
    end
  end
  local np = #fixed
  local function over(n, ...) -- ... are the arguments after the np fixed ones
    if not rest and n > np and extras_set(1, n - np, ...) then return too_many(params, n) end
  end
  if rest then
    local rname, rcheck = rest.name, rest.check
    return function(n, ...)
      for i = 1, np do
        local m = fixed[i]((select(i, ...)), n)
        if m then return m end
      end
      for i = np + 1, n do
        local m, path = rcheck((select(i, ...)))
        if m then return "argument #" .. i .. " (" .. rname .. "[" .. (i - np) .. "]" .. (path or "") .. ") " .. m end
      end
    end
  end
  local p1, p2, p3, p4 = fixed[1], fixed[2], fixed[3], fixed[4]
  if np == 0 then
    return function(n, ...) if n > 0 then return over(n, ...) end end
  elseif np == 1 then
    return function(n, a1, ...)
      if n > 1 then local m = over(n, ...); if m then return m end end
      return p1(a1, n)
    end
  elseif np == 2 then
    return function(n, a1, a2, ...)
      if n > 2 then local m = over(n, ...); if m then return m end end
      local m = p1(a1, n)
      if m then return m end
      return p2(a2, n)
    end
  elseif np == 3 then
    return function(n, a1, a2, a3, ...)
      if n > 3 then local m = over(n, ...); if m then return m end end
      local m = p1(a1, n) or p2(a2, n)
      if m then return m end
      return p3(a3, n)
    end
  elseif np == 4 then
    return function(n, a1, a2, a3, a4, ...)
      if n > 4 then local m = over(n, ...); if m then return m end end
      local m = p1(a1, n) or p2(a2, n) or p3(a3, n)
      if m then return m end
      return p4(a4, n)
    end
  end
  return function(n, ...)
    if n > np and extras_set(np + 1, n, ...) then return too_many(params, n) end
    for i = 1, np do
      local m = fixed[i]((select(i, ...)), n)
      if m then return m end
    end
  end
end

--------------------------------------------------------------------------------------
-- Actors
--------------------------------------------------------------------------------------

--- Checks a call of action `name` with the given arguments; raises a plain Lua error
--- ("counter.increment: argument #1 (x) must be a number, got string").
function Actor:check(name, ...)
  local a = self.actions[name]
  if not a then
    raise(self.name .. " has no action '" .. tostring(name) .. "'"
      .. suggest.hint(name, self.action_names, "its actions", "it has no actions"))
  end
  local m = a(select("#", ...), ...)
  if m then raise(self.name .. "." .. name .. ": " .. m) end
end

--- Checks an event name of conn:on / conn:once.
function Actor:event(name)
  if self.open_events or self.events[name] then return end
  raise(self.name .. " has no event '" .. tostring(name) .. "'"
    .. suggest.hint(name, self.event_names, "its events", "it sends no events"))
end

--- Checks the queue name and the message of send(name, body).
function Actor:queue(name, body)
  local q = self.queues[name]
  if not q then
    raise(self.name .. " has no queue '" .. tostring(name) .. "'"
      .. suggest.hint(name, self.queue_names, "its queues", "it has no queues"))
  end
  local m, path = q(body)
  if m then raise(self.name .. "." .. name .. ": the message (body" .. (path or "") .. ") " .. m) end
end

local function compile_actor(name, a, ctx)
  local where = "actors." .. name
  if type(a) ~= "table" then ctx.fail(where .. ": expected a table") end
  local self = setmetatable({ name = name, actions = {}, events = {}, queues = {} }, Actor)
  if a.actions ~= nil and type(a.actions) ~= "table" then ctx.fail(where .. ".actions: expected a table") end
  for aname, act in pairs(a.actions or {}) do
    local w = where .. ".actions." .. tostring(aname)
    if type(aname) ~= "string" or type(act) ~= "table" then ctx.fail(w .. ": expected name = { params = {...} }") end
    if act.params ~= nil and type(act.params) ~= "table" then ctx.fail(w .. ".params: expected an array") end
    self.actions[aname] = args_checker(act.params or {}, ctx, w)
  end
  if a.events ~= nil and type(a.events) ~= "table" then ctx.fail(where .. ".events: expected a table") end
  for ename in pairs(a.events or {}) do
    if type(ename) ~= "string" then ctx.fail(where .. ".events: the keys must be event names") end
    self.events[ename] = true
  end
  self.open_events = a.openEvents == true
  if a.queues ~= nil and type(a.queues) ~= "table" then ctx.fail(where .. ".queues: expected a table") end
  for qname, q in pairs(a.queues or {}) do
    local w = where .. ".queues." .. tostring(qname)
    if type(qname) ~= "string" or type(q) ~= "table" then ctx.fail(w .. ": expected name = { message = type }") end
    self.queues[qname] = typecheck.compile(q.message == nil and "any" or q.message, ctx, w .. ".message")
  end
  self.action_names = sorted_keys(self.actions)
  self.event_names = sorted_keys(self.events)
  self.queue_names = sorted_keys(self.queues)
  return self
end

--------------------------------------------------------------------------------------
-- The module
--------------------------------------------------------------------------------------

local Schema = {}
Schema.__index = Schema

--- The checks of actor `name`; raises "no actor 'countr' in the schema (did you mean
--- 'counter'?)" for a name the schema does not have.
function Schema:actor(name)
  local a = self.actors[name]
  if a then return a end
  raise("no actor '" .. tostring(name) .. "' in the schema"
    .. suggest.hint(name, self.names, "its actors", "it has no actors"))
end

--- Compiles a schema module (what rivet-schema writes, docs/schema.md); a module that is
--- not one raises a plain Lua error naming what is wrong.
function M.compile(mod)
  local function fail(msg) raise("rivet.client: option 'schema': " .. msg) end
  if type(mod) ~= "table" then
    fail("expected the table of a schema module (require(\"my_schema\")), got " .. type(mod))
  end
  if mod.format ~= 1 then
    fail("not a schema module of format 1 (format = " .. tostring(mod.format) .. "): regenerate it with rivet-schema")
  end
  if type(mod.actors) ~= "table" then fail("the module has no actors table") end
  if mod.types ~= nil and type(mod.types) ~= "table" then fail("types must be a table") end
  local ctx = { named = mod.types or {}, refs = {}, fail = fail }
  local self = setmetatable({ actors = {} }, Schema)
  for name, a in pairs(mod.actors) do
    if type(name) ~= "string" then fail("the keys of actors must be actor names") end
    self.actors[name] = compile_actor(name, a, ctx)
  end
  -- types no action uses are checked too: a broken module fails here, not later
  for name in pairs(ctx.named) do
    if not ctx.refs[name] then typecheck.compile({ ref = name }, ctx, "types." .. tostring(name)) end
  end
  self.names = sorted_keys(self.actors)
  return self
end

return M
