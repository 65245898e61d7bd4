/* The connection state machine (core.conn_new -> "rivet.conn_sm"): action ids, pending
 * calls with deadlines, the queue while disconnected, subscriptions, backoff and status.
 *
 * It does no I/O and reads no clock. The Lua side feeds it whole WebSocket messages,
 * close events and the current time (monotonic seconds), and drains what happened:
 * frames to send, close requests, completed calls, events, status changes and errors.
 * That keeps one core for every transport and lets specs feed it hostile input directly.
 *
 * Frames are encoded and decoded through core.encode_to_server / core.decode_to_client
 * (kept as upvalues), so this file does not depend on codec internals. Lua values
 * (queued frames, subscriptions, the outbox, the pending connection error) live in the
 * uservalue table; C keeps only the bookkeeping: a hash of pending calls by id, a
 * deadline heap and two ordered lists (queued, in flight), so a response, a timeout or
 * a new call costs O(1) or O(log n) whatever the number of calls in flight. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "core.h"

enum { ST_IDLE, ST_CONNECTING, ST_CONNECTED, ST_DISCONNECTED, ST_DISPOSED };
static const char *const status_names[] = {"idle", "connecting", "connected", "disconnected", "disposed"};

enum { ENC_BARE, ENC_CBOR, ENC_JSON }; /* the order of codec.c's (rv_encode_action) */
static const char *const enc_names[] = {"bare", "cbor", "json", NULL};

enum { LINE_23, LINE_20 };
static const char *const line_names[] = {"2.3", "2.0", NULL};

/* Slots of the uservalue table. */
enum {
  UV_OUT = 1,  /* outbox: array of items since the last drain */
  UV_FRAMES,   /* id -> encoded ActionRequest of a queued call */
  UV_SUBS,     /* event name -> encoded SubscriptionRequest{subscribe=true} */
  UV_ERRMT,    /* metatable given to error tables, or nil */
  UV_ACTOR,    /* actorId of the last Init */
  UV_CONNID,   /* connectionId of the current connection */
  UV_CONNERR,  /* connection-level error of the coming close (Error frame, malformed input) */
  UV_REFS      /* luaL_ref table of the values given to sm:call (made on first use) */
};

/* Upvalues shared by conn_new and every method. */
#define UP_MT lua_upvalueindex(1)
#define UP_ENCODE lua_upvalueindex(2)
#define UP_DECODE lua_upvalueindex(3)

#define NO_HEAP ((size_t)-1)

enum { CALL_QUEUED, CALL_INFLIGHT };

typedef struct rv_call {
  lua_Integer id;
  double deadline; /* HUGE_VAL: none */
  size_t heap_idx; /* NO_HEAP when not in the deadline heap */
  int state;
  struct rv_call *hnext;      /* hash chain */
  struct rv_call *prev, *next; /* queued or in-flight list, in id order */
  int ref;     /* the value given to sm:call, in UV_REFS (LUA_NOREF: none) */
  size_t name_len;
  char name[]; /* action name, for error messages */
} rv_call;

typedef struct {
  rv_call *head, *tail;
  size_t n;
} call_list;

typedef struct {
  int status, enc, tagged, line;
  double backoff_initial, backoff_max;
  uint64_t rng;
  lua_Integer attempt;
  double next_at; /* time of the next attempt, when has_next */
  int has_next;
  lua_Integer next_id;
  lua_Integer out_n;
  /* A close is coming (connection-level Error frame, or we asked to close after malformed
   * input): nothing more is sent on this transport, new calls queue for the next one, and
   * further frames are ignored. */
  int closing;
  int conn_err_notified;
  rv_call **buckets; /* power-of-two count; ids are sequential, so id & mask spreads well */
  size_t nbuckets, ncalls;
  rv_call **heap; /* min-heap of calls with a deadline */
  size_t heap_n, heap_cap;
  call_list queued, inflight;
  rv_job job; /* encoding buffers of sm:callv, kept between calls */
} rv_conn;

/* ---- C bookkeeping ------------------------------------------------------------------- */

static size_t bucket_of(const rv_conn *c, lua_Integer id) { return (size_t)id & (c->nbuckets - 1); }

static rv_call *hash_find(const rv_conn *c, lua_Integer id) {
  if (c->nbuckets == 0) return NULL;
  for (rv_call *k = c->buckets[bucket_of(c, id)]; k; k = k->hnext)
    if (k->id == id) return k;
  return NULL;
}

/* Grows the bucket array (load factor 1); on allocation failure keeps the old one, which
 * stays correct, only slower. Returns 0 only when there is no bucket array at all. */
static int hash_reserve(rv_conn *c) {
  if (c->ncalls < c->nbuckets) return 1;
  size_t n = c->nbuckets ? c->nbuckets * 2 : 64;
  rv_call **nb = calloc(n, sizeof *nb);
  if (!nb) return c->nbuckets != 0;
  for (size_t i = 0; i < c->nbuckets; i++) {
    rv_call *k = c->buckets[i];
    while (k) {
      rv_call *nx = k->hnext;
      size_t b = (size_t)k->id & (n - 1);
      k->hnext = nb[b];
      nb[b] = k;
      k = nx;
    }
  }
  free(c->buckets);
  c->buckets = nb;
  c->nbuckets = n;
  return 1;
}

static void hash_insert(rv_conn *c, rv_call *k) {
  size_t b = bucket_of(c, k->id);
  k->hnext = c->buckets[b];
  c->buckets[b] = k;
  c->ncalls++;
}

static void hash_remove(rv_conn *c, rv_call *k) {
  rv_call **p = &c->buckets[bucket_of(c, k->id)];
  while (*p && *p != k) p = &(*p)->hnext;
  if (*p) {
    *p = k->hnext;
    c->ncalls--;
  }
}

static int heap_less(const rv_call *a, const rv_call *b) {
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->id < b->id);
}

static void heap_set(rv_conn *c, size_t i, rv_call *k) {
  c->heap[i] = k;
  k->heap_idx = i;
}

static void heap_up(rv_conn *c, size_t i) {
  rv_call *k = c->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!heap_less(k, c->heap[p])) break;
    heap_set(c, i, c->heap[p]);
    i = p;
  }
  heap_set(c, i, k);
}

