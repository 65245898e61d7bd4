/* Shared by the libFuzzer targets in fuzz/<target>.c (see fuzz/README.md).
 *
 * Each target is a Lua function fuzz(data) in fuzz/lua/<target>.lua, run in one Lua 5.4
 * state that has rivet.core (the csrc/ objects, linked in) and fuzz/lua/common.lua loaded.
 * The Lua side calls the library the way the Lua layer does and checks properties; any
 * error escaping fuzz(data), a decoder raising instead of returning nil, err, or a
 * property that fails, aborts the process: libFuzzer reports it as a crash and keeps the
 * input. Memory errors and undefined behaviour in the C core are caught by ASan/UBSan.
 *
 * A target file is just:
 *   #define FUZZ_TARGET "name"
 *   #include "fuzz.h"
 * FUZZ_DIR (the absolute path of fuzz/) comes from the build (scripts/fuzz.sh). */
#ifndef RV_FUZZ_H
#define RV_FUZZ_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_DIR
#error "FUZZ_DIR must name the fuzz/ directory"
#endif

int luaopen_rivet_core(lua_State *L);

/* the state lives in a global, so what it holds is reachable for LeakSanitizer */
static lua_State *fz_L;
static int fz_fn = LUA_NOREF;

static void fz_die(const char *what) {
  fprintf(stderr, "fuzz(%s): %s\n", FUZZ_TARGET, what);
  fflush(stderr);
  abort();
}

static void fz_dofile(lua_State *L, const char *name) {
  const char *path = lua_pushfstring(L, "%s/lua/%s.lua", FUZZ_DIR, name);
  if (luaL_dofile(L, path) != LUA_OK) fz_die(lua_tostring(L, -1));
  lua_pop(L, 1);
}

static void fz_init(void) {
  lua_State *L = luaL_newstate();
  if (!L) fz_die("no Lua state");
  luaL_openlibs(L);
  luaL_requiref(L, "rivet.core", luaopen_rivet_core, 0);
  lua_setglobal(L, "core");
  fz_dofile(L, "common");
  fz_dofile(L, FUZZ_TARGET);
  lua_getglobal(L, "fuzz");
  if (!lua_isfunction(L, -1)) fz_die("the script defines no function fuzz(data)");
  fz_fn = luaL_ref(L, LUA_REGISTRYINDEX);
  fz_L = L;
}

static int fz_traceback(lua_State *L) {
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!fz_L) fz_init();
  lua_State *L = fz_L;
  lua_pushcfunction(L, fz_traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, fz_fn);
  lua_pushlstring(L, (const char *)data, size);
  lua_pushvalue(L, -1);
  lua_setglobal(L, "INPUT"); /* check_text() tells echoed input from leaked addresses */
  if (lua_pcall(L, 1, 0, -3) != LUA_OK) fz_die(lua_tostring(L, -1));
  lua_settop(L, 0);
  /* free what the input made: with mallocs and frees balanced, libFuzzer's per-input
   * leak check (a full LeakSanitizer scan whenever they differ) seldom runs */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}

#endif
