// A /metadata that sends clients elsewhere, as serverless RivetKit runners and cloud
// set-ups do: node metadata_server.mjs TARGET [LISTEN_AFTER_MS [NAMESPACE [TOKEN]]].
// Answers GET /metadata with {runtime: "rivetkit", version: "2.3.19", clientEndpoint:
// TARGET, ...}, GET /hits with how many /metadata requests it saw, and 404 to anything
// else (so a client that does not follow the redirect fails). With LISTEN_AFTER_MS it
// picks its port, closes it, and only listens after that delay (until then connections
// are refused: an unreachable /metadata). Prints "<port> <pid>" at once.
import http from "node:http";

const [target, after = "0", namespace = "", token = ""] = process.argv.slice(2);
let hits = 0;

const handler = (req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/metadata") {
    hits++;
    const body = { runtime: "rivetkit", version: "2.3.19", clientEndpoint: target };
    if (namespace) body.clientNamespace = namespace;
    if (token) body.clientToken = token;
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify(body));
  }
  if (url.pathname === "/hits") {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end(JSON.stringify({ hits }));
  }
  res.writeHead(404, { "content-type": "application/json" });
  res.end(JSON.stringify({ group: "fake", code: "not_followed", message: "the redirect was not followed" }));
};

if (Number(after) === 0) {
  const server = http.createServer(handler);
  server.listen(0, "127.0.0.1", () => console.log(`${server.address().port} ${process.pid}`));
} else {
  const probe = http.createServer();
  probe.listen(0, "127.0.0.1", () => {
    const port = probe.address().port;
    probe.close(() => {
      console.log(`${port} ${process.pid}`);
      setTimeout(() => http.createServer(handler).listen(port, "127.0.0.1"), Number(after));
    });
  });
}
