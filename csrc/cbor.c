/* CBOR: a sink for the value walker built on libcbor's streaming encoders, and a small
 * recursive decoder over the raw bytes.
 *
 * The decoder is our own rather than cbor_stream_decode because it must push Lua values
 * in nesting order, apply the compat tags as arrays close, and check every length against
 * the remaining input before allocating anything; a direct walk does all that in one
 * place. Every header form is accepted (minimal or not, definite or indefinite). */
#include <cbor.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "codec.h"

/* ---- encoding ------------------------------------------------------------------------- */

#define HEAD_MAX 9 /* the longest CBOR head: initial byte + 8-byte argument */

/* Room for one head at the end of the output. */
static unsigned char *room(rv_enc *e) {
  if (!rv_buf_reserve(e->out, HEAD_MAX)) luaL_error(e->L, "out of memory");
  return (unsigned char *)e->out->data + e->out->len;
}

static void done(rv_enc *e, size_t written) {
  if (written == 0) luaL_error(e->L, "cbor: encoder failed");
  e->out->len += written;
}

static void cb_null(rv_enc *e) { done(e, cbor_encode_null(room(e), HEAD_MAX)); }

static void cb_boolean(rv_enc *e, int b) { done(e, cbor_encode_bool(b != 0, room(e), HEAD_MAX)); }

static void cb_integer(rv_enc *e, int64_t n) {
  /* cbor-x (the servers' codec) writes JavaScript numbers beyond 32 bits as float64; a
   * native 64-bit int there would turn into a BigInt, which actors do not expect. Only
   * integers a double cannot hold exactly travel as 64-bit ints. */
  uint64_t mag = n >= 0 ? (uint64_t)n : (uint64_t)(-(n + 1)); /* CBOR negint argument */
  if (mag <= UINT32_MAX) {
    done(e, n >= 0 ? cbor_encode_uint(mag, room(e), HEAD_MAX) : cbor_encode_negint(mag, room(e), HEAD_MAX));
  } else if (mag < RV_MAX_SAFE) {
    done(e, cbor_encode_double((double)n, room(e), HEAD_MAX));
  } else if (n >= 0 && mag == RV_MAX_SAFE) {
    done(e, cbor_encode_double((double)n, room(e), HEAD_MAX)); /* 2^53 itself */
  } else {
    done(e, n >= 0 ? cbor_encode_uint64(mag, room(e), HEAD_MAX) : cbor_encode_negint64(mag, room(e), HEAD_MAX));
  }
}

static void cb_uinteger(rv_enc *e, uint64_t n) { done(e, cbor_encode_uint64(n, room(e), HEAD_MAX)); }

static void cb_number(rv_enc *e, lua_Number d) { done(e, cbor_encode_double((double)d, room(e), HEAD_MAX)); }

static void cb_text(rv_enc *e, const char *s, size_t len) {
  done(e, cbor_encode_string_start(len, room(e), HEAD_MAX));
  rv_put(e->L, e->out, s, len);
}

static void cb_bytes(rv_enc *e, const char *s, size_t len) {
  /* tag 64 (uint8 typed array) is how cbor-x writes a Uint8Array */
  done(e, cbor_encode_tag(64, room(e), HEAD_MAX));
  done(e, cbor_encode_bytestring_start(len, room(e), HEAD_MAX));
  rv_put(e->L, e->out, s, len);
}

static void cb_array_begin(rv_enc *e, size_t n) { done(e, cbor_encode_array_start(n, room(e), HEAD_MAX)); }
static void cb_map_begin(rv_enc *e, size_t n) { done(e, cbor_encode_map_start(n, room(e), HEAD_MAX)); }
static void cb_nothing(rv_enc *e) { (void)e; }
static void cb_item(rv_enc *e, size_t i) {
  (void)e;
  (void)i;
}
static void cb_key(rv_enc *e, const char *s, size_t len, size_t i) {
  (void)i;
  cb_text(e, s, len);
}

const rv_sink rv_cbor_sink = {
    cb_null, cb_boolean, cb_integer, cb_uinteger, cb_number, cb_text, cb_bytes,
    cb_array_begin, cb_item, cb_nothing, cb_map_begin, cb_key, cb_nothing,
};

