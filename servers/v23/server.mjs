// lua-rivetkit test server, rivetkit 2.3.x (Rivet Engine + Node actor host).
//
//   RIVET_TEST_PORT=PORT RIVETKIT_STORAGE_PATH=DIR node server.mjs [actors.mjs]
//
// registry.start() makes rivetkit-core spawn `rivet-engine` on
// 127.0.0.1:PORT (it also binds PORT+1 and PORT+10) and connect this process
// to it as the actor host ("envoy"). The engine is orphaned (it outlives this
// process): scripts/servers.sh kills it by the pid in
// $RIVETKIT_STORAGE_PATH/.rivetkit/var/engine/runtime.json.
// Normally started through scripts/servers.sh, which sets everything up.
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const port = process.env.RIVET_TEST_PORT ?? process.env.RIVET_RUN_ENGINE_PORT;
if (!port) {
	console.error("server.mjs: set RIVET_TEST_PORT");
	process.exit(2);
}
if (!process.env.RIVETKIT_STORAGE_PATH) {
	console.error("server.mjs: set RIVETKIT_STORAGE_PATH to a fresh directory");
	process.exit(2);
}
// Must be set before rivetkit parses its config (and inherited by the engine).
process.env.RIVET_RUN_ENGINE = "1"; // rivetkit-core spawns rivet-engine
process.env.RIVET_RUN_ENGINE_PORT = port;
process.env.RIVET_RUN_ENGINE_HOST ??= "127.0.0.1";
process.env.RIVET__GUARD__TCP_NODELAY ??= "true";
process.env.RIVET_RUN_SERVICES ??= "0";
process.env.RIVET_INSPECTOR_DISABLE ??= "1";
delete process.env.RIVET_ENDPOINT; // would make it talk to a remote engine
delete process.env.RIVET_ENGINE;

if (process.env.RIVET_TEST_PIDFILE) writeFileSync(process.env.RIVET_TEST_PIDFILE, `${process.pid}\n`);

const actorsPath = resolve(process.argv[2] ?? "spec/actors/index.mjs");
const { actor, UserError, setup, queue, event } = await import("rivetkit");
const mod = await import(pathToFileURL(actorsPath).href);
const defineActors = mod.defineActors ?? mod.default;
const actors = defineActors({ actor, UserError, queue, event });

// Optional: RIVET_TEST_MAX_INCOMING=<bytes> raises the 64 KiB default limit on
// incoming messages/action bodies (message.incoming_too_long). Unset = default.
const maxIncoming = Number(process.env.RIVET_TEST_MAX_INCOMING) || undefined;
const registry = setup({
	use: actors,
	noWelcome: true,
	...(maxIncoming ? { maxIncomingMessageSize: maxIncoming } : {}),
});
registry.start();
registry.startAndWait().then(
	() => console.log(`lua-rivetkit test server v23 ready on http://127.0.0.1:${port} (actors: ${Object.keys(actors).join(",")})`),
	(err) => {
		console.error("registry failed to start:", err);
		process.exit(1);
	},
);
