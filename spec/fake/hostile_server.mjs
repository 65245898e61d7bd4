// A hostile RivetKit-like server for spec/security_spec.lua (Node, no dependencies; raw
// TCP, so that it sees every byte a client sends and can answer with anything).
//
//   node spec/fake/hostile_server.mjs LOG     prints "<port> <pid>" once it listens on
//                                             127.0.0.1; appends every request's raw
//                                             bytes (head and body) to LOG
//
// GET /metadata says "RivetKit 2.3.19 on the engine"; PUT/POST /actors answers an actor
// whose id is the key it was given (so getOrCreate("..") gets the id ".."); GET /stats
// answers {"sent": bytes of hostile answers so far}. Gateway routes /gateway/<id>/...
// answer what <id> names:
//   endless-body      200, no length, body bytes until the client goes away
//   endless-chunked   200, chunked, chunks until the client goes away
//   endless-header    200 (101 to an upgrade) and one header line that never ends
//   many-headers      200 and header lines that never end
//   endless-chunk-line  200, chunked, and a chunk-size line that never ends (an
//                     extension after the size)
//   bad-chunk-size    200, chunked, and a chunk-size line without a hex digit
//   bad-length        200 with content-length: -1
//   huge-frame        (WebSocket upgrade) 101, then one binary frame announcing 2^62
//                     bytes, and payload bytes until the client goes away
//   anything else     200 {"output": 1} (JSON) / BARE v4 uint 1; an upgrade gets 404
import fs from "node:fs";
import { listen, parseHead, serve } from "./raw_server.mjs";
import { acceptKey, HUGE_FRAME_HEAD, upgradeHead } from "./wsframe.mjs";

const logPath = process.argv[2];
let sent = 0;
const CHUNK = Buffer.alloc(256 * 1024, 0x61);

function record(buf) {
  if (logPath) fs.appendFileSync(logPath, buf);
}

function answer(sock, status, body, headers = {}) {
  const b = Buffer.from(body);
  let h = `HTTP/1.1 ${status} X\r\ncontent-length: ${b.length}\r\nconnection: close\r\n`;
  for (const [k, v] of Object.entries(headers)) h += `${k}: ${v}\r\n`;
  sock.end(Buffer.concat([Buffer.from(h + "\r\n"), b]));
}

// Writes make() again and again, as fast as the client reads, until it goes away.
function flood(sock, first, make) {
  let alive = true;
  sock.on("close", () => { alive = false; });
  sock.on("error", () => { alive = false; });
  const pump = () => {
    while (alive) {
      const b = make();
      sent += b.length;
      if (!sock.write(b)) return sock.once("drain", pump);
    }
  };
  sock.write(first);
  pump();
}

function handle(sock, head, body) {
  const { method, target, hdrs } = parseHead(head);
  const url = new URL(target, "http://x");
  const path = url.pathname;
  if (path === "/metadata") return answer(sock, 200, JSON.stringify({ runtime: "engine", version: "2.3.19" }), { "content-type": "application/json" });
  if (path === "/stats") return answer(sock, 200, JSON.stringify({ sent }), { "content-type": "application/json" });
  if (path === "/actors") {
    let key = "x";
    try { key = JSON.parse(body.toString()).key; } catch {}
    if (method === "GET") key = url.searchParams.get("key") || "x";
    const actor = { actor_id: key, name: "a", key };
    const out = method === "GET" ? { actors: [actor] } : { actor, created: true };
    return answer(sock, 200, JSON.stringify(out), { "content-type": "application/json" });
  }
  // the id segment as sent (raw, not decoded: that is what is under test)
  const m = target.match(/^\/gateway\/([^/@?]+)/);
  const id = m ? decodeURIComponent(m[1]) : "";
  if ((hdrs.upgrade || "").toLowerCase() === "websocket") {
    if (id === "endless-header") return flood(sock, "HTTP/1.1 101 Switching Protocols\r\nx-endless: ", () => CHUNK);
    if (id !== "huge-frame") return answer(sock, 404, "no socket here");
    const proto = (hdrs["sec-websocket-protocol"] || "").split(",")[0].trim();
    const up = upgradeHead(acceptKey(hdrs["sec-websocket-key"]), proto);
    return flood(sock, Buffer.concat([up, HUGE_FRAME_HEAD]), () => CHUNK);
  }
  switch (id) {
    case "endless-body":
      return flood(sock, "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n", () => CHUNK);
    case "endless-chunked": {
      const c = Buffer.concat([Buffer.from(CHUNK.length.toString(16) + "\r\n"), CHUNK, Buffer.from("\r\n")]);
      return flood(sock, "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n", () => c);
    }
    case "endless-header":
      return flood(sock, "HTTP/1.1 200 OK\r\nx-endless: ", () => CHUNK);
    case "endless-chunk-line":
      return flood(sock, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10;x=", () => CHUNK);
    case "bad-chunk-size":
      return sock.end("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n");
    case "bad-length":
      return sock.end("HTTP/1.1 200 OK\r\ncontent-length: -1\r\nconnection: close\r\n\r\nabc");
    case "many-headers": {
      let n = 0;
      return flood(sock, "HTTP/1.1 200 OK\r\n", () => Buffer.from(`x-h${n++}: ${"v".repeat(200)}\r\n`.repeat(100)));
    }
    default:
      if ((hdrs["x-rivet-encoding"] || "json") === "json") return answer(sock, 200, '{"output":1}', { "content-type": "application/json" });
      return answer(sock, 200, Buffer.from([4, 0, 1, 1]), { "content-type": "application/octet-stream" });
  }
}

// one request per connection: every answer closes it (or never ends)
listen(serve((sock, head, body) => {
  record(Buffer.concat([head, body, Buffer.from("\n=====\n")]));
  handle(sock, head, body);
}), 30 * 60 * 1000);
