// Network-side fuzzing for spec/network_fuzz_spec.lua: a RivetKit-like server (Node, no
// dependencies, raw TCP) whose answers are random but framed, driven by a seed.
//
//   node spec/fake/fuzz_server.mjs SEED     prints "<port> <pid>" once it listens on
//                                           127.0.0.1
//
// GET /metadata answers "RivetKit 2.3.19 on the engine" or "2.0.0" (SEED decides, so both
// dialects get fuzzed). Every other answer is drawn from a PRNG seeded by SEED, the
// request's actor id or key (the first path segment after /gateway/, or the key of a
// PUT /actors) and how many requests that id had before, so a run is reproducible
// whatever the timing:
//   HTTP (actions, raw fetch, /actors): a status line (valid, odd code, HTTP/1.0,
//     garbage), header lines (content types, x-rivet-error, right/wrong/absurd
//     content-length, chunked, junk lines, long values), a body (random bytes, JSON,
//     BARE and CBOR look-alikes, RivetKit error bodies), chunked with random chunk sizes
//     and broken framing; written in random pieces; sometimes cut early or never ended.
//   WebSocket (/connect, /websocket): a 101 (or a random HTTP answer), often a valid
//     Init, then random frames: text/binary/continuation/ping/pong/close/reserved
//     opcodes, FIN or not, 7/16/64-bit lengths (some announcing more than follows),
//     masked or RSV bits set sometimes, payloads random or mutated protocol messages;
//     then a close, a drop, or silence.
// Ids "sane-..." get proper answers (the spec checks the client still works).
import crypto from "node:crypto";
import { listen, parseHead, serve } from "./raw_server.mjs";
import { acceptKey, frame, frameHead, upgradeHead } from "./wsframe.mjs";

const SEED = Number(process.argv[2] || 1) >>> 0;
const counts = new Map();

function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function rngFor(id) {
  const n = counts.get(id) || 0;
  counts.set(id, n + 1);
  const h = crypto.createHash("sha256").update(`${SEED}/${id}/${n}`).digest();
  return mulberry32(h.readUInt32LE(0));
}

const V23 = SEED % 2 === 0;
const ACTOR = "fuzzactor000000000000000000000";

