// Actors for the lua-rivetkit examples (`make demo`, examples/*.lua).
// Plain JavaScript ESM; the server script (servers/v2x/server.mjs) passes in
// rivetkit's `actor`, `UserError` and (2.3) `queue` and `event`:
//   scripts/servers.sh start v23 examples/actors/index.mjs demo
// examples/schema.lua uses the actors of the TypeScript test registry, whose schema
// module is committed beside it (Node 22 strips its types when it is imported).
import { defineTypedActors } from "../../spec/actors/typed.ts";

export function defineActors({ actor, queue, event }) {
	// A counter: increment(amount) returns the new count and broadcasts it as
	// the event "newCount". Create input {start: n} sets the initial count.
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

	// A chat room: sendMessage(user, text) stores the message and broadcasts
	// it as the event "newMessage" {user, text}; getHistory() lists them.
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

	const all = { counter, chat, ...defineTypedActors({ actor, event, queue }) };
	// 2.3 only: a worker whose run loop takes messages from its "jobs" queue and
	// completes each with {echo: body, n: how many it has handled}.
	if (queue) {
		all.worker = actor({
			state: { handled: 0 },
			queues: { jobs: queue() },
			run: async (c) => {
				for (;;) {
					const msg = await c.queue.next({ names: ["jobs"], completable: true });
					if (!msg) continue;
					c.state.handled += 1;
					await msg.complete({ echo: msg.body, n: c.state.handled });
				}
			},
			actions: { handled: (c) => c.state.handled },
		});
	}
	return all;
}

export default defineActors;
