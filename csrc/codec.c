/* Codec bindings: the Lua functions of rivet.core that turn values and protocol messages
 * into bytes and back, plus what the three wire formats share: the walker that maps Lua
 * values onto a format's primitives, the JSON-compat tags, base64 and UTF-8 checks, and
 * the JSON/CBOR message envelopes (both use the same maps, so one implementation). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

/* ---- protected calls ------------------------------------------------------------------ */

void rv_put(lua_State *L, rv_buf *b, const void *p, size_t n) {
  if (!rv_buf_append(b, p, n)) luaL_error(L, "out of memory");
}

static int trampoline(lua_State *L) {
  rv_job *job = lua_touserdata(L, 1);
  lua_remove(L, 1);
  return job->body(L, job);
}

int rv_protect(lua_State *L, rv_job_fn body, int raise) {
  rv_job job;
  job.body = body;
  rv_buf_init(&job.out);
  rv_buf_init(&job.tmp);
  rv_buf_init(&job.scratch);
  int n = lua_gettop(L);
  luaL_checkstack(L, 2, NULL);
  lua_pushcfunction(L, trampoline);
  lua_insert(L, 1);
  lua_pushlightuserdata(L, &job);
  lua_insert(L, 2);
  int status = lua_pcall(L, n + 1, LUA_MULTRET, 0);
  rv_buf_free(&job.out);
  rv_buf_free(&job.tmp);
  rv_buf_free(&job.scratch);
  if (status != LUA_OK) {
    if (raise) return lua_error(L);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return lua_gettop(L);
}

static void push_buf(lua_State *L, const rv_buf *b) { lua_pushlstring(L, b->data ? b->data : "", b->len); }

/* ---- UTF-8 ---------------------------------------------------------------------------- */

size_t rv_utf8_next(const unsigned char *p, size_t avail, uint32_t *cp) {
  unsigned c = p[0];
  size_t n;
  uint32_t v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if (c >= 0xC2 && c <= 0xDF) {
    n = 1;
    v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 2;
    v = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 3;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (avail <= n) return 0;
  for (size_t i = 1; i <= n; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (p[i] & 0x3F);
  }
  if (n == 2 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) return 0;
  if (n == 3 && (v < 0x10000 || v > 0x10FFFF)) return 0;
  *cp = v;
  return n + 1;
}

int rv_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    uint32_t cp;
    size_t n = rv_utf8_next(p + i, len - i, &cp);
    if (!n) return 0;
    i += n;
  }
  return 1;
}

/* ---- base64 --------------------------------------------------------------------------- */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void rv_base64_encode(lua_State *L, rv_buf *b, const char *s, size_t len, int url) {
  const char *abc = url ? b64_url : b64_std;
  const unsigned char *p = (const unsigned char *)s;
  if (len / 3 >= SIZE_MAX / 4 - 1 || !rv_buf_reserve(b, (len / 3 + 1) * 4)) luaL_error(L, "out of memory");
  char *o = b->data + b->len;
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
    *o++ = abc[v >> 18];
    *o++ = abc[(v >> 12) & 63];
    *o++ = abc[(v >> 6) & 63];
    *o++ = abc[v & 63];
  }
  if (i < len) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < len) v |= (uint32_t)p[i + 1] << 8;
    *o++ = abc[v >> 18];
    *o++ = abc[(v >> 12) & 63];
    if (i + 1 < len) *o++ = abc[(v >> 6) & 63];
    else if (!url) *o++ = '=';
    if (!url) *o++ = '=';
  }
  b->len = (size_t)(o - b->data);
}

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

int rv_base64_decode(lua_State *L, rv_buf *b, const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  /* Padding is optional (base64url has none); at most two '=' and only at the end. */
  if (len > 0 && p[len - 1] == '=') len--;
  if (len > 0 && p[len - 1] == '=') len--;
  if (len % 4 == 1) return 0;
  if (!rv_buf_reserve(b, len / 4 * 3 + 3)) luaL_error(L, "out of memory");
  char *o = b->data + b->len;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64_value(p[i]);
    if (v < 0) return 0;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *o++ = (char)((acc >> bits) & 0xFF);
    }
  }
  b->len = (size_t)(o - b->data);
  return 1;
}

