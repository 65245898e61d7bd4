/* BARE: the versioned binary envelope of protocol.md §5.3. User values (args, output,
 * metadata) are `data` fields holding one complete CBOR item. */

#include "codec.h"

/* Version the client writes: understood by both 2.0 (v1-v2) and 2.3 (v1-v4). */
#define CLIENT_VERSION 2
/* Versions the client reads: v1 Init carries a connection token, v4 errors an actor. */
#define MAX_VERSION 4

/* ---- writing -------------------------------------------------------------------------- */

static void put_version(lua_State *L, rv_buf *b) {
  const unsigned char v[2] = {CLIENT_VERSION & 0xff, CLIENT_VERSION >> 8};
  rv_put(L, b, v, 2);
}

static void put_uint(lua_State *L, rv_buf *b, uint64_t v) {
  unsigned char t[10];
  size_t n = 0;
  do {
    unsigned char byte = v & 0x7f;
    v >>= 7;
    t[n++] = v ? (byte | 0x80) : byte;
  } while (v);
  rv_put(L, b, t, n);
}

static void put_data(lua_State *L, rv_buf *b, const char *s, size_t len) {
  put_uint(L, b, len);
  rv_put(L, b, s, len);
}

/* data(CBOR of the args array): encoded into job->tmp first, since BARE needs the length. */
static void put_args(lua_State *L, rv_job *job, int idx, lua_Integer n, int stack, int tagged) {
  rv_enc e;
  job->tmp.len = 0;
  rv_enc_init(&e, L, &rv_cbor_sink, &job->tmp, &job->scratch, tagged, "args");
  if (stack) rv_enc_args_stack(&e, idx, (int)n);
  else rv_enc_args(&e, idx, n);
  put_data(L, &job->out, job->tmp.data, job->tmp.len);
}

void rv_bare_encode_http_action_request(lua_State *L, rv_job *job, int tagged) {
  put_version(L, &job->out);
  put_args(L, job, 2, -1, 0, tagged);
}

void rv_bare_encode_to_server(lua_State *L, rv_job *job, const rv_to_server *m, int tagged) {
  rv_buf *b = &job->out;
  put_version(L, b);
  put_uint(L, b, (uint64_t)m->kind);
  if (m->kind == 0) {
    put_uint(L, b, (uint64_t)m->id);
    put_data(L, b, m->name, m->name_len);
    put_args(L, job, m->args_idx, m->args_n, m->args_stack, tagged);
  } else {
    put_data(L, b, m->name, m->name_len);
    rv_put(L, b, m->subscribe ? "\1" : "\0", 1);
  }
}

/* ---- reading -------------------------------------------------------------------------- */

typedef struct {
  lua_State *L;
  const unsigned char *p;
  size_t len, pos;
  int tagged;
  unsigned version;
} bdec;

static void fail(bdec *d, const char *msg) {
  luaL_error(d->L, "bare: %s at byte " RV_FMT_I, msg, RV_ARG_I(d->pos));
}

static unsigned read_u8(bdec *d) {
  if (d->pos >= d->len) fail(d, "truncated message");
  return d->p[d->pos++];
}

static void read_version(bdec *d) {
  if (d->len - d->pos < 2) fail(d, "truncated message");
  d->version = d->p[d->pos] | ((unsigned)d->p[d->pos + 1] << 8);
  if (d->version < 1 || d->version > MAX_VERSION) {
    luaL_error(d->L, "bare: unsupported protocol version %d", (int)d->version);
  }
  d->pos += 2;
}

/* Unsigned LEB128: at most 10 bytes, and the 10th may only hold the 64th bit. */
static uint64_t read_uint(bdec *d) {
  uint64_t v = 0;
  for (unsigned i = 0; i < 10; i++) {
    unsigned b = read_u8(d);
    if (i == 9 && b > 1) fail(d, "varint overflows 64 bits");
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) return v;
  }
  return v; /* not reached: the 10th byte either ends the varint or fails */
}

static const char *read_data(bdec *d, size_t *len) {
  uint64_t n = read_uint(d);
  if (n > d->len - d->pos) fail(d, "length exceeds the message");
  const char *s = (const char *)d->p + d->pos;
  d->pos += (size_t)n;
  *len = (size_t)n;
  return s;
}

static int read_bool(bdec *d, const char *what) {
  unsigned b = read_u8(d);
  if (b > 1) {
    d->pos--;
    fail(d, what);
  }
  return (int)b;
}

static int read_opt(bdec *d) { return read_bool(d, "invalid optional flag"); }

/* Reads a str and stores it as t[k] (t: the table on top of the stack). */
static void field_str(bdec *d, const char *k) {
  size_t len;
  const char *s = read_data(d, &len);
  lua_pushlstring(d->L, s, len);
  lua_setfield(d->L, -2, k);
}

/* Reads data(CBOR) and stores the decoded value as t[k]. */
static void field_cbor(bdec *d, const char *k, rv_buf *scratch) {
  size_t len;
  const char *s = read_data(d, &len);
  rv_cbor_decode(d->L, s, len, d->tagged, scratch);
  lua_setfield(d->L, -2, k);
}

static void field_uint(bdec *d, const char *k) {
  uint64_t v = read_uint(d);
  if (v > (uint64_t)INT64_MAX) fail(d, "integer out of range");
  rv_push_int64(d->L, (int64_t)v);
  lua_setfield(d->L, -2, k);
}