static void heap_down(rv_conn *c, size_t i) {
  rv_call *k = c->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    rv_call *best = k;
    if (l < c->heap_n && heap_less(c->heap[l], best)) m = l, best = c->heap[l];
    if (l + 1 < c->heap_n && heap_less(c->heap[l + 1], best)) m = l + 1, best = c->heap[l + 1];
    if (m == i) break;
    heap_set(c, i, best);
    i = m;
  }
  heap_set(c, i, k);
}

static int heap_reserve(rv_conn *c) {
  if (c->heap_n < c->heap_cap) return 1;
  size_t n = c->heap_cap ? c->heap_cap * 2 : 64;
  rv_call **nh = realloc(c->heap, n * sizeof *nh);
  if (!nh) return 0;
  c->heap = nh;
  c->heap_cap = n;
  return 1;
}

static void heap_push(rv_conn *c, rv_call *k) { /* space reserved by the caller */
  c->heap[c->heap_n] = k;
  k->heap_idx = c->heap_n++;
  heap_up(c, k->heap_idx);
}

static void heap_remove(rv_conn *c, rv_call *k) {
  size_t i = k->heap_idx;
  if (i == NO_HEAP) return;
  k->heap_idx = NO_HEAP;
  rv_call *last = c->heap[--c->heap_n];
  if (i == c->heap_n) return;
  heap_set(c, i, last);
  if (i > 0 && heap_less(last, c->heap[(i - 1) / 2])) heap_up(c, i);
  else heap_down(c, i);
}

static void list_push(call_list *l, rv_call *k) {
  k->next = NULL;
  k->prev = l->tail;
  if (l->tail) l->tail->next = k;
  else l->head = k;
  l->tail = k;
  l->n++;
}

static void list_remove(call_list *l, rv_call *k) {
  if (k->prev) k->prev->next = k->next;
  else l->head = k->next;
  if (k->next) k->next->prev = k->prev;
  else l->tail = k->prev;
  k->prev = k->next = NULL;
  l->n--;
}

/* Forgets a call entirely (hash, list, heap) and frees it. */
static void call_free(rv_conn *c, rv_call *k) {
  hash_remove(c, k);
  list_remove(k->state == CALL_QUEUED ? &c->queued : &c->inflight, k);
  heap_remove(c, k);
  free(k);
}

static void free_all(rv_conn *c) {
  for (size_t i = 0; i < c->nbuckets; i++) {
    rv_call *k = c->buckets[i];
    while (k) {
      rv_call *nx = k->hnext;
      free(k);
      k = nx;
    }
  }
  free(c->buckets);
  free(c->heap);
  c->buckets = NULL;
  c->heap = NULL;
  c->nbuckets = c->ncalls = c->heap_n = c->heap_cap = 0;
  memset(&c->queued, 0, sizeof c->queued);
  memset(&c->inflight, 0, sizeof c->inflight);
}

/* splitmix64: a small, seedable PRNG so backoff jitter is reproducible in tests. */
static double next_random(rv_conn *c) {
  uint64_t z = (c->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
}

/* ---- Lua-side helpers ---------------------------------------------------------------- */

static rv_conn *check_sm(lua_State *L) {
  rv_conn *c = lua_touserdata(L, 1);
  if (c && lua_getmetatable(L, 1)) {
    int same = lua_rawequal(L, -1, UP_MT);
    lua_pop(L, 1);
    if (same) return c;
  }
  luaL_typeerror(L, 1, "rivet.conn_sm");
  return NULL;
}

/* Pushes the uservalue table and returns its index. */
static int push_uv(lua_State *L) {
  lua_getiuservalue(L, 1, 1);
  return lua_gettop(L);
}

/* The outbox is a flat array, ITEM_SLOTS slots per item: the kind (an IT_ number, the
 * index into item_names) and up to four values, so that queueing and draining an item
 * makes no table (one table per item used to be a good part of an action's cost):
 *   status  status name           send   frame, binary        close  code, reason
 *   error   err                   result fut|false, ok, value|err, id
 *   event   name, args            open   actorId, connectionId */
enum { IT_STATUS = 1, IT_SEND, IT_CLOSE, IT_ERROR, IT_RESULT, IT_EVENT, IT_OPEN };
static const char *const item_names[] = {"status", "send", "close", "error", "result", "event", "open", NULL};
#define ITEM_SLOTS 5

/* Appends an item of `kind` whose values are the top `nvals` stack slots (pops them). */
static void out_item(lua_State *L, rv_conn *c, int uv, int kind, int nvals) {
  lua_rawgeti(L, uv, UV_OUT);
  lua_Integer base = c->out_n * ITEM_SLOTS;
  lua_pushinteger(L, kind);
  lua_rawseti(L, -2, base + 1);
  for (int i = 0; i < nvals; i++) {
    lua_pushvalue(L, -(nvals + 1) + i);
    lua_rawseti(L, -2, base + 2 + i);
  }
  lua_pop(L, nvals + 1);
  c->out_n++;
}

static void set_status(lua_State *L, rv_conn *c, int uv, int st) {
  if (c->status == st) return;
  c->status = st;
  lua_pushstring(L, status_names[st]);
  out_item(L, c, uv, IT_STATUS, 1);
}

/* Queues a send of the frame on top of the stack (pops it). */
static void out_send(lua_State *L, rv_conn *c, int uv) {
  lua_pushboolean(L, c->enc != ENC_JSON);
  out_item(L, c, uv, IT_SEND, 2);
}

static void out_close(lua_State *L, rv_conn *c, int uv, int code, const char *reason) {
  lua_pushinteger(L, code);
  lua_pushstring(L, reason);
  out_item(L, c, uv, IT_CLOSE, 2);
}

/* Queues an error item for the error at idx. */
static void out_error(lua_State *L, rv_conn *c, int uv, int idx) {
  lua_pushvalue(L, idx);
  out_item(L, c, uv, IT_ERROR, 1);
}

/* Pushes a new error table (with opts.error_mt when given) and returns its index. */
static int new_error(lua_State *L, int uv, const char *group, const char *code) {
  lua_createtable(L, 0, 6);
  int e = lua_gettop(L);
  if (group) {
    lua_pushstring(L, group);
    lua_setfield(L, e, "group");
  }
  if (code) {
    lua_pushstring(L, code);
    lua_setfield(L, e, "code");
  }
  if (rv_rawgeti(L, uv, UV_ERRMT) == LUA_TTABLE) lua_setmetatable(L, e);
  else lua_pop(L, 1);
  return e;
}

/* Sets the message of the error at e from the string on top (pops it). */
static void set_message(lua_State *L, int e) { lua_setfield(L, e, "message"); }

/* Encodes the message table on top of the stack and replaces it by the frame. Raises the
 * codec's error unchanged (bad user values), so callers encode before changing state. */
static void encode_top(lua_State *L, rv_conn *c) {
  lua_pushvalue(L, UP_ENCODE);
  lua_insert(L, -2);
  lua_pushstring(L, enc_names[c->enc]);
  lua_insert(L, -2);
  lua_pushboolean(L, c->tagged);
  lua_call(L, 3, 1);
}

/* Pushes the encoded SubscriptionRequest frame for the name at idx. */
static void push_sub_frame(lua_State *L, rv_conn *c, int idx, int subscribe) {
  idx = lua_absindex(L, idx);
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, "SubscriptionRequest");
  lua_setfield(L, -2, "tag");
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "eventName");
  lua_pushboolean(L, subscribe);
  lua_setfield(L, -2, "subscribe");
  encode_top(L, c);
}

