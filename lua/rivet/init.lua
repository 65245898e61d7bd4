--- lua-rivetkit: the Lua client for Rivet actors.
-- @module rivet
-- @usage local rivet = require("rivet")
-- local client = rivet.client("http://127.0.0.1:6420")
-- print(client.counter:getOrCreate("my-counter"):increment(5))
--
-- `rivet.null` is the null value (JSON null, CBOR null), `rivet.ActorError` the metatable
-- of every error a failed call raises (module rivet.errors), `rivet._VERSION` the version.
local core = require("rivet.core")
local errors = require("rivet.errors")
local Client = require("rivet.client")

local rivet = {
  _VERSION = "0.1.0",
  ActorError = errors.ActorError,
  null = core.null,
}

--- Creates a client. rivet.client([endpoint], [opts]); see docs/api.md for the options.
-- @tparam[opt] string|table endpoint `http://` or `https://` URL (default RIVET_ENDPOINT, else
-- http://127.0.0.1:6420), or the options with `endpoint` among them
-- @tparam[opt] table opts `encoding`, `timeout`, `token`, `namespace`, `pool`, `headers`, `ca_file`, `insecure`,
-- `max_response`, `disableMetadataLookup`, `transport`
-- @treturn rivet.Client
function rivet.client(endpoint, opts)
  return Client.new(endpoint, opts)
end

--- Marks t (default a new table) as an array, so an empty one encodes as [] not {}.
-- @tparam[opt] table t
-- @treturn table t
function rivet.array(t)
  if t ~= nil and type(t) ~= "table" then error("bad argument #1 to 'array': expected a table, got " .. type(t), 2) end
  return setmetatable(t or {}, core.array_mt)
end

--- Marks t (default a new table) as a map, so an array-like or empty one encodes as {}.
-- @tparam[opt] table t
-- @treturn table t
function rivet.map(t)
  if t ~= nil and type(t) ~= "table" then error("bad argument #1 to 'map': expected a table, got " .. type(t), 2) end
  return setmetatable(t or {}, core.map_mt)
end

--- Wraps a string so it travels as bytes (a JavaScript Uint8Array).
-- @tparam string s
-- @treturn table the wrapped string
function rivet.bytes(s)
  if type(s) ~= "string" then error("bad argument #1 to 'bytes': expected a string, got " .. type(s), 2) end
  return setmetatable({ s }, core.bytes_mt)
end

--- True when v is an array-marked table (decoded arrays are).
-- @param v any value
-- @treturn boolean
function rivet.isArray(v) return type(v) == "table" and getmetatable(v) == core.array_mt end

--- Installs fn(level, message, fields) to receive the library's log messages
--- (connection lifecycle, retries); rivet.setLogger(nil) makes it silent again (the default).
-- @tparam ?function fn fn(level, message, fields), or nil
function rivet.setLogger(fn)
  require("rivet.log").set(fn)
end

--- True when e is a rivet.ActorError (optionally of kind "group" or "group.code").
-- @function isActorError
-- @param e any value
-- @tparam[opt] string name "group" or "group.code"
-- @treturn boolean
rivet.isActorError = errors.is

--- Waits for every future in the array; returns their values in order (an array: nil
--- where a future resolved to nothing) and their count. Raises the first error (after
--- all have settled, so none is left running unobserved). The array has no extra keys,
--- so it can be passed back to an action as an array.
-- @tparam {rivet.Future,...} futures
-- @treturn table the values
-- @treturn integer how many
function rivet.all(futures)
  if type(futures) ~= "table" then error("bad argument #1 to 'all': expected an array of futures", 2) end
  local results, first_err = setmetatable({}, core.array_mt), nil
  for i = 1, #futures do
    local f = futures[i]
    if type(f) ~= "table" or type(f.await) ~= "function" then
      error("bad argument #1 to 'all': element " .. i .. " is not a future", 2)
    end
    local ok, v = f:result()
    if ok then results[i] = v elseif first_err == nil then first_err = v end
  end
  if first_err ~= nil then error(first_err, 0) end
  return results, #futures
end

-- What both host loop adapters need of the client they are given.
local function check_client(client, fname)
  if getmetatable(client) ~= Client then
    error("bad argument #1 to '" .. fname .. "': expected a rivet client, got " .. type(client), 3)
  end
  if not client._sched.pollfds then
    error(fname .. ": the client runs on the \"" .. client._transport_kind
      .. "\" transport, which has no descriptors", 3)
  end
  if client._host then error(fname .. ": this client is already attached to a loop", 3) end
end

--- Runs client inside a luv (libuv) program: rivet.luv(client [, uv]) (docs/loop.md).
function rivet.luv(client, uv)
  check_client(client, "rivet.luv")
  return require("rivet.luv").attach(client, uv)
end

--- Runs client inside a cqueues program: rivet.cqueues(client [, cq]) (docs/loop.md).
function rivet.cqueues(client, cq)
  check_client(client, "rivet.cqueues")
  return require("rivet.cqueues").attach(client, cq)
end

return rivet