/* ---- numbers -------------------------------------------------------------------------- */

void rv_push_number(lua_State *L, double d) {
  /* JavaScript has no integer type: 5 and 2^40 arrive as floats from cbor-x and must come
   * back to Lua as integers. Beyond 2^53 a float no longer means one exact integer. */
  if (d == floor(d) && fabs(d) <= (double)RV_MAX_SAFE) lua_pushinteger(L, (lua_Integer)d);
  else lua_pushnumber(L, (lua_Number)d);
}

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
        lua_pushfstring(L, "[%I]", (lua_Integer)pe->index);
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

static void enc_map(rv_enc *e, int idx, size_t n) {
  lua_State *L = e->L;
  const rv_sink *k = e->sink;
  size_t i = 0;
  k->map_begin(e, n);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    rv_path_elem *pe = &e->path[e->depth - 1];
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, -2, &len);
      *pe = (rv_path_elem){s, len, 0};
      if (!rv_utf8_valid(s, len)) enc_error(e, "cannot encode a map key that is not valid UTF-8", 1);
      k->key(e, s, len, i);
    } else if (lua_isinteger(L, -2)) {
      /* JSON and JavaScript objects only have string keys. */
      char tmp[32];
      lua_Integer v = lua_tointeger(L, -2);
      int len = snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, (LUAI_UACINT)v);
      *pe = (rv_path_elem){NULL, 0, v};
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
      if (lua_rawgeti(L, idx, 1) != LUA_TSTRING) enc_error(e, "cannot encode: rivet.bytes value must wrap a string", 1);
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
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) e->sink->integer(e, lua_tointeger(L, idx));
      else e->sink->number(e, lua_tonumber(L, idx));
      return;
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

/* ---- compat tags on input ------------------------------------------------------------- */

/* ["$BigInt","-123"]: an integer when it fits int64, else the nearest float. */
static void push_bigint(lua_State *L, const char *s, size_t len) {
  size_t i = (len > 0 && s[0] == '-') ? 1 : 0;
  if (i == len) luaL_error(L, "malformed $BigInt value");
  for (; i < len; i++)
    if (s[i] < '0' || s[i] > '9') luaL_error(L, "malformed $BigInt value");
  /* s is a Lua string, hence NUL-terminated; Lua turns an overflowing decimal into a float */
  if (lua_stringtonumber(L, s) != len + 1) luaL_error(L, "malformed $BigInt value");
}

static int is(const char *s, size_t len, const char *lit) { return len == strlen(lit) && memcmp(s, lit, len) == 0; }

