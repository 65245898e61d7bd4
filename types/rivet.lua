---@meta rivet
-- LuaLS definitions of require("rivet") (docs/api.md). Editors find them through
-- workspace.library (docs/editor.md); nothing here runs.

---@class rivet
---@field null rivet.Null the null value (JSON null, CBOR null); also how a null inside a table arrives
---@field ActorError table the metatable of every error a failed call raises (rivet.Error)
---@field _VERSION string
local rivet = {}

---@class rivet.Null

---Creates a client; nothing is sent until the first call. `rivet.client(opts)` with
---`opts.endpoint` is the same as `rivet.client(opts.endpoint, opts)`.
---@param endpoint? string `http://` or `https://` URL; default `RIVET_ENDPOINT`, else `http://127.0.0.1:6420`
---@param opts? rivet.ClientOptions
---@return rivet.Client
---@overload fun(opts: rivet.ClientOptions): rivet.Client
function rivet.client(endpoint, opts) end

---Waits for every future; raises the first error after all have settled.
---@param futures rivet.Future[]
---@return any[] results every value in order (nil where a future resolved to nothing)
---@return integer n how many
function rivet.all(futures) end

---Marks `t` (default a new table) as an array: an empty one encodes as `[]`.
---@generic T: table
---@param t? T
---@return T
function rivet.array(t) end

---Marks `t` (default a new table) as a map: an empty or array-like one encodes as `{}`.
---@generic T: table
---@param t? T
---@return T
function rivet.map(t) end

---Wraps a string so it travels as bytes (a JavaScript `Uint8Array`).
---@param s string
---@return rivet.Bytes
function rivet.bytes(s) end

---@class rivet.Bytes

---True when `v` is an array-marked table (decoded arrays are).
---@param v any
---@return boolean
function rivet.isArray(v) end

---True when `e` is a rivet.ActorError, optionally of kind `"group"` or `"group.code"`.
---@param e any
---@param name? string
---@return boolean
function rivet.isActorError(e, name) end

---Receives the library's log messages (connection lifecycle, retries); nil: silent (the default).
---@param fn? fun(level: "debug"|"info"|"warn"|"error", message: string, fields: table?)
function rivet.setLogger(fn) end

---A hosted client's attachment to a luv or cqueues loop (docs/loop.md).
---@class rivet.Host
local Host = {}
---Detaches the client from the loop (client:dispose() does too).
function Host:close() end

---Runs the client's loop on luv's (libuv's) loop: watches `client:pollfds()`, arms a timer
---for `client:timeout()` and calls `client:poll(0)`; uv.run() goes on while the client has work.
---@param client rivet.Client
---@param uv? table the luv module (default: require("luv"))
---@return rivet.Host
function rivet.luv(client, uv) end

---Runs the client's loop inside a cqueues controller; calls in its coroutines yield to cqueues.
---@param client rivet.Client
---@param cq? userdata a cqueues controller (default: cqueues.running())
---@return rivet.Host
function rivet.cqueues(client, cq) end

return rivet
