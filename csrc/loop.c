/* The I/O loop: one libcurl multi handle per client, driven only by loop:poll(timeout).
 *
 * Nothing here blocks longer than the timeout the caller passes (0 = return at once),
 * and nothing here yields: Lua decides how to wait (run the loop from the main chunk,
 * or yield the calling task to the scheduler). Requests are identified by integers;
 * poll() reports finished ones as plain tables so the Lua side can complete futures.
 *
 * The WebSocket side (libwebsockets) joins this loop later through the extra file
 * descriptors that curl_multi_poll() accepts, so there stays one place that sleeps. */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "buf.h"
#include "loop.h"

/* Received body bytes a streamed response holds while Lua asked for no more
 * (loop:stream_pause): past this the transfer is paused, so memory stays bounded. */
#define RV_STREAM_RX_LIMIT (1024 * 1024)

/* The most response body bytes a request holds at once (the whole body, or for a
 * streamed one what is not yet handed to Lua) unless the max_response option says
 * otherwise: a server sending an endless body fails the call with "response_too_large"
 * instead of filling memory. */
#define RV_MAX_RESPONSE_DEFAULT (64 * 1024 * 1024)

typedef struct rv_req {
  struct rv_req *prev, *next;
  CURL *easy;
  lua_Integer id;
  struct curl_slist *headers;
  char *body; /* request body, owned; read by on_read_body, never rewound */
  size_t body_len, body_off;
  rv_buf resp;
  rv_buf head; /* raw response header lines of the last header block */
  char *errbuf;
  /* Evented requests (stream or upload) report more than their end: see l_request. */
  unsigned stream : 1;     /* the body is reported in pieces as it arrives */
  unsigned upload : 1;     /* the request body comes from loop:upload, chunked */
  unsigned head_ready : 1; /* the final header block is complete */
  unsigned head_sent : 1;
  unsigned lua_paused : 1; /* Lua wants no body pieces now */
  unsigned rx_paused : 1;  /* curl is paused in the receive direction */
  unsigned tx_paused : 1;  /* curl waits for upload data */
  unsigned want_sent : 1;  /* a "want" event went out for this pause */
  unsigned up_eof : 1;     /* the upload is complete */
  unsigned too_large : 1;  /* the body went past max_response: the transfer was failed */
  size_t max_response;     /* bound of resp.len */
  rv_buf up;               /* upload bytes not yet taken by curl, from up_off */
  size_t up_off;
} rv_req;

double rv_mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* core.now(): monotonic seconds, the clock every deadline in the library uses. */
static int l_now(lua_State *L) {
  lua_pushnumber(L, rv_mono_now());
  return 1;
}

/* The loop metatable, also kept under this key's address: checking self by address is
 * cheaper than luaL_checkudata's look-up by name, and every loop method does it. */
static const char loop_mt_key = 0;

rv_loop *rv_check_loop(lua_State *L) {
  rv_loop *lp = lua_touserdata(L, 1);
  if (lp && lua_getmetatable(L, 1)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &loop_mt_key);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (same) {
      if (!lp->multi) luaL_error(L, "rivet loop is closed");
      return lp;
    }
  }
  luaL_typeerror(L, 1, RV_LOOP_MT);
  return NULL;
}

