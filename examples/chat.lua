-- Events both ways: two connections to one chat room; each sends messages and both
-- receive every message as the event "newMessage".
--   RIVET_ENDPOINT=http://127.0.0.1:6420 lua5.4 examples/chat.lua
-- (a server with examples/actors/index.mjs; `make demo` starts one)
local rivet = require("rivet")

local client = rivet.client(os.getenv("RIVET_ENDPOINT") or "http://127.0.0.1:6420", { timeout = 15 })
local room = client.chat:getOrCreate({ "lobby", os.time() .. "-" .. math.random(1e9) })

-- Two users, each with their own live connection to the same actor. On Lua 5.4,
-- `local alice <close> = room:connect()` would dispose one when its scope ends; this
-- example runs on LuaJIT too, where client:dispose() at the end closes both.
local alice = room:connect()
local bob = room:connect()

local received = { alice = {}, bob = {} }
for name, conn in pairs({ alice = alice, bob = bob }) do
  conn:on("newMessage", function(msg)
    received[name][#received[name] + 1] = msg
    print(string.format("  [%s sees] %s: %s", name, msg.user, msg.text))
  end)
  conn:onError(function(err) print(name .. " connection error: " .. tostring(err)) end)
end

-- Events reach a connection only once it is connected and subscribed: a first call on
-- each connection waits for that (both calls are in flight at once).
rivet.all({ alice:async("getHistory"), bob:async("getHistory") })

-- Actions over the connections; events arrive from the loop while they wait.
alice:sendMessage("alice", "hi bob")
bob:sendMessage("bob", "hello alice")

-- Bob answers every message from alice, from inside his event handler (handlers run in
-- their own coroutine, so they may call actions).
bob:on("newMessage", function(msg)
  if msg.user == "alice" and msg.text:find("?", 1, true) then
    bob:sendMessage("bob", "yes, loud and clear")
  end
end)
alice:sendMessage("alice", "can you hear me?")

-- Let the loop deliver what is still in flight (bob's reply and its event).
local deadline = os.time() + 5
while (#received.alice < 4 or #received.bob < 4) and os.time() < deadline do client:poll(0.05) end

local history = alice:getHistory()
print(string.format("history has %d messages; alice saw %d, bob saw %d",
  #history, #received.alice, #received.bob))
assert(#history == 4 and #received.alice == 4 and #received.bob == 4, "every message reaches both users")

client:dispose()