void rv_cbor_uint64_full(rv_enc *e, uint64_t v) { done(e, cbor_encode_uint64(v, room(e), HEAD_MAX)); }

/* ---- decoding ------------------------------------------------------------------------- */

typedef struct {
  lua_State *L;
  const unsigned char *p;
  size_t len, pos;
  int tagged;
  int depth;
  rv_buf *scratch;
} cdec;

static void fail(cdec *d, const char *msg) {
  luaL_error(d->L, "cbor: %s at byte " RV_FMT_I, msg, RV_ARG_I(d->pos));
}

static size_t left(const cdec *d) { return d->len - d->pos; }

/* The argument of a head whose additional info is ai (< 24 inline, 24-27 in 1-8 bytes). */
static uint64_t read_arg(cdec *d, unsigned ai) {
  size_t n;
  if (ai < 24) return ai;
  switch (ai) {
    case 24: n = 1; break;
    case 25: n = 2; break;
    case 26: n = 4; break;
    case 27: n = 8; break;
    default: fail(d, "invalid additional information"); return 0;
  }
  if (left(d) < n) fail(d, "truncated input");
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v = (v << 8) | d->p[d->pos + i];
  d->pos += n;
  return v;
}

static void push_negint(lua_State *L, uint64_t v) { /* the value is -1 - v */
  if (v <= (uint64_t)INT64_MAX) rv_push_int64(L, -1 - (int64_t)v);
  else lua_pushnumber(L, -1.0 - (lua_Number)v);
}

static void enter(cdec *d) {
  if (++d->depth > RV_MAX_DEPTH) fail(d, "nesting too deep");
  luaL_checkstack(d->L, 8, "cbor: nesting too deep");
}

static int at_break(cdec *d) {
  if (left(d) == 0) fail(d, "truncated input");
  if (d->p[d->pos] != 0xff) return 0;
  d->pos++;
  return 1;
}

static void item(cdec *d);

/* A byte (mt 2) or text (mt 3) string, definite or made of definite chunks. */
static void string(cdec *d, unsigned mt, unsigned ai) {
  if (ai != 31) {
    uint64_t n = read_arg(d, ai);
    if (n > left(d)) fail(d, "string length exceeds the input");
    lua_pushlstring(d->L, (const char *)d->p + d->pos, (size_t)n);
    d->pos += (size_t)n;
    return;
  }
  rv_buf *b = d->scratch;
  b->len = 0;
  while (!at_break(d)) {
    unsigned ib = d->p[d->pos++];
    if ((ib >> 5) != mt || (ib & 31) == 31) fail(d, "invalid chunk in an indefinite-length string");
    uint64_t n = read_arg(d, ib & 31);
    if (n > left(d)) fail(d, "string length exceeds the input");
    rv_put(d->L, b, d->p + d->pos, (size_t)n);
    d->pos += (size_t)n;
  }
  lua_pushlstring(d->L, b->data ? b->data : "", b->len);
}

static void array(cdec *d, unsigned ai) {
  lua_State *L = d->L;
  uint64_t n = 0;
  int indef = ai == 31;
  if (!indef) {
    n = read_arg(d, ai);
    /* every element takes at least one byte: reject before allocating */
    if (n > left(d)) fail(d, "array length exceeds the input");
  }
  enter(d);
  lua_createtable(L, n < (1u << 20) ? (int)n : (1 << 20), 0);
  lua_Integer count = 0;
  int first_text = 0; /* only a text string names a compat tag, not bytes that decode alike */
  while (indef ? !at_break(d) : (uint64_t)count < n) {
    if (count == 0) first_text = left(d) > 0 && (d->p[d->pos] >> 5) == 3;
    item(d);
    lua_rawseti(L, -2, ++count);
  }
  rv_push_array_mt(L);
  lua_setmetatable(L, -2);
  if (d->tagged && count == 2 && first_text) rv_untag_top(L, d->scratch);
  d->depth--;
}

