-- rivet-schema (tools/rivet-schema, docs/schema.md) on small registries written here: a
-- setup({ use }) registry with an actor imported from another file, read against the
-- types of rivetkit 2.3 and of 2.0; events found in broadcast calls (also in helper
-- functions); the errors of a run that cannot work. The module it writes is loaded and
-- given to rivet.client. Needs Node (RIVET_TEST_NODE, else `node`) and rivet-schema's
-- TypeScript (scripts/deps.sh); no server. It does not depend on the interpreter or
-- the server line, so it runs in the Lua 5.4 pass against v23 (or with no server) only.
local rivet = require("rivet")
local env = require("spec.support.env")

local NODE = os.getenv("RIVET_TEST_NODE") or "node"
local ROOT = io.popen("pwd"):read("*l")
local TOOL = ROOT .. "/tools/rivet-schema/rivet-schema"

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- Runs rivet-schema with the given arguments: ok, standard output, standard error.
local function run(dir, args)
  local err = dir .. "/stderr.txt"
  local cmd = "cd " .. sh_quote(dir) .. " && " .. sh_quote(NODE) .. " " .. sh_quote(TOOL) .. " " .. args
    .. " 2>" .. sh_quote(err)
  local p = io.popen(cmd)
  local out = p:read("*a")
  local ok = p:close()
  local f = io.open(err)
  local e = f and f:read("*a") or ""
  if f then f:close() end
  return ok == true, out, e
end

local function tsconfig(dir, line)
  write(dir .. "/tsconfig.json", [[{ "compilerOptions": {
  "strict": true, "module": "preserve", "moduleResolution": "bundler", "noEmit": true,
  "allowImportingTsExtensions": true, "skipLibCheck": true, "lib": ["es2023", "dom"], "types": [],
  "paths": { "rivetkit": ["]] .. ROOT .. "/servers/" .. line .. [[/node_modules/rivetkit/dist/tsup/mod.d.ts"] } } }
]])
end

local REGISTRY = [[
import { actor, setup } from "rivetkit";
import { chat } from "./chat.ts";

function announce(c: { broadcast(name: string, ...args: unknown[]): void }, n: number) {
	c.broadcast("announced", n);
}

const counter = actor({
	state: { count: 0 },
	actions: {
		/** Adds x to the count. */
		increment: (c, x: number, note?: string) => {
			c.state.count += x;
			announce(c, c.state.count);
			return c.state.count;
		},
		emit: (c, name: string) => {
			c.broadcast(name, 1);
		},
	},
});

const other = actor({ state: {}, actions: { ping: () => "pong" } });

export const registry = setup({ use: { counter, chat, "my-actor": other } });
]]

local CHAT = [[
import { actor } from "rivetkit";
export const chat = actor({
	state: {},
	actions: {
		say: (c, user: string, text: string) => {
			c.broadcast("message", { user, text });
			return true;
		},
	},
});
]]

local skip = env.luajit or (os.getenv("RIVET_TEST_SERVER") or "v23") ~= "v23"

describe("rivet-schema", function()
  local dir
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. sh_quote(dir)))
    write(dir .. "/registry.ts", REGISTRY)
    write(dir .. "/chat.ts", CHAT)
  end)
  teardown(function() os.execute("rm -rf " .. sh_quote(dir)) end)

  for _, line in ipairs({ "v23", "v20" }) do
    local test = skip and pending or it
    test("reads a setup({ use }) registry against rivetkit " .. line .. "'s types", function()
      tsconfig(dir, line)
      local ok, _, err = run(dir, "registry.ts -o reg.lua")
      assert.is_true(ok, err)
      assert.are.equal("", err)
      local f = assert(io.open(dir .. "/reg.lua"))
      local text = f:read("*a")
      f:close()
      local mod = assert(load(text, "=reg.lua"))()
      local counter = mod.actors.counter
      assert.are.same({
        params = { { name = "x", type = "number" }, { name = "note", type = "string", optional = true } },
        returns = "number",
      }, counter.actions.increment)
      -- found in a helper the action calls; emit(name) makes the set open
      assert.are.same({ { name = "n", type = "number" } }, counter.events.announced)
      assert.is_true(counter.openEvents)
      assert.are.same({ { name = "arg1", type = { fields = {
        { name = "user", type = "string" }, { name = "text", type = "string" } } } } }, mod.actors.chat.events.message)
      assert.is_nil(mod.actors.chat.openEvents)
      assert.are.same({ ping = { params = {}, returns = "string" } }, mod.actors["my-actor"].actions)
      -- LuaLS: a class per handle, named after the module, doc comments carried over
      assert.truthy(text:find("---@class reg.CounterHandle: rivet.Handle\n", 1, true))
      assert.truthy(text:find("---@field increment fun(self: reg.CounterHandle, x: number, note?: string): number"
        .. " Adds x to the count.\n", 1, true))
      assert.truthy(text:find('---@field on fun(self: reg.ChatConnection, event: "message", '
        .. 'fn: fun(arg1: reg.Chat.message.arg1)): fun()\n', 1, true))
      assert.is_nil(text:find("---@field my-actor", 1, true)) -- not an identifier: client:actor("my-actor")
      -- and the client takes it
      local c = rivet.client("http://127.0.0.1:1", { schema = mod })
      local h = c:actor("my-actor"):getOrCreate("k")
      local e = env.catch(function() h:ping(1) end)
      assert.truthy(tostring(e):find("my-actor.ping: takes no arguments, got 1", 1, true), tostring(e))
      c:dispose()
    end)
  end

  local test = skip and pending or it
  test("refuses to run without what it needs, saying why", function()
    tsconfig(dir, "v23")
    local ok, _, err = run(dir, "missing.ts")
    assert.is_false(ok)
    assert.truthy(err:find("rivet-schema: missing.ts: no such file", 1, true), err)
    ok, _, err = run(dir, "registry.ts --typescript /nonexistent")
    assert.is_false(ok)
    assert.truthy(err:find("no usable TypeScript compiler found", 1, true), err)
    assert.truthy(err:find("npm install --save-dev typescript@5", 1, true), err)
    ok, _, err = run(dir, "registry.ts -e nope")
    assert.is_false(ok)
    assert.truthy(err:find("registry.ts has no export 'nope' (exports: registry)", 1, true), err)
    write(dir .. "/empty.ts", "export const x = 1;\n")
    ok, _, err = run(dir, "empty.ts")
    assert.is_false(ok)
    assert.truthy(err:find("empty.ts: no actors found", 1, true), err)
    ok, _, err = run(dir, "registry.ts --frobnicate")
    assert.is_false(ok)
    assert.truthy(err:find("unknown option --frobnicate", 1, true), err)
  end)
end)
