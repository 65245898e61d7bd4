/* Shared declarations of the rivet.core C module. */
#ifndef RV_CORE_H
#define RV_CORE_H

#include "compat.h"

/* Registry keys (their addresses) of the marker metatables created by luaopen_rivet_core:
 *   array_mt  - a table that is an array (decoded arrays carry it; rivet.array sets it)
 *   map_mt    - a table that is a map (decoded maps carry it; rivet.map sets it)
 *   bytes_mt  - a table {s} whose string s travels as bytes (rivet.bytes)
 * null is lightuserdata NULL (core.null / rivet.null). */
extern const char rv_key_array_mt;
extern const char rv_key_map_mt;
extern const char rv_key_bytes_mt;

#define rv_push_array_mt(L) lua_rawgetp((L), LUA_REGISTRYINDEX, &rv_key_array_mt)
#define rv_push_map_mt(L) lua_rawgetp((L), LUA_REGISTRYINDEX, &rv_key_map_mt)
#define rv_push_bytes_mt(L) lua_rawgetp((L), LUA_REGISTRYINDEX, &rv_key_bytes_mt)
#define rv_isnull(L, i) (lua_type((L), (i)) == LUA_TLIGHTUSERDATA && lua_touserdata((L), (i)) == NULL)

/* codec.c: encodes an ActionRequest frame from (enc index, tagged, id, name, args); a
 * lua_CFunction, called by conn.c with lua_call so that bad values raise as usual. */
int rv_encode_action(lua_State *L);

/* Each part adds its functions to the module table on top of the stack. */
void rv_codec_open(lua_State *L); /* codec.c, json.c, cbor.c, bare.c */
void rv_loop_open(lua_State *L);  /* loop.c: curl multi (and later libwebsockets) */
void rv_conn_open(lua_State *L);  /* conn.c: the connection state machine (core.conn_new) */

#endif
