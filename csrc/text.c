/* Text helpers of the codecs: UTF-8 validation and base64 (both alphabets). No Lua values
 * are involved beyond raising "out of memory" through the lua_State. */
#include <string.h>

#include "codec.h"

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
