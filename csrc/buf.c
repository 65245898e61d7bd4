#include "buf.h"

#include <stdlib.h>
#include <string.h>

void rv_buf_init(rv_buf *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void rv_buf_free(rv_buf *b) {
  free(b->data);
  rv_buf_init(b);
}

int rv_buf_reserve(rv_buf *b, size_t extra) {
  if (extra > SIZE_MAX - b->len) return 0;
  size_t need = b->len + extra;
  if (need <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) {
      cap = need;
      break;
    }
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (!p) return 0;
  b->data = p;
  b->cap = cap;
  return 1;
}

int rv_buf_append(rv_buf *b, const void *p, size_t n) {
  if (n == 0) return 1;
  if (!rv_buf_reserve(b, n)) return 0;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

int rv_buf_putc(rv_buf *b, char c) { return rv_buf_append(b, &c, 1); }
