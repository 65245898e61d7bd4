# lua-rivetkit: build, test and demo.
#   make              build build/rivet/core.so for Lua 5.4 (objects in build/obj)
#   make LUA=luajit   build build/luajit/rivet/core.so for LuaJIT 2.1 (objects in build/luajit/obj)
#   make test     install what is missing, build both, start both test servers, run every
#                 spec on Lua 5.4 and on LuaJIT
#   make lint     luacheck over lua/, spec/, examples/ and types/ (also part of make test)
#   make docs     the HTML API reference in build/docs/ (LDoc; also part of make test)
#   make demo     start a local 2.3 server with the example actors and run examples/counter.lua

# LUA picks the interpreter the module is for: lua5.4 (default) or luajit. One C source
# serves both (csrc/compat.h); the two builds differ in headers and output directory only.
# The module never links liblua / libluajit: the interpreter provides those symbols.
# Which one a build is for follows from the headers (luajit.h in LUA_INC), so that
# `luarocks make` (which passes LUA_INC only) builds for whichever Lua it targets.
LUA        ?= lua5.4
ifeq ($(notdir $(LUA)),luajit)
LUA_INC    ?= $(or $(shell pkg-config --variable=includedir luajit 2>/dev/null),/usr/include/luajit-2.1)
else
LUA_INC    ?= /usr/include/lua5.4
endif
ifneq ($(wildcard $(LUA_INC)/luajit.h),)
LUA_ABI    := 5.1
BUILD      ?= build/luajit
else
LUA_ABI    := 5.4
BUILD      ?= build
endif
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE
# -Wconversion (in C it implies -Wsign-conversion; clang's adds -Wshorten-64-to-32): an
# implicit narrowing or sign change is an error, so every one is a cast beside the check
# that makes it safe (lengths from the network above all). Every source
# file is built with it (docs/reliability.md).
conv_warn  := -Wconversion
PKGS       := libcurl libwebsockets libcbor
DEP_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -I$(LUA_INC)
DEP_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

SRCS := $(wildcard csrc/*.c)
OBJS := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(SRCS))
HDRS := $(wildcard csrc/*.h)
SO   := $(BUILD)/rivet/core.so

.PHONY: all build build-all deps test lint docs demo bench clean install

all: build
build: $(SO)
# both modules: build/rivet/core.so (Lua 5.4) and build/luajit/rivet/core.so (LuaJIT)
build-all:
	@$(MAKE) --no-print-directory LUA=lua5.4 build
	@$(MAKE) --no-print-directory LUA=luajit build

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(conv_warn) -fPIC $(DEP_CFLAGS) -c $< -o $@

$(SO): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(DEP_LIBS)

deps:
	@scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory build-all
	@scripts/test.sh

# luacheck over the Lua sources and the LuaLS definitions (.luacheckrc); make test runs it too
lint:
	luacheck lua spec examples types

# the HTML API reference (LDoc, config.ld) from the public modules' doc comments, in
# build/docs/; any ldoc warning fails it (make test runs it too)
docs:
	rm -rf build/docs
	ldoc --fatalwarnings -q .

demo: deps
	@$(MAKE) --no-print-directory build
	@scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory build
	@scripts/bench.sh

# used by `luarocks make` (see the rockspec); INST_* are luarocks' directories.
# INST_TYPESDIR: the LuaLS definitions, for an editor's workspace.library (docs/editor.md);
# luarocks puts them in the rock's own directory.
INST_LIBDIR ?= /usr/local/lib/lua/$(LUA_ABI)
INST_LUADIR ?= /usr/local/share/lua/$(LUA_ABI)
INST_TYPESDIR ?= /usr/local/share/lua-rivetkit/types
INST_BINDIR ?= /usr/local/bin
INST_PREFIX ?= /usr/local
# rivet-schema (docs/schema.md): the Node script and its modules in SCHEMA_DIR, and a
# launcher in INST_BINDIR that runs it with the `node` on PATH (or RIVET_SCHEMA_NODE)
SCHEMA_DIR   = $(INST_PREFIX)/share/lua-rivetkit/rivet-schema
install: build
	install -d $(INST_LIBDIR)/rivet $(INST_LUADIR)/rivet $(INST_LUADIR)/rivet/resty $(INST_TYPESDIR)/rivet
	install -m 644 $(SO) $(INST_LIBDIR)/rivet/core.so
	install -m 644 lua/rivet/*.lua $(INST_LUADIR)/rivet/
	install -m 644 lua/rivet/resty/*.lua $(INST_LUADIR)/rivet/resty/
	install -m 644 types/rivet.lua $(INST_TYPESDIR)/
	install -m 644 types/rivet/*.lua $(INST_TYPESDIR)/rivet/
	install -d $(SCHEMA_DIR)/lib $(INST_BINDIR)
	install -m 755 tools/rivet-schema/rivet-schema $(SCHEMA_DIR)/
	install -m 644 tools/rivet-schema/package.json tools/rivet-schema/package-lock.json $(SCHEMA_DIR)/
	install -m 644 tools/rivet-schema/lib/*.js $(SCHEMA_DIR)/lib/
	printf '#!/bin/sh\n# rivet-schema of lua-rivetkit (docs/schema.md)\nexec "$${RIVET_SCHEMA_NODE:-node}" "%s/rivet-schema" "$$@"\n' \
		"$(abspath $(SCHEMA_DIR))" >$(INST_BINDIR)/rivet-schema
	chmod 755 $(INST_BINDIR)/rivet-schema

clean:
	rm -rf build

# fuzzing, ASan and valgrind runs (issue 11)
include scripts/reliability.mk
