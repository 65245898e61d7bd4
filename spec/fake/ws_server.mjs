// A misbehaving RivetKit connection endpoint for spec/ws_fault_spec.lua (Node, no
// dependencies; the WebSocket handshake and framing are done by hand).
//
//   node spec/fake/ws_server.mjs     prints "<port> <pid>" once it listens on 127.0.0.1
//
// GET /metadata says "RivetKit 2.3.19 on the engine", so clients speak the 2.3 dialect
// (BARE v4). A WebSocket to /gateway/<behaviour>/connect (clients get there with
// client.x:getForId("<behaviour>")) gets a valid Init in the offered encoding and then,
// once the client sends its first frame (an action), what <behaviour> names:
//   ok              a proper ActionResponse echoing the request id with output 7 (sanity)
//   garbage         random-looking bytes (a text frame for json)
//   truncated       a BARE ActionResponse cut short
//   absurd-length   a BARE Event whose name claims to be ~4 GB long
//   unknown-tag     a union tag no protocol version has (BARE), or an unknown "tag" string
//   bad-cbor        a CBOR map that breaks off in the middle
//   bad-json        a text frame that is not JSON
//   huge-frame      a WebSocket frame header announcing 2^62 bytes, then silence, then a drop
//   no-init         never sends Init (the client must give up the attempt by its deadline)
// Every upgrade is counted; GET /stats returns {"upgrades": n}.
import http from "node:http";
import { acceptKey, frame as wsFrame, HUGE_FRAME_HEAD, upgradeHead } from "./wsframe.mjs";

let upgrades = 0;

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/metadata")) {
    const body = JSON.stringify({ runtime: "engine", version: "2.3.19" });
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(body);
  }
  if (req.url.startsWith("/stats")) {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ upgrades }));
  }
  res.writeHead(404, { "content-type": "application/json" });
  res.end(JSON.stringify({ group: "api", code: "not_found", message: "fake: no such route" }));
});

// ---- tiny encoders -------------------------------------------------------------------

function cborHead(major, n) {
  if (n < 24) return Buffer.from([major * 32 + n]);
  if (n < 256) return Buffer.from([major * 32 + 24, n]);
  const b = Buffer.alloc(3);
  b[0] = major * 32 + 25;
  b.writeUInt16BE(n, 1);
  return b;
}
function cbor(v) {
  if (typeof v === "string") {
    const s = Buffer.from(v, "utf8");
    return Buffer.concat([cborHead(3, s.length), s]);
  }
  if (typeof v === "number") return cborHead(0, v);
  if (typeof v === "bigint") {
    const b = Buffer.alloc(9);
    b[0] = 0x1b;
    b.writeBigUInt64BE(v, 1);
    return b;
  }
  const keys = Object.keys(v);
  return Buffer.concat([cborHead(5, keys.length), ...keys.flatMap((k) => [cbor(k), cbor(v[k])])]);
}
function bareStr(s) {
  const b = Buffer.from(s, "utf8");
  return Buffer.concat([Buffer.from([b.length]), b]); // all our strings are < 128 bytes
}

const ACTOR = "fakeactor00000000000000000000";
const CONN = "11111111-2222-3333-4444-555555555555";

function initFrame(enc) {
  if (enc === "json") return JSON.stringify({ body: { tag: "Init", val: { actorId: ACTOR, connectionId: CONN } } });
  if (enc === "cbor") return cbor({ body: { tag: "Init", val: { actorId: ACTOR, connectionId: CONN } } });
  return Buffer.concat([Buffer.from([4, 0, 0]), bareStr(ACTOR), bareStr(CONN)]);
}

// Reads the action id of the client's first frame (good enough for "ok").
function requestId(enc, payload) {
  try {
    if (enc === "json") {
      const id = JSON.parse(payload.toString()).body.val.id;
      return Array.isArray(id) ? BigInt(id[1]) : BigInt(id);
    }
    if (enc === "bare") {
      // 04 00 | 00 ActionRequest | uint id ...
      let i = 3, shift = 0n, id = 0n;
      for (;;) {
        const b = payload[i++];
        id |= BigInt(b & 0x7f) << shift;
        if (!(b & 0x80)) return id;
        shift += 7n;
      }
    }
  } catch {}
  return 0n;
}