static void req_free(rv_loop *lp, rv_req *r) {
  if (r->prev) r->prev->next = r->next;
  else lp->reqs = r->next;
  if (r->next) r->next->prev = r->prev;
  if (r->easy) {
    curl_multi_remove_handle(lp->multi, r->easy);
    curl_easy_cleanup(r->easy);
  }
  curl_slist_free_all(r->headers);
  free(r->body);
  free(r->errbuf);
  rv_buf_free(&r->resp);
  rv_buf_free(&r->head);
  rv_buf_free(&r->up);
  free(r);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  rv_req *r = ud;
  size_t len = size * n;
  if (r->stream && r->lua_paused && r->resp.len >= RV_STREAM_RX_LIMIT) {
    r->rx_paused = 1; /* curl hands the same bytes again once unpaused */
    return CURL_WRITEFUNC_PAUSE;
  }
  if (len > r->max_response || r->resp.len > r->max_response - len) {
    r->too_large = 1;
    return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
  }
  return rv_buf_append(&r->resp, p, len) ? len : 0; /* 0 makes curl fail with WRITE_ERROR */
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  rv_req *r = ud;
  size_t len = size * n;
  /* A new status line starts a new header block (after 100-continue or a redirect):
   * only the last block describes the response we return. */
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) r->head.len = 0;
  if (!rv_buf_append(&r->head, p, len)) return 0;
  if ((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n')) {
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200) r->head_ready = 1; /* not a 1xx block */
  }
  return len;
}

/* The request body, handed to curl by this callback rather than as POSTFIELDS: a body
 * curl cannot rewind (on_seek_body) is a body it cannot send twice. libcurl re-sends a
 * request on its own when a reused connection dies before any answer byte, POST too;
 * through a proxy that cut the connection after the request got through, that ran an
 * action twice (the soak saw it). Now such a request fails (client.connection_lost). */
static size_t on_read_body(char *dst, size_t size, size_t n, void *ud) {
  rv_req *r = ud;
  size_t cap = size * n, have = r->body_len - r->body_off;
  size_t k = have < cap ? have : cap;
  memcpy(dst, r->body + r->body_off, k);
  r->body_off += k;
  return k;
}

static int on_seek_body(void *ud, curl_off_t offset, int origin) {
  (void)ud;
  (void)offset;
  (void)origin;
  return CURL_SEEKFUNC_CANTSEEK;
}

/* Upload data for curl: what loop:upload gave, else a pause until it gives more. */
static size_t on_read(char *dst, size_t size, size_t n, void *ud) {
  rv_req *r = ud;
  size_t cap = size * n, have = r->up.len - r->up_off;
  if (have == 0) {
    if (r->up_eof) return 0;
    r->tx_paused = 1;
    return CURL_READFUNC_PAUSE;
  }
  size_t k = have < cap ? have : cap;
  memcpy(dst, r->up.data + r->up_off, k);
  r->up_off += k;
  if (r->up_off == r->up.len) r->up_off = r->up.len = 0;
  return k;
}

/* Disable Nagle (curl does by default) and ask for immediate ACKs: a server that writes
 * a response in two segments otherwise waits for our delayed ACK (protocol.md §15). */
static int on_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose) {
  (void)ud;
  (void)purpose;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef TCP_QUICKACK
  setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#endif
  return CURL_SOCKOPT_OK;
}

static int opt_number(lua_State *L, int t, const char *k, double *out) {
  int ty = rv_getfield(L, t, k);
  int ok = 0;
  if (ty == LUA_TNUMBER) {
    *out = lua_tonumber(L, -1);
    ok = 1;
  } else if (ty != LUA_TNIL) {
    luaL_error(L, "request option '%s' must be a number", k);
  }
  lua_pop(L, 1);
  return ok;
}

static const char *opt_string(lua_State *L, int t, const char *k, size_t *len) {
  int ty = rv_getfield(L, t, k);
  const char *s = NULL;
  if (ty == LUA_TSTRING) s = lua_tolstring(L, -1, len);
  else if (ty != LUA_TNIL) luaL_error(L, "request option '%s' must be a string", k);
  lua_pop(L, 1); /* the string stays alive: it is referenced by the options table */
  return s;
}

