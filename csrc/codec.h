/* Internal interface of the codec files: codec.c (Lua bindings, message envelopes),
 * walk.c (the value walker), tags.c (JSON-compat tags), text.c (UTF-8, base64), num.c
 * (numbers), and the formats cbor.c, json.c and bare.c.
 *
 * Error model: every codec entry point runs inside rv_protect(), a lua_pcall around the
 * work. Inside it, code raises with luaL_error on bad input or bad user values and never
 * has to unwind by hand: the C buffers live in the rv_job that rv_protect owns and frees
 * on every path. Decoders of network bytes turn the error into `nil, message`; encoders
 * re-raise it as a plain Lua error. */
#ifndef RV_CODEC_H
#define RV_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "core.h"

/* Deepest container nesting accepted in either direction (also stops table cycles). */
#define RV_MAX_DEPTH 512

/* 2^53: the largest magnitude up to which every integer is exact in a JavaScript number. */
#define RV_MAX_SAFE ((uint64_t)1 << 53)

typedef struct rv_job rv_job;
typedef int (*rv_job_fn)(lua_State *L, rv_job *job);

/* Heap buffers of one protected call; rv_protect frees them whatever happens. */
struct rv_job {
  rv_job_fn body;
  rv_buf out;     /* the result being built */
  rv_buf tmp;     /* a nested encoding (a CBOR item inside a BARE frame) */
  rv_buf scratch; /* short-lived pieces: base64 text, unescaped strings, number tokens */
};

/* Runs body(L, job) protected, with the current arguments at 1..n. Returns its results;
 * on error re-raises (raise != 0) or returns nil, message. */
int rv_protect(lua_State *L, rv_job_fn body, int raise);

/* Encodes ActionRequest{id, name, args} into job->out (emptied first), the args being the
 * n stack slots from `first` on (nils as null). Unprotected: bad values raise, so the
 * job's buffers must belong to the caller (conn.c keeps one job per connection: no
 * allocation per frame once its buffers have grown). */
void rv_encode_action_stack(lua_State *L, rv_job *job, int enc, int tagged, lua_Integer id, const char *name,
                            size_t name_len, int first, int n);
/* Frees a job's buffers that grew past `keep` bytes (a large frame does not stay). */
void rv_job_trim(rv_job *job, size_t keep);

/* Appends to b or raises "out of memory" (only inside rv_protect). */
void rv_put(lua_State *L, rv_buf *b, const void *p, size_t n);

