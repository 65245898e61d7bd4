-- The calls of the network-side fuzz (docs/reliability.md) against spec/fake/fuzz_server.mjs,
-- shared by spec/network_fuzz_spec.lua (the native transport) and spec/nginx/netfuzz.lua
-- (the cosocket transport inside nginx, spec/openresty_netfuzz_spec.lua): the same kinds
-- of call, the same ids, so the same seed draws the same answers for both.
local rivet = require("rivet")
local now = require("rivet.core").now

local M = {}

M.BATCH = 25    -- calls in flight at once
M.TIMEOUT = 1   -- each call's deadline (s)
M.SLACK = 4     -- generous: a call must have ended by TIMEOUT + SLACK
M.ENCODINGS = { "bare", "cbor", "json" }

local TIMEOUT = M.TIMEOUT

-- One call of kind k on actor id `id`; returns a short description of a value, or
-- raises what the library raised.
local KINDS = {
  action = function(c, id) return c.a:getForId(id):work(1, "x") end,
  resolve = function(c, id) return c.a:getOrCreate(id):resolve() end,
  fetch = function(c, id)
    local res = c.a:getForId(id):fetch("/p", { method = "POST", body = "hi" })
    local _, _, _ = res.status, res.headers, res.body
    local ok, v = pcall(res.json, res)
    if not ok and not rivet.isActorError(v) then error(v, 0) end
    return res.status
  end,
  stream = function(c, id)
    local res = c.a:getForId(id):fetch("/s", { stream = true })
    local n = 0
    while true do
      local piece, err = res:read(TIMEOUT)
      if err then error(err, 0) end
      if piece == nil then break end
      n = n + #piece
    end
    return n
  end,
  connection = function(c, id)
    local conn = c.a:getForId(id):connect()
    conn:onError(function() end)
    local ok, v = pcall(conn.work, conn, 1)
    conn:dispose()
    if not ok then error(v, 0) end
    return v
  end,
  websocket = function(c, id)
    local ws = c.a:getForId(id):websocket("/w")
    local got = 0
    while true do
      local data, err = ws:receive(TIMEOUT)
      if data == nil then
        ws:close()
        if err == nil or rivet.isActorError(err) then return got end
        error(err, 0)
      end
      got = got + 1
    end
  end,
}
local KIND_NAMES = { "action", "resolve", "fetch", "stream", "connection", "websocket" }

--- What pass i (0-based call number) uses: server 0 or 1 (batches alternate) and encoding.
function M.plan(i)
  local s = math.floor(i / M.BATCH) % 2
  return s, M.ENCODINGS[math.floor(i / (2 * M.BATCH)) % 3 + 1]
end

--- Runs calls first+1 .. first+n on client c (all at once, as tasks) and waits for them
--- until TIMEOUT + SLACK + 5 s after the start. Returns {done =, outcomes = {key =
--- count}, samples = {key = message}, bad = {plain Lua errors}, late = {...}, hung =
--- {calls that never ended}}. `label`: what names the server and encoding in reports.
function M.batch(c, first, n, label)
  local rec = { done = 0, outcomes = {}, samples = {}, bad = {}, late = {}, hung = {} }
  local calls = {}
  for j = 1, n do
    local k = KIND_NAMES[(first + j) % #KIND_NAMES + 1]
    local id = "fz-" .. (first + j)
    local call = ("%s %s (%s)"):format(k, id, label)
    local fut = c:spawn(function()
      local t0 = now()
      local ok, v = pcall(KINDS[k], c, id)
      local dt = now() - t0
      local key
      if ok then
        key = "ok"
      elseif rivet.isActorError(v) then
        -- the client's own codes one by one; what the server named, as one class
        key = (v.group == "client" or v.group == "http") and (v.group .. "." .. v.code) or "server-sent code"
      else
        key = "plain Lua error"
        rec.bad[#rec.bad + 1] = call .. ": " .. tostring(v)
      end
      rec.outcomes[key] = (rec.outcomes[key] or 0) + 1
      if not ok and not rec.samples[key] then rec.samples[key] = k .. ": " .. tostring(v) end
      if dt > TIMEOUT + M.SLACK then rec.late[#rec.late + 1] = ("%s took %.1f s"):format(call, dt) end
      rec.done = rec.done + 1
    end)
    calls[#calls + 1] = { fut = fut, name = call }
  end
  -- every call has its deadline: the batch must end; what has not is reported
  local limit = now() + TIMEOUT + M.SLACK + 5
  for _, x in ipairs(calls) do
    if not x.fut.done then x.fut:result(math.max(0.001, limit - now())) end
    if not x.fut.done then rec.hung[#rec.hung + 1] = x.name end
  end
  return rec
end

--- A proper answer gets through on c after a batch (a pooled connection that the fuzz
--- server left with junk after a complete answer may fail one call, typed, before it is
--- dropped: hence up to three tries). Returns true or false, the errors of failed tries
--- (strings), and whether one raised something other than an ActorError.
function M.sane(c, i)
  local errs = {}
  for try = 1, 3 do
    local ok, v = pcall(function() return c.a:getForId("sane-" .. i .. "-" .. try):work() end)
    if ok and v == 1 then return true, errs end
    errs[#errs + 1] = tostring(v)
    if not rivet.isActorError(v) then return false, errs, true end
  end
  return false, errs
end

--- Adds batch record rec into the running total (same shape).
function M.merge(total, rec)
  total.done = total.done + rec.done
  for k, v in pairs(rec.outcomes) do total.outcomes[k] = (total.outcomes[k] or 0) + v end
  for k, v in pairs(rec.samples) do total.samples[k] = total.samples[k] or v end
  for _, f in ipairs({ "bad", "late", "hung" }) do
    for _, x in ipairs(rec[f]) do total[f][#total[f] + 1] = x end
  end
end

--- An empty running total.
function M.total() return { done = 0, outcomes = {}, samples = {}, bad = {}, late = {}, hung = {} } end

--- "# network fuzz ..." lines: counts per outcome; with verbose, one message each.
function M.report(title, total, extra, verbose)
  local keys = {}
  for k, v in pairs(total.outcomes) do keys[#keys + 1] = k .. " " .. v end
  table.sort(keys)
  print("# " .. title .. ": " .. total.done .. " calls; " .. table.concat(keys, ", ") .. (extra or ""))
  if verbose then
    for _, k in ipairs(keys) do
      local code = k:match("^(.-) %d+$")
      local s = total.samples[code]
      if s then print("#   " .. code .. ": " .. s:gsub("[%c]", "?"):sub(1, 200)) end
    end
  end
end

return M