/* Pushes the value given to sm:call with call k (false: none) and releases its reference. */
static void push_fut(lua_State *L, int uv, rv_call *k) {
  if (k->ref == LUA_NOREF) {
    lua_pushboolean(L, 0);
    return;
  }
  lua_rawgeti(L, uv, UV_REFS);
  lua_rawgeti(L, -1, k->ref);
  luaL_unref(L, -2, k->ref);
  k->ref = LUA_NOREF;
  lua_remove(L, -2);
}

/* Completes a call: queues a result item and forgets the call. ok: the value at vidx;
 * else the error at vidx. */
static void complete(lua_State *L, rv_conn *c, int uv, rv_call *k, int ok, int vidx) {
  vidx = lua_absindex(L, vidx);
  if (k->state == CALL_QUEUED) {
    lua_rawgeti(L, uv, UV_FRAMES);
    lua_pushnil(L);
    lua_rawseti(L, -2, k->id);
    lua_pop(L, 1);
  }
  push_fut(L, uv, k);
  lua_pushboolean(L, ok);
  lua_pushvalue(L, vidx);
  lua_pushinteger(L, k->id);
  out_item(L, c, uv, IT_RESULT, 4);
  call_free(c, k);
}

static void fail_list(lua_State *L, rv_conn *c, int uv, call_list *l, int eidx) {
  while (l->head) complete(L, c, uv, l->head, 0, eidx);
}

/* Fails every call whose deadline is <= now with client.timeout. */
static void expire(lua_State *L, rv_conn *c, int uv, double now) {
  while (c->heap_n > 0 && c->heap[0]->deadline <= now) {
    rv_call *k = c->heap[0];
    int e = new_error(L, uv, "client", "timeout");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "Action '");
    luaL_addlstring(&b, k->name, k->name_len);
    luaL_addstring(&b, k->state == CALL_QUEUED ? "' timed out before it could be sent"
                                               : "' timed out waiting for its response");
    luaL_pushresult(&b);
    set_message(L, e);
    complete(L, c, uv, k, 0, e);
    lua_settop(L, e - 1);
  }
}

/* Which connection errors can never succeed by retrying (protocol.md §12.4): user and auth
 * rejections and a few codes about the request itself. Everything else is transient. */
static int is_final(lua_State *L, int e) {
  lua_getfield(L, e, "group");
  lua_getfield(L, e, "code");
  const char *g = lua_tostring(L, -2), *k = lua_tostring(L, -1);
  int final = 0;
  if (g && k) {
    if (strcmp(g, "user") == 0 || strcmp(g, "auth") == 0) final = 1;
    else if (strcmp(g, "actor") == 0 && strcmp(k, "unsupported_websocket_encoding") == 0) final = 1;
    else if (strcmp(g, "guard") == 0 && strncmp(k, "query_", 6) == 0) final = 1;
  }
  lua_pop(L, 2);
  return final;
}

static void set_close_fields(lua_State *L, int e, int has_code, lua_Integer code, int reason) {
  if (has_code) {
    lua_pushinteger(L, code);
    lua_setfield(L, e, "closeCode");
  }
  lua_pushvalue(L, reason);
  lua_setfield(L, e, "closeReason");
}

static void push_close_message(lua_State *L, const char *what, int has_code, lua_Integer code,
                               int reason, int handshake_failed) {
  if (has_code) lua_pushfstring(L, "%s (code: " RV_FMT_I ", reason: %s)", what, RV_ARG_I(code), lua_tostring(L, reason));
  else if (handshake_failed) lua_pushliteral(L, "Connection failed (handshake failed, no close frame)");
  else lua_pushliteral(L, "Connection lost (no close frame)");
}

static int lit_eq(const char *s, size_t n, const char *lit) { return strlen(lit) == n && memcmp(s, lit, n) == 0; }

/* Pushes the error a close reason stands for (protocol.md §9.9) and returns its index, or
 * returns 0 and pushes nothing. 1000 is a normal close: its reason is never an error code.
 *   2.3: "<group>.<code>" or "<group>.<code>#<rayId>"
 *   2.0: "<code>" only; with 1011, codes other than the internal ones are user rejections
 *        (onBeforeConnect threw: "forbidden"). */
