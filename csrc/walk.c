/* The value walker: maps a Lua value (tables, marker metatables, strings, numbers, null)
 * onto the primitive writers of a wire format (an rv_sink: CBOR or JSON; BARE frames
 * carry CBOR values). It decides arrays vs maps, checks keys and UTF-8, escapes user
 * arrays that look like compat tags, limits nesting and names the path of a bad value. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

/* ---- the value walker ----------------------------------------------------------------- */

void rv_enc_init(rv_enc *e, lua_State *L, const rv_sink *sink, rv_buf *out, rv_buf *scratch,
                 int tagged, const char *root) {
  luaL_checkstack(L, 8, NULL);
  rv_push_array_mt(L);
  rv_push_map_mt(L);
  rv_push_bytes_mt(L);
  e->L = L;
  e->sink = sink;
  e->out = out;
  e->scratch = scratch;
  e->tagged = tagged;
  e->ascii = 0;
  e->depth = 0;
  e->mt_base = lua_gettop(L) - 2;
  e->root = root;
}

/* Raises msg, followed by the path of the offending value ("at args[2].x"). */
static void enc_error(rv_enc *e, const char *msg, int with_path) {
  lua_State *L = e->L;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, msg);
  if (with_path && e->depth > 0) {
    luaL_addstring(&b, " at ");
    luaL_addstring(&b, e->root);
    for (int i = 0; i < e->depth; i++) {
      const rv_path_elem *pe = &e->path[i];
      if (pe->key) {
        luaL_addchar(&b, '.');
        luaL_addlstring(&b, pe->key, pe->klen);
      } else {
        lua_pushfstring(L, "[" RV_FMT_I "]", RV_ARG_I(pe->index));
        luaL_addvalue(&b);
      }
    }
  }
  luaL_pushresult(&b);
  lua_error(L);
}

static void enc_type_error(rv_enc *e, const char *what, int idx) {
  lua_pushfstring(e->L, "cannot encode %s of type %s", what, luaL_typename(e->L, idx));
  enc_error(e, lua_tostring(e->L, -1), 1);
}

static void enc_bytes(rv_enc *e, const char *s, size_t len) {
  /* The 2.3 server rejects native byte strings; compat mode sends the tag array instead. */
  if (e->tagged) rv_enc_tagged_bytes(e, s, len);
  else e->sink->bytes(e, s, len);
}

static void enc_enter(rv_enc *e) {
  if (e->depth >= RV_MAX_DEPTH) enc_error(e, "cannot encode: nesting too deep (cycle?)", 0);
  if (!lua_checkstack(e->L, 6)) enc_error(e, "cannot encode: nesting too deep (cycle?)", 0);
  e->depth++;
}

/* The items of the table at idx, or with stack set, the stack slots idx .. idx + n - 1. */
static void enc_items(rv_enc *e, int idx, size_t n, int stack) {
  lua_State *L = e->L;
  const rv_sink *k = e->sink;
  k->array_begin(e, n);
  for (size_t i = 0; i < n; i++) {
    k->item(e, i);
    if (stack) lua_pushvalue(L, idx + (int)i);
    else lua_rawgeti(L, idx, (lua_Integer)i + 1);
    e->path[e->depth - 1] = (rv_path_elem){NULL, 0, (lua_Integer)i + 1};
    if (i == 0 && n == 2 && e->tagged && lua_type(L, -1) == LUA_TSTRING) {
      /* A user array that looks like a compat tag gets one more '$' so the server
       * does not interpret it; its decoder strips it again. */
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      if (len > 0 && s[0] == '$' && rv_utf8_valid(s, len)) {
        e->scratch->len = 0;
        rv_put(L, e->scratch, "$", 1);
        rv_put(L, e->scratch, s, len);
        k->text(e, e->scratch->data, e->scratch->len);
        lua_pop(L, 1);
        continue;
      }
    }
    rv_enc_value(e, lua_gettop(L));
    lua_pop(L, 1);
  }
  k->array_end(e);
}

static void enc_array(rv_enc *e, int idx, size_t n) { enc_items(e, idx, n, 0); }

/* An integer map key (RV_INT_*): a number with an integer value (5.4 has normalised float
 * keys already), or on LuaJIT an int64_t / uint64_t cdata (*u when above INT64_MAX). */
static int int_key(lua_State *L, int idx, int64_t *i, uint64_t *u) {
  if (lua_isinteger(L, idx)) {
    *i = (int64_t)lua_tointeger(L, idx);
    return RV_INT_SIGNED;
  }
#ifdef RV_TCDATA
  return rv_cdata_integer(L, idx, i, u);
#else
  (void)u;
  return RV_INT_NONE;
#endif
}

