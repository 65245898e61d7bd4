---@meta _
-- LuaLS definitions: the client and its actor accessors (docs/api.md).

---@alias rivet.Encoding "bare"|"cbor"|"json"

---@class rivet.ClientOptions
---@field endpoint? string the endpoint, in the one-table form `rivet.client(opts)`
---@field encoding? rivet.Encoding how actions, outputs and events travel (default "bare")
---@field timeout? number seconds any call may wait (default 30)
---@field token? string Rivet token (default `RIVET_TOKEN`)
---@field namespace? string (default `RIVET_NAMESPACE`, else "default")
---@field pool? string runner pool for created actors (default `RIVET_POOL`, else "default")
---@field poolName? string the official client's name for `pool`
---@field headers? table<string, string|number> extra HTTP headers on every request
---@field ca_file? string PEM file of CAs to trust for https:// and wss://
---@field insecure? boolean true turns certificate verification off (tests only)
---@field max_response? number the most bytes of a response body held (default 64 MiB)
---@field disableMetadataLookup? boolean true: no GET /metadata (a 2.3 engine is assumed)
---@field transport? "native"|"resty" default "resty" inside nginx, else "native"
---@field schema? table per-actor schema written by rivet-schema (actions are checked before sending)

---@class rivet.ServerInfo
---@field line "2.3"|"2.0"
---@field version string e.g. "2.3.19"

---@class rivet.PollFd
---@field fd integer
---@field events "r"|"w"|"rw"

---A client: `client.<name>` (or `client:actor(name)`) is the accessor of actor `name`.
---@class rivet.Client
---@field [string] rivet.ActorAccessor
local Client = {}

---The accessor of actor `name`, for names that are not Lua identifiers or that clash
---with client methods.
---@param name string
---@return rivet.ActorAccessor
function Client:actor(name) end

---Runs `fn(...)` in a task: calls inside it yield instead of blocking.
---@param fn fun(...): any
---@param ... any
---@return rivet.Future
function Client:spawn(fn, ...) end

---One turn of the loop: ready I/O, finished calls, events, resumed tasks.
---@param timeout? number the most seconds to wait (default 0: never waits)
function Client:poll(timeout) end

---Turns the loop until every spawned task has finished (or `client:stop()`).
---@param timeout? number seconds; past them it raises client.timeout
function Client:run(timeout) end

---Makes `run` return after the current step.
function Client:stop() end

---Waits without blocking other tasks.
---@param seconds number
function Client:sleep(seconds) end

---The server's line and version, from GET /metadata (fetched once).
---@return rivet.ServerInfo
function Client:server() end

---The descriptors a host loop watches: one, the same while the client is open.
---@return rivet.PollFd[]
function Client:pollfds() end

---Seconds until `poll` has timed work to do; nil when there is none. Ask again after each `poll(0)`.
---@return number?
function Client:timeout() end

---Closes every connection; later calls fail with client.disposed.
function Client:dispose() end

---The same as `dispose` (also `local client <close> = rivet.client(...)`).
function Client:close() end

-- An actor key: "k" and {"k"} are the same key; nil is the empty key.
---@alias rivet.Key string|string[]|nil

-- Connection params: a value, or a function called before every request or connection.
---@alias rivet.Params any|fun(): any

---@class rivet.GetOptions
---@field params? rivet.Params
---@field getParams? fun(): any the official name of `params` as a function
---@field timeout? number seconds, overrides the client's

---@class rivet.CreateOptions: rivet.GetOptions
---@field input? any the new actor's input
---@field region? string where the new actor is created
---@field pool? string the runner pool of a new actor (default: the client's)
---@field poolName? string the official name of `pool`

---getOrCreate's options: create's, and the official client's names of input and region.
---@class rivet.GetOrCreateOptions: rivet.CreateOptions
---@field createWithInput? any the official name of `input`
---@field createInRegion? string the official name of `region`

---`client.<name>`: finds or creates actors of one name.
---@class rivet.ActorAccessor
local ActorAccessor = {}

---A handle to an existing actor; nothing is sent until it is used.
---@param key? rivet.Key
---@param opts? rivet.GetOptions
---@return rivet.Handle
function ActorAccessor:get(key, opts) end

---A handle that creates the actor on first use if it does not exist.
---@param key? rivet.Key
---@param opts? rivet.GetOrCreateOptions
---@return rivet.Handle
function ActorAccessor:getOrCreate(key, opts) end

---Creates the actor now; actor.duplicate_key if the key is taken.
---@param key? rivet.Key
---@param opts? rivet.CreateOptions
---@return rivet.Handle
function ActorAccessor:create(key, opts) end

---A handle to the actor with this id.
---@param id string
---@param opts? rivet.GetOptions
---@return rivet.Handle
function ActorAccessor:getForId(id, opts) end
