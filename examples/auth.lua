-- Connection params checked by the actor's onBeforeConnect, a params function that
-- refreshes the token on every (re)connect, and what a refused connection looks like.
-- Needs an actor "auth" like the one in spec/actors/index.mjs (accepts params.token
-- starting with "secret"; actions whoami, getParams, kick):
--   scripts/servers.sh start v23 spec/actors/index.mjs demo-auth
--   RIVET_ENDPOINT=$(. .run/demo-auth/env; echo $RIVET_TEST_ENDPOINT) lua5.4 examples/auth.lua
--   scripts/servers.sh stop demo-auth
-- A Rivet token for a hosted engine comes from RIVET_TOKEN (or the token option, or
-- https://namespace:token@host); a private CA from the ca_file option.
local rivet = require("rivet")

rivet.setLogger(function(level, msg)
  if level ~= "debug" then print(("  [%s] %s"):format(level, msg)) end
end)

local client = rivet.client(os.getenv("RIVET_ENDPOINT") or "http://127.0.0.1:6420")
local key = { "demo", tostring(os.time()) }

-- 1. params on the handle: every stateless action carries them
local alice = client.auth:getOrCreate(key, { params = { token = "secret-alice" } })
print("stateless whoami -> " .. alice:whoami())

-- 2. a refused call is a user error with the actor's code and metadata
local mallory = client.auth:getOrCreate(key, { params = { token = "guess" } })
local ok, err = pcall(mallory.whoami, mallory)
assert(not ok, "a wrong token was accepted")
print(("refused: %s (metadata.reason = %s)"):format(tostring(err),
  tostring(type(err) == "table" and err.metadata and err.metadata.reason)))

-- 3. a refused connection reports once and does not retry
local bad = mallory:connect()
bad:onError(function(e) print("connection refused: " .. tostring(e)) end)
client:sleep(1)
print("status after refusal: " .. bad.status)
bad:dispose()

-- 4. a params function is called before every connect and reconnect
local n = 0
local refreshing = client.auth:getOrCreate(key, {
  params = function()
    n = n + 1
    return { token = "secret-token-" .. n } -- e.g. fetch a fresh short-lived token here
  end,
})
local conn = refreshing:connect()
local opens = 0
conn:onOpen(function() opens = opens + 1 end)
print("connected as " .. conn:whoami())
conn:kick() -- the actor closes this connection; the client reconnects with new params
while opens < 2 do client:sleep(0.05) end
print("after reconnect: " .. conn:whoami())
conn:dispose()

client:dispose()