void rv_untag_top(lua_State *L, rv_buf *scratch) {
  int t = lua_gettop(L);
  luaL_checkstack(L, 4, NULL);
  if (lua_rawgeti(L, t, 1) != LUA_TSTRING) {
    lua_settop(L, t);
    return;
  }
  size_t len, plen;
  const char *tag = lua_tolstring(L, t + 1, &len);
  if (len < 2 || tag[0] != '$') {
    lua_settop(L, t);
    return;
  }
  int ptype = lua_rawgeti(L, t, 2);
  if (tag[1] == '$') {
    /* an escaped user array: strip one '$' */
    lua_pushlstring(L, tag + 1, len - 1);
    lua_rawseti(L, t, 1);
    lua_settop(L, t);
    return;
  }
  if (is(tag, len, "$BigInt")) {
    if (ptype != LUA_TSTRING) luaL_error(L, "malformed $BigInt value");
    const char *p = lua_tolstring(L, t + 2, &plen);
    push_bigint(L, p, plen);
  } else if (is(tag, len, "$Uint8Array") || is(tag, len, "$ArrayBuffer")) {
    if (ptype != LUA_TSTRING) luaL_error(L, "malformed %s value", tag);
    const char *p = lua_tolstring(L, t + 2, &plen);
    scratch->len = 0;
    if (!rv_base64_decode(L, scratch, p, plen)) luaL_error(L, "malformed %s value (bad base64)", tag);
    push_buf(L, scratch);
  } else if (is(tag, len, "$Undefined")) {
    lua_pushlightuserdata(L, NULL);
  } else if (is(tag, len, "$Set")) {
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

/* ---- argument helpers ----------------------------------------------------------------- */

enum { ENC_BARE, ENC_CBOR, ENC_JSON };
static const char *const enc_names[] = {"bare", "cbor", "json", NULL};

static int check_enc(lua_State *L) { return luaL_checkoption(L, 1, NULL, enc_names); }

/* The tagged flag of a message function: JSON always uses the compat tags. */
static int msg_tagged(lua_State *L, int enc) { return enc == ENC_JSON ? 1 : lua_toboolean(L, 3); }

/* ---- value functions ------------------------------------------------------------------ */

static int body_cbor_encode(lua_State *L, rv_job *job) {
  rv_enc e;
  rv_enc_init(&e, L, &rv_cbor_sink, &job->out, &job->scratch, lua_toboolean(L, 2), "value");
  rv_enc_value(&e, 1);
  push_buf(L, &job->out);
  return 1;
}

/* core.cbor_encode(v, tagged) -> string */
static int l_cbor_encode(lua_State *L) {
  lua_settop(L, 2);
  return rv_protect(L, body_cbor_encode, 1);
}

static int body_cbor_decode(lua_State *L, rv_job *job) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  rv_cbor_decode(L, s, len, lua_toboolean(L, 2), &job->scratch);
  return 1;
}

/* core.cbor_decode(s, tagged) -> v | nil, err */
static int l_cbor_decode(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 2);
  return rv_protect(L, body_cbor_decode, 0);
}

static int json_encode(lua_State *L, rv_job *job, int ascii) {
  rv_enc e;
  int tagged = lua_isnil(L, 2) ? 1 : lua_toboolean(L, 2);
  rv_enc_init(&e, L, &rv_json_sink, &job->out, &job->scratch, tagged, "value");
  e.ascii = ascii;
  rv_enc_value(&e, 1);
  push_buf(L, &job->out);
  return 1;
}

static int body_json_encode(lua_State *L, rv_job *job) { return json_encode(L, job, 0); }
static int body_json_encode_ascii(lua_State *L, rv_job *job) { return json_encode(L, job, 1); }

/* core.json_encode(v, tagged = true) -> string */
static int l_json_encode(lua_State *L) {
  lua_settop(L, 2);
  return rv_protect(L, body_json_encode, 1);
}

/* core.json_encode_ascii(v, tagged = true) -> string with every non-ASCII char as \uXXXX */
static int l_json_encode_ascii(lua_State *L) {
  lua_settop(L, 2);
  return rv_protect(L, body_json_encode_ascii, 1);
}

static int body_json_decode(lua_State *L, rv_job *job) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  rv_json_decode(L, s, len, lua_isnil(L, 2) ? 1 : lua_toboolean(L, 2), &job->scratch);
  return 1;
}

/* core.json_decode(s, tagged = true) -> v | nil, err */
static int l_json_decode(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 2);
  return rv_protect(L, body_json_decode, 0);
}

static int body_base64_encode(lua_State *L, rv_job *job) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  rv_base64_encode(L, &job->out, s, len, lua_toboolean(L, 2));
  push_buf(L, &job->out);
  return 1;
}

/* core.base64_encode(s) -> standard base64 with padding */
static int l_base64_encode(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 1);
  lua_pushboolean(L, 0);
  return rv_protect(L, body_base64_encode, 1);
}

/* core.base64url_encode(s) -> url-safe base64 without padding */
static int l_base64url_encode(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 1);
  lua_pushboolean(L, 1);
  return rv_protect(L, body_base64_encode, 1);
}

