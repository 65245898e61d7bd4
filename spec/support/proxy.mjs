// A TCP proxy for fault tests: client <-> proxy <-> real server, on 127.0.0.1 only.
//
//   node spec/support/proxy.mjs <target-port>
//
// Prints "<port> <control-port> <pid>" once both ports listen. The control port takes
// tiny HTTP requests (any method; the path is the command) and answers JSON stats:
//   /cut      destroy every live connection (both sides, no FIN handshake: an abrupt drop)
//   /refuse   from now on accept new connections and close them at once
//   /resume   pass new connections through again
//   /stall    stop reading from the clients (their sends back up into their socket
//             buffers; what the proxy already read still goes on), /flow reads again
//   /stats    {accepted, refused, live, mode}
// "accepted" counts every connection a client opened (passed or refused), so a spec can
// see whether a client is still trying.
import net from "node:net";

const targetPort = Number(process.argv[2]);
if (!targetPort) {
  console.error("usage: proxy.mjs <target-port>");
  process.exit(2);
}

let mode = "pass";
let stalled = false;
const live = new Set();
const stats = { accepted: 0, refused: 0 };

function cutAll() {
  for (const pair of live) {
    pair.a.resetAndDestroy?.() ?? pair.a.destroy();
    pair.b.resetAndDestroy?.() ?? pair.b.destroy();
  }
  live.clear();
}

const proxy = net.createServer((a) => {
  stats.accepted++;
  a.on("error", () => {});
  if (mode === "refuse") {
    stats.refused++;
    a.destroy();
    return;
  }
  a.setNoDelay(true);
  const b = net.connect({ host: "127.0.0.1", port: targetPort });
  b.setNoDelay(true);
  b.on("error", () => {});
  const pair = { a, b };
  live.add(pair);
  const drop = () => {
    if (!live.delete(pair)) return;
    a.destroy();
    b.destroy();
  };
  a.on("close", drop);
  b.on("close", drop);
  a.pipe(b);
  b.pipe(a);
  if (stalled) a.pause();
});

const control = net.createServer((s) => {
  let buf = "";
  s.on("error", () => {});
  s.on("data", (d) => {
    buf += d.toString("latin1");
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    const path = (buf.split(" ")[1] || "/").replace(/^\//, "");
    if (path === "cut") cutAll();
    else if (path === "refuse") mode = "refuse";
    else if (path === "resume") mode = "pass";
    else if (path === "stall" || path === "flow") {
      stalled = path === "stall";
      for (const pair of live) {
        if (stalled) {
          pair.a.unpipe(pair.b);
          pair.a.pause();
        } else {
          pair.a.pipe(pair.b);
          pair.a.resume();
        }
      }
    }
    else if (path === "refuse-cut") {
      mode = "refuse";
      cutAll();
    }
    const body = JSON.stringify({ ...stats, live: live.size, mode });
    s.end(
      `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
});

proxy.listen(0, "127.0.0.1", () => {
  control.listen(0, "127.0.0.1", () => {
    console.log(`${proxy.address().port} ${control.address().port} ${process.pid}`);
  });
});

// A spec that dies without stopping us must not leave us behind forever.
setTimeout(() => process.exit(0), 30 * 60 * 1000).unref();
process.on("SIGTERM", () => process.exit(0));
