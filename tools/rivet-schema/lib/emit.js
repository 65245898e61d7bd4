"use strict";
// Writes the schema module: LuaLS annotations for editors, then the schema as a Lua
// table for rivet.client(url, { schema = ... }) (docs/schema.md, "The module").

const LUA_KEYWORDS = new Set(
	("and break do else elseif end false for function goto if in local nil not or repeat " +
		"return then true until while").split(" "),
);
// Methods of handles and connections: an action with such a name is reached with
// h:action(name, ...) only, so the classes leave it out.
const HANDLE_METHODS = new Set(["action", "async", "resolve", "getGatewayUrl", "send", "connect", "fetch", "websocket"]);
const CONN_METHODS = new Set([
	"action", "async", "send", "on", "once", "onError", "onOpen", "onClose", "onStatusChange", "dispose",
	"status", "actorId", "connectionId",
]);

function isIdent(s) {
	return /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) && !LUA_KEYWORDS.has(s);
}

function pascal(s) {
	const p = s.replace(/(^|[^A-Za-z0-9]+)([A-Za-z0-9])/g, (_, _sep, c) => c.toUpperCase()).replace(/[^A-Za-z0-9]/g, "");
	return /^[0-9]/.test(p) ? "_" + p : p || "Actor";
}

// A Lua string literal (ASCII and valid UTF-8 text as is, control bytes escaped).
function luaString(s) {
	let out = '"';
	for (const ch of s) {
		const c = ch.codePointAt(0);
		if (ch === '"') out += '\\"';
		else if (ch === "\\") out += "\\\\";
		else if (ch === "\n") out += "\\n";
		else if (ch === "\r") out += "\\r";
		else if (ch === "\t") out += "\\t";
		else if (c < 32 || c === 127) out += "\\" + String(c).padStart(3, "0");
		else out += ch;
	}
	return out + '"';
}

function luaNumber(n) {
	if (Number.isInteger(n) && Math.abs(n) <= 2 ** 53) return String(n);
	const s = String(n);
	return /[.eE]/.test(s) ? s : s + ".0";
}

function luaKey(k) {
	return isIdent(k) ? k : `[${luaString(k)}]`;
}

// A JavaScript value (plain objects, arrays, strings, numbers, booleans) as Lua source:
// on one line when short, else one entry per line.
function luaValue(v, indent) {
	if (typeof v === "string") return luaString(v);
	if (typeof v === "number") return luaNumber(v);
	if (typeof v === "boolean") return String(v);
	const entries = Array.isArray(v)
		? v.map((x) => luaValue(x, indent + "  "))
		: Object.entries(v)
				.filter(([, x]) => x !== undefined)
				.map(([k, x]) => `${luaKey(k)} = ${luaValue(x, indent + "  ")}`);
	if (!entries.length) return "{}";
	const flat = `{ ${entries.join(", ")} }`;
	if (flat.length + indent.length <= 100 && !flat.includes("\n")) return flat;
	return `{\n${entries.map((e) => `${indent}  ${e},`).join("\n")}\n${indent}}`;
}

class Emitter {
	constructor(prefix, registry) {
		this.prefix = prefix;
		this.registry = registry; // { source, actors, types: Map }
		this.anon = []; // [name, fields] of classes made for inline object types
		this.anonNames = new Set();
		this.anonOf = new Map(); // inline object type -> its class
		const taken = new Set(["Client"]);
		for (const a of registry.actors) {
			const p = pascal(a.name);
			for (const s of ["Accessor", "Handle", "Connection"]) taken.add(p + s);
		}
		// named types get their own name unless a generated class has it
		this.typeClass = new Map();
		for (const name of registry.types.keys()) {
			let n = name;
			while (taken.has(n)) n += "_";
			taken.add(n);
			this.typeClass.set(name, `${prefix}.${n}`);
		}
	}

	// The LuaLS type of schema type t; `where` names a class made for an inline object.
	luaType(t, where) {
		if (typeof t === "string") return t === "bytes" ? "string|table" : t;
		if (t.ref) return this.typeClass.get(t.ref);
		if (t.array) {
			const inner = this.luaType(t.array, where + "[]");
			return /[|]/.test(inner) ? `(${inner})[]` : `${inner}[]`;
		}
		if (t.map) return `table<string, ${this.luaType(t.map, where + "[]")}>`;
		if (t.tuple) {
			if (t.rest || t.min !== undefined) return "table";
			return `[${t.tuple.map((x, i) => this.luaType(x, `${where}[${i + 1}]`)).join(", ")}]`;
		}
		if (t.oneOf) return t.oneOf.map((v) => (typeof v === "string" ? JSON.stringify(v) : String(v))).join("|");
		if (t.union) return t.union.map((x, i) => this.luaType(x, `${where}${i + 1}`)).join("|");
		if (t.fields) {
			// one class per inline object type (handles and connections share the descriptor)
			let name = this.anonOf.get(t);
			if (name) return name;
			const base = where.replace(/\[\]|\[\d+\]/g, "").replace(/[^A-Za-z0-9_.]/g, "_");
			name = base;
			for (let i = 2; this.anonNames.has(name); i++) name = base + i;
			this.anonNames.add(name);
			this.anonOf.set(t, name);
			this.anon.push([name, t]);
			return name;
		}
		return "any";
	}

	fields(className, t) {
		const lines = [];
		for (const f of t.fields) {
			const ft = this.luaType(f.type, `${className}.${f.name}`);
			const key = isIdent(f.name) ? f.name : `[${JSON.stringify(f.name)}]`;
			lines.push(`---@field ${key}${f.optional ? "?" : ""} ${ft}${f.doc ? " " + f.doc : ""}`);
		}
		if (t.open) lines.push("---@field [string] any");
		return lines;
	}

