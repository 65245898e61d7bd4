/* WebSockets in the same loop as HTTP: libwebsockets client connections whose sockets
 * are handed to curl_multi_poll() as extra file descriptors, so the loop still has one
 * place that sleeps. libwebsockets 4.1 (Debian) has no external-poll hooks, so:
 *   - lws_service(ctx, -1) is the only call that never blocks: it runs after every poll;
 *   - we wait for POLLIN on every socket, and for POLLOUT only while we have something
 *     to write (or a plain TCP connect is in progress), so a writable socket never
 *     makes the loop spin;
 *   - host names are resolved with getaddrinfo_a() first, because libwebsockets
 *     resolves with a blocking getaddrinfo().
 * Everything that happens inside libwebsockets' callbacks is queued as an event and
 * handed to Lua by rv_ws_collect() from loop:poll(). */
#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"
#include "loop.h"

/* RESOLVING: getaddrinfo_a runs; WAITING: resolved, waiting for a connect slot;
 * CONNECTING: TCP (and TLS) connect; HANDSHAKE: HTTP upgrade sent; OPEN; DONE: final event queued */
enum { WS_RESOLVING, WS_WAITING, WS_CONNECTING, WS_HANDSHAKE, WS_OPEN, WS_DONE, WS_NSTATES };

/* At most this many sockets of one client are connecting (TCP, TLS or the upgrade) at a
 * time; the others wait their turn in order. Each handshake in progress holds a header
 * table of RV_WS_HEADER_SPACE bytes: opening 1000 connections at once used to hold 1000
 * of them together (40 MB at the peak, about 10 KiB of resident size per connection
 * that stayed after they were freed). RFC 6455 §4.1 asks clients for one connecting
 * socket per server address; this is the same idea, less strict. */
#ifndef RV_WS_MAX_CONNECTING
#define RV_WS_MAX_CONNECTING 16
#endif

#define RV_WS_SERV_BUF (64 * 1024)
/* Messages up to this size are written at once when nothing waits before them (see
 * l_ws_send); larger ones go through the queue, so the shared copy buffer stays small. */
#define RV_WS_DIRECT_MAX (64 * 1024)
/* libwebsockets keeps the request's header values (path, host, origin, subprotocols) in
 * its header space (max_http_header_data, at most 65535): a longer request fails */
#define RV_WS_HEADER_SPACE 32768
#define RV_WS_MAX_HANDSHAKE (RV_WS_HEADER_SPACE - 1024)
enum { EV_OPEN, EV_MESSAGE, EV_CLOSE, EV_ERROR };

typedef struct rv_frame {
  struct rv_frame *next;
  size_t len;
  int binary;
  unsigned char data[]; /* LWS_PRE bytes of headroom, then the payload */
} rv_frame;

typedef struct rv_wsev {
  struct rv_wsev *next;
  lua_Integer id;
  int kind;
  int code;   /* close code (0: none) */
  int binary; /* message kind */
  const char *err; /* error kind (static string) */
  size_t len;
  char data[]; /* message payload, close reason, error message or selected protocol */
} rv_wsev;

/* One host name look-up (getaddrinfo_a), in one block. glibc's resolver thread reads the
 * name and hints and writes into cb until the look-up is done, and gai_cancel cannot stop
 * one that is running: a socket that goes away first leaves its look-up "parked" (on its
 * context's list, or the process-wide one once the context is gone) until gai_error says
 * it is done, and it is freed then. Nothing ever waits for a look-up. */
typedef struct rv_gai {
  struct gaicb cb; /* first: glibc's queue points here while the look-up runs */
  struct rv_gai *next; /* on a parked list */
  struct addrinfo hints;
  char name[];
} rv_gai;

typedef struct rv_ws {
  struct rv_ws *prev, *next;
  struct rv_wsctx *ctx;
  lua_Integer id;
  struct lws *wsi;
  int state;
  int tls, insecure, port;
  char *host, *path, *protocols, *origin, *ip, *selected;
  char **headers; /* "name: value" strings */
  int nheaders;
  rv_gai *gai; /* while resolving */
  int fd;      /* the socket's descriptor once known (-1 before): see rv_host_fresh */
  rv_frame *q_head, *q_tail;
  rv_buf rx;
  int rx_binary;
  size_t max_message;
  int peer_code; /* close code the peer sent */
  char *peer_reason;
  size_t peer_reason_len;
  int want_close, local_code; /* a close we asked for */
  char *local_reason;
  size_t local_reason_len;
} rv_ws;

/* id -> socket, so libwebsockets' callbacks find a socket by the id kept in the wsi's
 * opaque pointer: libwebsockets may call back for a wsi after we are done with the
 * socket (and after it was freed), and an id that is no longer in the map is simply
 * ignored. Open addressing, linear probing, tombstones. */
typedef struct {
  lua_Integer *keys; /* 0: empty, -1: tombstone */
  rv_ws **vals;
  size_t cap, used; /* used counts live keys and tombstones */
} ws_map;

typedef struct rv_wsctx {
  struct lws_context *ctx;
  ws_map map;
  rv_loop *lp;
  int tls; /* the context was made with TLS support */
  double last_service; /* libwebsockets checks its timeouts when serviced: once a second at least */
  rv_ws *list, *tail; /* oldest first */
  int count[WS_NSTATES]; /* sockets in each state */
  rv_wsev *ev_head, *ev_tail;
  int failed_alloc;
  unsigned char *txbuf; /* LWS_PRE + txcap bytes: messages written at once (l_ws_send) */
  size_t txcap;
  rv_gai *parked; /* look-ups of freed sockets still running (see rv_gai) */
} rv_wsctx;