static int push_close_error(lua_State *L, rv_conn *c, int uv, int has_code, lua_Integer code, int reason) {
  size_t n;
  const char *r = lua_tolstring(L, reason, &n);
  if (!has_code || code == 1000 || n == 0) return 0;
  int e;
  if (c->line == LINE_23) {
    const char *hash = memchr(r, '#', n);
    size_t head = hash ? (size_t)(hash - r) : n;
    const char *dot = memchr(r, '.', head);
    if (!dot || dot == r || (size_t)(dot - r) + 1 >= head) return 0;
    e = new_error(L, uv, NULL, NULL);
    lua_pushlstring(L, r, (size_t)(dot - r));
    lua_setfield(L, e, "group");
    lua_pushlstring(L, dot + 1, head - (size_t)(dot - r) - 1);
    lua_setfield(L, e, "code");
    if (hash) {
      lua_pushlstring(L, hash + 1, n - head - 1);
      lua_setfield(L, e, "rayId");
    }
  } else {
    if (code != 1011 || lit_eq(r, n, "Disposed")) return 0;
    const char *group = "user";
    if (lit_eq(r, n, "internal_error")) group = "internal";
    else if (lit_eq(r, n, "incoming_too_long") || lit_eq(r, n, "outgoing_too_long")) group = "message";
    e = new_error(L, uv, group, NULL);
    lua_pushvalue(L, reason);
    lua_setfield(L, e, "code");
  }
  push_close_message(L, "Connection closed", 1, code, reason, 0);
  set_message(L, e);
  set_close_fields(L, e, 1, code, reason);
  return e;
}

/* Copies an Error message's fields into a new error table; returns its index. */
static int error_from_msg(lua_State *L, int uv, int msg) {
  int e = new_error(L, uv, NULL, NULL);
  static const char *const fields[] = {"group", "code", "message", "metadata", "actor", NULL};
  for (int i = 0; fields[i]; i++) {
    lua_getfield(L, msg, fields[i]);
    lua_setfield(L, e, fields[i]);
  }
  return e;
}

/* Sets the pending connection error (the reason of the coming close) to the error at e,
 * notifies it, fails everything in flight with it and stops using this transport. */
static void connection_error(lua_State *L, rv_conn *c, int uv, int e) {
  lua_pushvalue(L, e);
  lua_rawseti(L, uv, UV_CONNERR);
  c->conn_err_notified = 1;
  c->closing = 1;
  fail_list(L, c, uv, &c->inflight, e);
  out_error(L, c, uv, e);
}

/* ---- methods ------------------------------------------------------------------------- */

/* sm:start(now) -> true if an attempt begins (idle|disconnected -> connecting), else false. */
static int l_start(lua_State *L) {
  rv_conn *c = check_sm(L);
  luaL_optnumber(L, 2, 0);
  lua_settop(L, 2);
  int uv = push_uv(L);
  if (c->status != ST_IDLE && c->status != ST_DISCONNECTED) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (c->status == ST_IDLE) c->attempt = 0; /* a fresh start after giving up */
  c->has_next = 0;
  c->closing = 0;
  c->conn_err_notified = 0;
  lua_pushnil(L);
  lua_rawseti(L, uv, UV_CONNERR);
  set_status(L, c, uv, ST_CONNECTING);
  lua_pushboolean(L, 1);
  return 1;
}

/* Registers call `id` (its frame at `frame`, the caller's value at futi) and sends,
 * queues or fails it: the common part of sm:call and sm:callv, after encoding. */
static int register_call(lua_State *L, rv_conn *c, int uv, lua_Integer id, const char *name, size_t nlen,
                         double deadline, int futi, int frame, int direct) {
  if (c->status == ST_DISPOSED) {
    c->next_id++;
    int e = new_error(L, uv, "client", "disposed");
    lua_pushliteral(L, "Connection disposed");
    set_message(L, e);
    if (lua_isnil(L, futi)) lua_pushboolean(L, 0);
    else lua_pushvalue(L, futi);
    lua_pushboolean(L, 0);
    lua_pushvalue(L, e);
    lua_pushinteger(L, id);
    out_item(L, c, uv, IT_RESULT, 4);
    lua_pushinteger(L, id);
    return 1;
  }

  int timed = deadline != HUGE_VAL;
  /* the reference first: it may raise (memory), and nothing is allocated yet */
  int ref = LUA_NOREF;
  if (!lua_isnil(L, futi)) {
    if (rv_rawgeti(L, uv, UV_REFS) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_rawseti(L, uv, UV_REFS);
    }
    lua_pushvalue(L, futi);
    ref = luaL_ref(L, -2);
    lua_pop(L, 1);
  }
  rv_call *k = malloc(sizeof *k + nlen + 1);
  if (!k || !hash_reserve(c) || (timed && !heap_reserve(c))) {
    free(k);
    if (ref != LUA_NOREF) {
      lua_rawgeti(L, uv, UV_REFS);
      luaL_unref(L, -1, ref);
    }
    return luaL_error(L, "out of memory");
  }
  memcpy(k->name, name, nlen);
  k->name[nlen] = '\0';
  k->name_len = nlen;
  k->id = id;
  k->ref = ref;
  k->deadline = deadline;
  k->heap_idx = NO_HEAP;
  k->prev = k->next = k->hnext = NULL;
  c->next_id++;
  hash_insert(c, k);
  if (timed) heap_push(c, k);
  if (c->status == ST_CONNECTED && !c->closing) {
    k->state = CALL_INFLIGHT;
    list_push(&c->inflight, k);
    if (direct) {
      lua_pushinteger(L, id);
      lua_pushvalue(L, frame);
      return 2;
    }
    lua_pushvalue(L, frame);
    out_send(L, c, uv);
  } else {
    k->state = CALL_QUEUED;
    list_push(&c->queued, k);
    lua_rawgeti(L, uv, UV_FRAMES);
    lua_pushvalue(L, frame);
    lua_rawseti(L, -2, id);
  }
  lua_pushinteger(L, id);
  return 1;
}


/* sm:call(name, args, deadline?, fut?) -> id
 * fut (any value, e.g. the caller's future) comes back as the result item's `fut`: the
 * caller needs no id -> future table of its own (a hash that, with ids always new and
 * a steady number in flight, would be rebuilt on almost every insert). The frame goes
 * to the outbox as a send item (sm:callv hands it back instead). */
static int l_call(lua_State *L) {
  rv_conn *c = check_sm(L);
  size_t nlen;
  const char *name = luaL_checklstring(L, 2, &nlen);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  double deadline = lua_isnoneornil(L, 4) ? HUGE_VAL : luaL_checknumber(L, 4);
  if (deadline != deadline) luaL_argerror(L, 4, "deadline is NaN");
  lua_settop(L, 5);
  int uv = push_uv(L);
  lua_Integer id = c->next_id;

  /* Encode first: bad user values raise here, before anything changes. */
  lua_pushcfunction(L, rv_encode_action);
  lua_pushinteger(L, c->enc);
  lua_pushboolean(L, c->tagged);
  lua_pushinteger(L, id);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_call(L, 5, 1);
  return register_call(L, c, uv, id, name, nlen, deadline, 5, lua_gettop(L), 0);
}

