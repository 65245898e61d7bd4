// The TypeScript test registry of lua-rivetkit: actors whose action parameters use every
// kind of type that rivet-schema maps to Lua (docs/schema.md). Its schema,
// spec/actors/typed_schema.lua, is generated from this file (scripts/test.sh checks that
// it has not drifted) and spec/schema_spec.lua checks calls against it.
//
// Served by both test servers through spec/actors/index.mjs: Node 22 strips the types
// (only erasable syntax here: no enums, namespaces or parameter properties, and
// `import type` for everything from rivetkit). Like index.mjs this directory cannot
// resolve the 'rivetkit' package at run time, so the server passes in what is needed;
// the types come from servers/v23's rivetkit (spec/actors/tsconfig.json).
import type { actor as actorFn, event as eventFn, queue as queueFn } from "rivetkit";

export interface Item {
	name: string;
	qty: number;
	tags?: string[];
}

export type Color = "red" | "green" | "blue";

export type Shape = { kind: "circle"; r: number } | { kind: "square"; side: number };

export interface TreeNode {
	value: number;
	children?: TreeNode[];
}

export interface Post {
	id: number;
	text: string;
	tags: string[];
}

export interface Task {
	job: string;
	priority?: 1 | 2 | 3;
}

export interface TaskDone {
	job: string;
	n: number;
}

export interface Deps {
	actor: typeof actorFn;
	// 2.3 only (undefined on a 2.0 server)
	event?: typeof eventFn;
	queue?: typeof queueFn;
}

function countNodes(t: TreeNode): number {
	let n = 1;
	for (const child of t.children ?? []) n += countNodes(child);
	return n;
}

export function defineTypedActors({ actor, event, queue }: Deps) {
	// Events come from its broadcast calls (nothing declares them), on both server lines.
	// `calls` counts the actions that ran, so a spec can tell that a refused call was never sent.
	const inventory = actor({
		state: { calls: 0, total: 0, items: [] as Item[], color: "red" as Color },
		actions: {
			increment: (c, x: number) => {
				c.state.calls += 1;
				c.state.total += x;
				c.broadcast("totalChanged", c.state.total);
				return c.state.total;
			},
			addItem: (c, item: Item) => {
				c.state.calls += 1;
				c.state.items.push(item);
				c.broadcast("itemAdded", item);
				return c.state.items.length;
			},
			setColor: (c, color: Color): Color => {
				c.state.calls += 1;
				const old = c.state.color;
				c.state.color = color;
				return old;
			},
			setLevel: (c, level: 1 | 2 | 3) => {
				c.state.calls += 1;
				return level * 10;
			},
			area: (c, shape: Shape) => {
				c.state.calls += 1;
				return shape.kind === "circle" ? 3 * shape.r * shape.r : shape.side * shape.side;
			},
			sum: (c, xs: number[]) => {
				c.state.calls += 1;
				return xs.reduce((a, b) => a + b, 0);
			},
			tally: (c, counts: Record<string, number>) => {
				c.state.calls += 1;
				return Object.values(counts).reduce((a, b) => a + b, 0);
			},
			byteLength: (c, data: Uint8Array) => {
				c.state.calls += 1;
				return data instanceof Uint8Array ? data.length : -1;
			},
			bigType: (c, n: bigint) => {
				c.state.calls += 1;
				return typeof n;
			},
			label: (c, text: string, suffix?: string) => {
				c.state.calls += 1;
				return text + (suffix ?? "");
			},
			describe: (c, v: string | number | boolean) => {
				c.state.calls += 1;
				return typeof v;
			},
			anything: (c, v: unknown, w?: any) => {
				c.state.calls += 1;
				return [v === null ? "null" : typeof v, w === null || w === undefined ? "none" : typeof w];
			},
			maybe: (c, v: string | null) => {
				c.state.calls += 1;
				return v === null;
			},
			log: (c, first: string, ...rest: number[]) => {
				c.state.calls += 1;
				c.broadcast("logged", first, rest.length);
				return rest.length;
			},
			plot: (c, p: { points: { x: number; y: number }[]; meta?: Record<string, boolean> }) => {
				c.state.calls += 1;
				return p.points.length;
			},
			pair: (c, p: [number, string]) => {
				c.state.calls += 1;
				return `${p[0]}:${p[1]}`;
			},
			tree: (c, t: TreeNode) => {
				c.state.calls += 1;
				return countNodes(t);
			},
			wait: async (c, ms: number): Promise<number> => {
				c.state.calls += 1;
				await new Promise((resolve) => setTimeout(resolve, ms));
				return ms;
			},
			items: (c) => c.state.items,
			calls: (c) => c.state.calls,
		},
	});
	if (!event || !queue) return { inventory };

	// 2.3: events and a queue declared in the definition.
	const board = actor({
		state: { posts: [] as Post[], done: [] as TaskDone[] },
		events: {
			posted: event<Post>(),
			cleared: event<[count: number, reason: string]>(),
		},
		queues: {
			tasks: queue<Task, TaskDone>(),
		},
		run: async (c) => {
			for (;;) {
				const msg = await c.queue.next({ names: ["tasks"], completable: true });
				if (!msg) continue;
				const done: TaskDone = { job: msg.body.job, n: c.state.done.length + 1 };
				c.state.done.push(done);
				await msg.complete(done);
			}
		},
		actions: {
			post: (c, text: string, tags?: string[]): Post => {
				const p = { id: c.state.posts.length + 1, text, tags: tags ?? [] };
				c.state.posts.push(p);
				c.broadcast("posted", p);
				return p;
			},
			clear: (c, reason: string) => {
				const n = c.state.posts.length;
				c.state.posts = [];
				c.broadcast("cleared", n, reason);
				return n;
			},
			done: (c) => c.state.done,
		},
	});
	return { inventory, board };
}