function mk(r) {
  const int = (n) => Math.floor(r() * n);
  const pick = (a) => a[int(a.length)];
  const bytes = (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  const size = () => pick([0, 1, 2, 3, 5, 8, 13, 50, 126, 127, 200, 1000, 65535, 65536, 70000]);
  return { r, int, pick, bytes, size };
}

// ---- bodies ---------------------------------------------------------------------------

function cborHead(major, n) {
  if (n < 24) return Buffer.from([major * 32 + n]);
  if (n < 256) return Buffer.from([major * 32 + 24, n]);
  const b = Buffer.alloc(3);
  b[0] = major * 32 + 25;
  b.writeUInt16BE(n & 0xffff, 1);
  return b;
}

function mutate(g, b) {
  b = Buffer.from(b);
  const n = g.int(4);
  for (let i = 0; i < n && b.length; i++) {
    const k = g.int(3);
    const at = g.int(b.length);
    if (k === 0) b[at] = g.int(256);
    else if (k === 1) b = b.subarray(0, at);
    else b = Buffer.concat([b.subarray(0, at), g.bytes(g.int(8)), b.subarray(at)]);
  }
  return b;
}

function randomJsonValue(g, depth = 0) {
  switch (g.int(depth > 2 ? 5 : 8)) {
    case 0: return g.int(1000) - 500;
    case 1: return g.r() * 1e6;
    case 2: return g.pick(["", "x", "é", "\u0000", "$BigInt", "a".repeat(g.int(300))]);
    case 3: return null;
    case 4: return g.r() < 0.5;
    case 5: return ["$BigInt", String(g.int(1e9))];
    case 6: return Array.from({ length: g.int(4) }, () => randomJsonValue(g, depth + 1));
    default: return { a: randomJsonValue(g, depth + 1), output: randomJsonValue(g, depth + 1) };
  }
}

function httpBody(g) {
  switch (g.int(9)) {
    case 0: return g.bytes(g.size());
    case 1: return Buffer.from(JSON.stringify({ output: randomJsonValue(g) }));
    case 2: return Buffer.from(JSON.stringify({ group: g.pick(["actor", "guard", "user", "x"]), code: g.pick(["not_found", "service_unavailable", "action_not_found", "destroyed_x", "restarting", "oops"]), message: "m", metadata: randomJsonValue(g) }));
    case 3: return mutate(g, Buffer.from([V23 ? 4 : 2, 0, 1, g.int(256)]));
    case 4: return mutate(g, Buffer.concat([Buffer.from([V23 ? 4 : 2, 0]), cborHead(3, 5), Buffer.from("hello")]));
    case 5: return mutate(g, Buffer.from(JSON.stringify({ output: randomJsonValue(g) })));
    case 6: return Buffer.from(JSON.stringify({ actor: { actor_id: g.pick([ACTOR, "", 5, null]), name: "a" }, actors: [{ actor_id: ACTOR }], created: true }));
    case 7: return Buffer.from("<html>" + "x".repeat(g.int(500)) + "</html>");
    default: return Buffer.alloc(0);
  }
}

// ---- HTTP -----------------------------------------------------------------------------

function httpAnswer(g) {
  const parts = [];
  const body = httpBody(g);
  const status = g.pick(["200", "200", "200", "404", "500", "503", "400", "204", "304", "101", "302", "999", "099", "2000", "abc"]);
  const sl = g.int(12);
  if (sl === 0) parts.push(g.bytes(g.int(40)));
  else if (sl === 1) parts.push(Buffer.from(`HTTP/1.0 ${status} X\r\n`));
  else if (sl === 2) parts.push(Buffer.from(`HTTP/1.1 ${status}\n`));
  else parts.push(Buffer.from(`HTTP/1.1 ${status} OK\r\n`));
  const chunked = g.r() < 0.25;
  const nh = g.int(8);
  for (let i = 0; i < nh; i++) {
    switch (g.int(10)) {
      case 0: parts.push(Buffer.from(`content-type: ${g.pick(["application/json", "application/octet-stream", "text/plain", "text/html", ""])}\r\n`)); break;
      case 1: parts.push(Buffer.from(`x-rivet-error: ${g.pick(["guard.service_unavailable", "actor.not_found", "nodot", ".", "a.b.c"])}\r\n`)); break;
      case 2: parts.push(Buffer.from(`content-length: ${g.pick([0, 1, body.length + 5, 99999999999, -1, "x"])}\r\n`)); break;
      case 3: parts.push(g.bytes(g.int(30))); parts.push(Buffer.from("\r\n")); break;
      case 4: parts.push(Buffer.from(`x-long: ${"v".repeat(g.pick([10, 1000, 50000]))}\r\n`)); break;
      case 5: parts.push(Buffer.from("transfer-encoding: gzip\r\n")); break;
      case 6: parts.push(Buffer.from("x-rivet-ray-id: r\r\nconnection: close\r\n")); break;
      default: parts.push(Buffer.from(`x-h${i}: ${g.int(1e6)}\r\n`));
    }
  }
  if (chunked) {
    parts.push(Buffer.from("transfer-encoding: chunked\r\n\r\n"));
    let off = 0;
    while (off < body.length) {
      const n = Math.min(body.length - off, 1 + g.int(300));
      const bad = g.r() < 0.1;
      parts.push(Buffer.from((bad ? n + g.int(9) - 4 : n).toString(16) + g.pick(["\r\n", "\r\n", ";x=y\r\n", "\n"])));
      parts.push(body.subarray(off, off + n));
      parts.push(Buffer.from("\r\n"));
      off += n;
    }
    if (g.r() < 0.85) parts.push(Buffer.from(g.pick(["0\r\n\r\n", "0\r\nx-trailer: 1\r\n\r\n", "zz\r\n"])));
  } else {
    if (g.r() < 0.8) parts.push(Buffer.from(`content-length: ${body.length}\r\n`));
    parts.push(Buffer.from("\r\n"));
    parts.push(body);
  }
  return Buffer.concat(parts);
}

// Writes buf in random pieces with short pauses; then ends, cuts it short, or keeps the
// socket open (the client must give up by its deadline).
function send(g, sock, buf, then) {
  const ending = g.int(20);
  if (ending === 0) buf = buf.subarray(0, g.int(buf.length + 1)); // early close
  const pieces = [];
  let off = 0;
  while (off < buf.length) {
    const n = g.r() < 0.5 ? buf.length - off : 1 + g.int(Math.max(1, buf.length - off));
    pieces.push(buf.subarray(off, off + n));
    off += n;
  }
  const delays = pieces.map(() => (g.r() < 0.2 ? g.int(15) : 0));
  const hang = ending === 1;
  let i = 0;
  const next = () => {
    if (sock.destroyed) return;
    if (i < pieces.length) {
      sock.write(pieces[i]);
      const d = delays[i++];
      return d ? setTimeout(next, d) : setImmediate(next);
    }
    if (then) return then();
    // a complete answer on a socket left open: the client may send its next request
    // on it (keep-alive), which is served like any other
    if (hang) sock.emit("answered");
    else sock.end();
  };
  next();
}

// ---- WebSocket ------------------------------------------------------------------------

function bareStr(s) {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length]), b]);
}
function initMsg(enc) {
  if (enc === "json") return Buffer.from(JSON.stringify({ body: { tag: "Init", val: { actorId: ACTOR, connectionId: "c1", connectionToken: "t" } } }));
  if (enc === "cbor") {
    const kv = (k, v) => Buffer.concat([cborHead(3, k.length), Buffer.from(k), cborHead(3, v.length), Buffer.from(v)]);
    return Buffer.concat([Buffer.from([0xa1]), cborHead(3, 4), Buffer.from("body"), Buffer.from([0xa2]),
      cborHead(3, 3), Buffer.from("tag"), cborHead(3, 4), Buffer.from("Init"), cborHead(3, 3), Buffer.from("val"),
      Buffer.from([0xa2]), kv("actorId", ACTOR), kv("connectionId", "c1")]);
  }
  return V23 ? Buffer.concat([Buffer.from([4, 0, 0]), bareStr(ACTOR), bareStr("c1")])
    : Buffer.concat([Buffer.from([2, 0, 0]), bareStr(ACTOR), bareStr("c1"), bareStr("t")]);
}
function protoMsg(g, enc) {
  if (enc === "json") {
    const tag = g.pick(["ActionResponse", "Event", "Error", "Init", "Bogus"]);
    return Buffer.from(JSON.stringify({ body: { tag, val: { id: g.pick([0, 1, 2, ["$BigInt", "1"], -1, "x"]), output: randomJsonValue(g), name: "ev", args: [1], group: "user", code: "c", message: "m", actionId: g.pick([null, 0, 1]) } } }));
  }
  const v = V23 ? 4 : 2;
  const tag = g.int(5);
  if (tag === 2) return Buffer.from([v, 0, 2, g.int(4), 1, g.int(256)]); // ActionResponse-ish
  if (tag === 3) return Buffer.concat([Buffer.from([v, 0, 3]), bareStr("ev"), Buffer.from([2, 0x81, 1])]); // Event-ish
  if (tag === 1) return Buffer.concat([Buffer.from([v, 0, 1]), bareStr("user"), bareStr("c"), bareStr("m"), Buffer.from([0, 0])]);
  return g.bytes(g.int(20));
}

