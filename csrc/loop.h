/* The loop object shared by loop.c (libcurl multi, HTTP) and ws.c (libwebsockets). */
#ifndef RV_LOOP_H
#define RV_LOOP_H

#include <curl/curl.h>

#include "core.h"

#define RV_LOOP_MT "rivet.loop"

struct rv_req;
struct rv_wsctx;

typedef struct rv_loop {
  CURLM *multi;
  struct rv_req *reqs;
  lua_Integer next_id; /* ids of requests and WebSockets share one counter */
  int active;          /* transfers still running, as curl_multi_perform reports */
  struct rv_wsctx *ws; /* NULL until the first WebSocket */
  /* Re-arm TCP_QUICKACK after reads: needed against the 2.3 engine, whose replies in two
   * segments otherwise wait for our delayed ACK; it costs a syscall and an extra ACK
   * packet per read, so the client turns it off for servers that do not need it. */
  int quickack;
  struct curl_waitfd *fds; /* the WebSocket descriptors of a poll, kept between polls */
  unsigned fds_cap;
} rv_loop;

rv_loop *rv_check_loop(lua_State *L);
void rv_pin_module(void); /* the module is never unloaded (see loop.c) */
double rv_mono_now(void);

/* ws.c: the WebSocket side of the loop. All are no-ops while lp->ws is NULL. */
void rv_ws_methods(lua_State *L); /* adds ws_* methods to the metatable on top */
/* Fills fds (growing *cap as needed) with the sockets to wait on; returns how many, or
 * -1 on allocation failure. *max_ms is lowered to when libwebsockets next needs service. */
int rv_ws_pollfds(rv_loop *lp, struct curl_waitfd **fds, unsigned *cap, int *max_ms);
void rv_ws_service(rv_loop *lp);
/* rv_ws_service only if a socket in fds[0..n) reported activity or libwebsockets has
 * work of its own (timers, buffered writes, look-ups in progress). */
void rv_ws_service_after_poll(rv_loop *lp, const struct curl_waitfd *fds, int n);
/* Moves queued WebSocket events to Lua: as tables appended to out[n+1..] (returns the
 * new n), or, with wsout > 0, flat into wsout[4m+1 .. 4m+4] (returns the new m). */
int rv_ws_collect(lua_State *L, rv_loop *lp, int out, int n, int wsout, int *m);
void rv_ws_destroy(rv_loop *lp);
int rv_ws_active(rv_loop *lp);
/* The lua_State libwebsockets' log lines go to while lws runs (NULL: dropped). */
void rv_ws_log_bind(lua_State *L);
void rv_ws_open_module(lua_State *L); /* core.set_ws_logger */

#endif