/* sm:callv(name, deadline|nil, fut|nil, ...) -> id [, frame]: sm:call in direct mode with
 * the args themselves (all of them, nils as null) instead of a table of them. */
static int l_callv(lua_State *L) {
  rv_conn *c = check_sm(L);
  size_t nlen;
  const char *name = luaL_checklstring(L, 2, &nlen);
  double deadline = lua_isnoneornil(L, 3) ? HUGE_VAL : luaL_checknumber(L, 3);
  if (deadline != deadline) luaL_argerror(L, 3, "deadline is NaN");
  int nargs = lua_gettop(L) - 4;
  if (nargs < 0) {
    lua_settop(L, 4);
    nargs = 0;
  }
  luaL_checkstack(L, nargs + 8, "too many arguments");
  int uv = push_uv(L);
  lua_Integer id = c->next_id;

  /* straight into the connection's own buffers: a bad value raises with nothing to
   * free, so no protected call is needed */
  rv_encode_action_stack(L, &c->job, c->enc, c->tagged, id, name, nlen, 5, nargs);
  lua_pushlstring(L, c->job.out.data ? c->job.out.data : "", c->job.out.len);
  rv_job_trim(&c->job, 64 * 1024);
  return register_call(L, c, uv, id, name, nlen, deadline, 4, lua_gettop(L), 1);
}

/* sm:subscribe(name) -> true if it was not subscribed yet */
static int l_subscribe(lua_State *L) {
  rv_conn *c = check_sm(L);
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  int uv = push_uv(L);
  lua_rawgeti(L, uv, UV_SUBS);
  int subs = lua_gettop(L);
  lua_pushvalue(L, 2);
  if (c->status == ST_DISPOSED || rv_rawget(L, subs) != LUA_TNIL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  push_sub_frame(L, c, 2, 1); /* validates the name before anything changes */
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, subs);
  if (c->status == ST_CONNECTED && !c->closing) out_send(L, c, uv);
  lua_pushboolean(L, 1);
  return 1;
}

/* sm:unsubscribe(name) -> true if it was subscribed */
static int l_unsubscribe(lua_State *L) {
  rv_conn *c = check_sm(L);
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  int uv = push_uv(L);
  lua_rawgeti(L, uv, UV_SUBS);
  int subs = lua_gettop(L);
  lua_pushvalue(L, 2);
  if (rv_rawget(L, subs) == LUA_TNIL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (c->status == ST_CONNECTED && !c->closing) {
    push_sub_frame(L, c, 2, 0);
    out_send(L, c, uv);
  }
  lua_pushvalue(L, 2);
  lua_pushnil(L);
  lua_rawset(L, subs);
  lua_pushboolean(L, 1);
  return 1;
}

static void on_init(lua_State *L, rv_conn *c, int uv, int msg, double now) {
  lua_getfield(L, msg, "actorId");
  lua_rawseti(L, uv, UV_ACTOR);
  lua_getfield(L, msg, "connectionId");
  lua_rawseti(L, uv, UV_CONNID);
  int first = c->status != ST_CONNECTED;
  c->attempt = 0;
  c->has_next = 0;
  set_status(L, c, uv, ST_CONNECTED);
  lua_getfield(L, msg, "actorId");
  lua_getfield(L, msg, "connectionId");
  out_item(L, c, uv, IT_OPEN, 2);
  if (!first) return; /* a repeated Init on the same transport: nothing to replay */

  /* Subscriptions first, so events of the queued calls are delivered. */
  lua_rawgeti(L, uv, UV_SUBS);
  int subs = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, subs)) {
    lua_pushvalue(L, -1);
    out_send(L, c, uv);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  expire(L, c, uv, now);
  lua_rawgeti(L, uv, UV_FRAMES);
  int frames = lua_gettop(L);
  while (c->queued.head) {
    rv_call *k = c->queued.head;
    lua_rawgeti(L, frames, k->id);
    out_send(L, c, uv);
    lua_pushnil(L);
    lua_rawseti(L, frames, k->id);
    list_remove(&c->queued, k);
    k->state = CALL_INFLIGHT;
    list_push(&c->inflight, k);
  }
  lua_pop(L, 1);
}

/* sm:feed(frame, now [, direct]) [-> fut, output]: one complete WebSocket message from
 * the server. direct: an ActionResponse that is all there is to report comes back as
 * (the call's fut, its output) instead of a result item (see respond). */
/* Bad bytes from the server (the decoder's complaint at errv): the connection fails with
 * client.malformed_message and closes with 1002. */
static void malformed(lua_State *L, rv_conn *c, int uv, int errv) {
  errv = lua_absindex(L, errv); /* callers pass -1: the error and the buffer push above it */
  int e = new_error(L, uv, "client", "malformed_message");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "Malformed message from the server: ");
  luaL_tolstring(L, errv, NULL);
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  set_message(L, e);
  connection_error(L, c, uv, e);
  out_close(L, c, uv, 1002, "malformed message");
}

typedef struct {
  const char *s;
  size_t len;
  int tagged;
  rv_buf *scratch;
} output_job;

static int decode_output(lua_State *L) {
  output_job *j = lua_touserdata(L, 1);
  rv_cbor_decode(L, j->s, j->len, j->tagged, j->scratch);
  return 1;
}

/* An ActionResponse for call id, its output on top of the stack. A direct feed with
 * nothing else in the outbox returns (fut, output) instead of queueing the result: the
 * caller settles it and needs no drain. Returns l_feed's result count. */
static int respond(lua_State *L, rv_conn *c, int uv, lua_Integer id, int direct) {
  rv_call *k = hash_find(c, id);
  if (!k || k->state != CALL_INFLIGHT) return 0; /* late (timed out) or unknown: dropped */
  if (direct && c->out_n == 0) {
    int v = lua_gettop(L);
    push_fut(L, uv, k);
    lua_pushvalue(L, v);
    call_free(c, k);
    return 2;
  }
  complete(L, c, uv, k, 1, -1);
  return 0;
}

