-- Calls from phases where nginx has no cosockets (init, init_worker, set, header and body
-- filters, log): each must fail at once with api.md's clear error, never hang or crash.
-- A timer started in init_worker has cosockets, so its call must work.
local rivet = require("rivet")
local clients = require("clients")

local M = {}

local dict = ngx.shared.rivet_spec
local load_time_client -- made in init_by_lua, in the master, before the workers fork

local function probe(client)
  return client.counter:getOrCreate("openresty-phase-probe"):getCount()
end

-- "ok <value>" or the error's text.
local function attempt_with(client)
  local ok, res = pcall(probe, client)
  if ok then return "ok " .. tostring(res) end
  return tostring(res)
end

--- Tries a call with the worker's client; returns what happened as text.
function M.attempt(phase)
  local res = attempt_with(clients.get({}))
  dict:set("phase:" .. phase, res)
  return res
end

--- Tries a call and keeps the outcome for a later request (phases that cannot reply).
function M.record(phase) M.attempt(phase) end

--- init_by_lua: a module-level client made at load time, and a call with it.
function M.init()
  load_time_client = rivet.client(clients.endpoint(), { timeout = 15 })
  dict:set("phase:init", attempt_with(load_time_client))
end

--- init_worker_by_lua: a call here fails; one from a timer started here works.
function M.init_worker()
  dict:set("phase:init_worker", attempt_with(clients.get({})))
  local ok, err = ngx.timer.at(0, function(premature)
    if premature then return end
    dict:set("phase:timer", attempt_with(clients.get({})))
  end)
  if not ok then dict:set("phase:timer", "timer not started: " .. tostring(err)) end
end

--- What the phases recorded.
function M.recorded()
  local out = {}
  for _, p in ipairs({ "init", "init_worker", "timer", "set", "header_filter", "body_filter", "log" }) do
    out[p] = dict:get("phase:" .. p)
  end
  return out
end

--- A call in a request with the client made at load time.
function M.load_time_client()
  return { value = probe(load_time_client), phase = ngx.get_phase() }
end

return M