/* Pushes the bytes of b as a Lua string. */
static inline void rv_push_buf(lua_State *L, const rv_buf *b) { lua_pushlstring(L, b->data ? b->data : "", b->len); }
/* 1 when s[0..len) is exactly the NUL-terminated lit. */
static inline int rv_is(const char *s, size_t len, const char *lit) {
  return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* ---- encoding Lua values ------------------------------------------------------------ */

struct rv_enc;

/* A wire format's primitive writers; the walker in walk.c decides what to write. */
typedef struct rv_sink {
  void (*null)(struct rv_enc *e);
  void (*boolean)(struct rv_enc *e, int b);
  void (*integer)(struct rv_enc *e, int64_t n);
  void (*uinteger)(struct rv_enc *e, uint64_t n); /* above INT64_MAX (LuaJIT uint64_t cdata) */
  void (*number)(struct rv_enc *e, lua_Number d);
  void (*text)(struct rv_enc *e, const char *s, size_t len);
  void (*bytes)(struct rv_enc *e, const char *s, size_t len); /* untagged mode only */
  void (*array_begin)(struct rv_enc *e, size_t n);
  void (*item)(struct rv_enc *e, size_t i); /* before element i (0-based) */
  void (*array_end)(struct rv_enc *e);
  void (*map_begin)(struct rv_enc *e, size_t n);
  void (*key)(struct rv_enc *e, const char *s, size_t len, size_t i); /* i: 0-based */
  void (*map_end)(struct rv_enc *e);
} rv_sink;

/* One step of the path to the value being encoded, for error messages. */
typedef struct {
  const char *key; /* NULL: array index */
  size_t klen;
  lua_Integer index;
} rv_path_elem;

typedef struct rv_enc {
  lua_State *L;
  const rv_sink *sink;
  rv_buf *out;
  rv_buf *scratch;
  int tagged; /* JSON-compat tags ($Uint8Array, $-escaping, $BigInt in JSON) */
  int ascii;  /* JSON only: escape every non-ASCII character as \uXXXX */
  int depth;
  int mt_base; /* stack index of array_mt; map_mt and bytes_mt follow */
  const char *root;
  rv_path_elem path[RV_MAX_DEPTH + 2];
} rv_enc;

extern const rv_sink rv_cbor_sink;
extern const rv_sink rv_json_sink;

/* walk.c. Pushes the marker metatables (3 stack slots) and fills e. root names the value in errors. */
void rv_enc_init(rv_enc *e, lua_State *L, const rv_sink *sink, rv_buf *out, rv_buf *scratch,
                 int tagged, const char *root);
/* Encodes the value at stack index idx. */
void rv_enc_value(rv_enc *e, int idx);
/* Encodes the table at idx (or nil) as an array whatever its shape: action arguments. */
/* The args array at idx (nil: none) with n items (n < 0: its length); nil items are
 * encoded as null. */
void rv_enc_args(rv_enc *e, int idx, lua_Integer n);
/* The n values at stack slots first .. first + n - 1 as an args array. */
void rv_enc_args_stack(rv_enc *e, int first, int n);

/* tags.c: writes bytes as the compat array ["$Uint8Array","<base64>"] through the sink. */
void rv_enc_tagged_bytes(rv_enc *e, const char *s, size_t len);

/* CBOR pieces the message builders need beyond the sink. */
void rv_cbor_uint64_full(rv_enc *e, uint64_t v); /* always the 8-byte 0x1b form */

/* ---- decoding ------------------------------------------------------------------------ */

/* Each pushes exactly one value decoded from the whole of p[0..len) or raises. */
void rv_cbor_decode(lua_State *L, const char *p, size_t len, int tagged, rv_buf *scratch);
void rv_json_decode(lua_State *L, const char *p, size_t len, int tagged, rv_buf *scratch);

/* tags.c: called by the decoders with a freshly decoded 2-element array on top of the
 * stack, in tagged mode: replaces it by what a compat tag stands for. */
void rv_untag_top(lua_State *L, rv_buf *scratch);

/* ---- num.c: numbers, the same on Lua 5.4 and LuaJIT ------------------------------------ */

/* Pushes the value of a decoded double: an integer when integral and |d| <= 2^53, else
 * the float. */
void rv_push_number(lua_State *L, double d);
/* Push a decoded integer exactly: on 5.4 an integer (a uint64 above INT64_MAX: the nearest
 * float); on LuaJIT a number within ±2^53, else int64_t / uint64_t cdata (through
 * rivet.int64: may call Lua and raise). */
void rv_push_int64(lua_State *L, int64_t v);
void rv_push_uint64(lua_State *L, uint64_t v);
/* Pushes the integer written as -?[0-9]+ in s[0..len) (the char at s[len] must not be a
 * digit: a NUL, say) as the two above do; beyond 64 bits the nearest float. 0 (nothing
 * pushed) when s is not of that form. */
int rv_push_decimal(lua_State *L, const char *s, size_t len);

/* What an integer to encode is: not one, one that fits int64_t, one above INT64_MAX. */
enum { RV_INT_NONE, RV_INT_SIGNED, RV_INT_UNSIGNED };
/* 1 and *i when the number at idx is an integer to encode as one: on 5.4 the integer
 * subtype; on LuaJIT an integral number within ±2^53 other than -0 (anything else is sent
 * as the double it is, which loses nothing). */
int rv_number_integer(lua_State *L, int idx, int64_t *i);
/* 1 and *v when the value at idx is an integer that fits int64_t: on 5.4 the integer
 * subtype; on LuaJIT a number with an exact integer value or such cdata. For values
 * that must be integers (ids): anything else is the caller's error. */
int rv_toint64(lua_State *L, int idx, int64_t *v);
#ifdef RV_TCDATA
/* LuaJIT: the value at idx as an int64_t (RV_INT_SIGNED, *i; uint64_t cdata up to
 * INT64_MAX too) or uint64_t above INT64_MAX (RV_INT_UNSIGNED, *u) cdata; RV_INT_NONE for
 * anything else, other cdata included. */
int rv_cdata_integer(lua_State *L, int idx, int64_t *i, uint64_t *u);
#endif

/* ---- text.c: UTF-8 and base64 -------------------------------------------------------- */

int rv_utf8_valid(const char *s, size_t len);
/* Length (1-4) of the well-formed UTF-8 sequence at p (avail bytes), its code point in *cp;
 * 0 if malformed (overlong, surrogate, beyond U+10FFFF, truncated). */
size_t rv_utf8_next(const unsigned char *p, size_t avail, uint32_t *cp);
/* Appends base64 of s (standard with padding, or url-safe without padding). */
void rv_base64_encode(lua_State *L, rv_buf *b, const char *s, size_t len, int url);
/* Appends the decoded bytes; accepts both alphabets and missing padding. 0 if invalid. */
int rv_base64_decode(lua_State *L, rv_buf *b, const char *s, size_t len);

/* A checked ToServer message; strings and args stay on the Lua stack while it is used. */
typedef struct {
  int kind; /* 0 ActionRequest, 1 SubscriptionRequest */
  lua_Integer id;
  const char *name; /* action name or event name */
  size_t name_len;
  int args_idx; /* stack index of the args table or nil */
  lua_Integer args_n; /* how many args (nil ones included); < 0: the table's length */
  int args_stack;     /* the args are stack slots args_idx .. args_idx + args_n - 1 */
  int subscribe;
} rv_to_server;

/* Message functions (codec.c: JSON/CBOR maps, bare.c: BARE). They run inside rv_protect
 * with the Lua arguments at 1..n; decoders push one value (the output or the message). */
void rv_bare_encode_http_action_request(lua_State *L, rv_job *job, int tagged);
void rv_bare_decode_http_action_response(lua_State *L, const char *p, size_t len, int tagged, rv_buf *scratch);
void rv_bare_decode_http_error(lua_State *L, const char *p, size_t len, int tagged, rv_buf *scratch);
void rv_bare_encode_to_server(lua_State *L, rv_job *job, const rv_to_server *m, int tagged);
void rv_bare_decode_to_client(lua_State *L, const char *p, size_t len, int tagged, rv_buf *scratch);
/* 1 when p is a well-formed BARE ToClient ActionResponse (a version this client reads,
 * tag 2, id, output, nothing after): sets *id and the output's CBOR bytes. Looks at the
 * bytes only (no Lua, never raises); anything else (other tags, bad bytes) returns 0
 * and goes through rv_bare_decode_to_client. */
int rv_bare_action_response(const char *p, size_t len, lua_Integer *id, const char **out, size_t *outlen);
/* The same for an Event (tag 3): its name and the CBOR bytes of its args. */
int rv_bare_event(const char *p, size_t len, const char **name, size_t *namelen, const char **args, size_t *argslen);

#endif
