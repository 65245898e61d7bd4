-- What differs between the server lines (2.0 file-system driver, 2.3 Rivet Engine) and
-- the wire rules both share: keys, URLs, error bodies, retry classes. Every per-version
-- switch of the library lives here (protocol.md §3.5).
local core = require("rivet.core")
local errors = require("rivet.errors")
local is_integer = require("rivet.compat").is_integer

local M = {}

-- Per-line profiles. `tagged` means user values inside CBOR/BARE use the JSON compat
-- tags ($BigInt, $Uint8Array, ...): 2.3 applies them inside CBOR, 2.0 does not. JSON is
-- always tagged.
local LINES = {
  ["2.3"] = { line = "2.3", tagged_cbor = true, bare_version = 4 },
  ["2.0"] = { line = "2.0", tagged_cbor = false, bare_version = 2 },
}

--- Profile from a decoded GET /metadata answer. The version decides (a 2.3 RivetKit
--- runner that redirects clients to its engine says runtime "rivetkit" too); the
--- runtime only when there is no version.
function M.profile(meta)
  local version = type(meta) == "table" and meta.version
  local runtime = type(meta) == "table" and meta.runtime
  local line
  local maj, minor
  if type(version) == "string" then maj, minor = version:match("^(%d+)%.(%d+)") end
  if maj then
    line = (tonumber(maj) == 2 and tonumber(minor) < 1) and "2.0" or "2.3"
  elseif runtime == "engine" then
    line = "2.3"
  elseif runtime == "rivetkit" then
    line = "2.0"
  else
    return nil
  end
  local p = setmetatable({ version = type(version) == "string" and version or "?" }, { __index = LINES[line] })
  return p
end

--- The profile assumed without a /metadata look-up (disableMetadataLookup): the current
--- line, as the official 2.3 client assumes.
function M.assumed_profile()
  return setmetatable({ version = "?", assumed = true }, { __index = LINES["2.3"] })
end

--- Whether user values in `encoding` use compat tags on this server.
function M.tagged(profile, encoding)
  return encoding == "json" or profile.tagged_cbor
end

--------------------------------------------------------------------------------------
-- URLs and keys
--------------------------------------------------------------------------------------

local function pct_char(c) return string.format("%%%02X", c:byte()) end

--- Percent-encodes every byte outside A-Z a-z 0-9 - _ . ~ (safe for path segments,
--- query values and WebSocket subprotocol tokens alike).
function M.pct(s)
  return (s:gsub("[^%w%-_%.~]", pct_char))
end

--- pct() for one URL path segment: also "." and ".." (which URL handling would remove,
--- reaching another route) are percent-encoded.
function M.seg(s)
  s = M.pct(s)
  if s == "." or s == ".." then s = s:gsub("%.", "%%2E") end
  return s
end

--- Raises a plain error (naming `what`, never showing the value: it may be a secret)
--- when s has a control character (CR, LF, NUL, ...) that would end or split a header.
function M.check_header_value(s, what, level)
  if s:find("[%c]") then
    error(what .. " may not contain control characters (CR, LF, NUL, ...)", level + 1)
  end
end

--- Normalizes a user key (string or array of strings, nil = empty) to an array; raises a
--- plain error naming the problem.
function M.check_key(key, level)
  if key == nil then return {} end
  if type(key) == "string" then return { key } end
  if type(key) ~= "table" then
    error("actor key must be a string or an array of strings, got " .. type(key), level + 1)
  end
  local out, n = {}, #key
  for k in pairs(key) do
    if not is_integer(k) or k < 1 or k > n then
      error("actor key must be an array of strings (found key " .. tostring(k) .. ")", level + 1)
    end
  end
  for i = 1, n do
    local part = key[i]
    if type(part) ~= "string" then
      error("actor key part " .. i .. " must be a string, got " .. type(part), level + 1)
    end
    out[i] = part
  end
  return out
end

--- Serializes a key array for the REST API (protocol.md §5.5).
function M.serialize_key(parts)
  if #parts == 0 then return "/" end
  local esc = {}
  for i = 1, #parts do
    local p = parts[i]
    if p == "" then
      esc[i] = "\\0"
    else
      esc[i] = p:gsub("\\", "\\\\"):gsub("/", "\\/")
    end
  end
  return table.concat(esc, "/")
end

--------------------------------------------------------------------------------------
-- Errors
--------------------------------------------------------------------------------------