static size_t map_slot(lua_Integer id, size_t cap) {
  uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 16) & (cap - 1);
}

static rv_ws *map_get(const ws_map *m, lua_Integer id) {
  if (!m->cap) return NULL;
  for (size_t i = map_slot(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == id) return m->vals[i];
    if (m->keys[i] == 0) return NULL;
  }
}

static int map_put(ws_map *m, lua_Integer id, rv_ws *w);

static int map_grow(ws_map *m) {
  ws_map nm = {0};
  nm.cap = m->cap ? m->cap * 2 : 16;
  nm.keys = calloc(nm.cap, sizeof *nm.keys);
  nm.vals = calloc(nm.cap, sizeof *nm.vals);
  if (!nm.keys || !nm.vals) {
    free(nm.keys);
    free(nm.vals);
    return 0;
  }
  for (size_t i = 0; i < m->cap; i++)
    if (m->keys[i] > 0) map_put(&nm, m->keys[i], m->vals[i]);
  free(m->keys);
  free(m->vals);
  *m = nm;
  return 1;
}

static int map_put(ws_map *m, lua_Integer id, rv_ws *w) {
  if ((m->used + 1) * 4 > m->cap * 3 && !map_grow(m)) return 0;
  size_t i = map_slot(id, m->cap);
  while (m->keys[i] > 0) i = (i + 1) & (m->cap - 1);
  if (m->keys[i] == 0) m->used++;
  m->keys[i] = id;
  m->vals[i] = w;
  return 1;
}

static void map_del(ws_map *m, lua_Integer id) {
  if (!m->cap) return;
  for (size_t i = map_slot(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == id) {
      m->keys[i] = -1;
      m->vals[i] = NULL;
      return;
    }
    if (m->keys[i] == 0) return;
  }
}

static void set_state(rv_ws *w, int s) {
  w->ctx->count[w->state]--;
  w->ctx->count[s]++;
  w->state = s;
}

static int connecting(const rv_wsctx *c) { return c->count[WS_CONNECTING] + c->count[WS_HANDSHAKE]; }

static void set_nodelay(rv_ws *w, struct lws *wsi, int quickack_only) {
  int fd = lws_get_socket_fd(wsi);
  if (fd < 0) return;
  int one = 1;
  if (!quickack_only) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef TCP_QUICKACK
  if (w->ctx->lp->quickack) setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#else
  (void)w;
#endif
}

static void push_event(rv_wsctx *c, rv_ws *w, int kind, const void *data, size_t len) {
  rv_wsev *e = malloc(sizeof *e + len + 1);
  if (!e) {
    c->failed_alloc = 1;
    return;
  }
  memset(e, 0, sizeof *e);
  e->id = w->id;
  e->kind = kind;
  e->len = len;
  if (len) memcpy(e->data, data, len);
  e->data[len] = 0;
  if (c->ev_tail) c->ev_tail->next = e;
  else c->ev_head = e;
  c->ev_tail = e;
}

/* The terminal event of a socket: after it the socket is gone for Lua. */
static void finish(rv_ws *w, int kind, int code, const char *err, const char *msg, size_t len) {
  if (w->state == WS_DONE) return;
  set_state(w, WS_DONE);
  /* libwebsockets may still finish the socket (close handshake, TCP teardown); its
   * later callbacks find nothing once Lua has the final event and w is freed */
  w->wsi = NULL;
  push_event(w->ctx, w, kind, msg, len);
  if (w->ctx->ev_tail && w->ctx->ev_tail->id == w->id) {
    w->ctx->ev_tail->code = code;
    w->ctx->ev_tail->err = err;
  }
}

static void finish_str(rv_ws *w, int kind, int code, const char *err, const char *msg) {
  finish(w, kind, code, err, msg, strlen(msg));
}

static const char *classify(const char *msg) {
  if (!msg) return "connection_failed";
  if (strstr(msg, "HS:") || strstr(msg, "ws upgrade") || strstr(msg, "handshake")) return "handshake_failed";
  if (strstr(msg, "tls") || strstr(msg, "TLS") || strstr(msg, "ssl") || strstr(msg, "SSL") ||
      strstr(msg, "cert"))
    return "tls_failed";
  return "connection_failed";
}

static void frame_free_all(rv_ws *w) {
  rv_frame *f = w->q_head;
  while (f) {
    rv_frame *n = f->next;
    free(f);
    f = n;
  }
  w->q_head = w->q_tail = NULL;
}

static void gai_release(rv_gai *g) {
  if (g->cb.ar_result) freeaddrinfo(g->cb.ar_result);
  free(g);
}

/* Frees a look-up at once if it is not running (cancelled while queued, done, or never
 * started); otherwise puts it on *parked. Never waits. */
static void gai_park(rv_gai **parked, rv_gai *g) {
  if (gai_cancel(&g->cb) == EAI_NOTCANCELED && gai_error(&g->cb) == EAI_INPROGRESS) {
    g->next = *parked;
    *parked = g;
    return;
  }
  gai_release(g);
}

