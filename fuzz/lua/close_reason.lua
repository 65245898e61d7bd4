-- Close codes and reasons (protocol.md §9.9): a connected machine with calls in flight
-- and queued is closed with the code and reason from the input. Checks: every call in
-- flight fails exactly once with a well-formed error; at most one connection error;
-- on 2.3 a reason "<group>.<code>[#<rayId>]" gives that group and code (2.0: 1011 and a
-- code word), as the spec says; the machine then reconnects and serves a call.
-- Input: byte 1 = encoding (% 3) + line (/ 3 % 2) + 64 * no code + 128 * handshake
-- failed; bytes 2-3 = the close code; the rest is the reason.
local ENCS, LINES = { "bare", "cbor", "json" }, { "2.3", "2.0" }

local function parse23(reason)
  local hash = reason:find("#", 1, true)
  local head = hash and reason:sub(1, hash - 1) or reason
  local dot = head:find(".", 1, true)
  if not dot or dot == 1 or dot == #head then return nil end
  return head:sub(1, dot - 1), head:sub(dot + 1), hash and reason:sub(hash + 1) or nil
end

function fuzz(data)
  local r = reader(data)
  local cfg = r.u8()
  local enc, line = ENCS[cfg % 3 + 1], LINES[(cfg // 3) % 2 + 1]
  local has_code, hs = cfg & 64 == 0, cfg & 128 ~= 0
  local code = r.u16()
  local reason = r.rest()
  local tagged = enc == "json" or line == "2.3"
  local S = server_frames(enc, line, tagged)
  local sm = core.conn_new({ encoding = enc, line = line, seed = 1, error_mt = ERROR_MT })
  local calls = {}
  sm:start(0)
  sm:feed(S.init("a", "c"), 0)
  for i = 0, 2 do
    calls[sm:call("f", { i }, nil, i)] = "pending"
  end
  drain_checked(sm, calls)
  sm:closed(has_code and code or nil, reason, 1, hs)
  local out = drain_checked(sm, calls)
  local errors, status = 0, sm:status()
  for _, it in ipairs(out) do
    if it[1] == "error" then errors = errors + 1 end
  end
  if errors > 1 then finding("%d connection errors for one close", errors) end
  for id = 0, 2 do
    if calls[id] ~= "done" then finding("call %d in flight did not fail", id) end
  end
  if status ~= "idle" and status ~= "disconnected" then finding("status %s after a close", status) end
  local first
  for _, it in ipairs(out) do
    if it[1] == "result" then first = it[4] break end
  end
  if line == "2.3" and has_code and code ~= 1000 then
    local g, c = parse23(reason)
    if g and (first.group ~= g or first.code ~= c) then
      finding("reason %q gave %s.%s", reason, tostring(first.group), tostring(first.code))
    end
  elseif line == "2.0" and has_code and code == 1011 and reason ~= "" and reason ~= "Disposed" then
    if first.code ~= reason then finding("2.0 reason %q gave code %s", reason, tostring(first.code)) end
  end
  -- the machine carries on: reconnect, a call, a response
  if status == "disconnected" then
    local t = 1
    for _ = 1, 100 do
      t = t + 1
      if sm:tick(t) then break end
    end
    sm:start(t)
    sm:feed(S.init("a", "c2"), t)
    calls[sm:call("g", {}, nil, 10)] = "pending"
    sm:feed(S.response(3, 1), t)
    drain_checked(sm, calls)
  end
  sm:dispose(100)
  drain_checked(sm, calls)
  for id, st in pairs(calls) do
    if st ~= "done" then finding("call %s never ended", tostring(id)) end
  end
end
