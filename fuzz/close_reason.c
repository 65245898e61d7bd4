/* libFuzzer target: close_reason (the checks are in fuzz/lua/close_reason.lua; see fuzz/fuzz.h). */
#define FUZZ_TARGET "close_reason"
#include "fuzz.h"
