"use strict";
// Reads a RivetKit registry with the TypeScript compiler: which actors it has, and for
// each its actions (parameters after the context, return type), events and queues.
const fs = require("node:fs");
const path = require("node:path");
const { TypeMapper, docOf, unionOf } = require("./types");

// Compiler options when no tsconfig.json is found: what a RivetKit project uses.
function defaultOptions(ts) {
	return {
		target: ts.ScriptTarget.ES2022,
		module: ts.ModuleKind.ESNext,
		moduleResolution: ts.ModuleResolutionKind.Bundler,
		strict: true,
		skipLibCheck: true,
		allowJs: true,
		allowImportingTsExtensions: true,
		noEmit: true,
	};
}

function compilerOptions(ts, file, project) {
	const configPath = project
		? path.resolve(project)
		: ts.findConfigFile(path.dirname(path.resolve(file)), ts.sys.fileExists, "tsconfig.json");
	if (!configPath) return { options: defaultOptions(ts), extraRoots: [], configPath: null };
	if (!fs.existsSync(configPath)) throw new Error(`${project}: no such file`);
	const diags = [];
	const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => diags.push(d) };
	const parsed = ts.getParsedCommandLineOfConfigFile(configPath, { noEmit: true, allowJs: true }, host);
	if (!parsed) throw new Error(`${configPath}: ${formatDiagnostics(ts, diags)}`);
	// the project's own declaration files may declare globals the registry relies on
	const extraRoots = parsed.fileNames.filter((f) => f.endsWith(".d.ts"));
	return { options: { ...parsed.options, noEmit: true }, extraRoots, configPath };
}

function formatDiagnostics(ts, diags) {
	return ts.formatDiagnostics(diags, {
		getCanonicalFileName: (f) => f,
		getCurrentDirectory: () => process.cwd(),
		getNewLine: () => "\n",
	});
}

class RegistryReader {
	constructor(ts, file, opts) {
		this.ts = ts;
		this.file = path.resolve(file);
		if (!fs.existsSync(this.file)) throw new Error(`${file}: no such file`);
		const { options, extraRoots, configPath } = compilerOptions(ts, file, opts.project);
		this.configPath = configPath;
		this.program = ts.createProgram({ rootNames: [this.file, ...extraRoots], options });
		this.checker = this.program.getTypeChecker();
		this.sf = this.program.getSourceFile(this.file);
		if (!this.sf) throw new Error(`${file}: the TypeScript compiler did not read it (is it a .ts/.js file?)`);
		this.types = new TypeMapper(ts, this.checker, this.program);
		this.warnings = [];
		this.exportNames = opts.exports || [];
	}

	/** Type errors in the registry file (the schema follows what the checker infers). */
	diagnostics() {
		const d = [...this.program.getSyntacticDiagnostics(this.sf), ...this.program.getSemanticDiagnostics(this.sf)];
		return d.length ? formatDiagnostics(this.ts, d) : "";
	}

	prop(type, name) {
		const p = type && this.checker.getPropertyOfType(type, name);
		return p ? this.checker.getTypeOfSymbol(p) : null;
	}

	// The type argument of generic class instance `type` for its parameter `name`
	// (rivetkit 2.0 keeps the actions only there: ActorDefinition<..., R>, Registry<A>).
	typeArg(type, name) {
		if (!type || !(type.flags & this.ts.TypeFlags.Object) || !(type.objectFlags & this.ts.ObjectFlags.Reference)) return null;
		const params = (type.target && type.target.typeParameters) || [];
		const i = params.findIndex((p) => p.symbol && p.symbol.name === name);
		return i >= 0 ? this.checker.getTypeArguments(type)[i] || null : null;
	}

	// An actor definition: actor({...}) of 2.0 or 2.3, i.e. it has config.actions.
	isActorDef(type) {
		const config = this.prop(type, "config");
		return !!(config && this.checker.getPropertyOfType(config, "actions"));
	}

	// The actors a record type holds: [{ name, type, node }]; a union's members together.
	actorEntries(type) {
		const out = [];
		for (const t of type.isUnion() ? type.types : [type]) {
			if (!(t.flags & this.ts.TypeFlags.Object)) continue;
			for (const p of this.checker.getPropertiesOfType(t)) {
				const pt = this.checker.getTypeOfSymbol(p);
				if (this.isActorDef(pt) && !out.some((e) => e.name === p.getName())) {
					out.push({ name: p.getName(), type: pt, node: p.valueDeclaration });
				}
			}
		}
		return out;
	}

