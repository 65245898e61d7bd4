/* libFuzzer target: cbor_value (the checks are in fuzz/lua/cbor_value.lua; see fuzz/fuzz.h). */
#define FUZZ_TARGET "cbor_value"
#include "fuzz.h"
