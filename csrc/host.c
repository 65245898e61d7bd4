/* Hosting the loop: what a host loop (luv, cqueues, an engine's epoll) sleeps on instead
 * of loop:poll().
 *
 * The host watches one descriptor: an epoll set of our own that holds every socket of
 * both libraries with the directions they want (what loop:poll() would poll), plus a
 * wake-up eventfd. It is readable when loop:poll(0) has I/O to do; loop:timeout() says
 * when it has timed work. Handing out one descriptor rather than the sockets themselves
 * keeps the host out of the sockets' lifetimes: libcurl and libwebsockets close and
 * reopen sockets inside poll(), a number is reused at once, and a host that still
 * watched a closed number (epoll forgets it, cqueues and libuv fail on it) would miss
 * or fail on the next socket given that number. Our set follows the sockets at the end
 * of every poll and at every pollfds()/timeout() (sync_set); the kernel drops closed
 * ones from it by itself.
 *
 * A sync walks every WebSocket and our registry, so it walks only when something may
 * have changed since the last walk (lp->ep_dirty); otherwise the set is what a walk
 * would make it, and the wait it found (kept as a deadline, lp->ep_due) still holds.
 * Why nothing is missed: what a walk reads changes only inside libcurl or libwebsockets
 * (curl's socket table through its socket callback, its timer through the timer
 * callback, a wsi's descriptor, buffered output and forced service inside lws calls) or
 * in our own WebSocket records, and this program calls those libraries or changes those
 * records only in the loop methods that can do I/O: poll, request, cancel, stream_pause,
 * upload, ws_open, ws_send and ws_close all call rv_host_touch on entry, as do curl's
 * socket and timer callbacks and rv_host_fresh/rv_host_signal. The kept deadline is never
 * later than a walk would say: curl's timer is absolute and touches when it moves, and
 * the caps libwebsockets' side puts on the wait (1 s, 2 ms while resolving, 1 ms for a
 * TLS connect) count from the walk, so they only end earlier than counted from now.
 *
 * A call made between polls (a new request, a WebSocket write, a task spawned from
 * outside a poll) has work the host does not know of: it makes the eventfd readable
 * (rv_host_signal), and the next poll drains it. Calls made while a poll's work is being
 * handled (from poll() until the next pollfds() or timeout()) do not signal: the host
 * looks at pollfds()/timeout() again before it sleeps. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop.h"

/* The registry entry of descriptor fd, grown as needed (NULL when out of memory). */
static struct rv_epreg *reg(rv_loop *lp, int fd) {
  if (fd < 0) return NULL;
  if ((unsigned)fd >= lp->ep_cap) {
    unsigned nc = lp->ep_cap ? lp->ep_cap : 64;
    while (nc <= (unsigned)fd) nc *= 2;
    struct rv_epreg *n = realloc(lp->ep, nc * sizeof *n);
    if (!n) return NULL;
    memset(n + lp->ep_cap, 0, (nc - lp->ep_cap) * sizeof *n);
    lp->ep = n;
    lp->ep_cap = nc;
  }
  return &lp->ep[fd];
}

void rv_host_touch(rv_loop *lp) { lp->ep_dirty = 1; }

void rv_host_fresh(rv_loop *lp, int fd) {
  lp->ep_dirty = 1;
  if (lp->ep_fd < 0) return;
  struct rv_epreg *e = reg(lp, fd);
  if (e) e->fresh = 1;
}

