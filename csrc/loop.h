/* The loop object shared by loop.c (libcurl multi, HTTP) and ws.c (libwebsockets). */
#ifndef RV_LOOP_H
#define RV_LOOP_H

#include <curl/curl.h>
#include <poll.h>

#include "core.h"

#define RV_LOOP_MT "rivet.loop"

struct rv_req;
struct rv_wsctx;

typedef struct rv_loop {
  CURLM *multi;
  struct rv_req *reqs;
  lua_Integer next_id; /* ids of requests and WebSockets share one counter */
  int active;          /* transfers still running, as curl_multi_socket_action reports */
  struct rv_wsctx *ws; /* NULL until the first WebSocket */
  /* Re-arm TCP_QUICKACK after reads: needed against the 2.3 engine, whose replies in two
   * segments otherwise wait for our delayed ACK; it costs a syscall and an extra ACK
   * packet per read, so the client turns it off for servers that do not need it. */
  int quickack;
  /* wait.c: what a poll sleeps on */
  struct pollfd *fds; /* the descriptors of a wait, kept between waits */
  unsigned fds_cap;
  struct rv_cfd {
    curl_socket_t fd;
    short events; /* POLLIN | POLLOUT: what curl wants on it */
  } *cfd;         /* curl's sockets, kept by its socket callback */
  unsigned ncfd, cfd_cap;
  double curl_due; /* when curl has timed work (rv_mono_now() time), < 0: none */
  /* wait.c rv_wait_coalesce: reading a stream at most once per 50 µs */
  unsigned rx_msgs; /* WebSocket messages received since the last wait began */
  double woke;      /* when the last wait ended (rv_mono_now() time) */
  lua_Integer naps; /* how many waits slept first (loop:naps()) */
  /* host.c: what a host loop sleeps on (all unused until the first loop:pollfds()) */
  int ep_fd;      /* an epoll descriptor holding every socket of both libraries */
  int wake_fd;    /* an eventfd in it: work given between polls */
  int wake_armed; /* wake_fd was written and not drained yet */
  int in_step;    /* a poll's work is being handled: no wake-ups (see host.c) */
  struct rv_epreg {
    short events;  /* POLLIN | POLLOUT registered in ep_fd, 0: none */
    unsigned char fresh, mark;
  } *ep;            /* by descriptor number */
  unsigned ep_cap;
  unsigned char ep_mark;
  int ep_dirty;  /* the set may lag what the libraries want: the next sync walks (host.c) */
  double ep_due; /* when the last walk's wait ends (rv_mono_now() time), < 0: none */
} rv_loop;

rv_loop *rv_check_loop(lua_State *L);
void rv_pin_module(void); /* the module is never unloaded (see loop.c) */
double rv_mono_now(void);

/* wait.c: sleeping on the sockets of both libraries */
int rv_wait_setup(rv_loop *lp); /* installs curl's socket and timer callbacks; 0 on failure */
void rv_wait_free(rv_loop *lp);
/* The start of a poll: curl's timed work that is due (it may finish things at once). */
void rv_wait_begin(rv_loop *lp);
/* One wait of at most ms (0: none) on every socket, then the ready sockets' and the due
 * timers' work; -1 on failure (out of memory, poll error). */
int rv_wait_once(rv_loop *lp, int ms);
/* Before a wait that may sleep: while messages stream in, first sleeps so that reads
 * come at most once per 50 µs, never past deadline (rv_mono_now() time). */
void rv_wait_coalesce(rv_loop *lp, double deadline);
/* The sockets of both libraries into lp->fds (libwebsockets' first, *nws of them);
 * returns how many, -1 when out of memory; lowers *ms to when either has timed work. */
int rv_wait_gather(rv_loop *lp, int *ms, int *nws);

/* host.c: a host loop sleeping on the loop's behalf */
void rv_host_signal(rv_loop *lp);      /* a call between polls left work for poll() */
void rv_host_touch(rv_loop *lp);       /* what the epoll set must follow may change now */
void rv_host_fresh(rv_loop *lp, int fd);       /* fd may name a socket the epoll set lacks */
void rv_host_drain(rv_loop *lp);               /* a poll starts: the wake-up is seen */
void rv_host_sync(rv_loop *lp);                /* a poll ends: the epoll set follows */
void rv_host_free(rv_loop *lp);
void rv_host_methods(lua_State *L); /* pollfds, timeout, wakeup */

/* ws.c: the WebSocket side of the loop. All are no-ops while lp->ws is NULL. */
void rv_ws_methods(lua_State *L); /* adds ws_* methods to the metatable on top */
/* Fills fds (growing *cap as needed) with the sockets to wait on; returns how many, or
 * -1 on allocation failure. *max_ms is lowered to when libwebsockets next needs service. */
int rv_ws_pollfds(rv_loop *lp, struct pollfd **fds, unsigned *cap, int *max_ms);
void rv_ws_service(rv_loop *lp);
/* rv_ws_service only if a socket in fds[0..n) reported activity or libwebsockets has
 * work of its own (timers, buffered writes, look-ups in progress). */
void rv_ws_service_after_poll(rv_loop *lp, const struct pollfd *fds, int n);
/* Moves queued WebSocket events to Lua: as tables appended to out[n+1..] (returns the
 * new n), or, with wsout > 0, flat into wsout[4m+1 .. 4m+4] (returns the new m). */
int rv_ws_collect(lua_State *L, rv_loop *lp, int out, int n, int wsout, int *m);
void rv_ws_destroy(rv_loop *lp);
int rv_ws_active(rv_loop *lp);
/* The lua_State libwebsockets' log lines go to while lws runs (NULL: dropped). */
void rv_ws_log_bind(lua_State *L);
void rv_ws_open_module(lua_State *L); /* core.set_ws_logger */

#endif