static int body_base64_decode(lua_State *L, rv_job *job) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  if (!rv_base64_decode(L, &job->out, s, len)) luaL_error(L, "invalid base64");
  push_buf(L, &job->out);
  return 1;
}

/* core.base64_decode(s) -> bytes | nil, err (either alphabet, padding optional) */
static int l_base64_decode(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 1);
  return rv_protect(L, body_base64_decode, 0);
}

/* ---- JSON / CBOR message envelopes ---------------------------------------------------- */

static void key(rv_enc *e, const char *k, size_t i) { e->sink->key(e, k, strlen(k), i); }
static void text(rv_enc *e, const char *s) { e->sink->text(e, s, strlen(s)); }

/* An action id: CBOR always as 8-byte uint64 and JSON always as ["$BigInt","n"], the only
 * forms the 2.0 server accepts (2.3 takes both as well). */
static void enc_id(rv_enc *e, int enc, lua_Integer id) {
  if (enc == ENC_CBOR) {
    rv_cbor_uint64_full(e, (uint64_t)id);
    return;
  }
  char tmp[32];
  int len = snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, (LUAI_UACINT)id);
  e->sink->array_begin(e, 2);
  e->sink->item(e, 0);
  text(e, "$BigInt");
  e->sink->item(e, 1);
  e->sink->text(e, tmp, (size_t)len);
  e->sink->array_end(e);
}

static const rv_sink *sink_of(int enc) { return enc == ENC_CBOR ? &rv_cbor_sink : &rv_json_sink; }

static int body_encode_http_action_request(lua_State *L, rv_job *job) {
  int enc = check_enc(L), tagged = msg_tagged(L, enc);
  if (enc == ENC_BARE) {
    rv_bare_encode_http_action_request(L, job, tagged);
  } else {
    rv_enc e;
    rv_enc_init(&e, L, sink_of(enc), &job->out, &job->scratch, tagged, "args");
    e.sink->map_begin(&e, 1);
    key(&e, "args", 0);
    rv_enc_args(&e, 2, -1);
    e.sink->map_end(&e);
  }
  push_buf(L, &job->out);
  return 1;
}

/* core.encode_http_action_request(enc, args, tagged) -> body */
static int l_encode_http_action_request(lua_State *L) {
  check_enc(L);
  lua_settop(L, 3);
  return rv_protect(L, body_encode_http_action_request, 1);
}

/* Pushes t[k] and returns its type; a missing table gives nil. */
static int field(lua_State *L, int t, const char *k) {
  if (!lua_istable(L, t)) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, t, k);
}

/* dst[k] = src[k] when it is a string; else raises unless optional. */
static void copy_str(lua_State *L, int src, int dst, const char *k, int optional) {
  int t = field(L, src, k);
  if (t == LUA_TSTRING) {
    lua_setfield(L, dst, k);
    return;
  }
  if (optional && (t == LUA_TNIL || rv_isnull(L, -1))) {
    lua_pop(L, 1);
    return;
  }
  luaL_error(L, "invalid message: field '%s' is not a string", k);
}

/* Decodes a JSON or CBOR body into one value on the stack; returns its index. */
static int decode_map_body(lua_State *L, rv_job *job, int enc, int tagged) {
  size_t len;
  const char *s = lua_tolstring(L, 2, &len);
  if (enc == ENC_CBOR) rv_cbor_decode(L, s, len, tagged, &job->scratch);
  else rv_json_decode(L, s, len, 1, &job->scratch);
  if (!lua_istable(L, -1)) luaL_error(L, "invalid message: not a map");
  return lua_gettop(L);
}

static int body_decode_http_action_response(lua_State *L, rv_job *job) {
  int enc = check_enc(L), tagged = msg_tagged(L, enc);
  size_t len;
  const char *s = lua_tolstring(L, 2, &len);
  if (enc == ENC_BARE) {
    rv_bare_decode_http_action_response(L, s, len, tagged, &job->scratch);
  } else {
    int t = decode_map_body(L, job, enc, tagged);
    if (field(L, t, "output") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushlightuserdata(L, NULL);
    }
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -2);
  return 2;
}

