-- Schemas (docs/schema.md): a client made with { schema = ... } checks every call against
-- spec/actors/typed_schema.lua (written by rivet-schema from the TypeScript registry
-- spec/actors/typed.ts) before anything is sent. Against the real actors of that
-- registry on both server lines: valid calls reach them, refused calls never do (the
-- actor's own count of the actions that ran does not move, a fresh key's actor is never
-- created), and each refusal is a plain Lua error that names the actor, the action, the
-- argument and the expected type, pointing at the caller's line.
local rivet = require("rivet")
local env = require("spec.support.env")
local ints = require("spec.support.ints")

local SCHEMA = dofile("spec/actors/typed_schema.lua")

local function schema_client(enc) return env.client(enc or "bare", { schema = SCHEMA }) end

-- The message of the plain Lua error fn() raises, without its position, after checking
-- that the position is a line of this file, where the call was made. (fn must not end
-- in a tail call: `return h:f()` leaves no frame of fn for the error to point at.)
local function refused(fn)
  local e = env.catch(fn)
  assert.are.equal("string", type(e), "expected a plain Lua error, got " .. tostring(e))
  local where, msg = e:match("^(.-):%d+: (.*)$")
  assert.truthy(where and where:find("schema_spec.lua", 1, true), "the error does not point at the caller: " .. e)
  return msg
end

