/* libFuzzer target: http_response (the checks are in fuzz/lua/http_response.lua; see fuzz/fuzz.h). */
#define FUZZ_TARGET "http_response"
#include "fuzz.h"