	// A registry (setup({ use: {...} })): its actors, or null.
	registryActors(type) {
		const use = this.prop(this.prop(type, "config"), "use");
		if (!use) return null;
		let entries = this.actorEntries(this.checker.getNonNullableType(use));
		// 2.0: config.use is untyped; Registry<A> holds the actors
		if (!entries.length && type.symbol && type.symbol.name === "Registry") {
			const a = this.typeArg(type, "A");
			if (a) entries = this.actorEntries(a);
		}
		return entries.length ? entries : null;
	}

	/**
	 * The actors, found among the module's exports: those of every registry
	 * (setup({ use })); if there is none, every exported actor definition, object of
	 * actor definitions, or function returning one (this repository's test actors:
	 * defineActors({ actor, ... })). `--export` limits the search to the exports named.
	 */
	actors() {
		const ts = this.ts;
		const checker = this.checker;
		const mod = checker.getSymbolAtLocation(this.sf);
		if (!mod) throw new Error(`${path.basename(this.file)} exports nothing (it is not a module)`);
		let exps = checker.getExportsOfModule(mod);
		if (this.exportNames.length) {
			const byName = new Map(exps.map((e) => [e.getName(), e]));
			exps = this.exportNames.map((n) => {
				const e = byName.get(n);
				if (!e) throw new Error(`${path.basename(this.file)} has no export '${n}' (exports: ${[...byName.keys()].join(", ")})`);
				return e;
			});
		}
		const registries = [];
		const others = [];
		for (const e of exps) {
			const sym = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
			if (!(sym.flags & ts.SymbolFlags.Value)) continue;
			const type = checker.getTypeOfSymbolAtLocation(e, this.sf);
			const reg = this.registryActors(type);
			if (reg) {
				registries.push(...reg);
				continue;
			}
			if (this.isActorDef(type)) {
				others.push({ name: e.getName() === "default" ? "default" : e.getName(), type, node: sym.valueDeclaration });
				continue;
			}
			others.push(...this.actorEntries(type));
			for (const sig of type.getCallSignatures()) {
				const ret = checker.getAwaitedType(sig.getReturnType()) || sig.getReturnType();
				others.push(...this.actorEntries(ret));
			}
		}
		const found = registries.length ? registries : others;
		const seen = new Map();
		for (const a of found) if (!seen.has(a.name)) seen.set(a.name, a);
		if (!seen.size) {
			throw new Error(
				`${path.basename(this.file)}: no actors found (export the registry, \`export const registry = setup({ use: { ... } })\`, or the actor definitions)`,
			);
		}
		return [...seen.values()].map((a) => this.actor(a));
	}

	actor(entry) {
		const checker = this.checker;
		const config = this.prop(entry.type, "config");
		const out = { name: entry.name, actions: [], events: null, dynamicEvents: false, queues: [] };
		let actions = this.prop(config, "actions");
		// 2.0: config.actions is a plain record of functions; ActorDefinition<..., R> has them
		if (!actions || !checker.getPropertiesOfType(checker.getNonNullableType(actions)).length) {
			actions = this.typeArg(entry.type, "R") || actions;
		}
		if (actions) {
			for (const p of checker.getPropertiesOfType(checker.getNonNullableType(actions))) {
				const a = this.action(entry.name, p);
				if (a) out.actions.push(a);
			}
		}
		const declared = this.prop(config, "events");
		const declaredEvents = declared ? checker.getPropertiesOfType(checker.getNonNullableType(declared)) : [];
		if (declaredEvents.length) {
			out.events = declaredEvents.map((p) => this.declaredEvent(p));
		} else {
			const found = this.broadcastEvents(entry);
			out.events = found.events;
			out.dynamicEvents = found.dynamic;
		}
		const queues = this.prop(config, "queues");
		if (queues) {
			for (const p of checker.getPropertiesOfType(checker.getNonNullableType(queues))) out.queues.push(this.queue(p));
		}
		return out;
	}

