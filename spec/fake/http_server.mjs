// A deliberately misbehaving RivetKit-like HTTP server, only for tests about bad
// servers (garbage bodies, hangs, transient errors). Real behaviour is tested against
// the real servers. Prints "<port> <pid>" once listening on 127.0.0.1.
import http from "node:http";

const hits = new Map(); // actor id -> number of action requests seen
const puts = new Map(); // key -> number of resolves

function json(res, status, obj, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(obj));
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/metadata") {
      return json(res, 200, { runtime: "engine", version: "2.3.19" });
    }
    if (url.pathname === "/actors" && (req.method === "PUT" || req.method === "POST")) {
      const body = JSON.parse(Buffer.concat(chunks).toString() || "{}");
      const seen = (puts.get(body.key) || 0) + 1;
      puts.set(body.key, seen);
      // the id names the behaviour; only a second resolve of "stale" gets a live actor
      let id = body.key;
      if (id === "stale" && seen > 1) id = "stale-fresh";
      return json(res, 200, { actor: { actor_id: id, name: body.name, key: body.key }, created: true });
    }
    const h = url.pathname.match(/^\/hits\/(.+)$/);
    if (h) return json(res, 200, hits.get(decodeURIComponent(h[1])) || 0);
    const m = url.pathname.match(/^\/gateway\/([^/]+)\/action\/(.+)$/);
    if (!m) return json(res, 404, { group: "guard", code: "no_route", message: "no route" });
    const id = decodeURIComponent(m[1]);
    const n = (hits.get(id) || 0) + 1;
    hits.set(id, n);
    const enc = req.headers["x-rivet-encoding"] || "json";
    const ok = (v) => {
      if (enc === "json") return json(res, 200, { output: v });
      // bare v4: version, data(CBOR uint v) for small v
      res.writeHead(200, { "content-type": "application/octet-stream" });
      return res.end(Buffer.from([4, 0, 1, v]));
    };
    switch (id) {
      case "garbage":
        res.writeHead(200, { "content-type": "application/octet-stream" });
        return res.end(Buffer.from([0xff, 0xfe, 0x00, 0x13, 0x37, 0xbb, 0xff, 0xff]));
      case "truncated":
        res.writeHead(200, { "content-type": "application/octet-stream" });
        return res.end(Buffer.from([4, 0, 0x85, 0x80, 0x80, 0x80, 0x10, 0xab]));
      case "badjson":
        res.writeHead(200, { "content-type": "application/json" });
        return res.end('{"output": [1, 2');
      case "bad-error":
        res.writeHead(500, { "content-type": "application/octet-stream" });
        return res.end(Buffer.from([4, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]));
      case "html":
        res.writeHead(502, { "content-type": "text/html" });
        return res.end("<html><body>Bad gateway</body></html>");
      case "hang":
        return; // never answers
      case "flaky":
        if (n <= 3) {
          return json(res, 503, { group: "guard", code: "service_unavailable", message: "try again" },
            { "x-rivet-error": "guard.service_unavailable" });
        }
        return ok(n);
      case "always-unavailable":
        return json(res, 503, { group: "guard", code: "service_unavailable", message: "try again" },
          { "x-rivet-error": "guard.service_unavailable" });
      case "stale":
        return json(res, 404, { group: "actor", code: "not_found", message: "The actor does not exist or was destroyed." },
          { "x-rivet-error": "actor.not_found" });
      case "stale-fresh":
        return ok(7);
      default:
        return ok(1);
    }
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port} ${process.pid}\n`);
});
process.on("SIGTERM", () => process.exit(0));
