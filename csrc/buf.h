/* A growable byte buffer: every piece of network or encoded data goes through one
 * of these, so no code needs a fixed-size buffer. Allocation failure is reported by
 * a zero return and leaves the buffer as it was. */
#ifndef RV_BUF_H
#define RV_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *data;
  size_t len;
  size_t cap;
} rv_buf;

void rv_buf_init(rv_buf *b);
void rv_buf_free(rv_buf *b);
int rv_buf_reserve(rv_buf *b, size_t extra);
int rv_buf_append(rv_buf *b, const void *p, size_t n);
int rv_buf_putc(rv_buf *b, char c);

#endif