	action(actorName, prop) {
		const checker = this.checker;
		const ts = this.ts;
		const name = prop.getName();
		const type = checker.getTypeOfSymbol(prop);
		const sigs = type.getCallSignatures();
		if (!sigs.length) {
			this.warnings.push(`${actorName}.${name}: not a function, left out`);
			return null;
		}
		if (sigs.length > 1) this.warnings.push(`${actorName}.${name}: overloaded; the first signature is used`);
		const sig = sigs[0];
		const params = [];
		for (const p of sig.getParameters().slice(1)) {
			const decl = p.valueDeclaration;
			let t = checker.getTypeOfSymbolAtLocation(p, decl || this.sf);
			const rest = !!(decl && ts.isParameter(decl) && decl.dotDotDotToken);
			const optional = !rest && !!(decl && ts.isParameter(decl) && checker.isOptionalParameter(decl));
			let pt;
			if (rest) {
				pt = checker.isArrayType(t) ? this.types.map(checker.getTypeArguments(t)[0], false) : "any";
			} else {
				pt = this.types.map(t, optional);
			}
			const param = { name: p.getName(), type: pt };
			if (optional) param.optional = true;
			if (rest) param.rest = true;
			params.push(param);
		}
		const ret = sig.getReturnType();
		const returns = this.types.map(checker.getAwaitedType(ret) || ret, false);
		const out = { name, params, returns };
		const doc = docOf(ts, checker, prop);
		if (doc) out.doc = doc;
		return out;
	}

	// The type a 2.3 schema entry stands for (rivetkit's InferSchema): event<T>() and
	// queue<T>() tokens, { schema } / { message } definitions, Standard Schema validators.
	schemaOutput(type, tokenProp, defProp) {
		if (!type) return null;
		const checker = this.checker;
		type = checker.getNonNullableType(type);
		const token = this.prop(type, tokenProp);
		if (token) return token;
		const def = this.prop(type, defProp);
		if (def) return this.schemaOutput(def, tokenProp, defProp);
		const std = this.prop(type, "~standard");
		if (std) {
			const types = this.prop(checker.getNonNullableType(std), "types");
			const output = types && this.prop(checker.getNonNullableType(types), "output");
			if (output) return output;
		}
		return null;
	}

	declaredEvent(prop) {
		const checker = this.checker;
		let payload = this.schemaOutput(checker.getTypeOfSymbol(prop), "_eventType", "schema");
		const name = prop.getName();
		if (!payload) return { name, args: [{ name: "payload", type: "any" }] };
		payload = checker.getNonNullableType(payload); // the token's property is optional
		// rivetkit's InferEventArgs: a fixed-length tuple is the list of arguments
		if (checker.isTupleType(payload) && !(payload.target.hasRestElement)) {
			const labels = payload.target.labeledElementDeclarations || [];
			const args = checker.getTypeArguments(payload).map((t, i) => ({
				name: labels[i] ? labels[i].name.getText() : `arg${i + 1}`,
				type: this.types.map(t, false),
			}));
			return { name, args };
		}
		return { name, args: [{ name: "payload", type: this.types.map(payload, true) }] };
	}

	queue(prop) {
		const checker = this.checker;
		const t = checker.getTypeOfSymbol(prop);
		const message = this.schemaOutput(t, "_queueMessage", "message");
		const complete = this.schemaOutput(t, "_queueComplete", "complete");
		const out = { name: prop.getName(), message: message ? this.types.map(message, true) : "any" };
		if (complete && !(complete.flags & this.ts.TypeFlags.Never)) {
			const c = this.types.map(complete, true);
			if (c !== "nil") out.complete = c;
		}
		return out;
	}