static int opt_bool(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* loop:request{method=, url=, headers={"Name: value", ...}, body=, timeout=seconds,
 *              ca_file=, insecure=, stream=, upload=, max_response=bytes} -> id
 * max_response: the most body bytes held at once (default RV_MAX_RESPONSE_DEFAULT); past
 *   it the request ends with err "response_too_large".
 * Starts the transfer; it progresses only inside poll().
 * stream: poll reports {id=, stream="head", status=, headers=} once the headers are in,
 *   then {id=, stream="data", data=} pieces (loop:stream_pause holds them back), and
 *   the end as {id=, stream="end", status=, headers=, body=rest} or {..., err=}; the
 *   timeout bounds connecting only (a stream may last).
 * upload: the body comes from loop:upload(id, chunk) (chunked); poll reports
 *   {id=, stream="want"} whenever curl waits for more, and the end as stream="end". */
static int l_request(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  rv_host_touch(lp);
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t urllen = 0, bodylen = 0;
  const char *url = opt_string(L, 2, "url", &urllen);
  if (!url) return luaL_error(L, "request needs a url");
  const char *method = opt_string(L, 2, "method", NULL);
  const char *body = opt_string(L, 2, "body", &bodylen);
  const char *ca_file = opt_string(L, 2, "ca_file", NULL);
  double timeout = 0;
  int has_timeout = opt_number(L, 2, "timeout", &timeout);
  double max_response = 0;
  int has_max = opt_number(L, 2, "max_response", &max_response);
  int stream = opt_bool(L, 2, "stream"), upload = opt_bool(L, 2, "upload");
  if (upload && body) return luaL_error(L, "request: body and upload exclude each other");

  rv_req *r = calloc(1, sizeof *r);
  if (!r) return luaL_error(L, "out of memory");
  rv_buf_init(&r->resp);
  rv_buf_init(&r->head);
  rv_buf_init(&r->up);
  r->stream = stream ? 1 : 0;
  r->upload = upload ? 1 : 0;
  r->max_response = RV_MAX_RESPONSE_DEFAULT;
  if (has_max && max_response >= 1) {
    r->max_response = max_response >= (double)(SIZE_MAX / 2) ? SIZE_MAX / 2 : (size_t)max_response;
  }
  r->id = ++lp->next_id;
  r->next = lp->reqs;
  if (lp->reqs) lp->reqs->prev = r;
  lp->reqs = r;
  r->easy = curl_easy_init();
  r->errbuf = calloc(1, CURL_ERROR_SIZE);
  if (!r->easy || !r->errbuf) {
    req_free(lp, r);
    return luaL_error(L, "out of memory");
  }

  /* headers: collected before touching curl so a Lua error cannot leak the list */
  struct curl_slist *hl = NULL;
  if (rv_getfield(L, 2, "headers") == LUA_TTABLE) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      const char *h = lua_tostring(L, -1);
      struct curl_slist *nl = h ? curl_slist_append(hl, h) : NULL;
      lua_pop(L, 1);
      if (!nl) {
        curl_slist_free_all(hl);
        req_free(lp, r);
        return luaL_error(L, h ? "out of memory" : "request headers must be strings");
      }
      hl = nl;
    }
  }
  lua_pop(L, 1);
  /* curl would otherwise send "Expect: 100-continue" for larger bodies and wait for it */
  struct curl_slist *nl = curl_slist_append(hl, "Expect:");
  if (nl && upload) nl = curl_slist_append(nl, "Transfer-Encoding: chunked");
  if (!nl) {
    curl_slist_free_all(hl);
    req_free(lp, r);
    return luaL_error(L, "out of memory");
  }
  r->headers = nl;

  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  /* a pooled connection idle longer than this is not reused: below Node's 5 s
   * keep-alive timeout, so the server has not closed it under us (a request on such a
   * connection would fail rather than be re-sent: on_read_body) */
  curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 4L);
  curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