/* core.decode_http_action_response(enc, body, tagged) -> true, output | nil, err */
static int l_decode_http_action_response(lua_State *L) {
  check_enc(L);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  return rv_protect(L, body_decode_http_action_response, 0);
}

/* Copies the fields of an error (group, code, message, metadata, actor) from the decoded
 * map at src into the result table at dst. */
static void error_fields(lua_State *L, int src, int dst) {
  copy_str(L, src, dst, "group", 0);
  copy_str(L, src, dst, "code", 0);
  if (field(L, src, "message") == LUA_TSTRING) lua_setfield(L, dst, "message");
  else {
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    lua_setfield(L, dst, "message");
  }
  if (field(L, src, "metadata") != LUA_TNIL) lua_setfield(L, dst, "metadata");
  else lua_pop(L, 1);
  int a = lua_gettop(L) + 1;
  if (field(L, src, "actor") == LUA_TTABLE) {
    lua_createtable(L, 0, 3);
    copy_str(L, a, a + 1, "actorId", 1);
    if (field(L, a, "generation") == LUA_TNUMBER) lua_setfield(L, a + 1, "generation");
    else lua_pop(L, 1);
    copy_str(L, a, a + 1, "key", 1);
    lua_setfield(L, dst, "actor");
  }
  lua_settop(L, a - 1);
}

static int body_decode_http_error(lua_State *L, rv_job *job) {
  int enc = check_enc(L), tagged = msg_tagged(L, enc);
  if (enc == ENC_BARE) {
    size_t len;
    const char *s = lua_tolstring(L, 2, &len);
    rv_bare_decode_http_error(L, s, len, tagged, &job->scratch);
    return 1;
  }
  int t = decode_map_body(L, job, enc, tagged);
  lua_createtable(L, 0, 6);
  error_fields(L, t, t + 1);
  return 1;
}

/* core.decode_http_error(enc, body, tagged) -> {group, code, message, metadata?, actor?} | nil, err */
static int l_decode_http_error(lua_State *L) {
  check_enc(L);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  return rv_protect(L, body_decode_http_error, 0);
}

/* Checks a ToServer message table at idx; leaves the fields it refers to on the stack. */
static void check_to_server(lua_State *L, int idx, rv_to_server *m) {
  if (!lua_istable(L, idx)) luaL_error(L, "encode_to_server: message must be a table");
  luaL_checkstack(L, 6, NULL);
  lua_getfield(L, idx, "tag");
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "encode_to_server: message tag must be a string");
  size_t tlen;
  const char *tag = lua_tolstring(L, -1, &tlen);
  const char *what = "name";
  if (is(tag, tlen, "ActionRequest")) {
    m->kind = 0;
    what = "name";
    lua_getfield(L, idx, "id");
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
      luaL_error(L, "encode_to_server: ActionRequest.id must be an integer >= 0");
    m->id = lua_tointeger(L, -1);
    lua_getfield(L, idx, "args");
    m->args_idx = lua_gettop(L);
    m->args_n = -1;
    m->args_stack = 0;
    if (!lua_isnil(L, -1) && !lua_istable(L, -1)) luaL_error(L, "encode_to_server: ActionRequest.args must be a table");
  } else if (is(tag, tlen, "SubscriptionRequest")) {
    m->kind = 1;
    what = "eventName";
    lua_getfield(L, idx, "subscribe");
    if (!lua_isboolean(L, -1)) luaL_error(L, "encode_to_server: SubscriptionRequest.subscribe must be a boolean");
    m->subscribe = lua_toboolean(L, -1);
  } else {
    luaL_error(L, "encode_to_server: unknown message tag '%s'", tag);
    return;
  }
  lua_getfield(L, idx, what);
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "encode_to_server: %s must be a string", what);
  m->name = lua_tolstring(L, -1, &m->name_len);
  if (!rv_utf8_valid(m->name, m->name_len)) luaL_error(L, "encode_to_server: %s must be valid UTF-8", what);
}

