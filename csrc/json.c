/* JSON: a sink for the value walker and a strict RFC 8259 decoder.
 *
 * Written here rather than taken from lua-cjson because the protocol needs what cjson
 * cannot do: integers that stay integers, [] told apart from {}, the shortest float text
 * that reads back exactly, and 64-bit integers as ["$BigInt","n"]. */
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

/* ---- encoding ------------------------------------------------------------------------- */

static void put(rv_enc *e, const char *s, size_t n) { rv_put(e->L, e->out, s, n); }
#define PUTLIT(e, lit) put((e), (lit), sizeof(lit) - 1)

static void js_null(rv_enc *e) { PUTLIT(e, "null"); }

static void js_boolean(rv_enc *e, int b) {
  if (b) PUTLIT(e, "true");
  else PUTLIT(e, "false");
}

/* The decimal text of an integer (neg: minus mag). */
static void js_int_text(rv_enc *e, int neg, uint64_t mag) {
  char tmp[24];
  int len = snprintf(tmp, sizeof tmp, "%s%" PRIu64, neg ? "-" : "", mag);
  if (mag > RV_MAX_SAFE && e->tagged) {
    /* a JavaScript number would round it: send it as a BigInt */
    PUTLIT(e, "[\"$BigInt\",\"");
    put(e, tmp, (size_t)len);
    PUTLIT(e, "\"]");
  } else {
    put(e, tmp, (size_t)len);
    /* The 2.3 server turns JSON integers beyond 32 bits into CBOR 64-bit integers, which
     * reach the actor as BigInt; a ".0" keeps them JavaScript numbers on both servers,
     * as the CBOR path (float64 for such integers) does. */
    if (e->tagged && (neg ? mag > (uint64_t)UINT32_MAX + 1 : mag > UINT32_MAX)) PUTLIT(e, ".0");
  }
}

static void js_integer(rv_enc *e, int64_t n) {
  js_int_text(e, n < 0, n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n);
}

static void js_uinteger(rv_enc *e, uint64_t n) { js_int_text(e, 0, n); }

static void js_number(rv_enc *e, lua_Number v) {
  double d = (double)v;
  if (isnan(d) || isinf(d)) luaL_error(e->L, "cannot encode NaN or infinity as JSON");
  /* The shortest text that reads back exactly; %.17g alone is misread by some parsers
   * (the 2.3 server's, see protocol.md appendix). */
  char tmp[40];
  int len = 0;
  for (int prec = 15; prec <= 17; prec++) {
    len = snprintf(tmp, sizeof tmp, "%.*g", prec, d);
    if (strtod(tmp, NULL) == d) break;
  }
  /* snprintf follows LC_NUMERIC; JSON wants '.' */
  char point = localeconv()->decimal_point[0];
  if (point != '.')
    for (int i = 0; i < len; i++)
      if (tmp[i] == point) tmp[i] = '.';
  put(e, tmp, (size_t)len);
  /* an integral float keeps a fraction so no parser reads it as a (64-bit) integer */
  if (!memchr(tmp, '.', (size_t)len) && !memchr(tmp, 'e', (size_t)len)) PUTLIT(e, ".0");
}

static const char hexd[] = "0123456789abcdef";

static void put_u(rv_enc *e, uint32_t u) {
  char t[6] = {'\\', 'u', hexd[(u >> 12) & 15], hexd[(u >> 8) & 15], hexd[(u >> 4) & 15], hexd[u & 15]};
  put(e, t, 6);
}

/* A JSON string from valid UTF-8: escapes quote, backslash and control characters, and in
 * ASCII mode every non-ASCII character (for HTTP header values). */
static void js_text(rv_enc *e, const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, run = 0;
  rv_put(e->L, e->out, "\"", 1);
  while (i < len) {
    unsigned c = p[i];
    if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || !e->ascii)) {
      i++;
      continue;
    }
    put(e, s + run, i - run);
    if (c >= 0x80) {
      uint32_t cp = 0xFFFD;
      size_t n = rv_utf8_next(p + i, len - i, &cp);
      if (n == 0) n = 1; /* cannot happen: callers pass valid UTF-8 */
      if (cp >= 0x10000) {
        cp -= 0x10000;
        put_u(e, 0xD800 | (cp >> 10));
        put_u(e, 0xDC00 | (cp & 0x3FF));
      } else {
        put_u(e, cp);
      }
      i += n;
    } else {
      switch (c) {
        case '"': PUTLIT(e, "\\\""); break;
        case '\\': PUTLIT(e, "\\\\"); break;
        case '\b': PUTLIT(e, "\\b"); break;
        case '\f': PUTLIT(e, "\\f"); break;
        case '\n': PUTLIT(e, "\\n"); break;
        case '\r': PUTLIT(e, "\\r"); break;
        case '\t': PUTLIT(e, "\\t"); break;
        default: put_u(e, c); break;
      }
      i++;
    }
    run = i;
  }
  put(e, s + run, i - run);
  rv_put(e->L, e->out, "\"", 1);
}