describe("schema checks (" .. env.server .. ")", function()
  local client
  before_each(function() client = schema_client() end)
  after_each(function() client:dispose() end)

  it("lets valid calls of every kind of parameter through, and they reach the actor", function()
    for _, enc in ipairs(env.encodings) do
      local c = schema_client(enc)
      local h = c.inventory:getOrCreate(env.key("valid-" .. enc))
      assert.are.equal(5, h:increment(5))                                    -- number
      assert.are.equal(6.5, h:increment(1.5))
      assert.are.equal(1, h:addItem({ name = "a", qty = 2 }))                -- object, optional field left out
      assert.are.equal(2, h:addItem({ name = "b", qty = 1, tags = { "x", "y" } }))
      assert.are.equal(3, h:addItem(rivet.map({ name = "c", qty = 0, tags = rivet.array({}) })))
      assert.are.equal("red", h:setColor("green"))                           -- literal union of strings
      assert.are.equal(30, h:setLevel(3))                                    -- literal union of numbers
      assert.are.equal(27, h:area({ kind = "circle", r = 3 }))               -- discriminated union
      assert.are.equal(16, h:area({ kind = "square", side = 4 }))
      assert.are.equal(6, h:sum({ 1, 2, 3 }))                                -- array
      assert.are.equal(0, h:sum(rivet.array({})))
      assert.are.equal(3, h:tally({ a = 1, b = 2 }))                         -- record
      assert.are.equal(0, h:tally({}))
      assert.are.equal(7, h:tally(rivet.map({ 3, 4 })))
      assert.are.equal(3, h:byteLength(rivet.bytes("abc")))                 -- bytes
      assert.are.equal(2, h:byteLength("\255\0"))
      assert.are.equal("number", h:bigType(5))                               -- bigint: integers
      assert.are.equal("number", h:bigType(2.0))
      assert.are.equal("bigint", h:bigType(ints.P(60)))
      assert.are.equal("a", h:label("a"))                                    -- optional parameter
      assert.are.equal("a", h:label("a", nil))
      assert.are.equal("ab", h:label("a", "b"))
      assert.are.equal("string", h:describe("x"))                            -- union
      assert.are.equal("number", h:describe(2))
      assert.are.equal("boolean", h:describe(false))
      assert.are.same({ "null", "none" }, h:anything(nil))                   -- unknown / any
      assert.are.same({ "object", "number" }, h:anything({ a = { 1 } }, 1))
      assert.are.same({ "string", "string" }, h:anything("x", "y"))
      assert.are.same({ "object", "none" }, h:anything(rivet.bytes("x")))
      assert.is_true(h:maybe(nil))                                           -- string | null
      assert.is_true(h:maybe(rivet.null))
      assert.is_false(h:maybe("x"))
      assert.are.equal(0, h:log("a"))                                        -- rest parameter
      assert.are.equal(3, h:log("a", 1, 2.5, 3))
      assert.are.equal(2, h:plot({ points = { { x = 1, y = 2 }, { x = 0, y = 0 } }, meta = { fast = true } }))
      assert.are.equal("1:b", h:pair({ 1, "b" }))                            -- tuple
      assert.are.equal(4,
        h:tree({ value = 1, children = { { value = 2 }, { value = 3, children = { { value = 4 } } } } }))
      assert.are.equal(1, h:wait(1))
      assert.are.equal(38, h:calls())                                        -- every call above ran once
      c:dispose()
    end
  end)

  it("checks the explicit and the async forms, and connection calls, the same way", function()
    local h = client.inventory:getOrCreate(env.key("forms"))
    assert.are.equal(2, h:action("increment", 2))
    assert.are.equal(3, h:async("increment", 1):await())
    assert.are.equal("inventory.increment: argument #1 (x) must be a number, got string",
      refused(function() h:action("increment", "5") end))
    assert.are.equal("inventory.increment: argument #1 (x) must be a number, got string",
      refused(function() h:async("increment", "5") end))
    local conn = h:connect()
    assert.are.equal(4, conn:increment(1))
    assert.are.equal(5, conn:async("increment", 1):await())
    assert.are.equal("inventory.increment: argument #1 (x) must be a number, got string",
      refused(function() conn:increment("5") end))
    assert.are.equal("inventory.increment: argument #1 (x) must be a number, got string",
      refused(function() conn:async("increment", "5") end))
    assert.are.equal("inventory has no action 'incremnt' (did you mean 'increment'?)",
      refused(function() conn:incremnt(1) end))
    assert.are.equal(4, conn:calls())
    conn:dispose()
  end)

  it("refuses a wrong argument before anything is sent: the actor's count does not move", function()
    local h = client.inventory:getOrCreate(env.key("wrong"))
    assert.are.equal(1, h:increment(1))
    local before = h:calls()
    local cases = {
      { function() h:increment("5") end, "inventory.increment: argument #1 (x) must be a number, got string" },
      { function() h:increment() end, "inventory.increment: argument #1 (x) must be a number, got no value" },
      { function() h:increment(nil) end, "inventory.increment: argument #1 (x) must be a number, got nil" },
      { function() h:increment(1, 2) end, "inventory.increment: takes 1 argument (x), got 2" },
      { function() h:label("a", "b", "c") end, "inventory.label: takes at most 2 arguments (text, suffix?), got 3" },
      { function() h:calls(1) end, "inventory.calls: takes no arguments, got 1" },
      { function() h:label(1) end, "inventory.label: argument #1 (text) must be a string, got number" },
      { function() h:label("a", 2) end, "inventory.label: argument #2 (suffix) must be a string, got number" },
      { function() h:label("\255") end,
        "inventory.label: argument #1 (text) must be a string, got a string that is not valid UTF-8"
          .. " (it would travel as bytes)" },
      { function() h:addItem({ name = "a", qty = "2" }) end,
        "inventory.addItem: argument #1 (item.qty) must be a number, got string" },
      { function() h:addItem({ name = "a" }) end,
        "inventory.addItem: argument #1 (item.qty) must be a number, got nil" },
      { function() h:addItem({ name = "a", qty = 1, tags = rivet.null }) end,
        "inventory.addItem: argument #1 (item.tags) must be an array (string[]), got rivet.null" },
      { function() h:addItem({ name = "a", qty = 1, nmae = "x" }) end,
        "inventory.addItem: argument #1 (item) has no field 'nmae' in Item (did you mean 'name'?)" },
      { function() h:addItem({ name = "a", qty = 1, tags = { "x", 2 } }) end,
        "inventory.addItem: argument #1 (item.tags[2]) must be a string, got number" },
      { function() h:addItem({ "a", 1 }) end,
        "inventory.addItem: argument #1 (item) must be a table (Item), got a table with keys 1..n"
          .. " (it travels as a JavaScript array)" },
      { function() h:setColor("purple") end,
        'inventory.setColor: argument #1 (color) must be one of "red", "green", "blue", got "purple"' },
      { function() h:setColor("gren") end,
        'inventory.setColor: argument #1 (color) must be one of "red", "green", "blue", got "gren"'
          .. ' (did you mean "green"?)' },
      { function() h:setLevel(4) end, "inventory.setLevel: argument #1 (level) must be one of 1, 2, 3, got 4" },
      { function() h:setLevel("1") end, 'inventory.setLevel: argument #1 (level) must be one of 1, 2, 3, got "1"' },
      { function() h:area({ kind = "triangle", side = 1 }) end,
        'inventory.area: argument #1 (shape.kind) must be one of "circle", "square", got "triangle"' },
      { function() h:area({ kind = "circle", side = 1 }) end,
        "inventory.area: argument #1 (shape.r) must be a number, got nil" },
      { function() h:sum({}) end,
        "inventory.sum: argument #1 (xs) must be an array (number[]), got an empty table"
          .. " (it travels as {}: use rivet.array({}))" },
      { function() h:sum({ 1, "2" }) end, "inventory.sum: argument #1 (xs[2]) must be a number, got string" },
      { function() h:sum({ 1, x = 2 }) end,
        "inventory.sum: argument #1 (xs) must be an array (number[]), got a table whose keys are not 1..n" },
      { function() h:sum(rivet.map({})) end,
        "inventory.sum: argument #1 (xs) must be an array (number[]), got a table" },
      { function() h:tally({ a = 1, b = "2" }) end,
        "inventory.tally: argument #1 (counts.b) must be a number, got string" },
      { function() h:tally({ 1, 2 }) end,
        "inventory.tally: argument #1 (counts) must be a table ({[string]: number}), got an array"
          .. " (keys 1..n travel as a JavaScript array: mark it with rivet.map(t))" },
      { function() h:tally(rivet.array({})) end,
        "inventory.tally: argument #1 (counts) must be a table ({[string]: number}), got an array" },
      { function() h:byteLength("abc") end,
        "inventory.byteLength: argument #1 (data) must be bytes, got string"
          .. " (valid UTF-8 travels as a JavaScript string: wrap it with rivet.bytes(s))" },
      { function() h:byteLength(3) end,
        "inventory.byteLength: argument #1 (data) must be bytes (a string wrapped with rivet.bytes(s)), got number" },
      { function() h:bigType(1.5) end, "inventory.bigType: argument #1 (n) must be an integer, got 1.5" },
      { function() h:bigType("5") end, "inventory.bigType: argument #1 (n) must be an integer, got string" },
      { function() h:describe({}) end,
        "inventory.describe: argument #1 (v) must be a string, a number or a boolean, got a table" },
      { function() h:maybe(1) end, "inventory.maybe: argument #1 (v) must be a string or nil, got number" },
      { function() h:log("a", 1, "x") end, "inventory.log: argument #3 (rest[2]) must be a number, got string" },
      { function() h:plot({ points = { { x = 1, y = 2 }, { x = 1, y = "q" } } }) end,
        "inventory.plot: argument #1 (p.points[2].y) must be a number, got string" },
      { function() h:plot({ points = rivet.array({}), meta = { fast = 1 } }) end,
        "inventory.plot: argument #1 (p.meta.fast) must be a boolean, got number" },
      { function() h:pair({ 1 }) end,
        "inventory.pair: argument #1 (p) must be an array ([number, string]), got an array of 1 item" },
      { function() h:pair({ 1, 2 }) end, "inventory.pair: argument #1 (p[2]) must be a string, got number" },
      { function() h:tree({ value = 1, children = { { value = 2, children = { { value = "x" } } } } }) end,
        "inventory.tree: argument #1 (t.children[1].children[1].value) must be a number, got string" },
    }
    if not ints.luajit then
      -- Lua 5.4: an integer beyond 2^53 travels as a bigint, not as a number
      cases[#cases + 1] = { function() h:increment(ints.P(60)) end,
        "inventory.increment: argument #1 (x) must be a number, got the integer 1152921504606846976"
          .. " (beyond 2^53 an integer travels as a bigint)" }
    else
      cases[#cases + 1] = { function() h:increment(ints.P(60)) end,
        "inventory.increment: argument #1 (x) must be a number, got 1152921504606846976LL"
          .. " (beyond 2^53 an integer travels as a bigint)" }
    end
    for _, case in ipairs(cases) do
      assert.are.equal(case[2], refused(case[1]))
    end
    assert.are.equal(before, h:calls())
  end)

  it("refuses an action the actor does not have, suggesting the nearest, and sends nothing", function()
    local key = env.key("unknown-action")
    local h = client.inventory:getOrCreate(key)
    assert.are.equal("inventory has no action 'incremnt' (did you mean 'increment'?)",
      refused(function() h:incremnt(1) end))
    assert.are.equal("inventory has no action 'Increment' (did you mean 'increment'?)",
      refused(function() h:action("Increment", 1) end))
    assert.are.equal("inventory has no action 'frobnicate' (its actions: addItem, anything, area, bigType,"
      .. " byteLength, calls, describe, increment, items, label, ...)",
      refused(function() h:frobnicate() end))
    -- nothing was sent at all: the getOrCreate handle never created its actor
    local e = env.catch(function() client.inventory:get(key):resolve() end)
    assert.is_true(rivet.isActorError(e, "actor.not_found"), tostring(e))
  end)

  it("refuses an actor the schema does not have, suggesting the nearest", function()
    assert.are.equal("no actor 'inventry' in the schema (did you mean 'inventory'?)",
      refused(function() local _ = client.inventry end))
    assert.are.equal("no actor 'Board' in the schema (did you mean 'board'?)",
      refused(function() client:actor("Board") end))
    -- the JavaScript test actors are served too, but this schema does not describe them
    assert.are.equal("no actor 'counter' in the schema (its actors: board, inventory)",
      refused(function() local _ = client.counter end))
  end)

  it("refuses conn:on and conn:once for an event the actor does not send; its events arrive", function()
    local h = client.inventory:getOrCreate(env.key("events"))
    local conn = h:connect()
    assert.are.equal("inventory has no event 'itemAded' (did you mean 'itemAdded'?)",
      refused(function() conn:on("itemAded", function() end) end))
    assert.are.equal("inventory has no event 'newCount' (its events: itemAdded, logged, totalChanged)",
      refused(function() conn:once("newCount", function() end) end))
    local items, logged = {}, nil
    conn:on("itemAdded", function(item) items[#items + 1] = item end)
    conn:once("logged", function(first, n) logged = { first, n } end)
    conn:addItem({ name = "x", qty = 3, tags = { "t" } })
    conn:log("hello", 1, 2)
    env.wait_for(client, function() return #items == 1 and logged end, 10, "the events")
    assert.are.same({ name = "x", qty = 3, tags = { "t" } }, items[1])
    assert.are.same({ "hello", 2 }, logged)
    conn:dispose()
  end)

  it("checks queue names and messages, and 2.3's declared events", function()
    local key = env.key("board")
    local b = client.board:getOrCreate(key)
    assert.are.equal("board has no queue 'taks' (did you mean 'tasks'?)",
      refused(function() b:send("taks", { job = "x" }) end))
    assert.are.equal("board.tasks: the message (body.job) must be a string, got number",
      refused(function() b:send("tasks", { job = 1 }) end))
    assert.are.equal("board.tasks: the message (body.priority) must be one of 1, 2, 3, got 5",
      refused(function() b:send("tasks", { job = "x", priority = 5 }) end))
    assert.are.equal("board.tasks: the message (body) must be a table (Task), got string",
      refused(function() b:send("tasks", "job") end))
    if env.server ~= "v23" then
      -- 2.0 has no queues or declared events: the checks above ran before the server was asked
      local e = env.catch(b.send, b, "tasks", { job = "x" })
      assert.is_true(rivet.isActorError(e, "client.unsupported"), tostring(e))
      return
    end
    local r = b:send("tasks", { job = "j1", priority = 2 }, { wait = true, timeout = 10 })
    assert.are.equal("completed", r.status)
    assert.are.same({ job = "j1", n = 1 }, r.response)
    local conn = b:connect()
    assert.are.equal("board has no event 'psted' (did you mean 'posted'?)",
      refused(function() conn:on("psted", function() end) end))
    assert.are.equal("board.post: argument #2 (tags[1]) must be a string, got number",
      refused(function() conn:post("x", { 1 }) end))
    local posted, cleared
    conn:on("posted", function(p) posted = p end)
    conn:on("cleared", function(n, reason) cleared = { n, reason } end)
    assert.are.same({ id = 1, text = "hello", tags = { "a" } }, conn:post("hello", { "a" }))
    assert.are.equal(1, conn:clear("done"))
    env.wait_for(client, function() return posted and cleared end, 10, "the events")
    assert.are.equal("hello", posted.text)
    assert.are.same({ 1, "done" }, cleared)
    assert.are.same({ { job = "j1", n = 1 } }, conn:done())
    conn:dispose()
  end)
end)

describe("without a schema (" .. env.server .. ")", function()
  it("nothing is checked: a wrong argument reaches the actor, any actor name has an accessor", function()
    local c = env.client("bare")
    local h = c.inventory:getOrCreate(env.key("plain"))
    assert.are.equal(1, h:increment(1))
    assert.are.equal("15", h:increment("5")) -- JavaScript's 1 + "5"
    assert.are.equal(2, h:calls())
    assert.is_not_nil(c.inventry)
    c:dispose()
  end)
end)

describe("schema modules", function()
  local function bad(schema)
    return refused(function() rivet.client("http://127.0.0.1:1", { schema = schema }) end)
  end

  it("refuse what is not a schema module, naming what is wrong", function()
    assert.are.equal("rivet.client: option 'schema': expected the table of a schema module"
      .. " (require(\"my_schema\")), got string",
      bad("typed_schema"))
    assert.are.equal("rivet.client: option 'schema': not a schema module of format 1 (format = nil):"
      .. " regenerate it with rivet-schema",
      bad({ actors = {} }))
    assert.are.equal("rivet.client: option 'schema': actors.a.actions.f.params[1].type: unknown type 'numbr'",
      bad({ format = 1, actors = { a = { actions = { f = { params = { { name = "x", type = "numbr" } } } } } } }))
    assert.are.equal("rivet.client: option 'schema': actors.a.actions.f.params[1].type:"
      .. " no type 'Item' in the schema's types",
      bad({ format = 1, actors = { a = { actions = { f = {
        params = { { name = "x", type = { ref = "Item" } } } } } } } }))
    assert.are.equal("rivet.client: option 'schema': types.T.fields[1].type: unknown type"
      .. " (expected a name, or a table with ref, array, map, tuple, oneOf, union or fields)",
      bad({ format = 1, types = { T = { fields = { { name = "x", type = {} } } } }, actors = {} }))
  end)

  it("may be written by hand in the same format", function()
    local c = rivet.client("http://127.0.0.1:1", { schema = {
      format = 1,
      actors = { counter = { actions = { increment = {
        params = { { name = "amount", type = "integer", optional = true } } } } } },
    } })
    local h = c.counter:getOrCreate("k")
    assert.are.equal("counter.increment: argument #1 (amount) must be an integer, got 0.5",
      refused(function() h:increment(0.5) end))
    c:dispose()
  end)
end)
