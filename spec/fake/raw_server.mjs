// The request side of the raw-TCP fake servers (hostile_server.mjs, fuzz_server.mjs),
// which must see every byte and may answer anything: reads each request (the head up to
// the empty line, then Content-Length bytes of body) off its connection, parses heads,
// and listens the way spec/support/fake.lua expects.
import net from "node:net";

/** {method, target, path, hdrs (lower-case names; the last of repeated ones)} of a head. */
export function parseHead(head) {
  const lines = head.toString("latin1").split("\r\n");
  const [method, target = "/"] = lines[0].split(" ");
  const hdrs = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    if (i > 0) hdrs[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { method, target, path: target.split("?")[0], hdrs };
}

/** A server calling onRequest(sock, head, body) for each request. With keepAlive, the
 *  next request on a connection is read once the answer emits "answered" on sock;
 *  without, only a connection's first request is. A handler that throws drops the
 *  connection. */
export function serve(onRequest, { keepAlive = false } = {}) {
  return net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    let busy = false;
    sock.on("error", () => {});
    const next = () => {
      if (busy) return;
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buf.subarray(0, end + 4);
      const lm = head.toString("latin1").match(/\r\ncontent-length:\s*(\d+)/i);
      const need = lm ? Number(lm[1]) : 0;
      if (buf.length < end + 4 + need) return;
      busy = true;
      const body = buf.subarray(end + 4, end + 4 + need);
      buf = buf.subarray(end + 4 + need);
      try {
        onRequest(sock, head, body);
      } catch {
        sock.destroy();
      }
    };
    if (keepAlive) {
      sock.on("answered", () => {
        busy = false;
        next();
      });
    }
    sock.on("data", (d) => {
      if (busy && !keepAlive) return;
      buf = Buffer.concat([buf, d]);
      next();
    });
  });
}

/** Listens on 127.0.0.1 (a free port) and prints "<port> <pid>"; exits on SIGTERM, or
 *  after maxMs if forgotten. */
export function listen(server, maxMs) {
  server.listen(0, "127.0.0.1", () => console.log(`${server.address().port} ${process.pid}`));
  setTimeout(() => process.exit(0), maxMs).unref();
  process.on("SIGTERM", () => process.exit(0));
}
