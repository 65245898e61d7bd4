"use strict";
// TypeScript types -> schema types, as docs/values.md says values travel between Lua
// and JavaScript (docs/schema.md, "Type mapping"). A schema type is one of:
//   "any" | "nil" | "boolean" | "number" | "integer" | "string" | "bytes"
//   { ref: NAME }                          a named type (TypeMapper.named)
//   { array: T }  { map: T }
//   { tuple: [T...], min: N, rest: T }     min/rest only when some items are optional/rest
//   { oneOf: [literal...] }                string, number and boolean literals
//   { union: [T...] }
//   { fields: [{ name, type, optional }], open: true }   open: other keys allowed too

// Classes whose instances travel as bytes (a Lua string, rivet.bytes(s)).
const BYTES = new Set(["Uint8Array", "Buffer", "ArrayBuffer", "SharedArrayBuffer", "ArrayBufferLike"]);
// Values a Lua program cannot make: accepted as they are ("any"), not checked.
const OPAQUE = new Set([
	"Date", "Map", "Set", "WeakMap", "WeakSet", "RegExp", "Promise", "PromiseLike", "Error",
	"Function", "Int8Array", "Int16Array", "Int32Array", "Uint16Array", "Uint32Array",
	"Uint8ClampedArray", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array",
	"DataView", "ReadableStream", "Request", "Response", "Headers", "URL", "Blob",
]);
const MAX_DEPTH = 40;

class TypeMapper {
	constructor(ts, checker, program) {
		this.ts = ts;
		this.checker = checker;
		this.program = program;
		this.named = new Map(); // name -> { type: schema type, doc, kind: "class" | "alias" }
		this.nameOf = new Map(); // TypeScript type -> name
		this.usedNames = new Set();
		this.warnings = [];
	}

	// Is this declaration in the user's own code (not a lib or a package)?
	isUserDecl(decl) {
		if (!decl) return false;
		const sf = decl.getSourceFile();
		return !this.program.isSourceFileDefaultLibrary(sf) && !this.program.isSourceFileFromExternalLibrary(sf);
	}

	// The name a type gets in `types` (interfaces, classes and type aliases of the user's
	// own code), or null for one written inline.
	nameFor(type) {
		const ts = this.ts;
		let sym = type.aliasSymbol;
		let args = type.aliasTypeArguments;
		if (!sym || !this.isUserDecl(sym.declarations && sym.declarations[0])) {
			sym = null;
			if (type.flags & ts.TypeFlags.Object && type.symbol) {
				const s = type.symbol;
				const decl = s.declarations && s.declarations[0];
				if (decl && (ts.isInterfaceDeclaration(decl) || ts.isClassDeclaration(decl)) && this.isUserDecl(decl)) {
					sym = s;
					args = type.objectFlags & ts.ObjectFlags.Reference ? this.checker.getTypeArguments(type) : undefined;
				}
			}
		}
		if (!sym) return null;
		let name = sym.name;
		if (args && args.length) {
			name += "_" + args.map((a) => this.checker.typeToString(a).replace(/[^A-Za-z0-9_]+/g, "_")).join("_");
		}
		name = name.replace(/[^A-Za-z0-9_]/g, "_").replace(/^([0-9])/, "_$1");
		return { name, sym };
	}

	/** The schema type of TypeScript type `type`; `dropUndefined`: an optional slot's type. */
	map(type, dropUndefined, depth = 0) {
		if (depth > MAX_DEPTH) return "any";
		const named = this.nameFor(type);
		if (!named) return this.structure(type, dropUndefined, depth);
		let name = this.nameOf.get(type);
		if (name) return { ref: name };
		name = named.name;
		for (let i = 2; this.usedNames.has(name); i++) name = named.name + i;
		this.usedNames.add(name);
		this.nameOf.set(type, name);
		const entry = { type: null, doc: docOf(this.ts, this.checker, named.sym) };
		this.named.set(name, entry); // before the structure: a recursive type refers to itself
		entry.type = this.structure(type, false, depth);
		return { ref: name };
	}

	structure(type, dropUndefined, depth) {
		const ts = this.ts;
		const F = ts.TypeFlags;
		const f = type.flags;
		if (f & (F.Any | F.Unknown | F.Never | F.ESSymbolLike | F.UniqueESSymbol)) return "any";
		if (f & (F.Undefined | F.Void | F.Null)) return "nil";
		if (f & F.Union) return this.union(type, dropUndefined, depth);
		if (f & F.BooleanLiteral) return { oneOf: [type.intrinsicName === "true"] };
		if (f & F.Boolean) return "boolean";
		if (f & F.StringLiteral) return { oneOf: [type.value] };
		if (f & F.NumberLiteral) return { oneOf: [type.value] };
		if (f & (F.String | F.TemplateLiteral | F.StringMapping)) return "string";
		if (f & F.Number) return "number";
		if (f & (F.BigInt | F.BigIntLiteral)) return "integer";
		if (f & F.TypeParameter) {
			const c = this.checker.getBaseConstraintOfType(type);
			return c && c !== type ? this.map(c, dropUndefined, depth + 1) : "any";
		}
		if (f & F.NonPrimitive) return { map: "any" }; // `object`
		if (f & F.Intersection) {
			// a branded primitive (string & { __brand: "Id" }) is that primitive
			for (const t of type.types) {
				if (t.flags & (F.StringLike | F.NumberLike | F.BigIntLike | F.BooleanLike)) return this.map(t, false, depth + 1);
			}
			return this.object(type, depth);
		}
		if (f & F.Object) return this.object(type, depth);
		return "any";
	}