/* Pushes the value of CBOR bytes decoded in a protected call; 0 (the error pushed
 * instead) when they are malformed. */
static int decode_value(lua_State *L, rv_conn *c, const char *s, size_t len) {
  rv_buf scratch;
  rv_buf_init(&scratch);
  output_job j = {s, len, c->tagged, &scratch};
  lua_pushcfunction(L, decode_output);
  lua_pushlightuserdata(L, &j);
  int rc = lua_pcall(L, 1, 1, 0);
  rv_buf_free(&scratch);
  return rc == LUA_OK;
}

/* The common frames in BARE, ActionResponse and Event, are read without building a
 * message table: the response goes straight to its call, the event to the outbox. */
static int feed_bare_response(lua_State *L, rv_conn *c, int uv, lua_Integer id, const char *out, size_t outlen,
                              int direct) {
  if (!decode_value(L, c, out, outlen)) {
    malformed(L, c, uv, -1);
    return 0;
  }
  return respond(L, c, uv, id, direct);
}

static int feed_bare_event(lua_State *L, rv_conn *c, int uv, const char *name, size_t namelen, const char *args,
                           size_t argslen) {
  lua_pushlstring(L, name, namelen);
  if (!decode_value(L, c, args, argslen)) {
    malformed(L, c, uv, -1);
    return 0;
  }
  if (!lua_istable(L, -1)) {
    lua_pushliteral(L, "bare: Event args is not an array");
    malformed(L, c, uv, -1);
    return 0;
  }
  out_item(L, c, uv, IT_EVENT, 2);
  return 0;
}

static int l_feed(lua_State *L) {
  rv_conn *c = check_sm(L);
  size_t flen;
  const char *frame = luaL_checklstring(L, 2, &flen);
  double now = luaL_checknumber(L, 3);
  int direct = lua_toboolean(L, 4);
  lua_settop(L, 3);
  int uv = push_uv(L);
  if ((c->status != ST_CONNECTING && c->status != ST_CONNECTED) || c->closing) return 0;
  expire(L, c, uv, now);

  lua_Integer rid;
  const char *out;
  size_t outlen;
  if (c->enc == ENC_BARE && c->status == ST_CONNECTED) {
    if (rv_bare_action_response(frame, flen, &rid, &out, &outlen))
      return feed_bare_response(L, c, uv, rid, out, outlen, direct);
    const char *ename;
    size_t enamelen;
    if (rv_bare_event(frame, flen, &ename, &enamelen, &out, &outlen))
      return feed_bare_event(L, c, uv, ename, enamelen, out, outlen);
  }

  lua_pushvalue(L, UP_DECODE);
  lua_pushstring(L, enc_names[c->enc]);
  lua_pushvalue(L, 2);
  lua_pushboolean(L, c->tagged);
  int rc = lua_pcall(L, 3, 2, 0);
  int msg = uv + 1;
  if (rc != LUA_OK || !lua_istable(L, msg)) {
    malformed(L, c, uv, rc != LUA_OK ? msg : msg + 1);
    return 0;
  }
  lua_settop(L, msg);
  lua_getfield(L, msg, "tag");
  const char *tag = lua_tostring(L, -1);
  if (!tag) tag = "";
  if (strcmp(tag, "Init") == 0) {
    on_init(L, c, uv, msg, now);
  } else if (strcmp(tag, "ActionResponse") == 0) {
    lua_getfield(L, msg, "id");
    if (lua_isinteger(L, -1)) {
      lua_Integer id = lua_tointeger(L, -1);
      lua_getfield(L, msg, "output");
      return respond(L, c, uv, id, direct);
    }
  } else if (strcmp(tag, "Error") == 0) {
    /* Presence of actionId decides, not its value: id 0 is a per-action error. */
    if (rv_getfield(L, msg, "actionId") == LUA_TNIL || rv_isnull(L, -1)) {
      connection_error(L, c, uv, error_from_msg(L, uv, msg));
    } else {
      rv_call *k = lua_isinteger(L, -1) ? hash_find(c, lua_tointeger(L, -1)) : NULL;
      if (k && k->state == CALL_INFLIGHT) complete(L, c, uv, k, 0, error_from_msg(L, uv, msg));
    }
  } else if (strcmp(tag, "Event") == 0) {
    lua_getfield(L, msg, "name");
    lua_getfield(L, msg, "args");
    out_item(L, c, uv, IT_EVENT, 2);
  }
  return 0;
}

/* sm:closed(code|nil, reason|nil, now, handshake_failed): the transport closed or failed. */
static int l_closed(lua_State *L) {
  rv_conn *c = check_sm(L);
  int has_code = !lua_isnoneornil(L, 2);
  lua_Integer code = has_code ? luaL_checkinteger(L, 2) : 0;
  if (lua_isnoneornil(L, 3)) {
    lua_pushliteral(L, "");
    lua_replace(L, 3);
  }
  luaL_checkstring(L, 3);
  double now = luaL_checknumber(L, 4);
  int handshake_failed = lua_toboolean(L, 5);
  lua_settop(L, 5);
  int uv = push_uv(L);
  if (c->status != ST_CONNECTING && c->status != ST_CONNECTED) return 0; /* disposed, or repeated */
  expire(L, c, uv, now);

  int known = 1; /* the failure has a group.code that decides whether to retry */
  int from_frame = rv_rawgeti(L, uv, UV_CONNERR) != LUA_TNIL;
  int e = lua_gettop(L);
  if (!from_frame) {
    lua_pop(L, 1);
    e = push_close_error(L, c, uv, has_code, code, 3);
    if (!e) {
      known = 0;
      e = new_error(L, uv, "client", "connection_lost");
      push_close_message(L, "Connection lost", has_code, code, 3, handshake_failed);
      set_message(L, e);
      set_close_fields(L, e, has_code, code, 3);
    }
  }
  fail_list(L, c, uv, &c->inflight, e); /* never re-sent: the server may have run them */

  int final = known && is_final(L, e);
  int notify = !c->conn_err_notified && (known || (has_code && code == 1000));
  c->closing = 0;
  c->conn_err_notified = 0;
  lua_pushnil(L);
  lua_rawseti(L, uv, UV_CONNERR);
  lua_pushnil(L);
  lua_rawseti(L, uv, UV_CONNID);

  if (final) {
    fail_list(L, c, uv, &c->queued, e);
    if (notify) out_error(L, c, uv, e);
    c->has_next = 0;
    set_status(L, c, uv, ST_IDLE);
  } else {
    /* Full jitter: spread reconnects so many clients do not retry in lockstep. */
    int exp = c->attempt > 1000 ? 1000 : (int)c->attempt;
    double cap = ldexp(c->backoff_initial, exp);
    if (!(cap <= c->backoff_max)) cap = c->backoff_max;
    c->next_at = now + next_random(c) * cap;
    c->has_next = 1;
    c->attempt++;
    if (notify) out_error(L, c, uv, e);
    set_status(L, c, uv, ST_DISCONNECTED);
  }
  return 0;
}

