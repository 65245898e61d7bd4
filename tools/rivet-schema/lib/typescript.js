"use strict";
// Finds the TypeScript compiler rivet-schema runs with: the user's project's own first
// (so that the registry is read as their tsc reads it), then this tool's own install.
const path = require("node:path");

// The JavaScript compiler API this tool uses exists in TypeScript 5 and 6; the native
// compiler of TypeScript 7 has no such API.
function usable(ts) {
	const major = ts && typeof ts.version === "string" ? Number(ts.version.split(".")[0]) : 0;
	return major >= 5 && major < 7 && typeof ts.createProgram === "function";
}

function load(file, tried) {
	let ts;
	try {
		ts = require(file);
	} catch (e) {
		tried.push(`${file}: does not load (${e.message.split("\n")[0]})`);
		return null;
	}
	if (!usable(ts)) {
		tried.push(`${file}: TypeScript ${ts && ts.version} (rivet-schema needs 5.x or 6.x)`);
		return null;
	}
	return { ts, file };
}

// `typescript` as Node resolves it from directory `from` (its node_modules and theirs above).
function loadFrom(from, tried) {
	let file;
	try {
		file = require.resolve("typescript", { paths: [from] });
	} catch {
		tried.push(`${from}: none`);
		return null;
	}
	return load(file, tried);
}

/**
 * The compiler: `explicit` (--typescript PATH: the package's directory, or a project
 * directory to resolve it from) when given; otherwise resolved from the registry's
 * directory (the user's project), then from the working directory, then from this
 * tool's directory. Throws an Error listing where it looked when none is usable.
 */
function findTypeScript(registryFile, explicit) {
	const tried = [];
	let found = null;
	if (explicit) {
		const p = path.resolve(explicit);
		found = load(p, tried) || loadFrom(p, tried);
	} else {
		const starts = [path.dirname(path.resolve(registryFile)), process.cwd(), path.join(__dirname, "..")];
		for (const from of starts.filter((d, i) => starts.indexOf(d) === i)) {
			found = loadFrom(from, tried);
			if (found) break;
		}
	}
	if (found) return found;
	const err = new Error(
		`no usable TypeScript compiler found (looked in: ${tried.join("; ")}). ` +
			"Install it in your project (npm install --save-dev typescript@5) or pass --typescript PATH",
	);
	err.code = "RIVET_SCHEMA_NO_TYPESCRIPT";
	throw err;
}

module.exports = { findTypeScript };
