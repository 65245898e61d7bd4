/* libFuzzer target: conn_feed (the checks are in fuzz/lua/conn_feed.lua; see fuzz/fuzz.h). */
#define FUZZ_TARGET "conn_feed"
#include "fuzz.h"
