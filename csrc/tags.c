/* The JSON-compat tags of rivetkit's JSON (and 2.3's CBOR) encoding: bytes go out as
 * ["$Uint8Array","<base64>"]; on input ["$BigInt","n"], ["$Uint8Array"|"$ArrayBuffer",b64],
 * ["$Undefined"], ["$Set",[...]] become Lua values and an escaped user array ("$$x")
 * loses its extra '$'. */
#include <string.h>

#include "codec.h"

/* ---- compat tags on output ------------------------------------------------------------ */

void rv_enc_tagged_bytes(rv_enc *e, const char *s, size_t len) {
  const rv_sink *k = e->sink;
  e->scratch->len = 0;
  rv_base64_encode(e->L, e->scratch, s, len, 0);
  k->array_begin(e, 2);
  k->item(e, 0);
  k->text(e, "$Uint8Array", 11);
  k->item(e, 1);
  k->text(e, e->scratch->data, e->scratch->len);
  k->array_end(e);
}

/* ---- compat tags on input ------------------------------------------------------------- */

/* ["$BigInt","-123"]: an exact integer when it fits 64 bits (rv_push_decimal), else the
 * nearest float. s is a Lua string, hence NUL-terminated. */
static void push_bigint(lua_State *L, const char *s, size_t len) {
  if (!rv_push_decimal(L, s, len)) luaL_error(L, "malformed $BigInt value");
}

void rv_untag_top(lua_State *L, rv_buf *scratch) {
  int t = lua_gettop(L);
  luaL_checkstack(L, 4, NULL);
  if (rv_rawgeti(L, t, 1) != LUA_TSTRING) {
    lua_settop(L, t);
    return;
  }
  size_t len, plen;
  const char *tag = lua_tolstring(L, t + 1, &len);
  if (len < 2 || tag[0] != '$') {
    lua_settop(L, t);
    return;
  }
  int ptype = rv_rawgeti(L, t, 2);
  if (tag[1] == '$') {
    /* an escaped user array: strip one '$' */
    lua_pushlstring(L, tag + 1, len - 1);
    lua_rawseti(L, t, 1);
    lua_settop(L, t);
    return;
  }
  if (rv_is(tag, len, "$BigInt")) {
    if (ptype != LUA_TSTRING) luaL_error(L, "malformed $BigInt value");
    const char *p = lua_tolstring(L, t + 2, &plen);
    push_bigint(L, p, plen);
  } else if (rv_is(tag, len, "$Uint8Array") || rv_is(tag, len, "$ArrayBuffer")) {
    if (ptype != LUA_TSTRING) luaL_error(L, "malformed %s value", tag);
    const char *p = lua_tolstring(L, t + 2, &plen);
    scratch->len = 0;
    if (!rv_base64_decode(L, scratch, p, plen)) luaL_error(L, "malformed %s value (bad base64)", tag);
    rv_push_buf(L, scratch);
  } else if (rv_is(tag, len, "$Undefined")) {
    lua_pushlightuserdata(L, NULL);
  } else if (rv_is(tag, len, "$Set")) {
    if (ptype != LUA_TTABLE) luaL_error(L, "malformed $Set value");
    lua_pushvalue(L, t + 2);
  } else {
    /* an unknown tag: keep the array as it is */
    lua_settop(L, t);
    return;
  }
  lua_replace(L, t);
  lua_settop(L, t);
}
