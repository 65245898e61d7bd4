/* Waiting for I/O: what the loop sleeps on.
 *
 * libcurl runs in its multi_socket mode: its socket callback keeps the table of the
 * transfers' sockets with the directions curl wants (lp->cfd), its timer callback the
 * time curl next has timed work (lp->curl_due). libwebsockets adds its sockets at each
 * wait (ws.c rv_ws_pollfds). loop:poll() sleeps in one poll(2) over both and hands each
 * ready socket to its library. (A host loop that sleeps instead: host.c.) */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loop.h"

/* CURLMOPT_SOCKETFUNCTION: curl says which directions it wants on s (or none). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *ud, void *sockp) {
  (void)easy;
  (void)sockp;
  rv_loop *lp = ud;
  rv_host_touch(lp);
  unsigned i = 0;
  while (i < lp->ncfd && lp->cfd[i].fd != s) i++;
  if (what == CURL_POLL_REMOVE) {
    if (i < lp->ncfd) lp->cfd[i] = lp->cfd[--lp->ncfd];
    return 0;
  }
  if (i == lp->ncfd) {
    if (lp->ncfd == lp->cfd_cap) {
      unsigned nc = lp->cfd_cap ? lp->cfd_cap * 2 : 8;
      struct rv_cfd *n = realloc(lp->cfd, nc * sizeof *n);
      if (!n) return -1; /* curl fails the transfer */
      lp->cfd = n;
      lp->cfd_cap = nc;
    }
    lp->cfd[lp->ncfd++].fd = s;
    rv_host_fresh(lp, s); /* a new socket, or one back from the connection pool */
  }
  short ev = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= POLLIN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= POLLOUT;
  lp->cfd[i].events = ev;
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl wants socket_action(CURL_SOCKET_TIMEOUT) in ms (-1: never). */
static int on_timer(CURLM *multi, long ms, void *ud) {
  (void)multi;
  rv_loop *lp = ud;
  rv_host_touch(lp);
  lp->curl_due = ms < 0 ? -1 : rv_mono_now() + (double)ms / 1000.0;
  return 0;
}

int rv_wait_setup(rv_loop *lp) {
  lp->curl_due = -1;
  lp->wake_fd = -1;
  lp->ep_fd = -1;
  return curl_multi_setopt(lp->multi, CURLMOPT_SOCKETFUNCTION, on_socket) == CURLM_OK &&
         curl_multi_setopt(lp->multi, CURLMOPT_SOCKETDATA, lp) == CURLM_OK &&
         curl_multi_setopt(lp->multi, CURLMOPT_TIMERFUNCTION, on_timer) == CURLM_OK &&
         curl_multi_setopt(lp->multi, CURLMOPT_TIMERDATA, lp) == CURLM_OK;
}

void rv_wait_free(rv_loop *lp) {
  rv_host_free(lp);
  free(lp->fds);
  lp->fds = NULL;
  lp->fds_cap = 0;
  free(lp->cfd);
  lp->cfd = NULL;
  lp->ncfd = lp->cfd_cap = 0;
}

/* Runs curl's timed work if it is due. */
static void run_due(rv_loop *lp) {
  for (int i = 0; i < 4 && lp->curl_due >= 0 && lp->curl_due <= rv_mono_now(); i++) {
    lp->curl_due = -1;
    curl_multi_socket_action(lp->multi, CURL_SOCKET_TIMEOUT, 0, &lp->active);
  }
}

/* The sockets of both libraries into lp->fds: libwebsockets' first (*nws of them), then
 * curl's. Returns the count, -1 when out of memory; lowers *ms to when either library
 * has timed work. */
int rv_wait_gather(rv_loop *lp, int *ms, int *nws) {
  int n = rv_ws_pollfds(lp, &lp->fds, &lp->fds_cap, ms);
  if (n < 0) return -1;
  *nws = n;
  unsigned need = (unsigned)n + lp->ncfd;
  if (need > lp->fds_cap) {
    struct pollfd *f = realloc(lp->fds, need * sizeof *f);
    if (!f) return -1;
    lp->fds = f;
    lp->fds_cap = need;
  }
  for (unsigned i = 0; i < lp->ncfd; i++) {
    lp->fds[n].fd = lp->cfd[i].fd;
    lp->fds[n].events = lp->cfd[i].events;
    lp->fds[n].revents = 0;
    n++;
  }
  if (lp->curl_due >= 0) {
    double left = lp->curl_due - rv_mono_now();
    int cms = left <= 0 ? 0 : (int)ceil(left * 1000.0);
    if (cms < *ms) *ms = cms;
  }
  return n;
}

void rv_wait_begin(rv_loop *lp) {
  lp->in_step = 1;
  rv_host_drain(lp);
  run_due(lp);
}

/* Coalescing a stream. While WebSocket messages stream in (the passes since the last
 * wait began brought COALESCE_MIN or more), a waiting poll reads at most once per COALESCE_S:
 * if the last wait ended less than that ago, it first sleeps the rest (never past its
 * deadline) with no socket watched, then takes what came meanwhile in one read. Without
 * it a client that drains fast sleeps on its socket after every few messages, and each
 * write of the sender that finds it asleep pays a wake-up: the bench's burst of 10k
 * events took ~1200 reads of ~8 events. The price: while messages stream, the next one
 * may wait up to COALESCE_S more. poll(0) never comes here (a game loop's tick, and a
 * host loop, which calls only that). */
#define COALESCE_MIN 4
#define COALESCE_S 50e-6

void rv_wait_coalesce(rv_loop *lp, double deadline) {
  if (lp->rx_msgs < COALESCE_MIN) return;
  double until = lp->woke + COALESCE_S;
  if (deadline < until) until = deadline;
  double left = until - rv_mono_now();
  if (left <= 0) return;
  lp->naps++;
  struct timespec ts = {0, (long)(left * 1e9)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

int rv_wait_once(rv_loop *lp, int ms) {
  lp->rx_msgs = 0; /* counts this pass's messages from here (rv_wait_coalesce) */
  int nws = 0;
  int n = rv_wait_gather(lp, &ms, &nws);
  if (n < 0) return -1;
  if (n > 0 || ms > 0) {
    if (poll(lp->fds, (nfds_t)n, ms) < 0 && errno != EINTR) return -1;
  }
  for (int i = nws; i < n; i++) {
    short re = lp->fds[i].revents;
    if (!re) continue;
    int ev = 0;
    if (re & (POLLIN | POLLHUP)) ev |= CURL_CSELECT_IN;
    if (re & POLLOUT) ev |= CURL_CSELECT_OUT;
    if (re & (POLLERR | POLLNVAL)) ev |= CURL_CSELECT_ERR;
    curl_multi_socket_action(lp->multi, lp->fds[i].fd, ev, &lp->active);
  }
  lp->woke = rv_mono_now();
  run_due(lp);
  rv_ws_service_after_poll(lp, lp->fds, nws);
  return 0;
}
