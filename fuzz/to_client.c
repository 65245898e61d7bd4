/* libFuzzer target: to_client (the checks are in fuzz/lua/to_client.lua; see fuzz/fuzz.h). */
#define FUZZ_TARGET "to_client"
#include "fuzz.h"