	// The object literal of an actor's actor({...}) call, followed from where the
	// registry names it (a property, a shorthand property, a variable, an import).
	definitionLiteral(node, depth = 0) {
		const ts = this.ts;
		const checker = this.checker;
		if (!node || depth > 20) return null;
		const follow = (sym) => {
			if (!sym) return null;
			if (sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
			return this.definitionLiteral(sym.valueDeclaration, depth + 1);
		};
		if (ts.isShorthandPropertyAssignment(node)) return follow(checker.getShorthandAssignmentValueSymbol(node));
		if (ts.isPropertyAssignment(node) || ts.isVariableDeclaration(node)) return this.definitionLiteral(node.initializer, depth + 1);
		if (ts.isIdentifier(node)) return follow(checker.getSymbolAtLocation(node));
		if (ts.isExportAssignment(node) || ts.isParenthesizedExpression(node) || ts.isAsExpression(node) || ts.isSatisfiesExpression(node)) {
			return this.definitionLiteral(node.expression, depth + 1);
		}
		if (ts.isCallExpression(node) && node.arguments.length && ts.isObjectLiteralExpression(node.arguments[0])) {
			return node.arguments[0];
		}
		return null;
	}

	/**
	 * Events an actor that declares none sends: the broadcast(name, ...) and
	 * conn.send(name, ...) calls in its definition and in the functions of the user's
	 * own code that it calls. A name that is not a string literal (or a union of them)
	 * makes the set open (dynamic: any name may be sent).
	 */
	broadcastEvents(entry) {
		const ts = this.ts;
		const checker = this.checker;
		const root = this.definitionLiteral(entry.node);
		if (!root) {
			this.warnings.push(`${entry.name}: its definition's source was not found; conn:on accepts any event name`);
			return { events: [], dynamic: true };
		}
		const events = new Map(); // name -> [ [TypeScript types of argument i], names ]
		let dynamic = false;
		const visited = new Set();
		const note = (call) => {
			const [first, ...rest] = call.arguments;
			if (!first) return;
			const nameType = checker.getTypeAtLocation(first);
			const names = [];
			for (const t of nameType.isUnion() ? nameType.types : [nameType]) {
				if (t.isStringLiteral()) names.push(t.value);
				else dynamic = true;
			}
			const spread = rest.some((a) => ts.isSpreadElement(a));
			for (const name of names) {
				let ev = events.get(name);
				if (!ev) {
					ev = { args: [], spread: false };
					events.set(name, ev);
				}
				if (spread) ev.spread = true;
				rest.forEach((a, i) => {
					if (ts.isSpreadElement(a)) return;
					if (!ev.args[i]) ev.args[i] = { names: [], types: [] };
					ev.args[i].names.push(argName(ts, a));
					let t = checker.getTypeAtLocation(a);
					if (ts.isLiteralExpression(a) || a.kind === ts.SyntaxKind.TrueKeyword || a.kind === ts.SyntaxKind.FalseKeyword) {
						t = checker.getBaseTypeOfLiteralType(t);
					}
					ev.args[i].types.push(t);
				});
			}
		};
		const visit = (n) => {
			if (ts.isCallExpression(n)) {
				const callee = n.expression;
				if (ts.isPropertyAccessExpression(callee)) {
					const m = callee.name.text;
					if (m === "broadcast" || (m === "send" && this.isConnSend(n))) note(n);
				}
				const sig = checker.getResolvedSignature(n);
				const d = sig && sig.declaration;
				if (d && d.body && !visited.has(d) && this.types.isUserDecl(d)) {
					visited.add(d);
					visit(d.body);
				}
			}
			ts.forEachChild(n, visit);
		};
		visit(root);
		const out = [];
		for (const [name, ev] of events) {
			const args = ev.args.map((a, i) => {
				const mapped = a.types.map((t) => this.types.map(t, false));
				return { name: a.names.find((x) => x) || `arg${i + 1}`, type: unionOf(mapped) };
			});
			if (ev.spread) args.push({ name: "...", type: "any", rest: true });
			out.push({ name, args: dedupeNames(args) });
		}
		return { events: out, dynamic };
	}

	// conn.send(name, ...) of a rivetkit connection (not a queue's or a socket's send)
	isConnSend(call) {
		const sig = this.checker.getResolvedSignature(call);
		const decl = sig && sig.declaration;
		const owner = decl && decl.parent;
		const ownerName = owner && owner.name && owner.name.getText();
		return !!ownerName && /Conn/.test(ownerName);
	}
}

function argName(ts, expr) {
	if (ts.isIdentifier(expr)) return expr.text;
	if (ts.isPropertyAccessExpression(expr)) return expr.name.text;
	return null;
}

function dedupeNames(args) {
	const seen = new Map();
	return args.map((a) => {
		const n = seen.get(a.name) || 0;
		seen.set(a.name, n + 1);
		return n ? { ...a, name: a.name + (n + 1) } : a;
	});
}

module.exports = { RegistryReader };