-- Errors after which a key-based handle should look its actor up again.
local STALE = {
  ["actor.not_found"] = true, ["actor.starting"] = true, ["actor.stopping"] = true,
  ["actor.not_configured"] = true,
}
-- Transient lifecycle/gateway errors: try the same target again after a short pause.
-- Only states in which the request cannot have reached the actor: an action must never
-- run twice because the library sent it again. Not here, though the official client
-- retries some: guard.tunnel_request_aborted / tunnel_message_timeout /
-- tunnel_response_closed / gateway_response_start_timeout, ups.request_timeout and
-- actor.dropped_reply, all of which can come after the actor received the request
-- (the soak counted actions run twice while they were retried).
local LIFECYCLE = {
  ["actor.restarting"] = true, ["actor.stopped"] = true, ["actor.not_ready"] = true,
  ["actor.destroying"] = true, ["actor.overloaded"] = true, ["actor.starting"] = true,
  ["actor.stopping"] = true,
  ["ws.going_away"] = true, ["guard.service_unavailable"] = true,
  ["guard.actor_wake_retries_exceeded"] = true, ["guard.actor_stopped_while_waiting"] = true,
  ["guard.actor_ready_timeout"] = true, ["guard.actor_runner_failed"] = true,
  ["guard.websocket_garbage_collected"] = true,
  ["pegboard.route_wake_signal_timeout"] = true,
}

local function name_of(e) return (e.group or "") .. "." .. (e.code or "") end

--- The actor behind a key-based handle may be gone: resolve again, then retry.
function M.is_stale(e)
  local n = name_of(e)
  return STALE[n] or n:sub(1, 16) == "actor.destroyed_" or false
end

--- A transient server state: retry the same request after a short backoff.
function M.is_lifecycle(e)
  local n = name_of(e)
  return LIFECYCLE[n] or n:sub(1, 16) == "actor.destroyed_" or false
end

local function actor_of(a)
  if type(a) ~= "table" then return nil end
  return { actorId = a.actorId, generation = a.generation, key = a.key ~= core.null and a.key or nil }
end

--- ActorError from a decoded structured error (HTTP body, Error frame).
function M.error_from(t, status, headers)
  local md = t.metadata
  if md == core.null then md = nil end
  return errors.new(t.group, t.code, type(t.message) == "string" and t.message or (t.group .. "." .. t.code), {
    metadata = md,
    actor = actor_of(t.actor),
    status = status,
    rayId = headers and headers["x-rivet-ray-id"] or nil,
  })
end

local function snippet(body)
  if #body > 200 then body = body:sub(1, 200) .. "..." end
  return (body:gsub("[%c\128-\255]", "?"))
end

--- ActorError for a failed HTTP response of a gateway route (actions, raw requests).
--- Engine/guard errors are JSON whatever we asked for; actor errors come in the request
--- encoding (and 2.0 labels them text/plain), so the content type decides (§8.1).
function M.http_error(res, encoding, tagged)
  local ctype = res.headers and res.headers["content-type"] or ""
  local body = res.body or ""
  local t
  if ctype:find("application/json", 1, true) then
    local v = core.json_decode(body, true)
    if type(v) == "table" and type(v.group) == "string" and type(v.code) == "string" then t = v end
  elseif #body > 0 then
    t = core.decode_http_error(encoding, body, tagged)
    if not t and encoding ~= "json" then
      -- some routes answer JSON even for binary encodings
      local v = core.json_decode(body, true)
      if type(v) == "table" and type(v.group) == "string" and type(v.code) == "string" then t = v end
    end
  end
  if t then return M.error_from(t, res.status, res.headers) end
  local guard = res.headers and res.headers["x-rivet-error"]
  if guard then
    local g, c = guard:match("^([^.]+)%.(.+)$")
    if g then
      return errors.new(g, c, g .. "." .. c, { status = res.status })
    end
  end
  return errors.new("http", "status_" .. tostring(res.status),
    "HTTP " .. tostring(res.status) .. (#body > 0 and (": " .. snippet(body)) or ""),
    { status = res.status })
end

--- ActorError for a failed REST (manager API) call: 2.3 and 2.0's duplicate_key are
--- {group, code, message}; 2.0 validation errors are {success=false, error={...}} or
--- {error="..."}.
function M.rest_error(res)
  local body = res.body or ""
  local v = core.json_decode(body, false)
  if type(v) == "table" then
    if type(v.group) == "string" and type(v.code) == "string" then
      return M.error_from(v, res.status, res.headers)
    end
    local e = v.error
    local msg = type(e) == "string" and e or (type(e) == "table" and type(e.message) == "string" and e.message)
    if msg then
      return errors.new("api", "bad_request", msg, { status = res.status })
    end
  end
  return errors.new("http", "status_" .. tostring(res.status),
    "HTTP " .. tostring(res.status) .. (#body > 0 and (": " .. snippet(body)) or ""), { status = res.status })
end

local TRANSPORT_MESSAGES = {
  timeout = "the request timed out",
  connection_refused = "could not connect to the server",
  dns_failed = "could not resolve the server's host name",
  tls_failed = "TLS handshake or certificate verification failed",
  bad_url = "the endpoint URL is not valid",
  connection_lost = "the connection was lost before the response was complete",
  response_too_large = "the response was larger than the client accepts",
  malformed_response = "the server's answer is not valid HTTP",
}

--- ActorError for a request that failed below HTTP (curl's error kind + message).
function M.transport_error(res)
  local kind = res.err
  local msg = TRANSPORT_MESSAGES[kind] or "transport error"
  return errors.new("client", kind, msg .. " (" .. tostring(res.message) .. ")")
end

return M
