-- Schemas: every call checked against the registry's TypeScript types before it is sent.
-- spec/actors/typed_schema.lua was written by rivet-schema from the TypeScript registry
-- spec/actors/typed.ts (docs/schema.md):
--   tools/rivet-schema/rivet-schema spec/actors/typed.ts -o spec/actors/typed_schema.lua
-- Run it from the repository root:
--   scripts/demo.sh examples/schema.lua
--   RIVET_ENDPOINT=http://127.0.0.1:6420 lua5.4 examples/schema.lua
package.path = "spec/actors/?.lua;" .. package.path
local rivet = require("rivet")

-- The annotation gives the Lua language server the actors, actions and events.
---@type typed_schema.Client
local client = rivet.client(os.getenv("RIVET_ENDPOINT") or "http://127.0.0.1:6420",
  { schema = require("typed_schema") })

local inventory = client.inventory:getOrCreate({ "schema-example", tostring(os.time()) })
print("total: " .. inventory:increment(5))
print("items: " .. inventory:addItem({ name = "apple", qty = 3, tags = { "fruit" } }))

-- Mistakes are plain Lua errors, raised before anything is sent.
local mistakes = {
  function() inventory:increment("5") end,                        -- wrong type
  function() inventory:incremnt(1) end,                           -- misspelt action
  function() inventory:addItem({ name = "pear", qyt = 1 }) end,   -- misspelt field
  function() inventory:setColor("purpel") end,                    -- not one of the literals
  function() inventory:sum({}) end,                               -- {} travels as an object
  function() local _ = client.inventroy end,                      -- misspelt actor
}
for _, call in ipairs(mistakes) do
  local ok, err = pcall(call)
  assert(not ok)
  print("refused: " .. tostring(err):gsub("^[^:]*:%d+: ", ""))
end

-- Connections: the same checks, and conn:on takes only the events the actor sends.
local conn = inventory:connect()
local ok, err = pcall(function() conn:on("totalChange", print) end)
print("refused: " .. tostring(err):gsub("^[^:]*:%d+: ", ""), ok)
local seen
conn:on("totalChanged", function(total) seen = total end)
conn:increment(1)
while seen == nil do client:poll(0.05) end
print("event totalChanged: " .. seen)

-- Only the three valid calls reached the actor.
print("actions run by the actor: " .. conn:calls())
conn:dispose()
client:dispose()