/* Frees the parked look-ups that are done (gai_error: glibc has stopped using them). */
static void gai_reap(rv_gai **parked) {
  rv_gai **p = parked;
  while (*p) {
    rv_gai *g = *p;
    if (gai_error(&g->cb) == EAI_INPROGRESS) {
      p = &g->next;
    } else {
      *p = g->next;
      gai_release(g);
    }
  }
}

/* Look-ups still running when their loop closed. Reaped when a context is made or
 * destroyed; the module stays loaded (rv_pin_module), so closing the Lua state does not
 * unmap the list that keeps them reachable. */
static rv_gai *global_parked;
static pthread_mutex_t global_parked_lock = PTHREAD_MUTEX_INITIALIZER;

static void gai_adopt(rv_gai *list) {
  pthread_mutex_lock(&global_parked_lock);
  while (list) {
    rv_gai *n = list->next;
    list->next = global_parked;
    global_parked = list;
    list = n;
  }
  gai_reap(&global_parked);
  if (global_parked) rv_pin_module();
  pthread_mutex_unlock(&global_parked_lock);
}

static void ws_free(rv_wsctx *c, rv_ws *w) {
  if (w->prev) w->prev->next = w->next;
  else c->list = w->next;
  if (w->next) w->next->prev = w->prev;
  else c->tail = w->prev;
  c->count[w->state]--;
  if (w->gai) gai_park(&c->parked, w->gai); /* the resolver may still be using it */
  map_del(&c->map, w->id);
  frame_free_all(w);
  rv_buf_free(&w->rx);
  for (int i = 0; i < w->nheaders; i++) free(w->headers[i]);
  free(w->headers);
  free(w->host);
  free(w->path);
  free(w->protocols);
  free(w->origin);
  free(w->ip);
  free(w->selected);
  free(w->peer_reason);
  free(w->local_reason);
  free(w);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len) {
  (void)user;
  rv_wsctx *cx = wsi ? lws_context_user(lws_get_context(wsi)) : NULL;
  lua_Integer wid = wsi ? (lua_Integer)(intptr_t)lws_get_opaque_user_data(wsi) : 0;
  rv_ws *w = cx && wid > 0 ? map_get(&cx->map, wid) : NULL;
  if (!w || w->state == WS_DONE) return lws_callback_http_dummy(wsi, reason, user, in, len);
  rv_wsctx *c = w->ctx;
  switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
      unsigned char **p = in, *end = *p + len;
      for (int i = 0; i < w->nheaders; i++) {
        const char *h = w->headers[i];
        const char *colon = strchr(h, ':');
        if (!colon) continue;
        /* lws wants the name with its colon, NUL-terminated */
        size_t nl = (size_t)(colon - h) + 1;
        char *name = malloc(nl + 1);
        if (!name) return -1;
        memcpy(name, h, nl);
        name[nl] = 0;
        const char *v = colon + 1;
        while (*v == ' ') v++;
        int r = lws_add_http_header_by_name(wsi, (const unsigned char *)name, (const unsigned char *)v,
                                            (int)strlen(v), p, end);
        free(name);
        if (r) return -1;
      }
      set_state(w, WS_HANDSHAKE);
      break;
    }
    case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH: {
      /* the response headers exist only now: keep the selected subprotocol */
      int plen = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL);
      free(w->selected);
      w->selected = NULL;
      if (plen > 0 && (w->selected = malloc((size_t)plen + 1)) != NULL) {
        if (lws_hdr_copy(wsi, w->selected, plen + 1, WSI_TOKEN_PROTOCOL) < 0) w->selected[0] = 0;
      }
      break;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
      set_state(w, WS_OPEN);
      set_nodelay(w, wsi, 0);
      push_event(c, w, EV_OPEN, w->selected ? w->selected : "", w->selected ? strlen(w->selected) : 0);
      if (w->q_head || w->want_close) lws_callback_on_writable(wsi);
      break;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE: {
      if (w->rx.len == 0) w->rx_binary = lws_frame_is_binary(wsi);
      if (len > w->max_message || w->rx.len > w->max_message - len) {
        static const char msg[] = "message too big";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)msg, sizeof msg - 1);
        finish_str(w, EV_ERROR, 0, "message_too_big", "a message exceeded max_message");
        /* not return -1: closing the wsi from inside its receive callback while more
         * of the peer's data sits in libwebsockets' buffer list made lws_service crash
         * (libwebsockets 4.1.6, a server flooding a 2^62-byte frame). Stop reading and
         * let the timeout machinery kill it on the next service instead. */
        lws_rx_flow_control(wsi, 0);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return 0;
      }
      if (!rv_buf_append(&w->rx, in, len)) {
        finish_str(w, EV_ERROR, 0, "out_of_memory", "out of memory");
        return -1;
      }
      if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        push_event(c, w, EV_MESSAGE, w->rx.data, w->rx.len);
        c->lp->rx_msgs++;
        if (c->ev_tail) c->ev_tail->binary = w->rx_binary;
        w->rx.len = 0;
      }
      set_nodelay(w, wsi, 1);
      break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
      rv_frame *f = w->q_head;
      if (f) {
        w->q_head = f->next;
        if (!w->q_head) w->q_tail = NULL;
        int n = lws_write(wsi, f->data + LWS_PRE, f->len, f->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        free(f);
        if (n < 0) return -1;
        if (w->q_head || w->want_close) lws_callback_on_writable(wsi);
        break;
      }
      if (w->want_close) {
        lws_close_reason(wsi, (enum lws_close_status)w->local_code, (unsigned char *)w->local_reason,
                         w->local_reason_len);
        return -1;
      }
      break;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
      const unsigned char *b = in;
      if (len >= 2) {
        w->peer_code = (b[0] << 8) | b[1];
        free(w->peer_reason);
        w->peer_reason = malloc(len - 2 + 1);
        if (w->peer_reason) {
          memcpy(w->peer_reason, b + 2, len - 2);
          w->peer_reason_len = len - 2;
        }
      } else {
        w->peer_code = 1005; /* no status received */
      }
      /* Report it now: libwebsockets echoes the close and then waits for the server to
       * drop TCP, which some servers (2.0's) leave to a one-second timeout. */
      finish(w, EV_CLOSE, w->peer_code, NULL, w->peer_reason ? w->peer_reason : "", w->peer_reason_len);
      break;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
      finish_str(w, EV_ERROR, 0, classify(in), in ? (const char *)in : "connection failed");
      break;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY: {
      if (w->state == WS_DONE) break;
      if (w->peer_code) {
        finish(w, EV_CLOSE, w->peer_code, NULL, w->peer_reason ? w->peer_reason : "", w->peer_reason_len);
      } else if (w->want_close) {
        finish(w, EV_CLOSE, w->local_code, NULL, w->local_reason ? w->local_reason : "", w->local_reason_len);
      } else if (w->state == WS_OPEN) {
        finish(w, EV_CLOSE, 1006, NULL, "", 0); /* dropped without a close frame */
      } else {
        finish_str(w, EV_ERROR, 0, "connection_failed", "the connection closed during the handshake");
      }
      break;
    }
    default:
      break;
  }
  return 0;
}