/* actor: optional<ActorSpecifier{actorId str, generation uint, key optional<str>}> */
static void field_actor(bdec *d) {
  if (!read_opt(d)) return;
  lua_createtable(d->L, 0, 3);
  field_str(d, "actorId");
  field_uint(d, "generation");
  if (read_opt(d)) field_str(d, "key");
  lua_setfield(d->L, -2, "actor");
}

/* group, code, message, metadata optional<data>: shared by Error and HttpResponseError. */
static void error_head(bdec *d, rv_buf *scratch) {
  field_str(d, "group");
  field_str(d, "code");
  field_str(d, "message");
  if (read_opt(d)) field_cbor(d, "metadata", scratch);
}

static void finish(bdec *d) {
  if (d->pos != d->len) fail(d, "trailing bytes after the message");
}

void rv_bare_decode_http_action_response(lua_State *L, const char *p, size_t len, int tagged, rv_buf *scratch) {
  bdec d = {L, (const unsigned char *)p, len, 0, tagged, 0};
  read_version(&d);
  size_t n;
  const char *s = read_data(&d, &n);
  finish(&d);
  rv_cbor_decode(L, s, n, tagged, scratch);
}

void rv_bare_decode_http_error(lua_State *L, const char *p, size_t len, int tagged, rv_buf *scratch) {
  bdec d = {L, (const unsigned char *)p, len, 0, tagged, 0};
  read_version(&d);
  luaL_checkstack(L, 8, NULL);
  lua_createtable(L, 0, 6);
  error_head(&d, scratch);
  if (d.version >= 4) field_actor(&d);
  finish(&d);
  lua_pushinteger(L, (lua_Integer)d.version);
  lua_setfield(L, -2, "version");
}

/* A varint as read_uint reads it, without raising: 0 on truncation or overflow. */
static int peek_uint(const unsigned char *p, size_t len, size_t *pos, uint64_t *v) {
  *v = 0;
  for (unsigned i = 0; i < 10 && *pos < len; i++) {
    unsigned b = p[(*pos)++];
    if (i == 9 && b > 1) return 0;
    *v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) return 1;
  }
  return 0;
}

int rv_bare_action_response(const char *s, size_t len, lua_Integer *id, const char **out, size_t *outlen) {
  const unsigned char *p = (const unsigned char *)s;
  if (len < 3) return 0;
  unsigned version = p[0] | ((unsigned)p[1] << 8);
  if (version < 1 || version > MAX_VERSION || p[2] != 2) return 0;
  size_t pos = 3;
  uint64_t v, n;
  if (!peek_uint(p, len, &pos, &v) || v > (uint64_t)LUA_MAXINTEGER) return 0;
  if (!peek_uint(p, len, &pos, &n) || n != len - pos) return 0;
  *id = (lua_Integer)v;
  *out = s + pos;
  *outlen = (size_t)n;
  return 1;
}

int rv_bare_event(const char *s, size_t len, const char **name, size_t *namelen, const char **args, size_t *argslen) {
  const unsigned char *p = (const unsigned char *)s;
  if (len < 3) return 0;
  unsigned version = p[0] | ((unsigned)p[1] << 8);
  if (version < 1 || version > MAX_VERSION || p[2] != 3) return 0;
  size_t pos = 3;
  uint64_t n;
  if (!peek_uint(p, len, &pos, &n) || n > len - pos) return 0;
  *name = s + pos;
  *namelen = (size_t)n;
  pos += (size_t)n;
  if (!peek_uint(p, len, &pos, &n) || n != len - pos) return 0;
  *args = s + pos;
  *argslen = (size_t)n;
  return 1;
}

void rv_bare_decode_to_client(lua_State *L, const char *p, size_t len, int tagged, rv_buf *scratch) {
  bdec d = {L, (const unsigned char *)p, len, 0, tagged, 0};
  read_version(&d);
  uint64_t tag = read_uint(&d);
  luaL_checkstack(L, 8, NULL);
  lua_createtable(L, 0, 8);
  switch (tag) {
    case 0:
      lua_pushliteral(L, "Init");
      lua_setfield(L, -2, "tag");
      field_str(&d, "actorId");
      field_str(&d, "connectionId");
      if (d.version == 1) field_str(&d, "connectionToken");
      break;
    case 1:
      lua_pushliteral(L, "Error");
      lua_setfield(L, -2, "tag");
      error_head(&d, scratch);
      /* present means per-action, even for id 0 (protocol.md §9.8) */
      if (read_opt(&d)) field_uint(&d, "actionId");
      if (d.version >= 4) field_actor(&d);
      break;
    case 2:
      lua_pushliteral(L, "ActionResponse");
      lua_setfield(L, -2, "tag");
      field_uint(&d, "id");
      field_cbor(&d, "output", scratch);
      break;
    case 3: {
      lua_pushliteral(L, "Event");
      lua_setfield(L, -2, "tag");
      field_str(&d, "name");
      size_t at = d.pos;
      field_cbor(&d, "args", scratch);
      if (rv_getfield(L, -1, "args") != LUA_TTABLE) {
        d.pos = at;
        fail(&d, "Event args is not an array");
      }
      lua_pop(L, 1);
      break;
    }
    default:
      fail(&d, "unknown ToClient tag");
  }
  finish(&d);
  lua_pushinteger(L, (lua_Integer)d.version);
  lua_setfield(L, -2, "version");
}