/* sm:dispose(now): fail everything with client.disposed; ask to close an open transport. */
static int l_dispose(lua_State *L) {
  rv_conn *c = check_sm(L);
  lua_settop(L, 2);
  int uv = push_uv(L);
  if (c->status == ST_DISPOSED) return 0;
  int e = new_error(L, uv, "client", "disposed");
  lua_pushliteral(L, "Connection disposed");
  set_message(L, e);
  fail_list(L, c, uv, &c->inflight, e);
  fail_list(L, c, uv, &c->queued, e);
  if (c->status == ST_CONNECTING || c->status == ST_CONNECTED) out_close(L, c, uv, 1000, "Disposed");
  c->has_next = 0;
  c->closing = 0;
  lua_pushnil(L);
  lua_rawseti(L, uv, UV_CONNERR);
  set_status(L, c, uv, ST_DISPOSED);
  return 0;
}

/* sm:tick(now) -> true when a reconnect attempt is due (then call sm:start(now)). */
static int l_tick(lua_State *L) {
  rv_conn *c = check_sm(L);
  double now = luaL_checknumber(L, 2);
  lua_settop(L, 2);
  int uv = push_uv(L);
  expire(L, c, uv, now);
  lua_pushboolean(L, c->status == ST_DISCONNECTED && c->has_next && c->next_at <= now);
  return 1;
}

/* The earliest time something is due (a call deadline, a reconnect), or HUGE_VAL. */
static double next_wakeup(const rv_conn *c) {
  double t = HUGE_VAL;
  if (c->heap_n > 0) t = c->heap[0]->deadline;
  if (c->status == ST_DISCONNECTED && c->has_next && c->next_at < t) t = c->next_at;
  return t;
}

static void push_wakeup(lua_State *L, const rv_conn *c) {
  double t = next_wakeup(c);
  if (t == HUGE_VAL) lua_pushnil(L);
  else lua_pushnumber(L, t);
}

/* sm:next_wakeup() -> the earliest time something is due, or nil. */
static int l_next_wakeup(lua_State *L) {
  push_wakeup(L, check_sm(L));
  return 1;
}

/* sm:drain([empty]) -> n, next_wakeup, items: hands over the outbox, whose n items fill
 * items[1 .. n * 5] (five slots per item, see item_names; core.conn_items names the
 * kinds), and takes `empty` (an empty table; a new one when not given) as the next
 * outbox, so no slot is copied. With nothing queued it returns 0, next_wakeup and keeps
 * `empty` out of it. The caller clears the slots as it reads them and can hand the
 * table back at the next drain. next_wakeup: a connection drains after every change,
 * so this is where it learns when it next needs a tick, without another call. */
static int l_drain(lua_State *L) {
  rv_conn *c = check_sm(L);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_Integer n = c->out_n;
  lua_pushinteger(L, n);
  push_wakeup(L, c);
  if (n == 0) return 2;
  int uv = push_uv(L);
  lua_rawgeti(L, uv, UV_OUT); /* the items */
  if (lua_isnil(L, 2)) lua_createtable(L, 8, 0);
  else lua_pushvalue(L, 2);
  lua_rawseti(L, uv, UV_OUT);
  lua_remove(L, uv);
  c->out_n = 0;
  return 3;
}

static int l_status(lua_State *L) {
  rv_conn *c = check_sm(L);
  lua_pushstring(L, status_names[c->status]);
  return 1;
}

static int l_actor_id(lua_State *L) {
  check_sm(L);
  lua_settop(L, 1);
  lua_rawgeti(L, push_uv(L), UV_ACTOR);
  return 1;
}

static int l_connection_id(lua_State *L) {
  check_sm(L);
  lua_settop(L, 1);
  lua_rawgeti(L, push_uv(L), UV_CONNID);
  return 1;
}

/* The pending call whose sm:call value (its future) is the value at idx, or NULL. A walk
 * over the pending calls: cancelling is rare, and this keeps the hot path free of any
 * future -> id map. */