#if LIBCURL_VERSION_NUM >= 0x075700
  /* A transfer removed (cancel, timeout, close) while its host name is being resolved:
   * without this, curl joins the resolver thread, which blocks until the name server
   * answers or times out (30 s and more); with it, the thread is detached and frees
   * itself when the look-up ends (the module stays loaded for it: rv_pin_module). */
  curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL);
  if (body) {
    r->body = malloc(bodylen ? bodylen : 1);
    if (!r->body) {
      req_free(lp, r);
      return luaL_error(L, "out of memory");
    }
    memcpy(r->body, body, bodylen);
    r->body_len = bodylen;
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodylen);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read_body);
    curl_easy_setopt(e, CURLOPT_READDATA, r);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek_body);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
  } else if (upload) {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, r);
  }
  if (method) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (method && strcmp(method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  if (has_timeout) {
    long ms = timeout <= 0 ? 1 : (long)ceil(timeout * 1000.0);
    curl_easy_setopt(e, stream ? CURLOPT_CONNECTTIMEOUT_MS : CURLOPT_TIMEOUT_MS, ms);
  }
  if (ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
  if (opt_bool(L, 2, "insecure")) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (curl_multi_add_handle(lp->multi, e) != CURLM_OK) {
    req_free(lp, r);
    return luaL_error(L, "could not start the request");
  }
  rv_host_signal(lp);
  lua_pushinteger(L, r->id);
  return 1;
}

static const char *err_kind(CURLcode c) {
  switch (c) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_CONNECT: return "connection_refused";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "dns_failed";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR: return "tls_failed";
    case CURLE_URL_MALFORMAT: return "bad_url";
    /* the endpoint is always http(s) (checked in Lua): at this point these mean the
     * server's answer is not HTTP (HTTP/0.9, a bad status code, a header line without
     * a colon) */
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_WEIRD_SERVER_REPLY: return "malformed_response";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_FAIL_REWIND: return "connection_lost"; /* a re-send refused: see on_read_body */
    default: return "transport_error";
  }
}

/* Parses the last header block into a table of lower-case names. Repeated headers are
 * joined with ", " (as fetch() does), so no value is lost. */
static void push_headers(lua_State *L, const rv_buf *h) {
  lua_newtable(L);
  const char *p = h->data, *end = h->data + h->len;
  while (p && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *le = eol ? eol : end;
    const char *colon = memchr(p, ':', (size_t)(le - p));
    if (colon && colon > p) {
      luaL_Buffer name;
      luaL_buffinit(L, &name);
      for (const char *q = p; q < colon; q++) {
        char c = *q;
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        luaL_addchar(&name, c);
      }
      luaL_pushresult(&name);
      const char *v = colon + 1, *ve = le;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      lua_pushvalue(L, -1);
      if (rv_rawget(L, -3) == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, -3);
    }
    p = eol ? eol + 1 : NULL;
  }
}

/* Reports the progress of evented requests (head, body pieces, upload wants) into
 * out[n+1..]; returns the new n. Runs before collect(), so a transfer's pieces come
 * before its end. */
static int collect_progress(lua_State *L, rv_loop *lp, int out, int n) {
  for (rv_req *r = lp->reqs; r; r = r->next) {
    if (!r->stream && !r->upload) continue;
    if (r->stream && r->head_ready && !r->head_sent) {
      long status = 0;
      curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
      lua_createtable(L, 0, 4);
      lua_pushinteger(L, r->id);
      lua_setfield(L, -2, "id");
      lua_pushliteral(L, "head");
      lua_setfield(L, -2, "stream");
      lua_pushinteger(L, status);
      lua_setfield(L, -2, "status");
      push_headers(L, &r->head);
      lua_setfield(L, -2, "headers");
      lua_rawseti(L, out, ++n);
      r->head_sent = 1;
    }
    if (r->stream && r->head_sent && r->resp.len > 0 && !r->lua_paused) {
      lua_createtable(L, 0, 3);
      lua_pushinteger(L, r->id);
      lua_setfield(L, -2, "id");
      lua_pushliteral(L, "data");
      lua_setfield(L, -2, "stream");
      lua_pushlstring(L, r->resp.data, r->resp.len);
      lua_setfield(L, -2, "data");
      lua_rawseti(L, out, ++n);
      r->resp.len = 0;
      if (r->resp.cap > RV_STREAM_RX_LIMIT) rv_buf_free(&r->resp); /* do not keep a burst's buffer */
    }
    if (r->rx_paused && r->resp.len < RV_STREAM_RX_LIMIT) {
      r->rx_paused = 0;
      curl_easy_pause(r->easy, CURLPAUSE_CONT);
      lp->curl_due = 0; /* curl_easy_pause does not call the timer callback */
    }
    if (r->upload && r->tx_paused && !r->want_sent) {
      lua_createtable(L, 0, 2);
      lua_pushinteger(L, r->id);
      lua_setfield(L, -2, "id");
      lua_pushliteral(L, "want");
      lua_setfield(L, -2, "stream");
      lua_rawseti(L, out, ++n);
      r->want_sent = 1;
    }
  }
  return n;
}

/* Moves finished transfers into out[n+1..]; returns the new n. */
static int collect(lua_State *L, rv_loop *lp, int out, int n) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(lp->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    rv_req *r = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (!r) continue;
    CURLcode rc = m->data.result;
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, r->id);
    lua_setfield(L, -2, "id");
    if (r->stream || r->upload) {
      lua_pushliteral(L, "end");
      lua_setfield(L, -2, "stream");
    }
    if (rc == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
      lua_pushinteger(L, status);
      lua_setfield(L, -2, "status");
      lua_pushlstring(L, r->resp.data ? r->resp.data : "", r->resp.len);
      lua_setfield(L, -2, "body");
      push_headers(L, &r->head);
      lua_setfield(L, -2, "headers");
    } else if (r->too_large) {
      lua_pushliteral(L, "response_too_large");
      lua_setfield(L, -2, "err");
      lua_pushliteral(L, "the response body exceeded ");
      lua_pushinteger(L, (lua_Integer)r->max_response);
      lua_pushliteral(L, " bytes");
      lua_concat(L, 3);
      lua_setfield(L, -2, "message");
    } else if (rc == CURLE_OUT_OF_MEMORY || strncmp(r->errbuf, "Too large response headers", 26) == 0) {
      /* libcurl's own bounds on response headers (a header line past 100 KiB reads as
       * out of memory, a header block past 300 KiB as too large) */
      lua_pushliteral(L, "response_too_large");
      lua_setfield(L, -2, "err");
      lua_pushstring(L, r->errbuf[0] ? r->errbuf : "the response headers are too large");
      lua_setfield(L, -2, "message");
    } else {
      lua_pushstring(L, err_kind(rc));
      lua_setfield(L, -2, "err");
      lua_pushstring(L, r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
      lua_setfield(L, -2, "message");
    }
    lua_rawseti(L, out, ++n);
    req_free(lp, r);
  }
  return n;
}