static void js_bytes(rv_enc *e, const char *s, size_t len) {
  /* JSON has no bytes: even untagged JSON uses the compat form */
  rv_enc_tagged_bytes(e, s, len);
}

static void js_array_begin(rv_enc *e, size_t n) {
  (void)n;
  PUTLIT(e, "[");
}
static void js_item(rv_enc *e, size_t i) {
  if (i > 0) PUTLIT(e, ",");
}
static void js_array_end(rv_enc *e) { PUTLIT(e, "]"); }
static void js_map_begin(rv_enc *e, size_t n) {
  (void)n;
  PUTLIT(e, "{");
}
static void js_key(rv_enc *e, const char *s, size_t len, size_t i) {
  if (i > 0) PUTLIT(e, ",");
  js_text(e, s, len);
  PUTLIT(e, ":");
}
static void js_map_end(rv_enc *e) { PUTLIT(e, "}"); }

const rv_sink rv_json_sink = {
    js_null, js_boolean, js_integer, js_uinteger, js_number, js_text, js_bytes,
    js_array_begin, js_item, js_array_end, js_map_begin, js_key, js_map_end,
};

/* ---- decoding ------------------------------------------------------------------------- */

typedef struct {
  lua_State *L;
  const unsigned char *p;
  size_t len, pos;
  int tagged;
  int depth;
  rv_buf *scratch;
} jdec;

static void fail(jdec *d, const char *msg) {
  if (d->pos >= d->len) luaL_error(d->L, "json: unexpected end of input");
  luaL_error(d->L, "json: %s at offset " RV_FMT_I, msg, RV_ARG_I(d->pos));
}