/* Each connection gets an rx buffer of rx_buffer_size (0 would mean pt_serv_buf_size,
 * 64 KiB: two touched pages per connection). Larger messages arrive in pieces that
 * ws_callback joins anyway. tx_packet_size keeps sends in one piece as before. */
#define RV_WS_RX_BUF 4096
static const struct lws_protocols protocols[] = {
    {"rivet-client", ws_callback, 0, RV_WS_RX_BUF, 0, NULL, RV_WS_SERV_BUF},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- libwebsockets' own log lines, routed to rivet.setLogger ---------------------------
 * lws logs through one process-wide callback without a user pointer, and only from inside
 * lws calls, which we make only from loop methods. Those bind their lua_State around the
 * calls (rv_ws_log_bind), and the callback hands each line to the Lua function that
 * core.set_ws_logger registered, in a protected call. */
static lua_State *log_L;
static int log_ref = LUA_NOREF;
static int log_level;

void rv_ws_log_bind(lua_State *L) { log_L = L; }

static void lws_emit(int level, const char *line) {
  lua_State *L = log_L;
  if (!L || log_ref == LUA_NOREF || !lua_checkstack(L, 4)) return;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, log_ref);
  lua_pushstring(L, level & LLL_ERR ? "error" : level & LLL_WARN ? "warn" : level & LLL_NOTICE ? "info" : "debug");
  /* a gateway path may carry a token (/gateway/{id}@{token}/...): keep it out of logs */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *p = line;
  while (*p) {
    if (*p == '@') {
      luaL_addstring(&b, "@***");
      while (*p && *p != '/' && *p != ' ' && *p != '\n') p++;
      continue;
    }
    if (*p != '\n' && *p != '\r') luaL_addchar(&b, *p);
    p++;
  }
  luaL_pushresult(&b);
  lua_pcall(L, 2, 0, 0);
  lua_settop(L, top);
}

/* core.set_ws_logger(fn | nil): fn(level, line) receives libwebsockets' errors, warnings
 * and notices; nil silences them (the default). */
static int l_set_ws_logger(lua_State *L) {
  if (log_ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, log_ref);
    log_ref = LUA_NOREF;
  }
  if (lua_isfunction(L, 1)) {
    lua_pushvalue(L, 1);
    log_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    log_level = LLL_ERR | LLL_WARN | LLL_NOTICE;
  } else {
    log_level = 0;
  }
  lws_set_log_level(log_level, log_level ? lws_emit : NULL);
  return 0;
}

void rv_ws_open_module(lua_State *L) {
  lua_pushcfunction(L, l_set_ws_logger);
  lua_setfield(L, -2, "set_ws_logger");
  static const char *const names[] = {"open", "message", "close", "error"};
  lua_createtable(L, 4, 0);
  for (int i = 0; i < 4; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "ws_events");
}

static rv_wsctx *get_ctx(lua_State *L, rv_loop *lp, const char *ca_file, int tls) {
  if (lp->ws) {
    if (tls && !lp->ws->tls)
      luaL_error(L, "ws_open: this loop's WebSockets were started without TLS (one client, one endpoint)");
    return lp->ws;
  }
  gai_adopt(NULL); /* frees what earlier loops left running and is done now */
  rv_wsctx *c = calloc(1, sizeof *c);
  if (!c) luaL_error(L, "out of memory");
  /* silent unless a logger is set: failures reach Lua as events anyway */
  lws_set_log_level(log_level, log_level ? lws_emit : NULL);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  /* TLS only for wss: loading the system trust store costs ~2 MiB and a few ms */
  info.options = tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
  /* Room for long subprotocol lists (connection params travel there, percent-encoded:
   * 4 KB of params can take 24 KB). libwebsockets writes the client handshake into its
   * per-thread service buffer without a bounds check (4096 bytes by default; a longer
   * request corrupts the heap), so that buffer is made large and ws_open refuses
   * handshakes that would not fit (RV_WS_MAX_HANDSHAKE). */
  info.max_http_header_data = RV_WS_HEADER_SPACE;
  info.pt_serv_buf_size = RV_WS_SERV_BUF;
  info.client_ssl_ca_filepath = ca_file;
  info.timeout_secs = 60;
  info.user = c;
  info.gid = -1;
  info.uid = -1;
  c->ctx = lws_create_context(&info);
  if (!c->ctx) {
    free(c);
    luaL_error(L, "could not create a libwebsockets context");
  }
  c->lp = lp;
  c->tls = tls;
  lp->ws = c;
  return c;
}

