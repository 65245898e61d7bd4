-- types/ (the LuaLS definitions editors use) against the library itself: every public
-- method and every option a call takes is declared, and everything declared exists.
-- Needs no server. What docs/api.md promises but the library does not have (yet) is
-- reported as pending by name (NOT_YET), anything else missing fails.
local rivet = require("rivet")

local FILES = {
  "types/rivet.lua", "types/rivet/client.lua", "types/rivet/handle.lua", "types/rivet/conn.lua",
  "types/rivet/future.lua", "types/rivet/errors.lua", "types/rivet/raw.lua",
}

-- Declared classes: name -> { fields = set, methods = set, parent = name | nil }.
local function parse(paths)
  local classes, current, var_of = {}, nil, {}
  for _, path in ipairs(paths) do
    local f = assert(io.open(path))
    for line in f:lines() do
      local name, parent = line:match("^%-%-%-@class ([%w_.]+):? ?([%w_.]*)")
      if name then
        current = { fields = {}, methods = {}, parent = parent ~= "" and parent or nil }
        classes[name] = current
        current.name = name
      elseif current and line:match("^%-%-%-@field") then
        local field = line:match("^%-%-%-@field ([%w_]+)")
        if field then current.fields[field] = true end
      elseif current and line:match("^local ([%w_]+) = {}") then
        var_of[line:match("^local ([%w_]+) = {}")] = current
        current = nil
      elseif not line:match("^%-%-%-") then
        current = nil
      end
      local var, method = line:match("^function ([%w_]+)[.:]([%w_]+)%(")
      if var then
        local c = assert(var_of[var], path .. ": function of an unknown table " .. var)
        c.methods[method] = true
      end
    end
    f:close()
  end
  return classes
end

local function fields_of(classes, name)
  local out, c = {}, classes[name]
  while c do
    for k in pairs(c.fields) do out[k] = true end
    c = c.parent and assert(classes[c.parent], "no class " .. c.parent)
  end
  return out
end

-- Promised by docs/api.md, not in the library: pending while missing, by class or call.
local SECOND_WAVE = "not in the library yet (docs/api.md, second wave)"
local NOT_YET = {
  ["rivet.client(url, opts)"] = { reason = SECOND_WAVE, schema = true },
}

-- What the library exports without a leading "_" but does not promise (docs/api.md).
local INTERNAL = {
  ["rivet.Connection"] = { pump = true },                                        -- the loop's source hook
  ["rivet.Future"] = { new = true, settle = true, resolve = true, reject = true }, -- the schedulers settle futures
  ["rivet.RawWebSocket"] = { dispose = true },                                   -- client:dispose() closes sockets
}

local client = rivet.client("http://127.0.0.1:1", { disableMetadataLookup = true, timeout = 1 })

local RUNTIME = {
  ["rivet"] = rivet,
  ["rivet.Client"] = require("rivet.client").methods,
  ["rivet.ActorAccessor"] = getmetatable(client:actor("x")),
  ["rivet.Handle"] = require("rivet.handle").methods,
  ["rivet.Connection"] = require("rivet.conn").methods,
  ["rivet.Future"] = require("rivet.future"),
  ["rivet.Error"] = rivet.ActorError,
  ["rivet.Response"] = require("rivet.raw").Response.__index,
  ["rivet.RawWebSocket"] = require("rivet.raw").WebSocket.__index,
}

-- The public functions of a method table; handles and connections also cache the
-- callers of actions already used (made in dispatch.lua): those are not methods.
local function public_functions(t)
  local out = {}
  for k, v in pairs(t) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" and type(v) == "function"
      and not debug.getinfo(v, "S").short_src:find("dispatch.lua", 1, true) then
      out[k] = true
    end
  end
  return out
end

-- The options a call takes, from its error for an unknown one ("... (valid: a, b)").
local function valid_options(call)
  local ok, err = pcall(call, { ["no such option"] = true })
  assert(not ok, "an unknown option was accepted")
  local list = assert(tostring(err):match("%(valid: ([^)]*)%)"), tostring(err))
  local set = {}
  for name in list:gmatch("[^, ]+") do set[name] = true end
  return set
