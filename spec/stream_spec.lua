-- Streaming raw fetch: a response read as it arrives (res:read, res:chunks), ended by
-- close or collection, and request bodies taken from a function chunk by chunk.
local rivet = require("rivet")
local env = require("spec.support.env")

describe("streaming fetch (" .. env.server .. ")", function()
  local client, h
  before_each(function()
    client = env.client("bare")
    h = client.raw:getOrCreate(env.key("stream"))
    h:resolve()
  end)
  after_each(function() client:dispose() end)

  it("returns at the headers; the first chunk arrives before the last is written", function()
    local res = h:fetch("/stream/100", { stream = true })
    assert.are.equal(200, res.status)
    assert.are.equal("text/event-stream", res.headers["content-type"])
    assert.is_nil(res.body) -- nothing buffered
    local first = res:read(10)
    assert.are.equal("chunk 0\n", first:sub(1, 8))
    -- the actor counts what it has written: far from all of it yet
    local written = h:written()
    assert.is_true(written < 100, "written " .. tostring(written))
    local chunks = { first }
    for chunk in res:chunks() do chunks[#chunks + 1] = chunk end
    local all = table.concat(chunks)
    local n = 0
    local lines = {}
    for l in all:gmatch("[^\n]+") do lines[#lines + 1] = l end
    for i, line in ipairs(lines) do
      assert.are.equal("chunk " .. (i - 1), line)
      n = i
    end
    assert.are.equal(100, n)
    assert.is_nil(res:read()) -- and it stays at its end
    assert.are.equal(100, h:written())
  end)

  it("read(timeout) gives client.timeout while nothing arrives, and the stream goes on", function()
    local res = h:fetch("/stream/3?gap=1500", { stream = true })
    assert.are.equal("chunk 0\n", res:read(10))
    -- the next chunk is 1.5 s away: nothing is there now
    local data, err = res:read(0)
    assert.is_nil(data)
    assert.is_true(rivet.isActorError(err, "client.timeout"), tostring(err))
    assert.are.equal(1, h:written())
    assert.are.equal("chunk 1\nchunk 2\n", res:text())
  end)

  it("close() and garbage collection end the transfer", function()
    local res = h:fetch("/stream/100", { stream = true })
    assert.truthy(res:read(10))
    res:close()
    assert.are.equal(0, client._transport:pending())
    assert.is_nil(res:read())
    local res2 = h:fetch("/stream/100", { stream = true })
    assert.truthy(res2:read(10))
    res2 = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    client:poll(0)
    assert.are.equal(0, client._transport:pending())
    -- the client goes on
    assert.are.equal("pong", h:ping())
  end)

  it("reads inside a task yield to the loop", function()
    local got, ticks = {}, 0
    local t = client:spawn(function()
      local res = h:fetch("/stream/5", { stream = true })
      for chunk in res:chunks() do got[#got + 1] = chunk end
      return #got
    end)
    while not t.done do
      client:poll(0.01)
      ticks = ticks + 1
    end
    assert.is_true(t:await() >= 1)
    assert.are.equal("chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n", table.concat(got))
    assert.is_true(ticks > 1) -- the loop ran between the pieces
  end)

  it("an error response is read whole; route errors stay ActorErrors", function()
    local res = h:fetch("/status/404", { stream = true })
    assert.are.equal(404, res.status)
    assert.are.equal("status 404", res:text())
    local counter = client.counter:getOrCreate(env.key("noreq"))
    local e = env.catch(counter.fetch, counter, "/x", { stream = true })
    assert.is_true(rivet.isActorError(e), tostring(e))
  end)

  it("takes the request body from a function, chunk by chunk", function()
    local parts, i = { "a", "bb", "", "ccc" }, 0
    local res = h:fetch("/upload", { method = "POST", body = function()
      i = i + 1
      return parts[i]
    end })
    assert.are.equal(200, res.status)
    assert.are.same({ bytes = 6, text = "abbccc" }, res:json())
    -- a large one, with a body function that waits between chunks
    local n = 0
    local big = h:fetch("/upload", { method = "PUT", body = function()
      n = n + 1
      if n > 200 then return nil end
      if n % 50 == 0 then client:sleep(0.01) end
      return string.rep("z", 1000)
    end })
    assert.are.equal(200000, big:json().bytes)
  end)

  it("a failing body function fails the call with client.body_failed", function()
    local e = env.catch(h.fetch, h, "/upload", { method = "POST", body = function() error("no more data") end })
    assert.is_true(rivet.isActorError(e, "client.body_failed"), tostring(e))
    assert.truthy(e.message:find("no more data", 1, true))
    local e2 = env.catch(h.fetch, h, "/upload", { method = "POST", body = function() return 42 end })
    assert.is_true(rivet.isActorError(e2, "client.body_failed"), tostring(e2))
    assert.are.equal(0, client._transport:pending())
    local e3 = env.catch(h.fetch, h, "/x", { stream = "yes" })
    assert.truthy(tostring(e3):find("stream must be a boolean", 1, true))
  end)
end)