static int start_connect(rv_ws *w) {
  if (connecting(w->ctx) >= RV_WS_MAX_CONNECTING) {
    set_state(w, WS_WAITING);
    return 1;
  }
  struct lws_client_connect_info ci;
  memset(&ci, 0, sizeof ci);
  ci.context = w->ctx->ctx;
  ci.address = w->ip ? w->ip : w->host;
  ci.port = w->port;
  ci.path = w->path;
  ci.host = w->host;
  ci.origin = w->origin ? w->origin : w->host;
  ci.protocol = w->protocols;
  ci.local_protocol_name = "rivet-client";
  ci.opaque_user_data = (void *)(intptr_t)w->id;
  ci.pwsi = &w->wsi;
  if (w->tls) {
    ci.ssl_connection = LCCSCF_USE_SSL;
    if (w->insecure)
      ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                           LCCSCF_ALLOW_INSECURE | LCCSCF_ALLOW_EXPIRED;
  }
  set_state(w, WS_CONNECTING);
  if (!lws_client_connect_via_info(&ci)) {
    if (w->state != WS_DONE) finish_str(w, EV_ERROR, 0, "connection_failed", "could not start the connection");
    return 0;
  }
  return 1;
}

static char *dupstr(const char *s, size_t len) {
  char *d = malloc(len + 1);
  if (d) {
    memcpy(d, s, len);
    d[len] = 0;
  }
  return d;
}

static char *opt_dup(lua_State *L, int t, const char *k, int required) {
  size_t len = 0;
  lua_getfield(L, t, k);
  const char *s = lua_tolstring(L, -1, &len);
  char *d = NULL;
  if (s) d = dupstr(s, len);
  lua_pop(L, 1);
  if (!s && required) luaL_error(L, "ws_open: '%s' is required", k);
  return d;
}

/* loop:ws_open{host=, port=, path=, tls=, protocols="a, b", headers={"N: v"}, origin=,
 *             ca_file=, insecure=, max_message=} -> id
 * Starts connecting; poll() reports {ws=id, kind="open"|"message"|"close"|"error"}. */
