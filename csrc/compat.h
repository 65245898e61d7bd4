/* One source for Lua 5.4 and LuaJIT 2.1 (the 5.1 API with LuaJIT's 5.2 extensions).
 *
 * The code is written against the Lua 5.4 API. On LuaJIT this header supplies the 5.4
 * names it lacks with the same meaning (as lua-cjson and LPeg do), and rv_* wrappers
 * where a 5.4 function's result differs (lua_getfield and friends return the pushed
 * value's type in 5.4, nothing in 5.1: code that uses the type calls rv_getfield).
 *
 * Integers: 5.4 has an integer subtype, LuaJIT only doubles. Here lua_isinteger means "a
 * number with an exact lua_Integer value" and luaL_checkinteger rejects a fraction or an
 * out-of-range number as 5.4 does (LuaJIT's own one truncates silently). How values beyond
 * 2^53 travel (int64_t / uint64_t cdata) is num.c's business. */
#ifndef RV_COMPAT_H
#define RV_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 504
#define rv_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#else
#define rv_newuserdata(L, sz) lua_newuserdata((L), (sz))
#endif

#if LUA_VERSION_NUM >= 503

#define rv_getfield(L, i, k) lua_getfield((L), (i), (k))
#define rv_rawgeti(L, i, n) lua_rawgeti((L), (i), (n))
#define rv_rawget(L, i) lua_rawget((L), (i))

/* lua_pushfstring / luaL_error format of an integer argument (RV_ARG_I wraps it) */
#define RV_FMT_I "%I"
#define RV_ARG_I(x) ((lua_Integer)(x))

#else /* LuaJIT 2.1 */

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if !defined(luaL_newlib) || !defined(LUA_OK)
#error "rivet.core needs LuaJIT 2.1 (luaL_setfuncs, luaL_newlib, LUA_OK): PUC Lua 5.1 is not supported"
#endif

/* Lua's type tag of cdata (lj_obj.h LUA_TCDATA); lua.h does not name it. */
#define RV_TCDATA 10

#define lua_rawlen lua_objlen

/* lua_Integer is ptrdiff_t; its range and printf form. */
#define LUA_MAXINTEGER PTRDIFF_MAX
#define LUA_MININTEGER PTRDIFF_MIN
#define LUAI_UACINT long long
#define LUA_INTEGER_FMT "%lld"

/* LuaJIT's lua_pushfstring knows %d %s %f %p %c but not %I: print integers as numbers
 * (%.14g: exact for the offsets and indexes the messages name). */
#define RV_FMT_I "%f"
#define RV_ARG_I(x) ((lua_Number)(x))

#define luaL_typeerror luaL_typerror

static inline int lua_absindex(lua_State *L, int i) {
  return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}

/* 5.1's lua_rawgeti and lua_rawseti take an int index; ours are lua_Integer (counts of
 * decoded array items, call ids). An index beyond int goes through a number key, where
 * 5.4 puts it, instead of being cut to another key (element 2^31 of a decoded array
 * would have landed at -2^31). */
static inline void rv_lj_rawgeti(lua_State *L, int i, lua_Integer n) {
  if (n >= INT_MIN && n <= INT_MAX) {
    (lua_rawgeti)(L, i, (int)n);
    return;
  }
  i = lua_absindex(L, i);
  lua_pushnumber(L, (lua_Number)n);
  lua_rawget(L, i);
}
static inline void rv_lj_rawseti(lua_State *L, int i, lua_Integer n) {
  if (n >= INT_MIN && n <= INT_MAX) {
    (lua_rawseti)(L, i, (int)n);
    return;
  }
  i = lua_absindex(L, i);
  lua_pushnumber(L, (lua_Number)n);
  lua_insert(L, -2);
  lua_rawset(L, i);
}
#define lua_rawgeti(L, i, n) rv_lj_rawgeti((L), (i), (n))
#define lua_rawseti(L, i, n) rv_lj_rawseti((L), (i), (n))

static inline int rv_getfield(lua_State *L, int i, const char *k) {
  lua_getfield(L, i, k);
  return lua_type(L, -1);
}
static inline int rv_rawgeti(lua_State *L, int i, lua_Integer n) {
  lua_rawgeti(L, i, n);
  return lua_type(L, -1);
}
static inline int rv_rawget(lua_State *L, int i) {
  lua_rawget(L, i);
  return lua_type(L, -1);
}

