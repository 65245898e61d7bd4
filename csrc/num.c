/* Numbers between the wire and Lua, the same on Lua 5.4 and LuaJIT.
 *
 * Lua 5.4 has 64-bit integers: a decoded integer is one, exactly. LuaJIT has only doubles:
 * integers within ±2^53 are plain numbers and larger ones are boxed as int64_t / uint64_t
 * cdata; going out, such cdata are integers again (docs/values.md, "Integers on LuaJIT").
 * C cannot create cdata, so boxing calls box(hi, lo, signed) of the Lua module rivet.int64
 * (loaded on first need, its function kept in the registry); reading a cdata goes through
 * its __tostring ("123LL" / "123ULL"), which needs no Lua code of ours. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

void rv_push_number(lua_State *L, double d) {
  /* JavaScript has no integer type: 5 and 2^40 arrive as floats from cbor-x and must come
   * back to Lua as integers. Beyond 2^53 a float no longer means one exact integer. */
  if (d == floor(d) && fabs(d) <= (double)RV_MAX_SAFE) lua_pushinteger(L, (lua_Integer)d);
  else lua_pushnumber(L, (lua_Number)d);
}

#ifdef RV_TCDATA /* LuaJIT */

static const char box_key = 'x'; /* registry: rivet.int64's box function */

/* Pushes box(hi, lo, signed) of rivet.int64: the cdata whose 64 bits are hi:lo. */
static void push_boxed(lua_State *L, uint64_t bits, int is_signed) {
  luaL_checkstack(L, 5, NULL);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &box_key) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    if (!lua_isfunction(L, -1)) luaL_error(L, "an integer beyond 2^53 needs the module rivet.int64: no require");
    lua_pushliteral(L, "rivet.int64");
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1) || rv_getfield(L, -1, "box") != LUA_TFUNCTION)
      luaL_error(L, "rivet.int64 has no box function");
    lua_remove(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &box_key);
  }
  lua_pushnumber(L, (lua_Number)(bits >> 32));
  lua_pushnumber(L, (lua_Number)(bits & 0xffffffffu));
  lua_pushboolean(L, is_signed);
  lua_call(L, 3, 1);
}

void rv_push_int64(lua_State *L, int64_t v) {
  uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  if (mag <= RV_MAX_SAFE) lua_pushnumber(L, (lua_Number)v);
  else push_boxed(L, (uint64_t)v, 1);
}

void rv_push_uint64(lua_State *L, uint64_t v) {
  if (v <= (uint64_t)INT64_MAX) rv_push_int64(L, (int64_t)v);
  else push_boxed(L, v, 0);
}

int rv_cdata_integer(lua_State *L, int idx, int64_t *i, uint64_t *u) {
  if (lua_type(L, idx) != RV_TCDATA || !luaL_callmeta(L, idx, "__tostring")) return RV_INT_NONE;
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  int kind = RV_INT_NONE;
  /* exactly -?[0-9]+LL or [0-9]+ULL: what LuaJIT prints for int64_t and uint64_t */
  size_t d0 = (s && len > 0 && s[0] == '-') ? 1 : 0, n = d0;
  while (s && n < len && s[n] >= '0' && s[n] <= '9') n++;
  if (s && n > d0) {
    char *end;
    errno = 0;
    if (len - n == 2 && memcmp(s + n, "LL", 2) == 0) {
      long long v = strtoll(s, &end, 10);
      if (errno == 0 && end == s + n) {
        *i = (int64_t)v;
        kind = RV_INT_SIGNED;
      }
    } else if (d0 == 0 && len - n == 3 && memcmp(s + n, "ULL", 3) == 0) {
      unsigned long long v = strtoull(s, &end, 10);
      if (errno == 0 && end == s + n) {
        *u = (uint64_t)v;
        *i = (int64_t)v;
        kind = *u <= (uint64_t)INT64_MAX ? RV_INT_SIGNED : RV_INT_UNSIGNED;
      }
    }
  }
  lua_pop(L, 1);
  return kind;
}

int rv_number_integer(lua_State *L, int idx, int64_t *i) {
  /* only within ±2^53 is a double known to mean an integer; -0 stays a float */
  lua_Number d = lua_tonumber(L, idx);
  if (d != floor(d) || fabs(d) > (double)RV_MAX_SAFE || (d == 0 && signbit(d))) return 0;
  *i = (int64_t)d;
  return 1;
}

#else /* Lua 5.4 */

void rv_push_int64(lua_State *L, int64_t v) { lua_pushinteger(L, (lua_Integer)v); }

void rv_push_uint64(lua_State *L, uint64_t v) {
  /* 5.4 has no unsigned integers: above INT64_MAX the nearest float */
  if (v <= (uint64_t)INT64_MAX) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnumber(L, (lua_Number)v);
}

int rv_number_integer(lua_State *L, int idx, int64_t *i) {
  if (!lua_isinteger(L, idx)) return 0;
  *i = (int64_t)lua_tointeger(L, idx);
  return 1;
}

#endif

int rv_toint64(lua_State *L, int idx, int64_t *v) {
  if (lua_isinteger(L, idx)) {
    *v = (int64_t)lua_tointeger(L, idx);
    return 1;
  }
#ifdef RV_TCDATA
  uint64_t u;
  return rv_cdata_integer(L, idx, v, &u) == RV_INT_SIGNED;
#else
  return 0;
#endif
}

int rv_push_decimal(lua_State *L, const char *s, size_t len) {
  size_t i = (len > 0 && s[0] == '-') ? 1 : 0;
  int neg = i == 1, over = 0;
  uint64_t mag = 0;
  if (i == len) return 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    unsigned dg = (unsigned)(s[i] - '0');
    if (mag > (UINT64_MAX - dg) / 10) over = 1;
    else mag = mag * 10 + dg;
  }
  if (!over && !neg) {
    rv_push_uint64(L, mag);
  } else if (!over && mag <= (uint64_t)INT64_MAX + 1) {
    rv_push_int64(L, mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag);
  } else {
    /* beyond 64 bits: the nearest double (digits only, so the locale does not matter) */
    lua_pushnumber(L, (lua_Number)strtod(s, NULL));
  }
  return 1;
}