static void skip_ws(jdec *d) {
  while (d->pos < d->len) {
    unsigned char c = d->p[d->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    d->pos++;
  }
}

static int peek(jdec *d) { return d->pos < d->len ? d->p[d->pos] : -1; }

static void value(jdec *d);

static int hex4(jdec *d, size_t at, uint32_t *out) {
  if (d->len - at < 4) return 0;
  uint32_t v = 0;
  for (size_t i = 0; i < 4; i++) {
    unsigned c = d->p[at + i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return 0;
  }
  *out = v;
  return 1;
}

static void put_utf8(jdec *d, uint32_t cp) {
  char t[4];
  size_t n;
  if (cp < 0x80) {
    t[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    t[0] = (char)(0xC0 | (cp >> 6));
    t[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    t[0] = (char)(0xE0 | (cp >> 12));
    t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    t[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    t[0] = (char)(0xF0 | (cp >> 18));
    t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    t[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    t[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  rv_put(d->L, d->scratch, t, n);
}

/* Skips unescaped string characters from d->pos, checking UTF-8; stops at '"' or '\\'. */
static void scan_plain(jdec *d) {
  while (d->pos < d->len) {
    unsigned c = d->p[d->pos];
    if (c == '"' || c == '\\') return;
    if (c < 0x20) fail(d, "control character in string");
    if (c < 0x80) {
      d->pos++;
      continue;
    }
    uint32_t cp;
    size_t n = rv_utf8_next(d->p + d->pos, d->len - d->pos, &cp);
    if (!n) fail(d, "invalid UTF-8 in string");
    d->pos += n;
  }
  fail(d, "unterminated string");
}

/* Pushes the string that starts at the opening quote at d->pos. */
static void string(jdec *d) {
  size_t start = ++d->pos;
  scan_plain(d);
  if (d->p[d->pos] == '"') { /* no escapes: straight from the input */
    lua_pushlstring(d->L, (const char *)d->p + start, d->pos - start);
    d->pos++;
    return;
  }
  rv_buf *b = d->scratch;
  b->len = 0;
  rv_put(d->L, b, d->p + start, d->pos - start);
  for (;;) {
    if (d->p[d->pos] == '"') break;
    /* a backslash */
    d->pos++;
    if (d->pos >= d->len) fail(d, "unterminated string");
    unsigned c = d->p[d->pos++];
    switch (c) {
      case '"':
      case '\\':
      case '/': put_utf8(d, c); break;
      case 'b': put_utf8(d, '\b'); break;
      case 'f': put_utf8(d, '\f'); break;
      case 'n': put_utf8(d, '\n'); break;
      case 'r': put_utf8(d, '\r'); break;
      case 't': put_utf8(d, '\t'); break;
      case 'u': {
        uint32_t cp, lo;
        if (!hex4(d, d->pos, &cp)) fail(d, "invalid \\u escape");
        d->pos += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && d->len - d->pos >= 6 && d->p[d->pos] == '\\' &&
            d->p[d->pos + 1] == 'u' && hex4(d, d->pos + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          d->pos += 6;
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
          /* a lone surrogate (JSON.stringify can write one): U+FFFD, as TextEncoder does */
          cp = 0xFFFD;
        }
        put_utf8(d, cp);
        break;
      }
      default: d->pos--; fail(d, "invalid escape in string");
    }
    size_t run = d->pos;
    scan_plain(d);
    rv_put(d->L, b, d->p + run, d->pos - run);
  }
  d->pos++;
  lua_pushlstring(d->L, b->data ? b->data : "", b->len);
}

static void digits(jdec *d) {
  if (d->pos >= d->len || d->p[d->pos] < '0' || d->p[d->pos] > '9') fail(d, "invalid number");
  while (d->pos < d->len && d->p[d->pos] >= '0' && d->p[d->pos] <= '9') d->pos++;
}

static void number(jdec *d) {
  size_t start = d->pos;
  if (d->p[d->pos] == '-') d->pos++;
  if (peek(d) == '0') d->pos++;
  else digits(d);
  if (peek(d) == '.') {
    d->pos++;
    digits(d);
  }
  if (peek(d) == 'e' || peek(d) == 'E') {
    d->pos++;
    if (peek(d) == '+' || peek(d) == '-') d->pos++;
    digits(d);
  }
  /* The grammar is checked; Lua converts the token independently of the C locale. A JSON
   * number is a JavaScript number, a double: integral within 2^53 it becomes an integer,
   * beyond that it is the double the text stands for ("1152921504606847000" is 2^60),
   * never a different integer (big integers travel as ["$BigInt","n"]). */
  rv_buf *b = d->scratch;
  b->len = 0;
  rv_put(d->L, b, d->p + start, d->pos - start);
  rv_put(d->L, b, "", 1);
  if (lua_stringtonumber(d->L, b->data) == 0) fail(d, "invalid number");
  double v = (double)lua_tonumber(d->L, -1);
  lua_pop(d->L, 1);
  rv_push_number(d->L, v);
}

static void literal(jdec *d, const char *lit, size_t n) {
  if (d->len - d->pos < n || memcmp(d->p + d->pos, lit, n) != 0) fail(d, "invalid literal");
  d->pos += n;
}

static void enter(jdec *d) {
  if (++d->depth > RV_MAX_DEPTH) fail(d, "nesting too deep");
  luaL_checkstack(d->L, 8, "json: nesting too deep");
}

static void array(jdec *d) {
  lua_State *L = d->L;
  enter(d);
  d->pos++;
  lua_newtable(L);
  lua_Integer n = 0;
  int first_text = 0; /* only a string names a compat tag, not a tagged value that decodes to one */
  skip_ws(d);
  if (peek(d) == ']') {
    d->pos++;
  } else {
    for (;;) {
      if (n == 0) first_text = peek(d) == '"';
      value(d);
      lua_rawseti(L, -2, ++n);
      skip_ws(d);
      int c = peek(d);
      d->pos++;
      if (c == ']') break;
      if (c != ',') {
        d->pos--;
        fail(d, "expected ',' or ']'");
      }
    }
  }
  rv_push_array_mt(L);
  lua_setmetatable(L, -2);
  if (d->tagged && n == 2 && first_text) rv_untag_top(L, d->scratch);
  d->depth--;
}

static void object(jdec *d) {
  lua_State *L = d->L;
  enter(d);
  d->pos++;
  lua_newtable(L);
  skip_ws(d);
  if (peek(d) == '}') {
    d->pos++;
  } else {
    for (;;) {
      skip_ws(d);
      if (peek(d) != '"') fail(d, "expected a string key");
      string(d);
      skip_ws(d);
      if (peek(d) != ':') fail(d, "expected ':'");
      d->pos++;
      value(d);
      lua_rawset(L, -3); /* a repeated key: the last one wins, as in JavaScript */
      skip_ws(d);
      int c = peek(d);
      d->pos++;
      if (c == '}') break;
      if (c != ',') {
        d->pos--;
        fail(d, "expected ',' or '}'");
      }
    }
  }
  rv_push_map_mt(L);
  lua_setmetatable(L, -2);
  d->depth--;
}

static void value(jdec *d) {
  skip_ws(d);
  switch (peek(d)) {
    case '{': object(d); return;
    case '[': array(d); return;
    case '"': string(d); return;
    case 't': literal(d, "true", 4); lua_pushboolean(d->L, 1); return;
    case 'f': literal(d, "false", 5); lua_pushboolean(d->L, 0); return;
    case 'n': literal(d, "null", 4); lua_pushlightuserdata(d->L, NULL); return;
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      number(d);
      return;
    default: fail(d, "unexpected character");
  }
}

void rv_json_decode(lua_State *L, const char *p, size_t len, int tagged, rv_buf *scratch) {
  jdec d = {L, (const unsigned char *)p, len, 0, tagged, 0, scratch};
  luaL_checkstack(L, 8, NULL);
  value(&d);
  skip_ws(&d);
  if (d.pos != d.len) fail(&d, "trailing characters after the value");
}