static int l_ws_open(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  rv_host_touch(lp);
  rv_ws_log_bind(L); /* lws may log while it starts connecting */
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "ca_file");
  const char *ca = lua_tostring(L, -1);
  lua_getfield(L, 2, "tls");
  int want_tls = lua_toboolean(L, -1);
  lua_pop(L, 1);
  rv_wsctx *c = get_ctx(L, lp, ca, want_tls);
  lua_pop(L, 1);
  lua_getfield(L, 2, "port");
  lua_Integer port = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (port <= 0 || port > 65535) return luaL_error(L, "ws_open: bad port");
  lua_getfield(L, 2, "max_message");
  lua_Integer maxm = luaL_optinteger(L, -1, 64 * 1024 * 1024);
  lua_pop(L, 1);
  lua_getfield(L, 2, "headers");
  int nh = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
  lua_pop(L, 1);

  rv_ws *w = calloc(1, sizeof *w);
  if (!w) return luaL_error(L, "out of memory");
  w->ctx = c;
  w->id = ++lp->next_id;
  w->port = (int)port;
  w->max_message = maxm > 0 ? (size_t)maxm : 64 * 1024 * 1024;
  rv_buf_init(&w->rx);
  w->prev = c->tail;
  if (c->tail) c->tail->next = w;
  else c->list = w;
  c->tail = w;
  w->state = WS_RESOLVING;
  w->fd = -1;
  c->count[WS_RESOLVING]++;
  if (!map_put(&c->map, w->id, w)) {
    ws_free(c, w);
    return luaL_error(L, "out of memory");
  }

  lua_getfield(L, 2, "tls");
  w->tls = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "insecure");
  w->insecure = lua_toboolean(L, -1);
  lua_pop(L, 1);
  /* strings: a failed copy frees w through ws_free before raising */
  w->host = opt_dup(L, 2, "host", 0);
  w->path = opt_dup(L, 2, "path", 0);
  w->protocols = opt_dup(L, 2, "protocols", 0);
  w->origin = opt_dup(L, 2, "origin", 0);
  if (nh > 0) w->headers = calloc((size_t)nh, sizeof(char *));
  int ok = w->host && w->path && w->protocols && (nh == 0 || w->headers);
  if (ok && nh > 0) {
    lua_getfield(L, 2, "headers");
    for (int i = 1; i <= nh && ok; i++) {
      lua_rawgeti(L, -1, i);
      size_t hl = 0;
      const char *h = lua_tolstring(L, -1, &hl);
      if (h) {
        w->headers[w->nheaders] = dupstr(h, hl);
        ok = w->headers[w->nheaders] != NULL;
        if (ok) w->nheaders++;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (!ok) {
    ws_free(c, w);
    return luaL_error(L, "ws_open: host, path and protocols are required (or out of memory)");
  }

  size_t hs = strlen(w->host) + strlen(w->path) + strlen(w->protocols) + (w->origin ? strlen(w->origin) : 0);
  for (int i = 0; i < w->nheaders; i++) hs += strlen(w->headers[i]) + 4;
  unsigned char tmp[sizeof(struct in6_addr)];
  if (hs > RV_WS_MAX_HANDSHAKE) {
    finish_str(w, EV_ERROR, 0, "handshake_too_large",
               "the WebSocket handshake would exceed 31 KiB (connection params too large?)");
  } else if (inet_pton(AF_INET, w->host, tmp) == 1 || inet_pton(AF_INET6, w->host, tmp) == 1) {
    start_connect(w);
  } else {
    size_t hl = strlen(w->host);
    w->gai = calloc(1, sizeof *w->gai + hl + 1);
    if (!w->gai) {
      ws_free(c, w);
      return luaL_error(L, "out of memory");
    }
    memcpy(w->gai->name, w->host, hl + 1);
    w->gai->hints.ai_family = AF_UNSPEC;
    w->gai->hints.ai_socktype = SOCK_STREAM;
    w->gai->cb.ar_name = w->gai->name;
    w->gai->cb.ar_request = &w->gai->hints;
    struct gaicb *l[1] = {&w->gai->cb};
    int r = getaddrinfo_a(GAI_NOWAIT, l, 1, NULL);
    if (r != 0) {
      finish_str(w, EV_ERROR, 0, "dns_failed", gai_strerror(r));
    }
  }
  rv_ws_log_bind(NULL);
  rv_host_signal(lp);
  lua_pushinteger(L, w->id);
  return 1;
}

static rv_ws *find(rv_loop *lp, lua_Integer id) { return lp->ws ? map_get(&lp->ws->map, id) : NULL; }

/* loop:ws_send(id, data, binary) -> true, or false when the socket is gone.
 * Frames queued before the socket opens are sent once it does, in order. */
static int l_ws_send(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  rv_host_touch(lp);
  rv_ws *w = find(lp, luaL_checkinteger(L, 2));
  size_t len = 0;
  const char *data = luaL_checklstring(L, 3, &len);
  int binary = lua_toboolean(L, 4);
  if (!w || w->state == WS_DONE || w->want_close) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (len > SIZE_MAX - sizeof(rv_frame) - LWS_PRE) return luaL_error(L, "frame too large");
  if (len <= RV_WS_DIRECT_MAX && w->wsi && w->state == WS_OPEN && !w->q_head && !lws_partial_buffered(w->wsi)) {
    /* Nothing waits before it: write now instead of waiting a loop turn for POLLOUT
     * (one poll() and one loop turn less per message). What the socket does not take,
     * libwebsockets keeps and sends when it is writable again (a "truncated send"); we
     * queue nothing more on it until that is out (lws_partial_buffered). */
    unsigned char *buf = w->ctx->txbuf;
    if (len > w->ctx->txcap) {
      size_t cap = len + 256;
      buf = realloc(w->ctx->txbuf, LWS_PRE + cap);
      if (!buf) return luaL_error(L, "out of memory");
      w->ctx->txbuf = buf;
      w->ctx->txcap = cap;
    }
    memcpy(buf + LWS_PRE, data, len);
    rv_ws_log_bind(L);
    int n = lws_write(w->wsi, buf + LWS_PRE, len, binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    rv_ws_log_bind(NULL);
    if (n < 0) lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC); /* reported as closed */
    if (n < 0 || lws_partial_buffered(w->wsi)) rv_host_signal(lp);
    lua_pushboolean(L, 1);
    return 1;
  }
  rv_frame *f = malloc(sizeof *f + LWS_PRE + len);
  if (!f) return luaL_error(L, "out of memory");
  f->next = NULL;
  f->len = len;
  f->binary = binary;
  memcpy(f->data + LWS_PRE, data, len);
  if (w->q_tail) w->q_tail->next = f;
  else w->q_head = f;
  w->q_tail = f;
  if (w->wsi && w->state == WS_OPEN) lws_callback_on_writable(w->wsi);
  rv_host_signal(lp);
  lua_pushboolean(L, 1);
  return 1;
}

/* loop:ws_close(id [, code, reason]) -> true if a close was started.
 * An open socket sends a close frame after what is queued; one still connecting is
 * dropped at once. Either way a final "close" or "error" event follows. */
static int l_ws_close(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  rv_host_touch(lp);
  rv_ws *w = find(lp, luaL_checkinteger(L, 2));
  lua_Integer code = luaL_optinteger(L, 3, 1000);
  size_t rlen = 0;
  const char *reason = luaL_optlstring(L, 4, "", &rlen);
  if (rlen > 123) rlen = 123; /* a close frame's payload is at most 125 bytes */
  if (!w || w->state == WS_DONE || w->want_close) {
    lua_pushboolean(L, 0);
    return 1;
  }
  w->want_close = 1;
  w->local_code = (int)code;
  free(w->local_reason);
  w->local_reason = dupstr(reason, rlen);
  w->local_reason_len = w->local_reason ? rlen : 0;
  if (w->state == WS_OPEN && w->wsi) {
    lws_callback_on_writable(w->wsi);
  } else if (w->wsi) {
    lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
  } else {
    finish(w, EV_CLOSE, w->local_code, NULL, w->local_reason ? w->local_reason : "", w->local_reason_len);
  }
  rv_host_signal(lp);
  lua_pushboolean(L, 1);
  return 1;
}

/* loop:ws_counts() -> {resolving=, waiting=, connecting=, open=}: how many sockets are in
 * each state (connecting counts TCP, TLS and the upgrade). For diagnostics and tests. */
static int l_ws_counts(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  const int *n = lp->ws ? lp->ws->count : NULL;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, n ? n[WS_RESOLVING] : 0);
  lua_setfield(L, -2, "resolving");
  lua_pushinteger(L, n ? n[WS_WAITING] : 0);
  lua_setfield(L, -2, "waiting");
  lua_pushinteger(L, n ? n[WS_CONNECTING] + n[WS_HANDSHAKE] : 0);
  lua_setfield(L, -2, "connecting");
  lua_pushinteger(L, n ? n[WS_OPEN] : 0);
  lua_setfield(L, -2, "open");
  lua_pushinteger(L, RV_WS_MAX_CONNECTING);
  lua_setfield(L, -2, "max_connecting");
  return 1;
}

void rv_ws_methods(lua_State *L) {
  static const luaL_Reg m[] = {{"ws_open", l_ws_open},
                               {"ws_send", l_ws_send},
                               {"ws_close", l_ws_close},
                               {"ws_counts", l_ws_counts},
                               {NULL, NULL}};
  luaL_setfuncs(L, m, 0);
}

int rv_ws_active(rv_loop *lp) { return lp->ws && (lp->ws->list || lp->ws->ev_head); }

/* Starts waiting sockets, oldest first, while connect slots are free. */
static void start_waiting(rv_wsctx *c) {
  for (rv_ws *w = c->list; w && c->count[WS_WAITING] && connecting(c) < RV_WS_MAX_CONNECTING; w = w->next)
    if (w->state == WS_WAITING) start_connect(w);
}

/* Finishes host name look-ups that are done. */
static void check_resolving(rv_wsctx *c) {
  if (!c->count[WS_RESOLVING]) return;
  for (rv_ws *w = c->list; w; w = w->next) {
    if (w->state != WS_RESOLVING || !w->gai) continue;
    int r = gai_error(&w->gai->cb);
    if (r == EAI_INPROGRESS) continue;
    char ip[INET6_ADDRSTRLEN] = "";
    if (r == 0) {
      for (struct addrinfo *a = w->gai->cb.ar_result; a; a = a->ai_next) {
        const void *src = a->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                          : a->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr
                                                     : NULL;
        if (src && inet_ntop(a->ai_family, src, ip, sizeof ip)) break;
      }
    }
    gai_release(w->gai);
    w->gai = NULL;
    if (r != 0 || !ip[0]) {
      finish_str(w, EV_ERROR, 0, "dns_failed", r ? gai_strerror(r) : "no address");
      continue;
    }
    w->ip = dupstr(ip, strlen(ip));
    if (!w->ip) {
      finish_str(w, EV_ERROR, 0, "out_of_memory", "out of memory");
      continue;
    }
    start_connect(w);
  }
}

void rv_ws_service(rv_loop *lp) {
  rv_wsctx *c = lp->ws;
  if (!c || !c->list) return;
  check_resolving(c);
  start_waiting(c);
  c->last_service = rv_mono_now();
  lws_service(c->ctx, -1);
  start_waiting(c); /* slots that the callbacks freed */
}

void rv_ws_service_after_poll(rv_loop *lp, const struct pollfd *fds, int n) {
  rv_wsctx *c = lp->ws;
  if (!c || !c->list) return;
  if (c->count[WS_RESOLVING] || c->count[WS_CONNECTING]) {
    rv_ws_service(lp);
    return;
  }
  /* The poll already told which sockets are ready: hand lws those results
   * (lws_service_fd) instead of lws_service(), which would poll all over again. */
  int served = 0;
  for (int i = 0; i < n; i++) {
    if (!fds[i].revents) continue;
    struct lws_pollfd pfd;
    pfd.fd = fds[i].fd;
    pfd.events = (short)fds[i].events;
    pfd.revents = (short)fds[i].revents;
    lws_service_fd(c->ctx, &pfd);
    served = 1;
  }
  if (served) c->last_service = rv_mono_now();
  if (lws_service_adjust_timeout(c->ctx, 1, 0) == 0 || rv_mono_now() - c->last_service >= 1.0) rv_ws_service(lp);
  else start_waiting(c);
}

int rv_ws_pollfds(rv_loop *lp, struct pollfd **fds, unsigned *cap, int *max_ms) {
  rv_wsctx *c = lp->ws;
  if (!c || !c->list) return 0;
  unsigned n = 0;
  int ms = *max_ms;
  if (ms > 1000) ms = 1000; /* libwebsockets checks its own timeouts once a second */
  for (rv_ws *w = c->list; w; w = w->next) {
    if (w->state == WS_RESOLVING) {
      if (ms > 2) ms = 2;
      continue;
    }
    if (!w->wsi || w->state == WS_DONE) continue;
    int fd = lws_get_socket_fd(w->wsi);
    if (fd != w->fd) {
      w->fd = fd;
      rv_host_fresh(lp, fd);
    }
    if (fd < 0) {
      if (ms > 2) ms = 2;
      continue;
    }
    short ev = POLLIN;
    if (w->state == WS_CONNECTING) {
      /* a plain TCP connect completes with POLLOUT; a TLS handshake would spin on it */
      if (w->tls) {
        if (ms > 1) ms = 1;
      } else {
        ev |= POLLOUT;
      }
    } else if ((w->state == WS_OPEN && (w->q_head || w->want_close)) || lws_partial_buffered(w->wsi)) {
      ev |= POLLOUT;
    }
    if (n == *cap) {
      unsigned nc = *cap ? *cap * 2 : 8;
      struct pollfd *nf = realloc(*fds, nc * sizeof *nf);
      if (!nf) return -1;
      *fds = nf;
      *cap = nc;
    }
    (*fds)[n].fd = fd;
    (*fds)[n].events = ev;
    (*fds)[n].revents = 0;
    n++;
  }
  ms = lws_service_adjust_timeout(c->ctx, ms, 0);
  if (ms < *max_ms) *max_ms = ms;
  return (int)n;
}

static const char *kind_name(int k) {
  switch (k) {
    case EV_OPEN: return "open";
    case EV_MESSAGE: return "message";
    case EV_CLOSE: return "close";
    default: return "error";
  }
}

/* Flat form: id, kind (EV_ + 1: core.ws_events names them), then two values:
 * open: protocol; message: data, binary; close: code, reason; error: kind, message. */
static void collect_flat(lua_State *L, const rv_wsev *e, int wsout, int m) {
  lua_Integer j = (lua_Integer)m * 4;
  lua_pushinteger(L, e->id);
  lua_rawseti(L, wsout, j + 1);
  lua_pushinteger(L, e->kind + 1);
  lua_rawseti(L, wsout, j + 2);
  switch (e->kind) {
    case EV_OPEN:
      lua_pushlstring(L, e->data, e->len);
      lua_pushnil(L);
      break;
    case EV_MESSAGE:
      lua_pushlstring(L, e->data, e->len);
      lua_pushboolean(L, e->binary);
      break;
    case EV_CLOSE:
      lua_pushinteger(L, e->code);
      lua_pushlstring(L, e->data, e->len);
      break;
    default:
      lua_pushstring(L, e->err ? e->err : "connection_failed");
      lua_pushlstring(L, e->data, e->len);
      break;
  }
  lua_rawseti(L, wsout, j + 4);
  lua_rawseti(L, wsout, j + 3);
}

int rv_ws_collect(lua_State *L, rv_loop *lp, int out, int n, int wsout, int *m) {
  rv_wsctx *c = lp->ws;
  if (!c) return n;
  if (c->parked) gai_reap(&c->parked);
  rv_wsev *e;
  while ((e = c->ev_head)) {
    c->ev_head = e->next;
    if (!c->ev_head) c->ev_tail = NULL;
    if (wsout) {
      collect_flat(L, e, wsout, (*m)++);
      free(e);
      continue;
    }
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, e->id);
    lua_setfield(L, -2, "ws");
    lua_pushstring(L, kind_name(e->kind));
    lua_setfield(L, -2, "kind");
    switch (e->kind) {
      case EV_OPEN:
        lua_pushlstring(L, e->data, e->len);
        lua_setfield(L, -2, "protocol");
        break;
      case EV_MESSAGE:
        lua_pushlstring(L, e->data, e->len);
        lua_setfield(L, -2, "data");
        lua_pushboolean(L, e->binary);
        lua_setfield(L, -2, "binary");
        break;
      case EV_CLOSE:
        lua_pushinteger(L, e->code);
        lua_setfield(L, -2, "code");
        lua_pushlstring(L, e->data, e->len);
        lua_setfield(L, -2, "reason");
        break;
      default:
        lua_pushstring(L, e->err ? e->err : "connection_failed");
        lua_setfield(L, -2, "err");
        lua_pushlstring(L, e->data, e->len);
        lua_setfield(L, -2, "message");
        break;
    }
    lua_rawseti(L, out, ++n);
    free(e);
  }
  /* sockets whose final event Lua now has are gone */
  rv_ws *w = c->list;
  while (w) {
    rv_ws *next = w->next;
    if (w->state == WS_DONE) ws_free(c, w);
    w = next;
  }
  if (c->failed_alloc) {
    c->failed_alloc = 0;
    luaL_error(L, "out of memory while queueing WebSocket events");
  }
  return n;
}

void rv_ws_destroy(rv_loop *lp) {
  rv_wsctx *c = lp->ws;
  if (!c) return;
  /* callbacks during the teardown must not queue events for sockets Lua will never see */
  for (rv_ws *w = c->list; w; w = w->next) {
    set_state(w, WS_DONE);
    w->wsi = NULL;
  }
  lws_context_destroy(c->ctx);
  while (c->list) ws_free(c, c->list);
  gai_adopt(c->parked); /* look-ups still running outlive the loop; never waited for */
  rv_wsev *e = c->ev_head;
  while (e) {
    rv_wsev *nx = e->next;
    free(e);
    e = nx;
  }
  free(c->map.keys);
  free(c->map.vals);
  free(c->txbuf);
  free(c);
  lp->ws = NULL;
}