static void enc_map(rv_enc *e, int idx, size_t n) {
  lua_State *L = e->L;
  const rv_sink *k = e->sink;
  size_t i = 0;
  k->map_begin(e, n);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    rv_path_elem *pe = &e->path[e->depth - 1];
    int64_t iv = 0;
    uint64_t uv = 0;
    int kind;
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, -2, &len);
      *pe = (rv_path_elem){s, len, 0};
      if (!rv_utf8_valid(s, len)) enc_error(e, "cannot encode a map key that is not valid UTF-8", 1);
      k->key(e, s, len, i);
    } else if ((kind = int_key(L, -2, &iv, &uv)) != RV_INT_NONE) {
      /* JSON and JavaScript objects only have string keys. */
      char tmp[24];
      int len = kind == RV_INT_SIGNED ? snprintf(tmp, sizeof tmp, "%" PRId64, iv)
                                      : snprintf(tmp, sizeof tmp, "%" PRIu64, uv);
      *pe = (rv_path_elem){NULL, 0, (lua_Integer)iv};
      k->key(e, tmp, (size_t)len, i);
    } else {
      lua_pushfstring(L, "cannot encode a map key of type %s",
                      lua_type(L, -2) == LUA_TNUMBER ? "number (not an integer)" : luaL_typename(L, -2));
      e->depth--; /* the path names the table that holds the bad key */
      enc_error(e, lua_tostring(L, -1), 1);
    }
    rv_enc_value(e, lua_gettop(L));
    lua_pop(L, 1);
    i++;
  }
  k->map_end(e);
}

/* An unmarked table: keys exactly 1..n (n > 0) make an array, anything else a map. */
static void enc_plain_table(rv_enc *e, int idx) {
  lua_State *L = e->L;
  size_t n = 0;
  lua_Integer max = 0;
  int seq = 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    n++;
    if (seq) {
      if (lua_isinteger(L, -2)) {
        lua_Integer k = lua_tointeger(L, -2);
        if (k < 1) seq = 0;
        else if (k > max) max = k;
      } else {
        seq = 0;
      }
    }
    lua_pop(L, 1);
  }
  if (n > 0 && seq && (uint64_t)max == n) enc_array(e, idx, n);
  else enc_map(e, idx, n);
}

static size_t count_keys(lua_State *L, int idx) {
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    n++;
    lua_pop(L, 1);
  }
  return n;
}

static void enc_table(rv_enc *e, int idx) {
  lua_State *L = e->L;
  enc_enter(e);
  if (lua_getmetatable(L, idx)) {
    if (lua_rawequal(L, -1, e->mt_base)) {
      lua_pop(L, 1);
      enc_array(e, idx, (size_t)lua_rawlen(L, idx));
    } else if (lua_rawequal(L, -1, e->mt_base + 1)) {
      lua_pop(L, 1);
      enc_map(e, idx, count_keys(L, idx));
    } else if (lua_rawequal(L, -1, e->mt_base + 2)) {
      lua_pop(L, 1);
      e->depth--;
      if (rv_rawgeti(L, idx, 1) != LUA_TSTRING) enc_error(e, "cannot encode: rivet.bytes value must wrap a string", 1);
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      enc_bytes(e, s, len);
      lua_pop(L, 1);
      return;
    } else {
      lua_pop(L, 1);
      enc_plain_table(e, idx);
    }
  } else {
    enc_plain_table(e, idx);
  }
  e->depth--;
}

void rv_enc_value(rv_enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      e->sink->null(e);
      return;
    case LUA_TBOOLEAN:
      e->sink->boolean(e, lua_toboolean(L, idx));
      return;
    case LUA_TNUMBER: {
      int64_t i;
      if (rv_number_integer(L, idx, &i)) e->sink->integer(e, i);
      else e->sink->number(e, lua_tonumber(L, idx));
      return;
    }
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (rv_utf8_valid(s, len)) e->sink->text(e, s, len);
      else enc_bytes(e, s, len);
      return;
    }
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) {
        e->sink->null(e);
        return;
      }
      break;
    case LUA_TTABLE:
      enc_table(e, idx);
      return;
#ifdef RV_TCDATA
    case RV_TCDATA: { /* LuaJIT: int64_t / uint64_t cdata are integers */
      int64_t i = 0;
      uint64_t u = 0;
      switch (rv_cdata_integer(L, idx, &i, &u)) {
        case RV_INT_SIGNED: e->sink->integer(e, i); return;
        case RV_INT_UNSIGNED: e->sink->uinteger(e, u); return;
        default: enc_error(e, "cannot encode a cdata value that is not an int64_t or uint64_t", 1); return;
      }
    }
#endif
    default:
      break;
  }
  enc_type_error(e, "a value", idx);
}

void rv_enc_args(rv_enc *e, int idx, lua_Integer n) {
  lua_State *L = e->L;
  if (lua_isnoneornil(L, idx)) {
    e->sink->array_begin(e, 0);
    e->sink->array_end(e);
    return;
  }
  if (!lua_istable(L, idx)) enc_type_error(e, "args", idx);
  enc_enter(e);
  enc_array(e, idx, n >= 0 ? (size_t)n : (size_t)lua_rawlen(L, idx));
  e->depth--;
}

void rv_enc_args_stack(rv_enc *e, int first, int n) {
  enc_enter(e);
  enc_items(e, first, (size_t)n, 1);
  e->depth--;
}
