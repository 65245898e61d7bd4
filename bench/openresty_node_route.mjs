// The Node side of the OpenResty row (bench/README.md): a Hono route that calls one
// stateless action per request with the official rivetkit client, served by
// @hono/node-server on 127.0.0.1. The same route as bench/openresty/bench.lua in nginx.
//
//   node bench/openresty_node_route.mjs SERVERS_DIR ENDPOINT PORT KEY
//     SERVERS_DIR  servers/v20 or servers/v23 (its node_modules give hono,
//                  @hono/node-server and the rivetkit client of that server's version)
//   GET /increment  -> the counter's new value (text), from increment(1) on the actor KEY
//                      through a getOrCreate handle (what the nginx route does)
//   GET /increment-by-id -> the same through a getForId handle: rivetkit/client 2.0 looks a
//                      getOrCreate handle's key up (PUT /actors) before every call; by id
//                      it does not, so this is the official client at its fastest
//   GET /ping       -> "pong" (no actor call: readiness and the route's own floor)
// Prints "LISTENING <port> <pid>" once it listens. Stopped by SIGTERM.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [serversDir, endpoint, portStr, key] = process.argv.slice(2);
const port = Number(portStr);
if (!serversDir || !endpoint || !port || !key) {
	console.error("usage: openresty_node_route.mjs SERVERS_DIR ENDPOINT PORT KEY");
	process.exit(2);
}
const mod = (p) => import(pathToFileURL(resolve(serversDir, "node_modules", p)).href);
const { Hono } = await mod("hono/dist/index.js");
const { serve } = await mod("@hono/node-server/dist/index.mjs");
const { createClient } = await mod("rivetkit/dist/tsup/client/mod.js");

const client = createClient({ endpoint, encoding: process.env.BENCH_ENCODING || "bare" });
// one handle per process, like the nginx side's one handle per worker
const counter = client.counter.getOrCreate(key);
const byId = client.counter.getForId(await counter.resolve());

const app = new Hono();
app.get("/ping", (c) => c.text("pong"));
const route = (handle) => async (c) => {
	try {
		return c.text(String(await handle.increment(1)));
	} catch (err) {
		return c.text(String(err?.message ?? err), 500);
	}
};
app.get("/increment", route(counter));
app.get("/increment-by-id", route(byId));

const server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, (info) => {
	process.stdout.write(`LISTENING ${info.port} ${process.pid}\n`);
});
process.on("SIGTERM", () => {
	server.close();
	process.exit(0);
});
