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
} rv_loop;

rv_loop *rv_check_loop(lua_State *L);
double rv_mono_now(void);

/* ws.c: the WebSocket side of the loop. All are no-ops while lp->ws is NULL. */
void rv_ws_methods(lua_State *L); /* adds ws_* methods to the metatable on top */
/* Fills fds (growing *cap as needed) with the sockets to wait on; returns how many, or
 * -1 on allocation failure. *max_ms is lowered to when libwebsockets next needs service. */
int rv_ws_pollfds(rv_loop *lp, struct curl_waitfd **fds, unsigned *cap, int *max_ms);
void rv_ws_service(rv_loop *lp);
int rv_ws_collect(lua_State *L, rv_loop *lp, int out, int n);
void rv_ws_destroy(rv_loop *lp);
int rv_ws_active(rv_loop *lp);

#endif
