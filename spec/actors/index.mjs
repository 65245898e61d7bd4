// Test actors for the lua-rivetkit spec suite.
//
// Plain JavaScript ESM shared by both server lines (rivetkit 2.3.x and 2.0.x).
// This directory cannot resolve the 'rivetkit' package itself, so the server
// script (servers/v2x/server.mjs) imports rivetkit and passes in what is needed:
//
//   import { actor, UserError, queue, event } from "rivetkit";   // queue, event: 2.3 only
//   const actors = defineActors({ actor, UserError, queue, event });
//   setup({ use: actors });
//
// The actors of the TypeScript registry (typed.ts, for the schema specs) are part of
// the set: Node 22 strips its types when it is imported.
import { defineTypedActors } from "./typed.ts";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Name of the JS type an action argument arrived as, so specs can assert what
// the client's encoder actually put on the wire.
export function typeName(v) {
	if (v === null) return "null";
	if (v === undefined) return "undefined";
	if (Array.isArray(v)) return "array";
	if (v instanceof Uint8Array) return "Uint8Array"; // also Node Buffers
	if (v instanceof ArrayBuffer) return "ArrayBuffer";
	if (v instanceof Map) return "Map";
	if (v instanceof Date) return "Date";
	return typeof v; // number, bigint, string, boolean, object, ...
}

function toText(data) {
	if (typeof data === "string") return data;
	if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
	if (ArrayBuffer.isView(data))
		return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString(
			"utf8",
		);
	return String(data);
}