/* Registry-style tables keyed by a C address: a lightuserdata key, as 5.2+ does inside. */
static inline int lua_rawgetp(lua_State *L, int i, const void *p) {
  i = lua_absindex(L, i);
  lua_pushlightuserdata(L, (void *)p);
  lua_rawget(L, i);
  return lua_type(L, -1);
}
static inline void lua_rawsetp(lua_State *L, int i, const void *p) {
  i = lua_absindex(L, i);
  lua_pushlightuserdata(L, (void *)p);
  lua_insert(L, -2);
  lua_rawset(L, i);
}

/* 5.4 pushes a C function as a light value; LuaJIT allocates a closure on every push (the
 * protected calls around each decode would allocate per message). Each function is made
 * once and kept in the registry under its address, so a push allocates nothing and two
 * pushes of one function are the same value, as in 5.4. */
static inline void rv_lj_pushcfunction(lua_State *L, lua_CFunction f) {
  void *key = (void *)(uintptr_t)f;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TFUNCTION) return;
  lua_pop(L, 1);
  lua_pushcclosure(L, f, 0);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}
#undef lua_pushcfunction
#define lua_pushcfunction(L, f) rv_lj_pushcfunction((L), (f))

/* One user value per userdata: the 5.1 environment, which must be a table (ours are). */
static inline int lua_getiuservalue(lua_State *L, int i, int n) {
  if (n != 1) {
    lua_pushnil(L);
    return LUA_TNONE;
  }
  lua_getfenv(L, i);
  return lua_type(L, -1);
}
static inline int lua_setiuservalue(lua_State *L, int i, int n) {
  if (n != 1 || !lua_istable(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return lua_setfenv(L, i);
}

/* A number with an exact lua_Integer value (5.4: the integer subtype). */
static inline int rv_number_is_integer(lua_Number d) {
  return d == floor(d) && d >= (lua_Number)LUA_MININTEGER && d < -(lua_Number)LUA_MININTEGER;
}
static inline int lua_isinteger(lua_State *L, int i) {
  return lua_type(L, i) == LUA_TNUMBER && rv_number_is_integer(lua_tonumber(L, i));
}

static inline lua_Integer rv_checkinteger(lua_State *L, int i) {
  lua_Number d = luaL_checknumber(L, i);
  if (!rv_number_is_integer(d)) luaL_argerror(L, i, "number has no integer representation");
  return (lua_Integer)d;
}
static inline lua_Integer rv_optinteger(lua_State *L, int i, lua_Integer def) {
  return lua_isnoneornil(L, i) ? def : rv_checkinteger(L, i);
}
#undef luaL_checkinteger
#undef luaL_optinteger
#define luaL_checkinteger rv_checkinteger
#define luaL_optinteger rv_optinteger

/* Converts the NUL-terminated s (LuaJIT's number syntax, locale-independent) and pushes
 * the number: returns strlen(s) + 1, or 0 and pushes nothing. */
static inline size_t lua_stringtonumber(lua_State *L, const char *s) {
  lua_pushstring(L, s);
  if (!lua_isnumber(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_Number d = lua_tonumber(L, -1);
  lua_pop(L, 1);
  lua_pushnumber(L, d);
  return strlen(s) + 1;
}

/* Pushes tostring(v) as 5.2+ does (__tostring, __name-less default forms). */
static inline const char *luaL_tolstring(lua_State *L, int i, size_t *len) {
  i = lua_absindex(L, i);
  if (luaL_callmeta(L, i, "__tostring")) {
    if (!lua_isstring(L, -1)) luaL_error(L, "'__tostring' must return a string");
  } else {
    switch (lua_type(L, i)) {
      case LUA_TNUMBER:
      case LUA_TSTRING: lua_pushvalue(L, i); break;
      case LUA_TBOOLEAN: lua_pushstring(L, lua_toboolean(L, i) ? "true" : "false"); break;
      case LUA_TNIL: lua_pushliteral(L, "nil"); break;
      default: lua_pushfstring(L, "%s: %p", luaL_typename(L, i), lua_topointer(L, i)); break;
    }
  }
  return lua_tolstring(L, -1, len);
}

#endif

#endif
