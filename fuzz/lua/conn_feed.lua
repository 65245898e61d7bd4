-- The connection state machine (core.conn_new) driven by a script read from the input:
-- frames in any order (hostile bytes, or well-formed Init/ActionResponse/Event/Error
-- frames with ids from the input), calls with and without deadlines, subscriptions,
-- ticks, transport closes and reconnects, in any order. Checks: no method raises, every
-- outbox item is well-formed, a call ends at most once (never twice), and after dispose
-- every call has ended (none hangs) with pending() == 0.
-- Input: byte 1 = encoding (% 3) and line (/ 3 % 2); then ops, one byte each (% 14) and
-- their operands (see below; fuzz/capture.lua writes real connections in this form).
local ENCS, LINES = { "bare", "cbor", "json" }, { "2.3", "2.0" }
local EVENTS = { "newCount", "tick", "x" }

function fuzz(data)
  local r = reader(data)
  local cfg = r.u8()
  local enc, line = ENCS[cfg % 3 + 1], LINES[(cfg // 3) % 2 + 1]
  local tagged = enc == "json" or line == "2.3"
  local S = server_frames(enc, line, tagged)
  local sm = core.conn_new({ encoding = enc, line = line, seed = cfg, error_mt = ERROR_MT,
                             backoff_initial = 0.01, backoff_max = 0.5 })
  local now, calls, next_call = 0, {}, 0
  local function settle_direct(fut)
    if fut ~= nil then
      if calls[fut] ~= "pending" then finding("a direct result for call %s, which is %s", tostring(fut), tostring(calls[fut])) end
      calls[fut] = "done"
    end
  end
  local steps = 0
  while r.left() > 0 and steps < 200 do
    steps = steps + 1
    local op = r.u8() % 14
    if op == 0 then -- raw bytes as a frame: 2-byte length, bytes, direct flag
      settle_direct(sm:feed(r.take(r.u16()), now, r.u8() % 2 == 1))
    elseif op == 1 then
      sm:feed(S.init("actor-" .. r.u8(), "conn-" .. r.u8()), now)
    elseif op == 2 then
      local id = r.u8() % (next_call + 2)
      settle_direct(sm:feed(S.response(id, gen(r, 2, { json = enc == "json" })), now, r.u8() % 2 == 1))
    elseif op == 3 then
      sm:feed(S.event(EVENTS[r.u8() % #EVENTS + 1], { r.u8(), "a" }), now)
    elseif op == 4 then
      local aid = r.u8()
      sm:feed(S.error(r.u8() % 2 == 0 and "actor" or "user", r.take(r.u8() % 12), "m", aid ~= 255 and aid % (next_call + 2) or nil), now)
    elseif op == 5 then
      now = now + r.u8() / 32
      if sm:tick(now) then sm:start(now) end
    elseif op == 6 then
      local code = r.u8() % 4 == 0 and nil or 1000 + r.u8() % 16
      sm:closed(code, r.take(r.u8() % 24), now, r.u8() % 2 == 1)
    elseif op == 7 then
      sm:start(now)
    elseif op == 8 or op == 9 then
      local deadline = r.u8() % 2 == 0 and now + r.u8() / 16 or nil
      local id
      if op == 8 then
        id = sm:call("act" .. r.u8() % 3, { r.u8() }, deadline, next_call)
      else
        id = sm:callv("act", deadline, next_call, r.u8(), nil, "s")
      end
      if id ~= next_call then finding("call id %s, expected %d", tostring(id), next_call) end
      calls[id] = "pending"
      next_call = next_call + 1
    elseif op == 10 then
      sm:subscribe(EVENTS[r.u8() % #EVENTS + 1])
    elseif op == 11 then
      sm:unsubscribe(EVENTS[r.u8() % #EVENTS + 1])
    elseif op == 12 then
      drain_checked(sm, calls)
    else
      sm:next_wakeup()
      if sm:pending() < 0 then finding("pending() < 0") end
    end
    if not STATUSES[sm:status()] then finding("status() %s", tostring(sm:status())) end
  end
  drain_checked(sm, calls)
  sm:dispose(now)
  drain_checked(sm, calls)
  for id, st in pairs(calls) do
    if st ~= "done" then finding("call %d never ended (after dispose)", id) end
  end
  if sm:pending() ~= 0 then finding("pending() %d after dispose", sm:pending()) end
  if sm:status() ~= "disposed" then finding("status %s after dispose", sm:status()) end
end