static void map(cdec *d, unsigned ai) {
  lua_State *L = d->L;
  uint64_t n = 0;
  int indef = ai == 31;
  if (!indef) {
    n = read_arg(d, ai);
    if (n > left(d) / 2) fail(d, "map length exceeds the input");
  }
  enter(d);
  lua_createtable(L, 0, n < (1u << 20) ? (int)n : (1 << 20));
  for (uint64_t i = 0; indef ? !at_break(d) : i < n; i++) {
    size_t at = d->pos;
    item(d);
    int kt = lua_type(L, -1);
    if (kt != LUA_TSTRING && !(kt == LUA_TNUMBER && lua_isinteger(L, -1))) {
      d->pos = at;
      fail(d, "unsupported map key type");
    }
    item(d);
    lua_rawset(L, -3);
  }
  rv_push_map_mt(L);
  lua_setmetatable(L, -2);
  d->depth--;
}

/* Tags 2/3: big integers as byte strings. Lua gets an integer when it fits 64 bits (see
 * rv_push_uint64), else a float. */
static void bignum(cdec *d, uint64_t tag) {
  if (left(d) == 0) fail(d, "truncated input");
  if ((d->p[d->pos] >> 5) != 2) fail(d, "bignum tag without a byte string");
  item(d);
  size_t len;
  const unsigned char *b = (const unsigned char *)lua_tolstring(d->L, -1, &len);
  size_t i = 0;
  while (i < len && b[i] == 0) i++;
  if (len - i <= 8) {
    uint64_t v = 0;
    for (; i < len; i++) v = (v << 8) | b[i];
    lua_pop(d->L, 1);
    if (tag == 2) rv_push_uint64(d->L, v);
    else push_negint(d->L, v);
  } else {
    double v = 0;
    for (; i < len; i++) v = v * 256.0 + b[i];
    lua_pop(d->L, 1);
    lua_pushnumber(d->L, tag == 2 ? v : -1.0 - v);
  }
}

static double half_to_double(unsigned h) {
  unsigned exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (exp == 0) v = ldexp((double)mant, -24);
  else if (exp != 31) v = ldexp((double)(mant + 1024), (int)exp - 25);
  else v = mant == 0 ? INFINITY : NAN;
  return (h & 0x8000) ? -v : v;
}

static void simple(cdec *d, unsigned ai) {
  lua_State *L = d->L;
  switch (ai) {
    case 20: lua_pushboolean(L, 0); return;
    case 21: lua_pushboolean(L, 1); return;
    case 22: /* null */
    case 23: /* undefined: JavaScript's undefined has no Lua counterpart besides null */
      lua_pushlightuserdata(L, NULL);
      return;
    case 25: rv_push_number(L, half_to_double((unsigned)read_arg(d, ai))); return;
    case 26: {
      uint32_t bits = (uint32_t)read_arg(d, ai);
      float f;
      memcpy(&f, &bits, sizeof f);
      rv_push_number(L, (double)f);
      return;
    }
    case 27: {
      uint64_t bits = read_arg(d, ai);
      double v;
      memcpy(&v, &bits, sizeof v);
      rv_push_number(L, v);
      return;
    }
    case 31: d->pos--; fail(d, "unexpected break"); return;
    default: d->pos--; fail(d, "unsupported simple value"); return;
  }
}

static void item(cdec *d) {
  if (left(d) == 0) fail(d, "truncated input");
  unsigned ib = d->p[d->pos++];
  unsigned mt = ib >> 5, ai = ib & 31;
  switch (mt) {
    case 0: rv_push_uint64(d->L, read_arg(d, ai)); return;
    case 1: push_negint(d->L, read_arg(d, ai)); return;
    case 2:
    case 3: string(d, mt, ai); return;
    case 4: array(d, ai); return;
    case 5: map(d, ai); return;
    case 6: {
      uint64_t tag = read_arg(d, ai);
      enter(d);
      /* Typed arrays (tag 64 around a byte string, what cbor-x writes for a Uint8Array),
       * dates and every other tag: the content is the value. */
      if (tag == 2 || tag == 3) bignum(d, tag);
      else item(d);
      d->depth--;
      return;
    }
    default: simple(d, ai); return;
  }
}

void rv_cbor_decode(lua_State *L, const char *p, size_t len, int tagged, rv_buf *scratch) {
  cdec d = {L, (const unsigned char *)p, len, 0, tagged, 0, scratch};
  luaL_checkstack(L, 8, NULL);
  item(&d);
  if (d.pos != d.len) fail(&d, "trailing bytes after the item");
}