function reply(behaviour, enc, payload) {
  const text = enc === "json";
  switch (behaviour) {
    case "ok": {
      const id = requestId(enc, payload);
      if (enc === "json") return [JSON.stringify({ body: { tag: "ActionResponse", val: { id: ["$BigInt", String(id)], output: 7 } } }), true];
      if (enc === "cbor") return [cbor({ body: { tag: "ActionResponse", val: { id, output: 7 } } }), false];
      return [Buffer.from([4, 0, 2, Number(id), 1, 7]), false];
    }
    case "garbage":
      return text ? ["\u0001\u0002 not a message \u00ff", true] : [Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x13, 0x37]), false];
    case "truncated":
      return [Buffer.from([4, 0, 2, 0x80]), false]; // ActionResponse, id varint never ends
    case "absurd-length":
      return [Buffer.from([4, 0, 3, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x61, 0x62]), false]; // Event, name length ~4 GB
    case "unknown-tag":
      if (enc === "bare") return [Buffer.from([4, 0, 0x2a, 0, 0]), false];
      if (enc === "cbor") return [cbor({ body: { tag: "Bogus", val: {} } }), false];
      return [JSON.stringify({ body: { tag: "Bogus", val: {} } }), true];
    case "bad-cbor":
      return [Buffer.concat([cbor({ body: { tag: "Event", val: { name: "x" } } }).subarray(0, 12)]), false];
    case "bad-json":
      return ['{"body":{"tag":"ActionResponse","val":{"id":', true];
    default:
      return null;
  }
}

// ---- WebSocket framing ---------------------------------------------------------------

// A text or binary frame of data (a string or a Buffer).
function frame(data, text) {
  return wsFrame(text ? 0x81 : 0x82, Buffer.isBuffer(data) ? data : Buffer.from(data, "utf8"));
}

// Parses complete client frames out of buf; returns [frames, rest].
function parseFrames(buf) {
  const out = [];
  for (;;) {
    if (buf.length < 2) break;
    const op = buf[0] & 0x0f;
    let len = buf[1] & 0x7f;
    let off = 2;
    if (len === 126) {
      if (buf.length < 4) break;
      len = buf.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (buf.length < 10) break;
      len = Number(buf.readBigUInt64BE(2));
      off = 10;
    }
    const masked = buf[1] & 0x80;
    const mask = masked ? buf.subarray(off, off + 4) : null;
    if (masked) off += 4;
    if (buf.length < off + len) break;
    const p = Buffer.from(buf.subarray(off, off + len));
    if (mask) for (let i = 0; i < p.length; i++) p[i] ^= mask[i % 4];
    out.push({ op, payload: p });
    buf = buf.subarray(off + len);
  }
  return [out, buf];
}

server.on("upgrade", (req, socket) => {
  upgrades++;
  socket.on("error", () => {});
  const m = req.url.match(/^\/gateway\/([^/@?]+)[^/]*\/connect/);
  const behaviour = m ? decodeURIComponent(m[1]) : "unknown";
  const protos = (req.headers["sec-websocket-protocol"] || "").split(",").map((s) => s.trim());
  const encEntry = protos.find((p) => p.startsWith("rivet_encoding."));
  const enc = encEntry ? encEntry.slice("rivet_encoding.".length) : "json";
  socket.write(upgradeHead(acceptKey(req.headers["sec-websocket-key"]), "rivet"));
  if (behaviour !== "no-init") socket.write(frame(initFrame(enc), enc === "json"));

  let buf = Buffer.alloc(0);
  let answered = false;
  socket.on("data", (d) => {
    let frames;
    [frames, buf] = parseFrames(Buffer.concat([buf, d]));
    for (const f of frames) {
      if (f.op === 0x8) {
        // close: echo it and hang up
        socket.end(wsFrame(0x88, f.payload));
        return;
      }
      if (f.op === 0x9) {
        socket.write(wsFrame(0x8a, f.payload));
        continue;
      }
      // answer the first action request only (subscriptions are 1-byte-tag frames too,
      // so look for the action tag)
      const isAction =
        enc === "json" ? f.payload.toString().includes('"ActionRequest"') :
        enc === "cbor" ? f.payload.includes(Buffer.from("ActionRequest")) :
        f.payload[2] === 0;
      if (!isAction || answered) continue;
      answered = true;
      if (behaviour === "huge-frame") {
        socket.write(Buffer.concat([HUGE_FRAME_HEAD, Buffer.from("abc")]));
        setTimeout(() => socket.destroy(), 300);
        continue;
      }
      const r = reply(behaviour, enc, f.payload);
      if (r) socket.write(frame(r[0], r[1]));
    }
  });
});

server.listen(0, "127.0.0.1", () => {
  console.log(`${server.address().port} ${process.pid}`);
});
setTimeout(() => process.exit(0), 30 * 60 * 1000).unref();
process.on("SIGTERM", () => process.exit(0));