void rv_host_signal(rv_loop *lp) {
  lp->ep_dirty = 1;
  if (lp->wake_fd < 0 || lp->in_step || lp->wake_armed) return;
  uint64_t one = 1;
  while (write(lp->wake_fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
  lp->wake_armed = 1;
}

void rv_host_drain(rv_loop *lp) {
  if (!lp->wake_armed) return;
  uint64_t v;
  while (read(lp->wake_fd, &v, sizeof v) < 0 && errno == EINTR) {
  }
  lp->wake_armed = 0;
}

static void ep_set(rv_loop *lp, int fd, short events, int known) {
  struct epoll_event ee;
  memset(&ee, 0, sizeof ee);
  ee.events = ((events & POLLIN) ? EPOLLIN : 0u) | ((events & POLLOUT) ? EPOLLOUT : 0u);
  ee.data.fd = fd;
  /* a number we registered may have been closed (the kernel dropped it) and reused */
  if (epoll_ctl(lp->ep_fd, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ee) < 0) {
    if (known && errno == ENOENT) epoll_ctl(lp->ep_fd, EPOLL_CTL_ADD, fd, &ee);
    else if (!known && errno == EEXIST) epoll_ctl(lp->ep_fd, EPOLL_CTL_MOD, fd, &ee);
  }
}

/* Brings the epoll set to the sockets the libraries want now (a walk only if something
 * may have changed since the last one); returns the wait in ms that poll() would use
 * (3600000: none), or -1 when out of memory. */
static int sync_set(rv_loop *lp) {
  if (!lp->ep_dirty) {
    if (lp->ep_due < 0) return 3600000;
    double left = lp->ep_due - rv_mono_now();
    return left <= 0 ? 0 : (int)ceil(left * 1000.0);
  }
  double t0 = rv_mono_now();
  int ms = 3600000, nws = 0;
  int n = rv_wait_gather(lp, &ms, &nws);
  if (n < 0) return -1;
  unsigned char mark = (unsigned char)(lp->ep_mark + 1);
  if (mark == 0) mark = 1; /* 0 is what a new entry has */
  lp->ep_mark = mark;
  for (int i = 0; i < n; i++) {
    int fd = lp->fds[i].fd;
    short ev = lp->fds[i].events;
    struct rv_epreg *e = reg(lp, fd);
    if (!e) return -1;
    if (!e->events || e->fresh || e->events != ev) ep_set(lp, fd, ev, e->events != 0);
    e->events = ev;
    e->fresh = 0;
    e->mark = mark;
  }
  for (unsigned fd = 0; fd < lp->ep_cap; fd++) {
    struct rv_epreg *e = &lp->ep[fd];
    if (e->events && e->mark != mark) {
      struct epoll_event ee;
      memset(&ee, 0, sizeof ee);
      epoll_ctl(lp->ep_fd, EPOLL_CTL_DEL, (int)fd, &ee); /* (fails for a closed number: fine) */
      e->events = 0;
    }
  }
  /* (freshes noted during this walk were handled by it) */
  lp->ep_dirty = 0;
  lp->ep_due = ms >= 3600000 ? -1 : t0 + ms / 1000.0;
  return ms;
}

void rv_host_sync(rv_loop *lp) {
  if (lp->ep_fd >= 0) sync_set(lp);
}

void rv_host_free(rv_loop *lp) {
  if (lp->ep_fd >= 0) close(lp->ep_fd);
  if (lp->wake_fd >= 0) close(lp->wake_fd);
  lp->ep_fd = lp->wake_fd = -1;
  lp->wake_armed = 0;
  free(lp->ep);
  lp->ep = NULL;
  lp->ep_cap = 0;
}

static void start_hosting(lua_State *L, rv_loop *lp) {
  if (lp->ep_fd >= 0) return;
  lp->ep_fd = epoll_create1(EPOLL_CLOEXEC);
  if (lp->ep_fd < 0) luaL_error(L, "rivet: epoll_create1 failed: %s", strerror(errno));
  lp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (lp->wake_fd < 0) {
    int err = errno;
    rv_host_free(lp);
    luaL_error(L, "rivet: eventfd failed: %s", strerror(err));
  }
  struct epoll_event ee;
  memset(&ee, 0, sizeof ee);
  ee.events = EPOLLIN;
  ee.data.fd = lp->wake_fd;
  epoll_ctl(lp->ep_fd, EPOLL_CTL_ADD, lp->wake_fd, &ee);
  lp->ep_dirty = 1; /* the registry is empty: the first sync adds every socket */
}

/* loop:pollfds(out) -> 1: out[1], out[2] = the descriptor to watch and "r". Starts
 * hosting (the epoll set and the wake-up) on the first call; ends a poll's quiet time. */
static int l_pollfds(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  start_hosting(L, lp);
  lp->in_step = 0;
  if (sync_set(lp) < 0) return luaL_error(L, "out of memory");
  lua_pushinteger(L, lp->ep_fd);
  lua_rawseti(L, 2, 1);
  lua_pushliteral(L, "r");
  lua_rawseti(L, 2, 2);
  lua_pushinteger(L, 1);
  return 1;
}

/* loop:timeout() -> seconds until poll() has timed work of curl or libwebsockets (0:
 * now), or nil when neither has any. Ends a poll's quiet time. */
static int l_timeout(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  lp->in_step = 0;
  if (lp->wake_armed) {
    lua_pushnumber(L, 0);
    return 1;
  }
  int ms;
  if (lp->ep_fd >= 0) {
    ms = sync_set(lp);
  } else {
    int nws = 0;
    ms = 3600000;
    if (rv_wait_gather(lp, &ms, &nws) < 0) ms = -1;
  }
  if (ms < 0) return luaL_error(L, "out of memory");
  if (ms >= 3600000) lua_pushnil(L);
  else lua_pushnumber(L, ms / 1000.0);
  return 1;
}

/* loop:wakeup(): makes the wake-up descriptor readable if a host sleeps on it (the
 * scheduler calls it for work of its own: a task spawned or a timer set from outside). */
static int l_wakeup(lua_State *L) {
  rv_host_signal(rv_check_loop(L));
  return 0;
}

void rv_host_methods(lua_State *L) {
  static const luaL_Reg methods[] = {{"pollfds", l_pollfds}, {"timeout", l_timeout}, {"wakeup", l_wakeup}, {NULL, NULL}};
  luaL_setfuncs(L, methods, 0);
}
