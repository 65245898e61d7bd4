-- Raw HTTP and a raw WebSocket to an actor's own onRequest / onWebSocket handlers.
-- Needs an actor "raw" like the one in spec/actors/index.mjs (echoes requests as JSON,
-- /status/<n>, WebSocket echo that says "hello" first and closes 4000 "bye" on "close-me"):
--   scripts/servers.sh start v23 spec/actors/index.mjs demo-raw
--   RIVET_ENDPOINT=$(. .run/demo-raw/env; echo $RIVET_TEST_ENDPOINT) lua5.4 examples/raw_fetch.lua
--   scripts/servers.sh stop demo-raw
local rivet = require("rivet")

local client = rivet.client(os.getenv("RIVET_ENDPOINT") or "http://127.0.0.1:6420")
local raw = client.raw:getOrCreate({ "demo", tostring(os.time()) })

-- fetch: method, headers, body and query arrive unchanged
local res = raw:fetch("/api/hello?name=lua", {
  method = "POST",
  headers = { ["content-type"] = "text/plain", ["x-demo"] = "1" },
  body = "hello from Lua",
})
local echo = res:json()
print(("POST -> %d %s: %s %s%s body=%q"):format(res.status, res.headers["content-type"],
  echo.method, echo.path, echo.query, echo.body))

-- a non-2xx answer of the handler is a response, not an error
local teapot = raw:fetch("/status/418")
print(("GET /status/418 -> %d ok=%s %q"):format(teapot.status, tostring(teapot.ok), teapot.body))

-- errors of the route itself are ActorErrors
local counter = client.counter:getOrCreate("no-raw-handler")
local ok, err = pcall(counter.fetch, counter, "/x")
print("fetch on an actor without onRequest: " .. tostring(err) .. " (" .. tostring(not ok) .. ")")

-- a raw WebSocket: pull messages with receive()
local ws = raw:websocket("/chat", { "demo.v1" })
print("first message: " .. tostring((ws:receive(5))) .. " (protocol " .. tostring(ws.protocol) .. ")")
ws:send("ping")
print("echo: " .. tostring((ws:receive(5))))
ws:send("\1\2\3", "binary")
local data, kind = ws:receive(5)
print(("binary echo: %d bytes, %s"):format(#data, kind))
ws:send("close-me")
local _, closed = ws:receive(5)
print(("closed by the actor: %s %s"):format(tostring(closed.closeCode), tostring(closed.closeReason)))

-- or push: handlers run from the loop, here inside a task
client:spawn(function()
  local ws2 = raw:websocket("/events")
  local seen = 0
  ws2:on("message", function(msg, k)
    seen = seen + 1
    print(("handler got %q (%s)"):format(msg, k))
    if seen == 2 then ws2:close() end
  end)
  ws2:send("from a task")
  while ws2.status ~= "closed" do client:sleep(0.05) end
end)
client:run(10)

client:dispose()
