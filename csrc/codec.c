/* Codec bindings: the Lua functions of rivet.core that turn values and protocol messages
 * into bytes and back, the protected-call frame they run in, and the JSON/CBOR message
 * envelopes (both use the same maps, so one implementation). The pieces they use live
 * apart: walk.c (Lua values onto a format's writers), tags.c (JSON-compat tags), text.c
 * (UTF-8, base64), num.c (numbers), cbor.c / json.c / bare.c (the formats). */
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
  rv_push_buf(L, &job->out);
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
  rv_push_buf(L, &job->out);
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
  rv_push_buf(L, &job->out);
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
  rv_push_buf(L, &job->out);
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
  rv_push_buf(L, &job->out);
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
  return rv_getfield(L, t, k);
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
  if (rv_is(tag, tlen, "ActionRequest")) {
    m->kind = 0;
    what = "name";
    lua_getfield(L, idx, "id");
    int64_t id;
    if (!rv_toint64(L, -1, &id) || id < 0 || id > (int64_t)LUA_MAXINTEGER)
      luaL_error(L, "encode_to_server: ActionRequest.id must be an integer >= 0");
    m->id = (lua_Integer)id;
    lua_getfield(L, idx, "args");
    m->args_idx = lua_gettop(L);
    m->args_n = -1;
    m->args_stack = 0;
    if (!lua_isnil(L, -1) && !lua_istable(L, -1)) luaL_error(L, "encode_to_server: ActionRequest.args must be a table");
  } else if (rv_is(tag, tlen, "SubscriptionRequest")) {
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
  rv_push_buf(L, &job->out);
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
  rv_push_buf(L, &job->out);
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
  if (rv_is(tag, tlen, "Init")) {
    copy_str(L, val, r, "actorId", 0);
    copy_str(L, val, r, "connectionId", 0);
  } else if (rv_is(tag, tlen, "Error")) {
    error_fields(L, val, r);
    copy_id(L, val, r, "actionId", "actionId", 1);
  } else if (rv_is(tag, tlen, "ActionResponse")) {
    copy_id(L, val, r, "id", "id", 0);
    if (field(L, val, "output") == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushlightuserdata(L, NULL);
    }
    lua_setfield(L, r, "output");
  } else if (rv_is(tag, tlen, "Event")) {
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