static void encode_to_server(lua_State *L, rv_job *job, int enc, int tagged, const rv_to_server *mp) {
  rv_to_server m = *mp;
  if (enc == ENC_BARE) {
    rv_bare_encode_to_server(L, job, &m, tagged);
  } else {
    /* {"body":{"tag":<Variant>,"val":{...}}} */
    rv_enc e;
    const rv_sink *k = sink_of(enc);
    rv_enc_init(&e, L, k, &job->out, &job->scratch, tagged, "args");
    k->map_begin(&e, 1);
    key(&e, "body", 0);
    k->map_begin(&e, 2);
    key(&e, "tag", 0);
    text(&e, m.kind == 0 ? "ActionRequest" : "SubscriptionRequest");
    key(&e, "val", 1);
    if (m.kind == 0) {
      k->map_begin(&e, 3);
      key(&e, "id", 0);
      enc_id(&e, enc, m.id);
      key(&e, "name", 1);
      k->text(&e, m.name, m.name_len);
      key(&e, "args", 2);
      if (m.args_stack) rv_enc_args_stack(&e, m.args_idx, (int)m.args_n);
      else rv_enc_args(&e, m.args_idx, m.args_n);
    } else {
      k->map_begin(&e, 2);
      key(&e, "eventName", 0);
      k->text(&e, m.name, m.name_len);
      key(&e, "subscribe", 1);
      k->boolean(&e, m.subscribe);
    }
    k->map_end(&e);
    k->map_end(&e);
    k->map_end(&e);
  }
}

static int body_encode_to_server(lua_State *L, rv_job *job) {
  int enc = check_enc(L), tagged = msg_tagged(L, enc);
  rv_to_server m;
  check_to_server(L, 2, &m);
  encode_to_server(L, job, enc, tagged, &m);
  push_buf(L, &job->out);
  return 1;
}

/* (enc, tagged, id, name, args table) -> an ActionRequest frame */
static int body_encode_action(lua_State *L, rv_job *job) {
  int enc = (int)lua_tointeger(L, 1);
  rv_to_server m;
  m.kind = 0;
  m.subscribe = 0;
  m.id = lua_tointeger(L, 3);
  m.name = lua_tolstring(L, 4, &m.name_len);
  m.args_idx = 5;
  m.args_stack = 0;
  m.args_n = -1;
  if (!m.name || !rv_utf8_valid(m.name, m.name_len)) luaL_error(L, "encode_to_server: name must be valid UTF-8");
  if (!lua_isnil(L, 5) && !lua_istable(L, 5)) luaL_error(L, "encode_to_server: ActionRequest.args must be a table");
  encode_to_server(L, job, enc, enc == ENC_JSON || lua_toboolean(L, 2), &m);
  push_buf(L, &job->out);
  return 1;
}

/* rv_encode_action(enc, tagged, id, name, args) -> frame: an ActionRequest from its parts,
 * for sm:call (no message table to build and read back). enc is the index into enc_names
 * (conn.c uses the same order). Raises like encode_to_server. */
int rv_encode_action(lua_State *L) {
  lua_settop(L, 5);
  return rv_protect(L, body_encode_action, 1);
}

void rv_encode_action_stack(lua_State *L, rv_job *job, int enc, int tagged, lua_Integer id, const char *name,
                            size_t name_len, int first, int n) {
  if (!rv_utf8_valid(name, name_len)) luaL_error(L, "encode_to_server: name must be valid UTF-8");
  rv_to_server m;
  m.kind = 0;
  m.subscribe = 0;
  m.id = id;
  m.name = name;
  m.name_len = name_len;
  m.args_idx = first;
  m.args_n = n;
  m.args_stack = 1;
  job->out.len = job->tmp.len = job->scratch.len = 0;
  encode_to_server(L, job, enc, enc == ENC_JSON || tagged, &m);
}