#ifdef TCP_QUICKACK
/* Linux clears TCP_QUICKACK again after it sends an ACK: set it once more on every
 * live socket after each round of reads so replies written in two segments do not
 * wait 40 ms for our delayed ACK. */
static void rearm_quickack(rv_loop *lp) {
  int one = 1;
  for (rv_req *r = lp->reqs; r; r = r->next) {
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (curl_easy_getinfo(r->easy, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK && fd != CURL_SOCKET_BAD)
      setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  }
}
#else
static void rearm_quickack(rv_loop *lp) { (void)lp; }
#endif

/* Everything the loop has to report, into out (stack index 3) and wsout (index 4). */
static int collect_all(lua_State *L, rv_loop *lp, int n, int wsout, int *m) {
  n = collect_progress(L, lp, 3, n);
  n = collect(L, lp, 3, n);
  return rv_ws_collect(L, lp, 3, n, wsout, m);
}

/* loop:poll(timeout, out [, wsout]) -> n [, m]
 * Does ready I/O, waiting at most `timeout` seconds (0: never waits) for something to
 * finish, and stores what happened in out[1..n]: finished requests as
 * {id=, status=, headers=, body=} or {id=, err=kind, message=}, WebSocket events as
 * {ws=id, kind=...} (see ws.c). With wsout, WebSocket events go there instead, four
 * slots each (id, kind, two values: see rv_ws_collect), and m counts them: no table per
 * event. Returns as soon as at least one thing happened or the time is up; with nothing
 * in flight it simply sleeps (wait.c), which is how Lua timers wait. */
static int l_poll(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  rv_host_touch(lp);
  double timeout = luaL_optnumber(L, 2, 0);
  luaL_checktype(L, 3, LUA_TTABLE);
  int wsout = 0, m = 0;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    wsout = 4;
  }
  rv_ws_log_bind(L);
  int n = 0, failed = 0;
  double deadline = rv_mono_now() + timeout;
  if (timeout > 0) {
    /* what finished while Lua ran is reported without any I/O first */
    n = collect(L, lp, 3, n);
    n = rv_ws_collect(L, lp, 3, n, wsout, &m);
  }
  if (n == 0 && m == 0) {
    rv_wait_begin(lp);
    n = collect_all(L, lp, n, wsout, &m);
  }
  while (n == 0 && m == 0) {
    /* poll(0) makes one pass that never waits; a poll that may wait waits in its first
     * pass already (the wait returns at once for sockets that are ready) */
    double left = deadline - rv_mono_now();
    int ms = !(timeout > 0) || left <= 0 ? 0 : left > 3600 ? 3600000 : (int)ceil(left * 1000.0);
    if (ms > 0) rv_wait_coalesce(lp, deadline);
    if (rv_wait_once(lp, ms) < 0) failed = 1;
    if (lp->reqs && lp->quickack) rearm_quickack(lp);
    n = collect_all(L, lp, n, wsout, &m);
    if (failed || ms == 0) break;
  }
  rv_host_sync(lp);
  rv_ws_log_bind(NULL);
  if (failed && n == 0 && m == 0) return luaL_error(L, "rivet loop: waiting failed: %s", strerror(errno));
  lua_pushinteger(L, n);
  if (!wsout) return 1;
  lua_pushinteger(L, m);
  return 2;
}