	params(list, where) {
		return list.map((p, i) => {
			if (p.rest) return `...: ${this.luaType(p.type, `${where}.${p.name}`)}`;
			const n = isIdent(p.name) ? p.name : `arg${i + 1}`;
			return `${n}${p.optional ? "?" : ""}: ${this.luaType(p.type, `${where}.${n}`)}`;
		});
	}

	method(self, a, where) {
		const ret = a.returns === "nil" ? "" : `: ${this.luaType(a.returns, `${where}.${a.name}.result`)}`;
		const ps = [`self: ${self}`, ...this.params(a.params, `${where}.${a.name}`)].join(", ");
		return `---@field ${a.name} fun(${ps})${ret}${a.doc ? " " + a.doc : ""}`;
	}

	annotations() {
		const P = this.prefix;
		const out = [];
		const actorsWithField = this.registry.actors.filter((a) => isIdent(a.name));
		out.push(`---@class ${P}.Client: rivet.Client`);
		for (const a of actorsWithField) out.push(`---@field ${a.name} ${P}.${pascal(a.name)}Accessor`);
		for (const a of this.registry.actors) {
			const C = `${P}.${pascal(a.name)}`;
			const where = `${P}.${pascal(a.name)}`;
			out.push("");
			out.push(`---@class ${C}Accessor: rivet.ActorAccessor`);
			for (const m of ["get", "getOrCreate", "create"]) {
				out.push(`---@field ${m} fun(self: ${C}Accessor, key?: string|string[], opts?: table): ${C}Handle`);
			}
			out.push(`---@field getForId fun(self: ${C}Accessor, id: string, opts?: table): ${C}Handle`);
			out.push("");
			out.push(`---@class ${C}Handle: rivet.Handle`);
			for (const act of a.actions) if (isIdent(act.name) && !HANDLE_METHODS.has(act.name)) out.push(this.method(`${C}Handle`, act, where));
			out.push(`---@field connect fun(self: ${C}Handle, params?: any, opts?: table): ${C}Connection`);
			for (const q of a.queues) {
				out.push(`---@field send fun(self: ${C}Handle, name: ${JSON.stringify(q.name)}, body: ${this.luaType(q.message, `${where}.${pascal(q.name)}Message`)}, opts?: table): table?`);
			}
			out.push("");
			out.push(`---@class ${C}Connection: rivet.Connection`);
			for (const act of a.actions) if (isIdent(act.name) && !CONN_METHODS.has(act.name)) out.push(this.method(`${C}Connection`, act, where));
			if (!a.dynamicEvents) {
				for (const ev of a.events) {
					const fn = `fun(${this.params(ev.args, `${where}.${ev.name}`).join(", ")})`;
					for (const m of ["on", "once"]) {
						out.push(`---@field ${m} fun(self: ${C}Connection, event: ${JSON.stringify(ev.name)}, fn: ${fn}): fun()`);
					}
				}
			}
			for (const q of a.queues) {
				out.push(`---@field send fun(self: ${C}Connection, name: ${JSON.stringify(q.name)}, body: ${this.luaType(q.message, `${where}.${pascal(q.name)}Message`)}, opts?: table): table?`);
			}
		}
		for (const [name, entry] of this.registry.types) {
			const cls = this.typeClass.get(name);
			out.push("");
			if (entry.doc) out.push(`--- ${entry.doc}`);
			if (entry.type && entry.type.fields) {
				out.push(`---@class ${cls}`);
				out.push(...this.fields(cls, entry.type));
			} else {
				out.push(`---@alias ${cls} ${this.luaType(entry.type, cls)}`);
			}
		}
		// classes of inline object types (more may appear while their fields are written)
		for (let i = 0; i < this.anon.length; i++) {
			const [name, t] = this.anon[i];
			out.push("");
			out.push(`---@class ${name}`);
			out.push(...this.fields(name, t));
		}
		return out;
	}

	data() {
		const types = {};
		for (const [name, entry] of this.registry.types) types[name] = entry.type;
		const actors = {};
		for (const a of this.registry.actors) {
			const actions = {};
			for (const act of a.actions) {
				actions[act.name] = {
					params: act.params.map((p) => ({ name: p.name, type: p.type, optional: p.optional, rest: p.rest })),
					returns: act.returns,
				};
			}
			const events = {};
			for (const ev of a.events) events[ev.name] = ev.args.map((x) => ({ name: x.name, type: x.type, rest: x.rest }));
			const queues = {};
			for (const q of a.queues) queues[q.name] = { message: q.message, complete: q.complete };
			actors[a.name] = { actions, events, openEvents: a.dynamicEvents || undefined, queues };
		}
		return { format: 1, types, actors };
	}

	module() {
		const r = this.registry;
		const P = this.prefix;
		const head = [
			`-- Generated by rivet-schema from ${r.source}: do not edit, run rivet-schema again.`,
			`-- Actors: ${r.actors.map((a) => a.name).join(", ")}. Format: docs/schema.md of lua-rivetkit.`,
			"--",
			`--   ---@type ${P}.Client`,
			`--   local client = rivet.client(url, { schema = require("${P}") })`,
			"--",
			"-- checks every call against this schema before anything is sent; the annotations",
			"-- below describe the same actors to the Lua language server (LuaLS).",
			"",
		];
		const ann = this.annotations();
		return [...head, ...ann, "", `return ${luaValue(this.data(), "")}`, ""].join("\n");
	}
}

module.exports = { Emitter, isIdent };