function wsFrame(g, enc) {
  const ops = [0x1, 0x2, 0x2, 0x1, 0x0, 0x8, 0x9, 0xa, 0x3, 0xb];
  const op = g.pick(ops);
  let payload = g.r() < 0.5 ? protoMsg(g, enc) : mutate(g, protoMsg(g, enc));
  if (op === 0x8) payload = Buffer.concat([Buffer.from([g.pick([3, 0x0f, 0x10]), g.int(256)]), Buffer.from(g.pick(["", "bye", "user.forbidden", "a".repeat(200)]))]).subarray(0, g.pick([0, 1, 2, 10, 125, 300]));
  if (g.r() < 0.05) payload = g.bytes(g.size());
  const fin = g.r() < 0.85 ? 0x80 : 0;
  const rsv = g.r() < 0.03 ? 0x40 : 0;
  const masked = g.r() < 0.03;
  let len = payload.length;
  const lie = g.r() < 0.05; // announce more than follows
  if (lie) len += 1 + g.int(1 << 20);
  const form = len < 126 && g.r() < 0.9 ? 0 : len < 65536 && g.r() < 0.8 ? 1 : 2;
  const head = frameHead(fin | rsv | op, form === 2 && g.r() < 0.05 ? 1n << 62n : len, form, masked);
  const mask = masked ? g.bytes(4) : Buffer.alloc(0);
  return Buffer.concat([head, mask, payload]);
}