static rv_call *find_by_value(lua_State *L, rv_conn *c, int uv, int idx) {
  if (rv_rawgeti(L, uv, UV_REFS) != LUA_TTABLE) {
    lua_pop(L, 1);
    return NULL;
  }
  rv_call *found = NULL;
  for (size_t i = 0; i < c->nbuckets && !found; i++) {
    for (rv_call *k = c->buckets[i]; k && !found; k = k->hnext) {
      if (k->ref == LUA_NOREF) continue;
      lua_rawgeti(L, -1, k->ref);
      if (lua_rawequal(L, -1, idx)) found = k;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return found;
}

/* sm:cancel(fut) -> true if the call made with value fut was still pending: it is
 * forgotten without a result item (its caller already failed its future). A queued
 * call is never sent; a reply to one in flight is dropped like a late one. */
static int l_cancel(lua_State *L) {
  rv_conn *c = check_sm(L);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  int uv = push_uv(L);
  rv_call *k = find_by_value(L, c, uv, 2);
  if (!k) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (k->state == CALL_QUEUED) {
    lua_rawgeti(L, uv, UV_FRAMES);
    lua_pushnil(L);
    lua_rawseti(L, -2, k->id);
    lua_pop(L, 1);
  }
  push_fut(L, uv, k); /* releases the reference */
  call_free(c, k);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_pending(lua_State *L) {
  rv_conn *c = check_sm(L);
  lua_pushinteger(L, (lua_Integer)(c->queued.n + c->inflight.n));
  return 1;
}

static int l_attempt(lua_State *L) {
  rv_conn *c = check_sm(L);
  lua_pushinteger(L, c->attempt);
  return 1;
}

static int l_gc(lua_State *L) {
  rv_conn *c = check_sm(L);
  free_all(c);
  rv_job_trim(&c->job, 0);
  return 0;
}

static int l_tostring(lua_State *L) {
  rv_conn *c = check_sm(L);
  lua_pushfstring(L, "rivet.conn_sm (%s, %d pending): %p", status_names[c->status],
                  (int)(c->queued.n + c->inflight.n), (void *)c);
  return 1;
}

/* Reads opts[k] as a number > 0, or def. */
static double opt_positive(lua_State *L, const char *k, double def) {
  double v = def;
  if (rv_getfield(L, 1, k) != LUA_TNIL) {
    if (!lua_isnumber(L, -1)) luaL_error(L, "conn_new: %s must be a number", k);
    v = lua_tonumber(L, -1);
    if (!(v > 0) || v == HUGE_VAL) luaL_error(L, "conn_new: %s must be a positive finite number", k);
  }
  lua_pop(L, 1);
  return v;
}

static int opt_choice(lua_State *L, const char *k, const char *def, const char *const names[]) {
  lua_getfield(L, 1, k);
  const char *s = lua_isnil(L, -1) ? def : lua_tostring(L, -1);
  if (!s) luaL_error(L, "conn_new: %s must be a string", k);
  for (int i = 0; names[i]; i++)
    if (strcmp(s, names[i]) == 0) {
      lua_pop(L, 1);
      return i;
    }
  return luaL_error(L, "conn_new: invalid %s '%s'", k, s);
}

/* core.conn_new(opts) -> rivet.conn_sm */
static int l_conn_new(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  int enc = opt_choice(L, "encoding", "bare", enc_names);
  int line = opt_choice(L, "line", "2.3", line_names);
  int tagged = enc == ENC_JSON || line == LINE_23;
  if (rv_getfield(L, 1, "tagged") != LUA_TNIL) tagged = enc == ENC_JSON || lua_toboolean(L, -1);
  lua_pop(L, 1);
  double initial = opt_positive(L, "backoff_initial", 0.25);
  double max = opt_positive(L, "backoff_max", 30);
  uint64_t seed = 0x5EEDu;
  if (rv_getfield(L, 1, "seed") != LUA_TNIL) {
    if (!lua_isinteger(L, -1)) luaL_error(L, "conn_new: seed must be an integer");
    seed = (uint64_t)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  int mt_type = rv_getfield(L, 1, "error_mt"); /* index 2 */
  if (mt_type != LUA_TNIL && mt_type != LUA_TTABLE) luaL_error(L, "conn_new: error_mt must be a table");

  rv_conn *c = rv_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  c->status = ST_IDLE;
  c->enc = enc;
  c->line = line;
  c->tagged = tagged;
  c->backoff_initial = initial;
  c->backoff_max = max;
  c->rng = seed;
  lua_pushvalue(L, UP_MT);
  lua_setmetatable(L, -2);

  lua_createtable(L, UV_REFS, 0);
  lua_newtable(L);
  lua_rawseti(L, -2, UV_OUT);
  lua_newtable(L);
  lua_rawseti(L, -2, UV_FRAMES);
  lua_newtable(L);
  lua_rawseti(L, -2, UV_SUBS);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, UV_ERRMT);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* Adds core.conn_new to the module table on top of the stack (after rv_codec_open). */
void rv_conn_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"start", l_start},
      {"call", l_call},
      {"callv", l_callv},
      {"subscribe", l_subscribe},
      {"unsubscribe", l_unsubscribe},
      {"feed", l_feed},
      {"closed", l_closed},
      {"dispose", l_dispose},
      {"tick", l_tick},
      {"next_wakeup", l_next_wakeup},
      {"drain", l_drain},
      {"status", l_status},
      {"actor_id", l_actor_id},
      {"connection_id", l_connection_id},
      {"pending", l_pending},
      {"cancel", l_cancel},
      {"attempt", l_attempt},
      {NULL, NULL},
  };
  static const luaL_Reg meta[] = {{"__gc", l_gc}, {"__tostring", l_tostring}, {NULL, NULL}};
  static const luaL_Reg ctor[] = {{"conn_new", l_conn_new}, {NULL, NULL}};
  int mod = lua_gettop(L);
  lua_getfield(L, mod, "encode_to_server");
  lua_getfield(L, mod, "decode_to_client");
  if (!lua_isfunction(L, mod + 1) || !lua_isfunction(L, mod + 2))
    luaL_error(L, "rv_conn_open: the codec functions must be registered first");
  lua_newtable(L); /* mod + 3: metatable */
  int mt = mod + 3;
#define PUSH_UPVALUES() (lua_pushvalue(L, mt), lua_pushvalue(L, mod + 1), lua_pushvalue(L, mod + 2))
  lua_newtable(L);
  PUSH_UPVALUES();
  luaL_setfuncs(L, methods, 3);
  lua_setfield(L, mt, "__index");
  lua_pushvalue(L, mt);
  PUSH_UPVALUES();
  luaL_setfuncs(L, meta, 3);
  lua_pop(L, 1);
  lua_pushliteral(L, "rivet.conn_sm");
  lua_setfield(L, mt, "__name");
  lua_pushliteral(L, "rivet.conn_sm");
  lua_setfield(L, mt, "__metatable"); /* getmetatable() from Lua cannot reach the methods' mt */
  lua_createtable(L, IT_OPEN, 0);
  for (int i = 0; item_names[i]; i++) {
    lua_pushstring(L, item_names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, mod, "conn_items");
  lua_pushvalue(L, mod);
  PUSH_UPVALUES();
  luaL_setfuncs(L, ctor, 3);
  lua_pop(L, 1);
#undef PUSH_UPVALUES
  lua_settop(L, mod);
}
