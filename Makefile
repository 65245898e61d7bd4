# lua-rivetkit: build, test and demo.
#   make          build build/rivet/core.so
#   make test     install what is missing, build, start both test servers, run every spec
#   make demo     start a local 2.3 server with the example actors and run examples/counter.lua

LUA        ?= lua5.4
LUA_INC    ?= /usr/include/lua5.4
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE
PKGS       := libcurl libwebsockets libcbor
DEP_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -I$(LUA_INC)
DEP_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

SRCS := $(wildcard csrc/*.c)
OBJS := $(patsubst csrc/%.c,build/obj/%.o,$(SRCS))
HDRS := $(wildcard csrc/*.h)
SO   := build/rivet/core.so

.PHONY: all build deps test demo bench clean install

all: build
build: $(SO)

build/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -fPIC $(DEP_CFLAGS) -c $< -o $@

$(SO): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(DEP_LIBS)

deps:
	@scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory build
	@scripts/test.sh

demo: deps
	@$(MAKE) --no-print-directory build
	@scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory build
	@scripts/bench.sh

# used by `luarocks make` (see the rockspec); INST_* are luarocks' directories
INST_LIBDIR ?= /usr/local/lib/lua/5.4
INST_LUADIR ?= /usr/local/share/lua/5.4
install: build
	install -d $(INST_LIBDIR)/rivet $(INST_LUADIR)/rivet
	install -m 644 $(SO) $(INST_LIBDIR)/rivet/core.so
	install -m 644 lua/rivet/*.lua $(INST_LUADIR)/rivet/

clean:
	rm -rf build
