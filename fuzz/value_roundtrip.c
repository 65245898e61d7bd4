/* libFuzzer target: value_roundtrip (the checks are in fuzz/lua/value_roundtrip.lua; see fuzz/fuzz.h). */
#define FUZZ_TARGET "value_roundtrip"
#include "fuzz.h"
