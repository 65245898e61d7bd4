// Soak actors (make soak, scripts/soak.sh): plain ESM loaded by servers/v2x/server.mjs
// (scripts/servers.sh start v20|v23 soak/actors.mjs NAME). The spec actors stay unchanged.
//
// Every action takes a unique id from the harness and appends it to
// $SOAK_RECORD_DIR/exec-<pid>.log with a synchronous write before it answers, so the
// record survives a kill -9 of this process and the harness counts executions from the
// server's side (an id in two lines ran twice).
//   op(id)          a stateless call: "A <id>"
//   burst(id, k)    sends k events "seq"(key, n) to the calling connection only, n going
//                   1, 2, 3, ... per connection of this process (key = <process>/<conn id>),
//                   and answers [key, last n]: "A <id> <key> <first> <last>"
//   ping()          readiness probe (not recorded)
import { appendFileSync } from "node:fs";

const dir = process.env.SOAK_RECORD_DIR;
const file = dir ? `${dir}/exec-${process.pid}.log` : null;
const gen = `${process.pid}.${Date.now().toString(36)}`;
const seqs = new Map();

function record(line) {
	if (file) appendFileSync(file, `${line}\n`);
}

export function defineActors({ actor }) {
	const soak = actor({
		state: { n: 0 },
		actions: {
			op: (c, id) => {
				record(`A ${id}`);
				c.state.n += 1;
				return c.state.n;
			},
			burst: (c, id, k) => {
				const conn = c.conn;
				if (!conn) throw new Error("burst needs a connection");
				const key = `${gen}/${conn.id}`;
				let s = seqs.get(key) ?? 0;
				const first = s + 1;
				for (let i = 0; i < k; i++) {
					s += 1;
					conn.send("seq", key, s);
				}
				seqs.set(key, s);
				record(`A ${id} ${key} ${first} ${s}`);
				return [key, s];
			},
			ping: () => "pong",
		},
	});
	return { soak };
}

export default defineActors;