function wsUpgrade(g, sock, hdrs) {
  const protos = (hdrs["sec-websocket-protocol"] || "").split(",").map((s) => s.trim());
  const encEntry = protos.find((p) => p.startsWith("rivet_encoding."));
  const enc = encEntry ? encEntry.slice("rivet_encoding.".length) : "json";
  const k = g.int(20);
  if (k === 0) return send(g, sock, httpAnswer(g));
  if (k === 1) return sock.destroy();
  const chosen = g.r() < 0.95 ? protos[0] || "" : g.pick(["", "other", "rivet"]);
  const parts = [upgradeHead(g.r() < 0.97 ? acceptKey(hdrs["sec-websocket-key"]) : "bad", chosen)];
  if (g.r() < 0.7) parts.push(frame(enc === "json" ? 0x81 : 0x82, initMsg(enc)));
  const n = g.int(10);
  for (let i = 0; i < n; i++) parts.push(wsFrame(g, enc));
  const after = g.int(4);
  // answer pings and closes minimally; otherwise end as drawn
  sock.on("data", () => {});
  send(g, sock, Buffer.concat(parts), () => {
    if (after === 0) sock.end();
    else if (after === 1) sock.destroy();
    else if (after === 2) setTimeout(() => sock.destroy(), g.int(300));
    // 3: silence, the client gives up by its deadline
  });
}

// ---- requests -------------------------------------------------------------------------

function proper(sock, status, body, ctype = "application/json") {
  const b = Buffer.from(body);
  sock.end(Buffer.concat([Buffer.from(`HTTP/1.1 ${status} OK\r\ncontent-type: ${ctype}\r\ncontent-length: ${b.length}\r\nconnection: close\r\n\r\n`), b]));
}

function handle(sock, head, body) {
  const { target, path, hdrs } = parseHead(head);
  if (path === "/metadata") return proper(sock, 200, JSON.stringify(V23 ? { runtime: "engine", version: "2.3.19" } : { runtime: "rivetkit", version: "2.0.0" }));
  let id = "";
  if (path === "/actors") {
    try { id = String(JSON.parse(body.toString()).key); } catch { id = "x"; }
    if (!id.startsWith("fz")) return proper(sock, 200, JSON.stringify({ actor: { actor_id: "sane-" + id }, actors: [{ actor_id: "sane-" + id }] }));
  } else {
    const m = target.match(/^\/gateway\/([^/@?]+)/);
    id = m ? decodeURIComponent(m[1]) : "none";
  }
  const isWs = (hdrs.upgrade || "").toLowerCase() === "websocket";
  if (id.startsWith("sane")) {
    if (isWs) return sock.destroy();
    const enc = hdrs["x-rivet-encoding"] || "json";
    if (enc === "json") return proper(sock, 200, '{"output":1}');
    if (enc === "cbor") return proper(sock, 200, Buffer.concat([Buffer.from([0xa1, 0x66]), Buffer.from("output"), Buffer.from([1])]), "application/octet-stream");
    return proper(sock, 200, Buffer.from([V23 ? 4 : 2, 0, 1, 1]), "application/octet-stream");
  }
  const g = mk(rngFor(id));
  if (isWs) return wsUpgrade(g, sock, hdrs);
  send(g, sock, httpAnswer(g));
}

// keep-alive: a complete answer on a socket left open emits "answered" (see send)
listen(serve(handle, { keepAlive: true }), 60 * 60 * 1000);