/* loop:cancel(id) -> true if it was running. Its result is never reported. */
static int l_cancel(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  rv_host_touch(lp);
  lua_Integer id = luaL_checkinteger(L, 2);
  for (rv_req *r = lp->reqs; r; r = r->next) {
    if (r->id == id) {
      req_free(lp, r);
      rv_host_signal(lp);
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  lua_pushboolean(L, 0);
  return 1;
}

static rv_req *find_req(rv_loop *lp, lua_Integer id) {
  for (rv_req *r = lp->reqs; r; r = r->next)
    if (r->id == id) return r;
  return NULL;
}

/* loop:stream_pause(id, paused): a streamed response's pieces are held back while
 * paused (up to RV_STREAM_RX_LIMIT bytes, then the transfer waits). */
static int l_stream_pause(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  rv_host_touch(lp);
  rv_req *r = find_req(lp, luaL_checkinteger(L, 2));
  if (r) {
    r->lua_paused = lua_toboolean(L, 3) ? 1 : 0;
    rv_host_signal(lp); /* unpaused: held pieces are reported at the next poll */
  }
  lua_pushboolean(L, r != NULL);
  return 1;
}

/* loop:upload(id, chunk) adds upload bytes; loop:upload(id) ends the upload. */
static int l_upload(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  rv_host_touch(lp);
  rv_req *r = find_req(lp, luaL_checkinteger(L, 2));
  size_t len = 0;
  const char *s = luaL_optlstring(L, 3, NULL, &len);
  if (!r || !r->upload || r->up_eof) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (s) {
    if (!rv_buf_append(&r->up, s, len)) return luaL_error(L, "out of memory");
  } else {
    r->up_eof = 1;
  }
  r->want_sent = 0;
  if (r->tx_paused) {
    r->tx_paused = 0;
    curl_easy_pause(r->easy, CURLPAUSE_CONT);
    lp->curl_due = 0; /* curl_easy_pause does not call the timer callback */
  }
  rv_host_signal(lp);
  lua_pushboolean(L, 1);
  return 1;
}

/* loop:set_quickack(on): see rv_loop.quickack */
static int l_set_quickack(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  lp->quickack = lua_toboolean(L, 2);
  return 0;
}

/* loop:naps() -> how many waits so far slept first to coalesce a stream (wait.c) */
static int l_naps(lua_State *L) {
  lua_pushinteger(L, rv_check_loop(L)->naps);
  return 1;
}

/* loop:pending() -> number of requests not finished yet */
static int l_pending(lua_State *L) {
  rv_loop *lp = rv_check_loop(L);
  int n = 0;
  for (rv_req *r = lp->reqs; r; r = r->next) n++;
  lua_pushinteger(L, n);
  return 1;
}

static int l_close(lua_State *L) {
  rv_loop *lp = luaL_checkudata(L, 1, RV_LOOP_MT);
  rv_ws_log_bind(L);
  rv_ws_destroy(lp);
  rv_ws_log_bind(NULL);
  lp->in_step = 1; /* no host watches any more: sockets close at once */
  while (lp->reqs) req_free(lp, lp->reqs);
  if (lp->multi) {
    curl_multi_cleanup(lp->multi);
    lp->multi = NULL;
  }
  rv_wait_free(lp);
  return 0;
}

static int l_tostring(lua_State *L) {
  rv_loop *lp = luaL_checkudata(L, 1, RV_LOOP_MT);
  lua_pushfstring(L, "rivet.loop (%s)", lp->multi ? "open" : "closed");
  return 1;
}

/* Keeps this module (and so libcurl and libwebsockets) loaded until the process ends,
 * even when lua_close() unloads it: host name look-ups that were not waited for (curl's
 * detached resolver threads, parked getaddrinfo_a requests: ws.c) may still be running
 * and must find their code and memory. */
void rv_pin_module(void) {
  static int pinned;
  Dl_info di;
  if (pinned || !dladdr(&pinned, &di) || !di.dli_fname) return;
  pinned = dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != NULL; /* never closed */
}

/* core.loop() -> a new loop with its own connection cache */
static int l_new(lua_State *L) {
  rv_pin_module();
  rv_loop *lp = rv_newuserdata(L, sizeof *lp);
  memset(lp, 0, sizeof *lp);
  luaL_setmetatable(L, RV_LOOP_MT);
  lp->quickack = 1;
  lp->multi = curl_multi_init();
  if (!lp->multi || !rv_wait_setup(lp)) return luaL_error(L, "could not create a curl multi handle");
  /* keep enough idle connections for many actors to stay warm */
  curl_multi_setopt(lp->multi, CURLMOPT_MAXCONNECTS, 64L);
  return 1;
}

void rv_loop_open(lua_State *L) {
  static int curl_ready = 0;
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) luaL_error(L, "curl_global_init failed");
    curl_ready = 1;
  }
  static const luaL_Reg methods[] = {
      {"request", l_request}, {"poll", l_poll}, {"set_quickack", l_set_quickack},   {"cancel", l_cancel},   {"pending", l_pending}, {"naps", l_naps},
      {"stream_pause", l_stream_pause}, {"upload", l_upload},
      {"close", l_close},     {"__gc", l_close}, {"__close", l_close}, {"__tostring", l_tostring},
      {NULL, NULL}};
  if (luaL_newmetatable(L, RV_LOOP_MT)) {
    luaL_setfuncs(L, methods, 0);
    rv_ws_methods(L);
    rv_host_methods(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &loop_mt_key);
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "loop");
  lua_pushcfunction(L, l_now);
  lua_setfield(L, -2, "now");
  rv_ws_open_module(L);
}
