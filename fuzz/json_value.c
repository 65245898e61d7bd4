/* libFuzzer target: json_value (the checks are in fuzz/lua/json_value.lua; see fuzz/fuzz.h). */
#define FUZZ_TARGET "json_value"
#include "fuzz.h"