	union(type, dropUndefined, depth) {
		const F = this.ts.TypeFlags;
		const parts = [];
		const literals = [];
		let nil = false;
		let yes = false;
		let no = false;
		for (const t of type.types) {
			if (t.flags & F.Undefined) {
				if (!dropUndefined) nil = true;
			} else if (t.flags & (F.Null | F.Void)) {
				nil = true;
			} else if (t.flags & F.BooleanLiteral) {
				if (t.intrinsicName === "true") yes = true;
				else no = true;
			} else if (t.flags & (F.StringLiteral | F.NumberLiteral)) {
				literals.push(t.value);
			} else {
				parts.push(this.map(t, false, depth + 1));
			}
		}
		if (yes && no) parts.push("boolean");
		else if (yes || no) literals.push(yes);
		if (literals.length) parts.unshift({ oneOf: literals });
		if (nil) parts.push("nil");
		return parts.length ? unionOf(parts) : "nil";
	}

	object(type, depth) {
		const ts = this.ts;
		const checker = this.checker;
		if (checker.isTupleType(type)) return this.tuple(type, depth);
		if (checker.isArrayType(type)) {
			const [el] = checker.getTypeArguments(type);
			return { array: el ? this.map(el, false, depth + 1) : "any" };
		}
		const symName = type.symbol && type.symbol.name;
		if (BYTES.has(symName)) return "bytes";
		if (OPAQUE.has(symName)) return "any";
		if (type.getCallSignatures().length || type.getConstructSignatures().length) return "any";
		const fields = [];
		for (const prop of checker.getPropertiesOfType(type)) {
			const name = prop.getName();
			if (name.startsWith("__@") || name.startsWith("#")) continue; // symbol and private keys
			const decl = prop.valueDeclaration || (prop.declarations && prop.declarations[0]);
			const pt = decl ? checker.getTypeOfSymbolAtLocation(prop, decl) : checker.getTypeOfSymbol(prop);
			// methods and function-valued properties cannot travel
			if (pt.getCallSignatures().length && !checker.getPropertiesOfType(pt).length) continue;
			const optional = (prop.flags & ts.SymbolFlags.Optional) !== 0;
			const field = { name, type: this.map(pt, optional, depth + 1) };
			if (optional) field.optional = true;
			const doc = docOf(ts, checker, prop);
			if (doc) field.doc = doc;
			fields.push(field);
		}
		const index = checker.getIndexInfosOfType(type);
		if (index.length) {
			const value = this.map(index[0].type, false, depth + 1);
			if (!fields.length) return { map: value };
			return { fields, open: true };
		}
		if (!fields.length) return { map: "any" }; // {} and empty interfaces: any table
		return { fields };
	}

	tuple(type, depth) {
		const ts = this.ts;
		const target = type.target;
		const args = this.checker.getTypeArguments(type);
		const flags = target.elementFlags || [];
		const items = [];
		let min = 0;
		let rest;
		args.forEach((t, i) => {
			const ef = flags[i] || ts.ElementFlags.Required;
			if (ef & ts.ElementFlags.Variable) {
				// ...T[] (Rest: t is the element type) or ...U where U is an array type (Variadic)
				const el = ef & ts.ElementFlags.Variadic && this.checker.isArrayType(t) ? this.checker.getTypeArguments(t)[0] : t;
				rest = this.map(el, false, depth + 1);
			} else {
				items.push(this.map(t, (ef & ts.ElementFlags.Optional) !== 0, depth + 1));
				if (ef & ts.ElementFlags.Required) min = items.length;
			}
		});
		const out = { tuple: items };
		if (min !== items.length || rest) out.min = min;
		if (rest) out.rest = rest;
		return out;
	}
}

/** One schema type for these (not empty): "any" if one is, else the distinct ones as a union. */
function unionOf(types) {
	const seen = new Set();
	const out = [];
	for (const t of types) {
		if (t === "any") return "any";
		const k = JSON.stringify(t);
		if (!seen.has(k)) {
			seen.add(k);
			out.push(t);
		}
	}
	return out.length === 1 ? out[0] : { union: out };
}

/** The first paragraph of a symbol's doc comment, on one line, or "". */
function docOf(ts, checker, sym) {
	if (!sym) return "";
	const text = ts.displayPartsToString(sym.getDocumentationComment(checker)).trim();
	return text.split(/\n\s*\n/)[0].replace(/\s+/g, " ");
}

module.exports = { TypeMapper, docOf, unionOf };