export function defineActors({ actor, UserError, queue, event }) {
	const counter = actor({
		createState: (_c, input) => ({
			count: typeof input?.start === "number" ? input.start : 0,
		}),
		actions: {
			increment: (c, amount = 1) => {
				c.state.count += amount;
				c.broadcast("newCount", c.state.count);
				return c.state.count;
			},
			getCount: (c) => c.state.count,
			reset: (c) => {
				c.state.count = 0;
				c.broadcast("newCount", c.state.count);
				return c.state.count;
			},
		},
	});

	const echo = actor({
		state: {},
		actions: {
			echo: (_c, v) => v,
			echoAll: (_c, ...args) => args,
			typeOf: (_c, v) => typeName(v),
			typesOf: (_c, ...args) => args.map(typeName),
			makeBytes: (_c, n) => {
				const out = new Uint8Array(n);
				for (let i = 0; i < n; i++) out[i] = i % 256;
				return out;
			},
			makeBigInt: () => 9007199254740993n,
			bigString: (_c, n) => "x".repeat(n),
			emit: (c, name, ...args) => {
				c.broadcast(name, ...args);
				return null;
			},
			emitMany: (c, n) => {
				for (let i = 0; i < n; i++) c.broadcast("tick", i);
				return n;
			},
			connId: (c) => c.conn?.id ?? null,
		},
	});

	const errors = actor({
		state: {},
		actions: {
			throwUser: () => {
				throw new UserError("bad thing", {
					code: "my_code",
					metadata: { a: 1 },
				});
			},
			throwUserPlain: () => {
				throw new UserError("plain");
			},
			throwInternal: () => {
				throw new Error("secret internal detail");
			},
		},
	});

	const slow = actor({
		state: {},
		actions: {
			sleep: async (_c, ms) => {
				await sleep(ms);
				return ms;
			},
		},
		options: {
			actionTimeout: 180_000,
		},
	});

	const input = actor({
		createState: (_c, inp) => ({
			hasInput: inp !== undefined,
			input: inp === undefined ? null : inp,
		}),
		actions: {
			getInput: (c) => c.state.input,
			hasInput: (c) => c.state.hasInput,
		},
	});

	const auth = actor({
		state: {},
		onBeforeConnect: (c, params) => {
			// every attempt, accepted or not: specs check a rejected client does not retry in a loop
			c.state.attempts = (c.state.attempts ?? 0) + 1;
			const token = params?.token;
			if (typeof token !== "string" || !token.startsWith("secret")) {
				throw new UserError("forbidden by onBeforeConnect", {
					code: "forbidden",
					metadata: { reason: "bad token" },
				});
			}
		},
		createConnState: (_c, params) => ({ user: params?.token ?? null }),
		actions: {
			whoami: (c) => c.conn.state.user,
			getParams: (c) => c.conn.params ?? null,
			attempts: (c) => c.state.attempts ?? 0,
			// closes the caller's connection shortly after answering, so it reconnects
			kick: (c) => {
				const conn = c.conn;
				setTimeout(() => conn.disconnect("kicked"), 50);
				return true;
			},
		},
	});

	const raw = actor({
		state: { written: 0 },
		onRequest: async (c, request) => {
			const url = new URL(request.url);
			const path = url.pathname;
			// /stream/N[?gap=MS]: N chunks "chunk i\n" (SSE-style), MS (default 20) apart;
			// state.written counts the chunks handed to the response so far (a
			// server-side marker)
			let m = path.match(/\/stream\/(\d+)$/);
			if (m) {
				const n = Number(m[1]);
				const gap = Number(url.searchParams.get("gap") ?? 20);
				c.state.written = 0;
				let i = 0;
				const body = new ReadableStream({
					async pull(controller) {
						if (i >= n) return controller.close();
						if (i > 0) await sleep(gap);
						controller.enqueue(new TextEncoder().encode(`chunk ${i}\n`));
						i += 1;
						c.state.written = i;
					},
				});
				return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
			}
			// /upload: the request body as it arrived, counted
			if (path.endsWith("/upload")) {
				const text = await request.text();
				return new Response(JSON.stringify({ bytes: text.length, text: text.length <= 4096 ? text : null }), {
					status: 200,
					headers: { "content-type": "application/json" },
				});
			}
			m = path.match(/\/status\/(\d+)$/);
			if (m) {
				const status = Number(m[1]);
				const noBody = status === 204 || status === 304;
				return new Response(noBody ? null : `status ${status}`, {
					status,
					headers: { "content-type": "text/plain" },
				});
			}
			m = path.match(/\/big\/(\d+)$/);
			if (m) {
				return new Response("y".repeat(Number(m[1])), {
					status: 200,
					headers: { "content-type": "application/octet-stream" },
				});
			}
			const headers = {};
			request.headers.forEach((value, key) => {
				headers[key] = value;
			});
			const body =
				request.method === "GET" || request.method === "HEAD"
					? ""
					: await request.text();
			return new Response(
				JSON.stringify({
					method: request.method,
					path,
					query: url.search,
					headers,
					body,
				}),
				{ status: 200, headers: { "content-type": "application/json" } },
			);
		},
		// Same signature on 2.0 and 2.3: (c, websocket). The socket is already
		// open when the hook runs, but guard against a CONNECTING socket anyway.
		onWebSocket: (_c, ws) => {
			const hello = () => ws.send("hello");
			if (ws.readyState === 0) ws.addEventListener("open", hello);
			else hello();
			ws.addEventListener("message", async (event) => {
				let data = event.data;
				if (typeof Blob !== "undefined" && data instanceof Blob) {
					data = new Uint8Array(await data.arrayBuffer());
				}
				if (typeof data === "string") {
					if (data === "close-me") {
						ws.close(4000, "bye");
						return;
					}
					ws.send(data);
				} else if (data instanceof ArrayBuffer) {
					ws.send(new Uint8Array(data));
				} else if (ArrayBuffer.isView(data)) {
					ws.send(
						new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
					);
				} else {
					ws.send(toText(data));
				}
			});
		},
		actions: {
			ping: () => "pong",
			written: (c) => c.state.written,
		},
	});

	const chat = actor({
		state: { messages: [] },
		actions: {
			sendMessage: (c, user, text) => {
				const msg = { user, text };
				c.state.messages.push(msg);
				c.broadcast("newMessage", msg);
				return msg;
			},
			getHistory: (c) => c.state.messages,
		},
	});

	// sleepy: for 2.3 hibernation. sleepNow() asks the runtime to put the actor to sleep
	// (c.sleep(), 2.3); wakes counts how often onWake ran, so a test can tell that the
	// actor really went away and came back while the client's socket stayed open.
	const sleepy = actor({
		state: { count: 0, wakes: 0 },
		onWake: (c) => {
			c.state.wakes += 1;
		},
		actions: {
			increment: (c, amount = 1) => {
				c.state.count += amount;
				c.broadcast("newCount", c.state.count);
				return c.state.count;
			},
			getWakes: (c) => c.state.wakes,
			canSleep: (c) => typeof c.sleep === "function",
			sleepNow: (c) => {
				setTimeout(() => c.sleep(), 10);
				return true;
			},
		},
	});

	const all = { counter, echo, errors, slow, input, auth, raw, chat, sleepy, ...defineTypedActors({ actor, event, queue }) };
	// 2.3 queues: `jobs` is completed by the run loop with what it received, `silent`
	// is never completed, `guarded` refuses senders without the right params (a
	// UserError from canPublish), and the actor holds at most 3 messages of at most
	// 1 KiB. `received` lists what reached the actor (message ids stay server-side).
	if (queue) {
		all.worker = actor({
			state: { received: [] },
			queues: {
				jobs: queue(),
				silent: queue(),
				guarded: queue({
					canPublish: (c) => {
						if (c.conn?.params?.token !== "secret-queue") {
							throw new UserError("not allowed to publish", {
								code: "queue_denied",
								metadata: { queue: "guarded" },
							});
						}
						return true;
					},
				}),
			},
			run: async (c) => {
				for (;;) {
					const msg = await c.queue.next({ names: ["jobs", "guarded"], completable: true });
					if (!msg) continue;
					c.state.received.push({ name: msg.name, body: msg.body });
					await msg.complete({ echo: msg.body, n: c.state.received.length });
				}
			},
			actions: {
				received: (c) => c.state.received,
			},
			options: { maxQueueSize: 3, maxQueueMessageSize: 1024 },
		});
	}
	return all;
}

export default defineActors;
