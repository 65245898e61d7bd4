-- Raw HTTP (handle:fetch) and raw WebSocket (handle:websocket) against the real server.
local rivet = require("rivet")
local env = require("spec.support.env")
local tls = require("spec.support.tls")

describe("raw fetch (" .. env.server .. ")", function()
  local client, raw
  before_each(function()
    client = env.client("bare")
    raw = client.raw:getOrCreate(env.key("raw"))
  end)
  after_each(function() client:dispose() end)

  it("passes method, headers, body and query to onRequest unchanged", function()
    local res = raw:fetch("/api/hello?x=1&y=%20z&x=2", {
      method = "POST",
      headers = { ["Content-Type"] = "text/plain", ["X-Custom"] = "Value With Spaces", ["x-num"] = 42 },
      body = "hello body",
    })
    assert.are.equal(200, res.status)
    assert.is_true(res.ok)
    assert.are.equal("application/json", res.headers["content-type"])
    local echo = res:json()
    assert.are.equal("POST", echo.method)
    assert.are.equal("/api/hello", echo.path)
    assert.are.equal("?x=1&y=%20z&x=2", echo.query)
    assert.are.equal("hello body", echo.body)
    assert.are.equal("text/plain", echo.headers["content-type"])
    assert.are.equal("Value With Spaces", echo.headers["x-custom"])
    assert.are.equal("42", echo.headers["x-num"])
    assert.is_nil(echo.headers["x-rivet-conn-params"]) -- no params on this handle
    assert.are.equal("rivet.Response(200)", tostring(res))
  end)

  it("sends no content type the caller did not give, and lower-cases methods like fetch()", function()
    local echo = raw:fetch("plain", { method = "put", body = "x" }):json()
    assert.are.equal("PUT", echo.method)
    assert.are.equal("/plain", echo.path)
    assert.is_nil(echo.headers["content-type"])
    for _, m in ipairs({ "DELETE", "PATCH" }) do
      assert.are.equal(m, raw:fetch("/m", { method = m }):json().method)
    end
    local head = raw:fetch("/m", { method = "HEAD" })
    assert.are.equal(200, head.status)
    assert.are.equal("", head.body)
  end)

  it("accepts a request table, with init overriding it", function()
    local echo = raw:fetch({ url = "/t?q=1", method = "POST", headers = { a = "1" }, body = "from request" }):json()
    assert.are.same({ "POST", "/t", "?q=1", "from request", "1" },
      { echo.method, echo.path, echo.query, echo.body, echo.headers.a })
    echo = raw:fetch({ url = "http://actor/u?v=2", method = "POST", body = "x" }, { method = "PUT", body = "y" }):json()
    assert.are.same({ "PUT", "/u", "?v=2", "y" }, { echo.method, echo.path, echo.query, echo.body })
  end)

  it("percent-encodes what cannot travel raw in a path", function()
    local echo = raw:fetch("/a b/ü"):json()
    assert.are.equal("/a%20b/%C3%BC", echo.path)
  end)

  it("returns a non-2xx answer of the handler as a response with ok = false", function()
    local res = raw:fetch("/status/418")
    assert.are.equal(418, res.status)
    assert.is_false(res.ok)
    assert.are.equal("status 418", res.body)
    res = raw:fetch("/status/404")
    assert.are.equal(404, res.status)
    assert.are.equal("status 404", res.body)
    res = raw:fetch("/status/500")
    assert.are.equal(500, res.status)
    assert.is_false(res.ok)
    res = raw:fetch("/status/204")
    assert.are.equal(204, res.status)
    assert.is_true(res.ok)
    assert.are.equal("", res.body)
  end)

  -- rivetkit 2.3.19 cuts off some responses larger than 64 KiB on its own (curl sees the
  -- same: "transfer closed with outstanding read data remaining", and the actor host logs
  -- "received HTTP tunnel message without request start"): there, try a few times.
  local function big_call(fn)
    local tries = env.pick(6, 1)
    for i = 1, tries do
      local ok, v = pcall(fn)
      if ok then return v end
      if i == tries or not rivet.isActorError(v, "client.connection_lost") then error(v, 0) end
    end
  end

  it("moves 1 MB bodies both ways", function()
    local big = string.rep("abcdefgh", 131072) -- 1 MiB
    local echo = big_call(function()
      return raw:fetch("/echo",
        { method = "POST", body = big, headers = { ["content-type"] = "application/octet-stream" } }):json()
    end)
    assert.are.equal(#big, #echo.body)
    assert.are.equal(big, echo.body)
    local res = big_call(function() return raw:fetch("/big/1048576") end)
    assert.are.equal(1048576, #res.body)
    assert.are.equal(string.rep("y", 1048576), res.body)
  end)

  it("raises an ActorError when the actor has no onRequest handler", function()
    local counter = client.counter:getOrCreate(env.key("noraw"))
    local err = env.catch(counter.fetch, counter, "/anything")
    assert.is_true(rivet.isActorError(err))
    assert.are.equal("handler.request_not_defined", err.group .. "." .. err.code)
    assert.are.equal(404, err.status)
  end)

  it("raises an ActorError when the actor does not exist", function()
    local ghost = client.raw:getForId(env.pick("9ahquvlckwgncggyvpqk29l0yecl00", "b0aef2fe7cf6d48d"))
    local err = env.catch(ghost.fetch, ghost, "/x")
    assert.is_true(rivet.isActorError(err))
    assert.are.equal(env.pick("actor.not_found", "internal.internal_error"), err.group .. "." .. err.code)
  end)

  it("sends the handle's params as x-rivet-conn-params, calling a params function each time", function()
    local n = 0
    local h = client.raw:getOrCreate(env.key("rawp"),
      { params = function() n = n + 1; return { token = "t" .. n, ["ü"] = true } end })
    local p1 = h:fetch("/p"):json().headers["x-rivet-conn-params"]
    local p2 = h:fetch("/p"):json().headers["x-rivet-conn-params"]
    assert.are.same({ token = "t1", ["ü"] = true }, require("rivet.core").json_decode(p1, false))
    assert.are.same({ token = "t2", ["ü"] = true }, require("rivet.core").json_decode(p2, false))
    assert.is_nil(p1:find("[\128-\255]")) -- kept ASCII on the wire
  end)

  it("raises plain errors for bad arguments", function()
    assert.has_error(function() raw:fetch(5) end)
    assert.has_error(function() raw:fetch("/x", { body = {} }) end)
    assert.has_error(function() raw:fetch("/x", { method = "GET", body = "no" }) end)
    assert.has_error(function() raw:fetch("/x", { headers = { ["bad name"] = "v" } }) end)
    assert.has_error(function() raw:fetch("/x", { headers = { a = "line\r\nbreak" } }) end)
    assert.has_error(function() raw.fetch(nil, "/x") end)
  end)

  it("runs many fetches concurrently inside tasks", function()
    local results = {}
    for i = 1, 8 do
      client:spawn(function()
        local r = raw:fetch("/task/" .. i, { method = "POST", body = tostring(i) })
        results[i] = r:json().body
      end)
    end
    client:run(30)
    for i = 1, 8 do assert.are.equal(tostring(i), results[i]) end
  end)
end)

-- Message i of a numbered series: its number, then bytes that depend on it.
local function numbered(i, size)
  return string.format("%05d", i) .. string.rep(string.char(i % 256), size - 5)
end

-- Receives messages 1..n of a numbered series (echoed back), checking each whole.
local function expect_numbered(ws, n, size)
  for i = 1, n do
    local data = ws:receive(30)
    assert.is_string(data)
    assert.are.equal(size, #data)
    assert.are.equal(numbered(i, size), data)
  end
end

describe("raw websocket (" .. env.server .. ")", function()
  local client, raw
  before_each(function()
    client = env.client("bare")
    raw = client.raw:getOrCreate(env.key("rawws"))
  end)
  after_each(function() client:dispose() end)

  it("opens, reports the selected protocol and keeps text and binary apart", function()
    local ws = raw:websocket("/stream")
    assert.are.equal("connecting", ws.status)
    assert.are.same({ "hello", "text" }, { ws:receive(10) })
    assert.are.equal("open", ws.status)
    assert.are.equal("rivet", ws.protocol)
    assert.is_true(ws:send("text frame"))
    assert.are.same({ "text frame", "text" }, { ws:receive(10) })
    local bytes = "\0\1\2\255binary"
    assert.is_true(ws:send(bytes, "binary"))
    assert.are.same({ bytes, "binary" }, { ws:receive(10) })
    assert.is_true(ws:send("ascii as binary", "binary"))
    assert.are.same({ "ascii as binary", "binary" }, { ws:receive(10) })
    ws:close()
  end)

  it("queues sends made before the socket opens, in order", function()
    local ws = raw:websocket("/q")
    for i = 1, 5 do ws:send("m" .. i) end
    assert.are.equal("hello", (ws:receive(10)))
    for i = 1, 5 do assert.are.equal("m" .. i, (ws:receive(10))) end
    ws:close()
  end)

  it("reports the server's close code and reason", function()
    local ws = raw:websocket("/c")
    local closed
    ws:on("close", function(code, reason) closed = { code, reason } end)
    ws:send("close-me")
    assert.are.equal("hello", (ws:receive(10)))
    local data, err = ws:receive(10)
    assert.is_nil(data)
    assert.are.equal("client.websocket_closed", err.group .. "." .. err.code)
    assert.are.equal(4000, err.closeCode)
    assert.are.equal("bye", err.closeReason)
    assert.are.same({ 4000, "bye" }, { ws.closeCode, ws.closeReason })
    client:poll(0)
    assert.are.same({ 4000, "bye" }, closed)
    assert.are.equal("closed", ws.status)
    -- closed for good: more receives and sends say so at once
    local d2, e2 = ws:receive(1)
    assert.is_nil(d2)
    assert.are.equal(4000, e2.closeCode)
    local ok, e3 = ws:send("late")
    assert.is_nil(ok)
    assert.is_true(rivet.isActorError(e3))
  end)

  it("closes with the caller's code and reason", function()
    local ws = raw:websocket("/c2")
    assert.are.equal("hello", (ws:receive(10)))
    local closed
    ws:on("close", function(code, reason) closed = { code, reason } end)
    ws:close(4100, "done here")
    assert.are.equal("closing", ws.status)
    local _, err = ws:receive(10)
    assert.are.equal(4100, err.closeCode)
    client:poll(0)
    assert.are.same({ 4100, "done here" }, closed)
    assert.has_error(function() ws:close(1234) end)
  end)

  it("times out a receive without closing the socket", function()
    local ws = raw:websocket("/t")
    assert.are.equal("hello", (ws:receive(10)))
    local t0 = require("rivet.core").now()
    local data, err = ws:receive(0.2)
    assert.is_nil(data)
    assert.are.equal("client.timeout", err.group .. "." .. err.code)
    assert.is_true(require("rivet.core").now() - t0 >= 0.19)
    ws:send("still open")
    assert.are.equal("still open", (ws:receive(10)))
    ws:close()
  end)

  it("delivers messages to on('message') handlers from the loop; a failing handler goes to on('error')", function()
    local ws = raw:websocket("/h")
    local got, errs = {}, {}
    ws:on("message", function(data, kind)
      got[#got + 1] = data .. ":" .. kind
      if data == "boom" then error("handler exploded") end
    end)
    ws:on("error", function(e) errs[#errs + 1] = e end)
    ws:send("a")
    ws:send("boom")
    ws:send("b", "binary")
    local deadline = require("rivet.core").now() + 10
    -- the error handlers run in a task of their own, one loop turn after the failure
    while (#got < 4 or #errs < 1) and require("rivet.core").now() < deadline do client:poll(0.05) end
    assert.are.same({ "hello:text", "a:text", "boom:text", "b:binary" }, got)
    assert.are.equal(1, #errs)
    assert.are.equal("client.handler_failed", errs[1].group .. "." .. errs[1].code)
    assert.truthy(tostring(errs[1]):find("handler exploded", 1, true))
    ws:close()
  end)

  it("works inside tasks, several sockets on the same loop", function()
    local out = {}
    for i = 1, 4 do
      client:spawn(function()
        local ws = raw:websocket("/task" .. i)
        assert(ws:receive(10) == "hello")
        ws:send("n" .. i)
        out[i] = ws:receive(10)
        ws:close()
        local _, err = ws:receive(10)
        assert(err.closeCode == 1000)
      end)
    end
    client:run(30)
    assert.are.same({ "n1", "n2", "n3", "n4" }, out)
  end)

  it("moves large binary messages", function()
    local ws = raw:websocket("/big")
    assert.are.equal("hello", (ws:receive(10)))
    local big = string.rep("\0\1\2\3", 65536) -- 256 KiB
    ws:send(big, "binary")
    local data, kind = ws:receive(20)
    assert.are.equal("binary", kind)
    assert.are.equal(#big, #data)
    assert.are.equal(big, data)
    ws:close()
  end)

  it("keeps a burst of messages larger than the socket buffers whole and in order", function()
    -- the first message is written at once; what the socket cannot take is kept and the
    -- rest queue behind it, so nothing may be reordered, cut or lost
    local ws = raw:websocket("/big")
    assert.are.equal("hello", (ws:receive(10)))
    local n, size = 100, 30 * 1024
    for i = 1, n do assert.is_true(ws:send(numbered(i, size), "binary")) end
    expect_numbered(ws, n, size)
    ws:close()
  end)

  it("under back-pressure keeps what the socket cannot take and sends it, in order, once it can", function()
    -- a proxy that stops reading: our writes fill the socket buffers, libwebsockets keeps
    -- the rest of a partly written message and later sends wait behind it
    local px = require("spec.support.proxy").start(env.endpoint)
    local pc = rivet.client(px.endpoint, { encoding = "bare" })
    local ok, err = pcall(function()
      local ws = pc.raw:getOrCreate(env.key("rawbp")):websocket("/big")
      assert.are.equal("hello", (ws:receive(10)))
      px:stall()
      local n, size = 400, 48 * 1024 -- 19 MB: more than the buffers on both sides hold
      for i = 1, n do assert.is_true(ws:send(numbered(i, size), "binary")) end
      pc:poll(0.2) -- the loop runs while nothing can be written
      assert.are.equal("open", ws.status)
      px:flow()
      expect_numbered(ws, n, size)
      ws:close()
    end)
    pc:dispose()
    px:stop()
    assert(ok, err)
  end)

  it("fails the socket, not the caller, when the actor does not exist", function()
    local ghost = client.raw:getForId(env.pick("9ahquvlckwgncggyvpqk29l0yecl00", "b0aef2fe7cf6d48d"))
    local ws = ghost:websocket("/x")
    local data, err = ws:receive(10)
    assert.is_nil(data)
    assert.is_true(rivet.isActorError(err))
    assert.are.equal("closed", ws.status)
  end)

  it("offers rivet, the caller's subprotocols and the params on the wire", function()
    local log = os.tmpname()
    local proxy = tls.proxy(env.endpoint, { log = log })
    local ok, err = pcall(function()
      local c2 = rivet.client("http://127.0.0.1:" .. proxy.port, { timeout = 30 })
      local h = c2.raw:getOrCreate(env.key("rawproto"), { params = { token = "a b" } })
      local ws = h:websocket("/p?x=1", { "chat", "v1" })
      assert.are.equal("hello", (ws:receive(10)))
      assert.are.equal("rivet", ws.protocol)
      ws:close()
      ws:receive(10)
      c2:dispose()
      local heads = tls.read_log(log)
      local line = heads:match("\n[Ss]ec%-[Ww]eb[Ss]ocket%-[Pp]rotocol: ([^\n]*)")
      assert.truthy(line, heads)
      assert.are.equal("rivet, chat, v1, rivet_conn_params.%7B%22token%22%3A%22a%20b%22%7D", line)
      assert.truthy(heads:find("GET /gateway/[^ /]+/websocket/p%?x=1 HTTP/1.1"))
    end)
    proxy.stop()
    os.remove(log)
    assert(ok, err)
  end)

  it("raises plain errors for bad arguments", function()
    assert.has_error(function() raw:websocket(5) end)
    assert.has_error(function() raw:websocket("/x", { "bad proto" }) end)
    assert.has_error(function() raw:websocket("/x", { "a,b" }) end)
    local ws = raw:websocket("/x")
    assert.has_error(function() ws:send(5) end)
    assert.has_error(function() ws:send("\255", "text") end)
    assert.has_error(function() ws:on("nope", print) end)
    ws:close()
  end)
end)