end

-- True unless the call refuses `name` as an unknown option (other errors are about the
-- dummy value; aliases such as poolName are not in the "valid" list but are taken).
local function takes(call, name)
  local ok, err = pcall(call, { [name] = "5" })
  if ok then return true end
  return not tostring(err):find("unknown option '" .. name .. "'", 1, true)
end

local h = client.x:getForId("abc")
local OPTION_CALLS = {
  { "rivet.client(url, opts)", "rivet.ClientOptions", function(o)
    local c = rivet.client("http://127.0.0.1:1", o)
    c:dispose()
  end },
  { "accessor:get(key, opts)", "rivet.GetOptions", function(o) client.x:get("k", o) end },
  { "accessor:getForId(id, opts)", "rivet.GetOptions", function(o) client.x:getForId("abc", o) end },
  { "accessor:getOrCreate(key, opts)", "rivet.GetOrCreateOptions", function(o) client.x:getOrCreate("k", o) end },
  { "accessor:create(key, opts)", "rivet.CreateOptions", function(o) client.x:create("k", o) end },
  { "handle:connect(params, opts)", "rivet.ConnectOptions", function(o) h:connect(nil, o) end },
  { "handle:fetch(path, init)", "rivet.FetchInit", function(o) h:fetch("/", o) end },
  { "handle:fetch(request)", "rivet.Request", function(o) h:fetch(o) end },
  { "handle:websocket(path, protocols, opts)", "rivet.WebSocketOptions", function(o) h:websocket("/", nil, o) end },
  { "handle:send(name, body, opts)", "rivet.SendOptions", function(o) h:send("q", 1, o) end },
}

describe("types/ (LuaLS definitions)", function()
  teardown(function() client:dispose() end)

  it("every file is Lua that loads on this interpreter", function()
    for _, path in ipairs(FILES) do assert(loadfile(path)) end
  end)

  local classes = parse(FILES)

  for name, t in pairs(RUNTIME) do
    local declared = assert(classes[name], "types/ has no class " .. name).methods
    local runtime = public_functions(t)
    local internal, not_yet = INTERNAL[name] or {}, NOT_YET[name] or {}
    it(name .. " declares every public function of the library", function()
      local undeclared = {}
      for k in pairs(runtime) do
        if not declared[k] and not internal[k] then undeclared[#undeclared + 1] = k end
      end
      table.sort(undeclared)
      assert.are.same({}, undeclared)
    end)
    local missing, waiting = {}, {}
    for k in pairs(declared) do
      if not runtime[k] then
        if not_yet[k] then waiting[#waiting + 1] = k else missing[#missing + 1] = k end
      end
    end
    table.sort(missing)
    table.sort(waiting)
    it(name .. " declares nothing the library lacks", function()
      assert.are.same({}, missing)
    end)
    if #waiting > 0 then pending(name .. ": " .. not_yet.reason .. ": " .. table.concat(waiting, ", ")) end
  end

  for _, oc in ipairs(OPTION_CALLS) do
    local label, class, call = oc[1], oc[2], oc[3]
    local declared = fields_of(classes, class)
    local valid = valid_options(call)
    it(class .. " declares every option " .. label .. " takes", function()
      local undeclared = {}
      for k in pairs(valid) do if not declared[k] then undeclared[#undeclared + 1] = k end end
      table.sort(undeclared)
      assert.are.same({}, undeclared)
    end)
    local refused, waiting, not_yet = {}, {}, NOT_YET[label] or {}
    for k in pairs(declared) do
      if not valid[k] and not takes(call, k) then
        if not_yet[k] then waiting[#waiting + 1] = k else refused[#refused + 1] = k end
      end
    end
    table.sort(refused)
    table.sort(waiting)
    it(label .. " takes every option " .. class .. " declares", function()
      assert.are.same({}, refused)
    end)
    if #waiting > 0 then pending(label .. ": " .. not_yet.reason .. ": " .. table.concat(waiting, ", ")) end
  end
end)
