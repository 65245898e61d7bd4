// Benchmark actors for lua-rivetkit (bench/README.md). Plain ESM shared by both server
// lines; the server script (servers/v2x/server.mjs) passes in rivetkit's `actor`.
// Every client (ours, the official rivetkit/client, the C floor) talks to these same
// actors with the same actions.
export function defineActors({ actor }) {
	const counter = actor({
		createState: () => ({ count: 0 }),
		actions: {
			// one write, one broadcast (delivered only to subscribed connections)
			increment: (c, amount = 1) => {
				c.state.count += amount;
				c.broadcast("newCount", c.state.count);
				return c.state.count;
			},
			getCount: (c) => c.state.count,
			// event throughput: n events in one synchronous burst, then the reply
			emitMany: (c, n) => {
				for (let i = 0; i < n; i++) c.broadcast("tick", i);
				return n;
			},
		},
	});
	return { counter };
}
export default defineActors;
