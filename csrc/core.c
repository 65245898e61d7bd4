/* luaopen_rivet_core: the C half of lua-rivetkit (codecs and the I/O loop). */
#include "core.h"

const char rv_key_array_mt = 'a';
const char rv_key_map_mt = 'm';
const char rv_key_bytes_mt = 'b';

static void new_marker(lua_State *L, const void *key, const char *name, const char *field) {
  lua_newtable(L);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  lua_setfield(L, -2, field);
}

int luaopen_rivet_core(lua_State *L) {
  lua_newtable(L);
  new_marker(L, &rv_key_array_mt, "rivet.array", "array_mt");
  new_marker(L, &rv_key_map_mt, "rivet.map", "map_mt");
  new_marker(L, &rv_key_bytes_mt, "rivet.bytes", "bytes_mt");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  rv_codec_open(L);
  rv_loop_open(L);
  rv_conn_open(L);
  return 1;
}
