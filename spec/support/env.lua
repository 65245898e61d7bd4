-- Shared by the specs: which server to talk to and small helpers.
-- scripts/test.sh sets RIVET_TEST_ENDPOINT and RIVET_TEST_SERVER (v23 | v20).
local rivet = require("rivet")

local M = {}

M.endpoint = os.getenv("RIVET_TEST_ENDPOINT") or "http://127.0.0.1:6420"
M.server = os.getenv("RIVET_TEST_SERVER") or "v23"
M.line = M.server == "v20" and "2.0" or "2.3"
M.encodings = { "bare", "cbor", "json" }

-- The interpreter running the specs (scripts/test.sh runs them on both) and where its
-- build of rivet.core is: a spec that starts a Lua child process uses the same.
M.luajit = rawget(_G, "jit") ~= nil
M.lua_bin = M.luajit and "luajit" or "lua5.4"
M.cpath = M.luajit and "./build/luajit/?.so" or "./build/?.so"

local seq = 0
local run_id = tostring(os.time()) .. "-" .. tostring(math.random(1, 1e9))

--- A key no other test (or earlier run against the same server) uses.
function M.key(prefix)
  seq = seq + 1
  return (prefix or "k") .. "-" .. run_id .. "-" .. seq
end

--- A client on the test server with the given encoding (and extra options).
function M.client(encoding, opts)
  local o = { encoding = encoding, timeout = 30 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return rivet.client(M.endpoint, o)
end

--- Runs fn and returns the error it raised (fails the test if it raised none).
function M.catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, but the call succeeded")
  return err
end

--- v23 / v20 choice.
function M.pick(v23, v20)
  if M.server == "v20" then return v20 end
  return v23
end

--- Runs client's loop until pred() is true; fails after `secs` seconds (default 10).
function M.wait_for(client, pred, secs, what)
  local now = require("rivet.core").now
  local deadline = now() + (secs or 10)
  while not pred() do
    assert(now() < deadline, "timed out waiting for " .. (what or "a condition"))
    client:poll(0.02)
  end
end

return M
