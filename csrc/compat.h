/* One source for Lua 5.4 and (later) LuaJIT / 5.1: the few API differences we use. */
#ifndef RV_COMPAT_H
#define RV_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 504
#define rv_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#else
#define rv_newuserdata(L, sz) lua_newuserdata((L), (sz))
#endif

#if LUA_VERSION_NUM < 502
#define lua_rawlen lua_objlen
#ifndef luaL_newlib
#define luaL_newlib(L, l) (lua_newtable(L), luaL_register(L, NULL, l))
#endif
#endif

#if LUA_VERSION_NUM >= 503
#define rv_isinteger(L, i) lua_isinteger((L), (i))
#else
#define rv_isinteger(L, i) 0
#endif

#endif
