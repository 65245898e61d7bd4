// A name server and an HTTP server for spec/dns_block_spec.lua, run inside the spec's own
// network namespace (so port 53 is free): DNS on 127.0.0.1:53, HTTP on 127.0.0.1:<port>.
// The DNS side has three modes, moved on by files in DIR:
//   resolve  (from the start)     A queries: 127.0.0.1; other types: no records
//   hold     (once DIR/hold exists)   every query is kept unanswered, as a resolver that
//                                     drops queries would (the client's timeout is 30 s)
//   nxdomain (once DIR/answer exists) held and later queries are answered NXDOMAIN
// DIR/dns.status (rewritten atomically) reads "mode M received R held H answered A".
// HTTP answers GET /metadata as a 2.3 engine would, 404 otherwise. The first line on
// stdout is "ready <pid> <http port>" once both listen.
//   node spec/fake/dns_drop.mjs DIR
import dgram from "node:dgram";
import fs from "node:fs";
import http from "node:http";

const dir = process.argv[2];
const held = [];
let mode = "resolve", received = 0, answered = 0;
const sock = dgram.createSocket("udp4");

function status() {
  fs.writeFileSync(dir + "/dns.status.tmp", `mode ${mode} received ${received} held ${held.length} answered ${answered}\n`);
  fs.renameSync(dir + "/dns.status.tmp", dir + "/dns.status");
}

// End of the question section (one question), or -1.
function questionEnd(msg) {
  let p = 12;
  while (p < msg.length && msg[p] !== 0) {
    if (msg[p] >= 0xc0) return -1;
    p += msg[p] + 1;
  }
  return p + 5 <= msg.length ? p + 5 : -1;
}

function reply(q, rcode, withA) {
  const msg = q.msg;
  const end = questionEnd(msg);
  if (msg.length < 12 || end < 0) return;
  const head = Buffer.from(msg.subarray(0, end));
  head[2] = msg[2] | 0x80; // QR: a response; opcode and RD as asked
  head[3] = 0x80 | rcode; // RA
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(withA ? 1 : 0, 6);
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(0, 10);
  // name: pointer to the question; type A, class IN, TTL 0, 4 bytes: 127.0.0.1
  const a = withA ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 127, 0, 0, 1]) : Buffer.alloc(0);
  sock.send(Buffer.concat([head, a]), q.port, q.address);
  answered++;
}

sock.on("message", (msg, rinfo) => {
  received++;
  const q = { msg, port: rinfo.port, address: rinfo.address };
  if (mode === "resolve") {
    const end = questionEnd(msg);
    reply(q, 0, end > 0 && msg.readUInt16BE(end - 4) === 1);
  } else if (mode === "hold") {
    held.push(q);
  } else {
    reply(q, 3, false);
  }
  status();
});

setInterval(() => {
  if (mode === "resolve" && fs.existsSync(dir + "/hold")) {
    mode = "hold";
    status();
  }
  if (mode === "hold" && fs.existsSync(dir + "/answer")) {
    mode = "nxdomain";
    while (held.length) reply(held.shift(), 3, false);
    status();
  }
}, 10);

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/metadata")) {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ runtime: "engine", version: "2.3.19" }));
  }
  res.writeHead(404, { "content-type": "application/json" });
  res.end(JSON.stringify({ group: "api", code: "not_found", message: "fake: no such route" }));
});

sock.bind(53, "127.0.0.1", () => {
  server.listen(0, "127.0.0.1", () => {
    status();
    console.log("ready " + process.pid + " " + server.address().port);
  });
});
