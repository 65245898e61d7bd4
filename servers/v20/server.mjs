// lua-rivetkit test server, rivetkit 2.0.x (one Node process, file-system driver).
//
//   RIVET_TEST_PORT=PORT XDG_DATA_HOME=DIR node server.mjs [actors.mjs]
//
// rivetkit 2.0's default server listens on all interfaces, so it is disabled
// and the registry's fetch handler is served by @hono/node-server on
// 127.0.0.1:PORT, with @hono/node-ws doing the WebSocket upgrades.
// State goes to $XDG_DATA_HOME/rivetkit/. Normally started by scripts/servers.sh.
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const port = Number(process.env.RIVET_TEST_PORT);
if (!port) {
	console.error("server.mjs: set RIVET_TEST_PORT");
	process.exit(2);
}
if (!process.env.XDG_DATA_HOME) {
	console.error("server.mjs: set XDG_DATA_HOME to a fresh directory");
	process.exit(2);
}
// Any of these would switch rivetkit 2.0 to the remote engine driver.
for (const k of ["RIVET_ENDPOINT", "RIVET_ENGINE", "RIVET_TOKEN", "RIVET_RUN_ENGINE", "RIVET_RUNNER_KIND"]) {
	delete process.env[k];
}

if (process.env.RIVET_TEST_PIDFILE) writeFileSync(process.env.RIVET_TEST_PIDFILE, `${process.pid}\n`);

const actorsPath = resolve(process.argv[2] ?? "spec/actors/index.mjs");
const { actor, UserError, setup } = await import("rivetkit");
const { serve } = await import("@hono/node-server");
const { createNodeWebSocket } = await import("@hono/node-ws");
const mod = await import(pathToFileURL(actorsPath).href);
const defineActors = mod.defineActors ?? mod.default;
const actors = defineActors({ actor, UserError });

const registry = setup({ use: actors });

// Optional: RIVET_TEST_MAX_INCOMING=<bytes> raises the 64 KiB default limit on
// incoming messages/action bodies (message.incoming_too_long). Unset = default.
const maxIncoming = Number(process.env.RIVET_TEST_MAX_INCOMING) || undefined;

let upgradeWebSocket;
const { fetch } = registry.start({
	...(maxIncoming ? { maxIncomingMessageSize: maxIncoming } : {}),
	disableDefaultServer: true,
	noWelcome: true,
	defaultServerPort: port,
	inspector: { enabled: false },
	getUpgradeWebSocket: () => upgradeWebSocket,
});

// @hono/node-ws only needs `app.request(url, init, env)` from a Hono app.
const app = {
	fetch: (request, env) => fetch(request, env),
	request: (url, init, env) => fetch(new Request(url, init), env),
};
const nodeWs = createNodeWebSocket({ app });
upgradeWebSocket = nodeWs.upgradeWebSocket;

const server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, (info) => {
	console.log(`lua-rivetkit test server v20 ready on http://${info.address}:${info.port} (actors: ${Object.keys(actors).join(",")})`);
});
nodeWs.injectWebSocket(server);

const stop = () => {
	server.close();
	process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