void rv_job_trim(rv_job *job, size_t keep) {
  if (job->out.cap > keep) rv_buf_free(&job->out);
  if (job->tmp.cap > keep) rv_buf_free(&job->tmp);
  if (job->scratch.cap > keep) rv_buf_free(&job->scratch);
}

/* core.encode_to_server(enc, msg, tagged) -> frame */
static int l_encode_to_server(lua_State *L) {
  check_enc(L);
  lua_settop(L, 3);
  return rv_protect(L, body_encode_to_server, 1);
}

/* Sets dst[name] = the action id in src[k]; absent or null is allowed when optional. */
static void copy_id(lua_State *L, int src, int dst, const char *k, const char *name, int optional) {
  int t = field(L, src, k);
  if (optional && (t == LUA_TNIL || rv_isnull(L, -1))) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0) luaL_error(L, "invalid message: bad action id");
  lua_setfield(L, dst, name);
}

static int body_decode_to_client(lua_State *L, rv_job *job) {
  int enc = check_enc(L), tagged = msg_tagged(L, enc);
  size_t len;
  const char *s = lua_tolstring(L, 2, &len);
  if (enc == ENC_BARE) {
    rv_bare_decode_to_client(L, s, len, tagged, &job->scratch);
    return 1;
  }
  int t = decode_map_body(L, job, enc, tagged);
  int body = t + 1, tagi = t + 2, val = t + 3, r = t + 4;
  if (field(L, t, "body") != LUA_TTABLE) luaL_error(L, "invalid message: no body");
  if (field(L, body, "tag") != LUA_TSTRING) luaL_error(L, "invalid message: no tag");
  if (field(L, body, "val") != LUA_TTABLE) luaL_error(L, "invalid message: no val");
  size_t tlen;
  const char *tag = lua_tolstring(L, tagi, &tlen);
  lua_createtable(L, 0, 6);
  lua_pushvalue(L, tagi);
  lua_setfield(L, r, "tag");
  if (is(tag, tlen, "Init")) {
    copy_str(L, val, r, "actorId", 0);
    copy_str(L, val, r, "connectionId", 0);
  } else if (is(tag, tlen, "Error")) {
    error_fields(L, val, r);
    copy_id(L, val, r, "actionId", "actionId", 1);
  } else if (is(tag, tlen, "ActionResponse")) {
    copy_id(L, val, r, "id", "id", 0);
    if (field(L, val, "output") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushlightuserdata(L, NULL);
    }
    lua_setfield(L, r, "output");
  } else if (is(tag, tlen, "Event")) {
    copy_str(L, val, r, "name", 0);
    int at = field(L, val, "args");
    if (at == LUA_TNIL) {
      lua_pop(L, 1);
      lua_newtable(L);
      rv_push_array_mt(L);
      lua_setmetatable(L, -2);
    } else if (at != LUA_TTABLE) {
      luaL_error(L, "invalid message: Event args is not an array");
    }
    lua_setfield(L, r, "args");
  } else {
    luaL_error(L, "invalid message: unknown tag '%s'", tag);
  }
  return 1;
}

/* core.decode_to_client(enc, frame, tagged) -> msg | nil, err */
static int l_decode_to_client(lua_State *L) {
  check_enc(L);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  return rv_protect(L, body_decode_to_client, 0);
}

void rv_codec_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"cbor_encode", l_cbor_encode},
      {"cbor_decode", l_cbor_decode},
      {"json_encode", l_json_encode},
      {"json_encode_ascii", l_json_encode_ascii},
      {"json_decode", l_json_decode},
      {"base64_encode", l_base64_encode},
      {"base64url_encode", l_base64url_encode},
      {"base64_decode", l_base64_decode},
      {"encode_http_action_request", l_encode_http_action_request},
      {"decode_http_action_response", l_decode_http_action_response},
      {"decode_http_error", l_decode_http_error},
      {"encode_to_server", l_encode_to_server},
      {"decode_to_client", l_decode_to_client},
      {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
}
