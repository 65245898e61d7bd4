# Fuzzing and sanitizer builds (issue 11), included at the end of the Makefile.
#   make fuzz            build the libFuzzer targets (fuzz/*.c) into build/fuzz/ and run each
#                        for FUZZ_SECONDS (default 60); prints execs and findings per target
#   make fuzz-build      build them only
#   make test-asan       build/asan/rivet/core.so (ASan + UBSan) and the whole spec suite
#                        on one server line (ASAN_SERVER, default v20), leak checking on
#   make test-valgrind   memcheck over the codec, state machine and connection specs
#   make soak            scripts/soak.sh: the soak with cuts and server restarts (SOAK_SECONDS)
# Each writes only under build/fuzz, build/asan or .run/; see docs/reliability.md.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
SAN_FLAGS    := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_OBJS    := $(patsubst csrc/%.c,build/fuzz/obj/%.o,$(SRCS))
FUZZ_BINS    := $(patsubst fuzz/%.c,build/fuzz/%,$(wildcard fuzz/*.c))
ASAN_OBJS    := $(patsubst csrc/%.c,build/asan/obj/%.o,$(SRCS))
ASAN_SO      := build/asan/rivet/core.so
ASAN_SERVER  ?= v20
LUA54_INC    := /usr/include/lua5.4
SAN_DEP_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -I$(LUA54_INC)

.PHONY: fuzz fuzz-build test-asan asan-build test-valgrind

# the C core with coverage for libFuzzer; the targets link liblua5.4 (they are programs)
build/fuzz/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -O1 -g $(SAN_FLAGS) -fsanitize=fuzzer-no-link $(WARN) $(conv_warn) $(SAN_DEP_CFLAGS) -c $< -o $@

$(FUZZ_BINS): build/fuzz/%: fuzz/%.c fuzz/fuzz.h $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -O1 -g $(SAN_FLAGS) -fsanitize=fuzzer $(WARN) $(conv_warn) -DFUZZ_DIR='"$(CURDIR)/fuzz"' \
		$(SAN_DEP_CFLAGS) -Icsrc $< $(FUZZ_OBJS) -llua5.4 $(DEP_LIBS) -lm -o $@

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# the module for the stock lua5.4 interpreter, with gcc's sanitizers (preloaded by asan.sh)
build/asan/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) -O1 -g $(SAN_FLAGS) $(WARN) $(conv_warn) -fPIC $(SAN_DEP_CFLAGS) -c $< -o $@

$(ASAN_SO): $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(SAN_FLAGS) -o $@ $(ASAN_OBJS) $(DEP_LIBS)

build/asan/unpreload.so: scripts/asan_unpreload.c
	@mkdir -p $(dir $@)
	$(CC) -O2 $(WARN) $(conv_warn) -fPIC -shared $< -o $@

asan-build: $(ASAN_SO) build/asan/unpreload.so

test-asan: deps asan-build
	@RIVET_TEST_SERVERS=$(ASAN_SERVER) scripts/asan.sh

test-valgrind: deps build
	@scripts/valgrind.sh

# the soak (docs/reliability.md "Soak"): real 2.0 and 2.3 servers of its own (soak-v20,
# soak-v23) behind fault proxies, cuts, refused periods and kill -9 restarts, for
# SOAK_SECONDS (default 300); exit status non-zero on a hung call, a call run twice, an
# event lost while connected, RSS growth or a descriptor leak
SOAK_SECONDS ?= 300
.PHONY: soak
soak: deps build
	@SOAK_SECONDS=$(SOAK_SECONDS) scripts/soak.sh
