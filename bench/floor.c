/* The raw floor: the bench workloads driven by a minimal single-purpose C program that
 * speaks BARE v2 directly (protocol.md sections 5.3, 8, 9.6) with libcurl (HTTP) and
 * libwebsockets (WebSocket) -- no Lua, no codecs, no state machine, hand-built frames.
 * It shows what the transport libraries allow; lua-rivetkit is compared against it.
 *
 *   floor ENDPOINT WORKLOAD N KEY      (WORKLOAD: stateless conn pipeline events conns connect)
 *
 * Prints "RESULT <metric> <value>" lines like bench/lua_bench.lua. Built by scripts/bench.sh:
 *   gcc -O2 -o floor bench/floor.c $(pkg-config --cflags --libs libcurl libwebsockets)
 * The WebSocket side runs a plain blocking lws_service() loop: the program always waits
 * for the server, so nothing else needs the thread. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <libwebsockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
static double cpu(void) { /* user+sys of the whole process */
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
static void result(const char *name, double v) { printf("RESULT %s %.6g\n", name, v); }
static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
  if (f) fclose(f);
  return kb;
}
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static void latencies(double *t, int n) {
  qsort(t, n, sizeof *t, cmp_double);
  int i50 = (n * 50 + 99) / 100, i99 = (n * 99 + 99) / 100;
  result("p50_ms", t[(i50 < 1 ? 1 : i50) - 1] * 1000);
  result("p99_ms", t[(i99 < 1 ? 1 : i99) - 1] * 1000);
}
__attribute__((noreturn)) static void die(const char *m) {
  fprintf(stderr, "floor: %s\n", m);
  exit(1);
}

/* ------------------------------------------------------------------ HTTP (libcurl) */
static char host[256];
static int port;
static char actor_id[128];

struct body {
  char buf[65536];
  size_t len;
};
static size_t on_body(char *p, size_t s, size_t n, void *ud) {
  struct body *b = ud;
  size_t k = s * n;
  if (b->len + k < sizeof b->buf) {
    memcpy(b->buf + b->len, p, k);
    b->len += k;
    b->buf[b->len] = 0;
  }
  return k;
}

static CURL *easy;
static struct body resp;

static long http(const char *method, const char *url, struct curl_slist *hdrs, const void *body,
                 size_t len) {
  resp.len = 0;
  resp.buf[0] = 0;
  curl_easy_setopt(easy, CURLOPT_URL, url);
  curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)len);
  if (curl_easy_perform(easy) != CURLE_OK) die("HTTP request failed");
  long code = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
  return code;
}

/* getOrCreate: PUT /actors once, keep the id (as lua-rivetkit does) */
static void resolve(const char *endpoint, const char *key) {
  char url[512], body[512];
  struct curl_slist *h = curl_slist_append(NULL, "content-type: application/json");
  snprintf(url, sizeof url, "%s/actors?namespace=default", endpoint);
  snprintf(body, sizeof body,
           "{\"name\":\"counter\",\"key\":\"%s\",\"runner_name_selector\":\"default\","
           "\"crash_policy\":\"sleep\"}",
           key);
  if (http("PUT", url, h, body, strlen(body)) != 200) die(resp.buf);
  curl_slist_free_all(h);
  char *p = strstr(resp.buf, "\"actor_id\":\"");
  if (!p) die("no actor_id");
  p += 12;
  size_t i = 0;
  while (p[i] && p[i] != '"' && i < sizeof actor_id - 1) actor_id[i] = p[i], i++;
  actor_id[i] = 0;
}

/* ------------------------------------------------------------------ WebSocket (lws) */
/* Kept small so that the "conns" workload measures the transport, not this program:
 * a ring of QMAX outgoing frames (allocated on first send) and a reassembly buffer
 * that is only allocated if a message ever arrives in several fragments. */
#define QMAX 128
/* connects before the measured ones, as many in every client (a JIT compiles the path) */
#define CONNECT_WARM 50
/* events received before the measured burst, as every client does (bench/lua_bench.lua) */
#define EVENTS_WARM 1000
#define FRAME (LWS_PRE + 64)
struct conn {
  struct lws *wsi;
  int open, closed, want_close;
  double t_start, t_open;
  unsigned char (*q)[FRAME]; /* outgoing frames */
  unsigned char qlen[QMAX];
  int qh, qt;
  unsigned char *rx;
  size_t rxlen;
  long responses, events;
};
static struct lws_context *ctx;
static uint64_t next_id;

static void send_frame(struct conn *c, const unsigned char *m, size_t len) {
  if ((c->qt + 1) % QMAX == c->qh) die("send queue full");
  if (!c->q && !(c->q = malloc(QMAX * FRAME))) die("out of memory");
  memcpy(c->q[c->qt] + LWS_PRE, m, len);
  c->qlen[c->qt] = len;
  c->qt = (c->qt + 1) % QMAX;
  if (c->wsi) lws_callback_on_writable(c->wsi);
}
/* ActionRequest: 02 00 | 00 | id:uint | name:str | args:data(CBOR array) */
static void send_action(struct conn *c, const char *name, const unsigned char *args, size_t alen) {
  unsigned char m[64];
  size_t k = 0, nl = strlen(name);
  m[k++] = 2, m[k++] = 0, m[k++] = 0;
  uint64_t id = next_id++;
  do {
    m[k++] = (id & 0x7f) | (id > 0x7f ? 0x80 : 0);
    id >>= 7;
  } while (id);
  m[k++] = (unsigned char)nl;
  memcpy(m + k, name, nl), k += nl;
  m[k++] = (unsigned char)alen;
  memcpy(m + k, args, alen), k += alen;
  send_frame(c, m, k);
}
static const unsigned char ARGS_ONE[] = {0x81, 0x01}; /* CBOR [1] */
static const unsigned char ARGS_NONE[] = {0x80};      /* CBOR [] */

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
  (void)user;
  struct conn *c = lws_get_opaque_user_data(wsi);
  switch (reason) {
  case LWS_CALLBACK_CLIENT_ESTABLISHED:
    if (c->qh != c->qt) lws_callback_on_writable(wsi);
    break;
  case LWS_CALLBACK_CLIENT_RECEIVE: {
    const unsigned char *m = in;
    int last = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
    if (!last || c->rxlen) { /* fragmented: reassemble (never happens with these frames) */
      if (!c->rx && !(c->rx = malloc(65536))) die("out of memory");
      if (c->rxlen + len > 65536) die("frame too large");
      memcpy(c->rx + c->rxlen, in, len);
      c->rxlen += len;
      if (!last) break;
      m = c->rx, len = c->rxlen;
    }
    if (len >= 3) switch (m[2]) { /* ToClient tag after the u16 version */
      case 0: c->open = 1, c->t_open = now(); break;
      case 1: die("Error frame from the server");
      case 2: c->responses++; break;
      case 3: c->events++; break;
      }
    c->rxlen = 0;
    break;
  }
  case LWS_CALLBACK_CLIENT_WRITEABLE:
    if (c->qh != c->qt) {
      if (lws_write(wsi, c->q[c->qh] + LWS_PRE, c->qlen[c->qh], LWS_WRITE_BINARY) < 0) return -1;
      c->qh = (c->qh + 1) % QMAX;
      if (c->qh != c->qt || c->want_close) lws_callback_on_writable(wsi);
    } else if (c->want_close) {
      lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"Disposed", 8);
      return -1;
    }
    break;
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    die(in ? (char *)in : "WebSocket connection error");
    break;
  case LWS_CALLBACK_CLIENT_CLOSED:
    c->closed = 1, c->wsi = NULL;
    break;
  default: break;
  }
  return 0;
}

static const struct lws_protocols protocols[] = {{"floor", cb, 0, 0, 0, NULL, 0}, {NULL, NULL, 0, 0, 0, NULL, 0}};
static char ws_path[256];

static struct conn *ws_open(void) {
  struct conn *c = calloc(1, sizeof *c);
  struct lws_client_connect_info ci;
  memset(&ci, 0, sizeof ci);
  ci.context = ctx;
  ci.address = host;
  ci.port = port;
  ci.path = ws_path;
  ci.host = host;
  ci.origin = host;
  ci.protocol = "rivet, rivet_encoding.bare";
  ci.local_protocol_name = "floor";
  ci.opaque_user_data = c;
  ci.pwsi = &c->wsi;
  c->t_start = now();
  if (!lws_client_connect_via_info(&ci)) die("lws_client_connect_via_info failed");
  return c;
}
static void ws_wait_open(struct conn *c) {
  while (!c->open) lws_service(ctx, 0);
}
static void ws_close(struct conn *c) {
  c->want_close = 1;
  if (c->wsi) lws_callback_on_writable(c->wsi);
}
/* one sequential call: send, service until its response */
static void call(struct conn *c, const char *name, const unsigned char *a, size_t alen) {
  long want = c->responses + 1;
  send_action(c, name, a, alen);
  while (c->responses < want) lws_service(ctx, 0);
}

int main(int argc, char **argv) {
  if (argc < 5) die("usage: floor ENDPOINT WORKLOAD N KEY");
  const char *endpoint = argv[1], *workload = argv[2], *key = argv[4];
  int n = atoi(argv[3]);
  if (sscanf(endpoint, "http://%255[^:]:%d", host, &port) != 2) die("endpoint must be http://HOST:PORT");
  int warm = n / 10 < 20 ? 20 : n / 10 > 200 ? 200 : n / 10;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  easy = curl_easy_init();
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &resp);
  resolve(endpoint, key);

  if (!strcmp(workload, "stateless")) {
    char url[512];
    snprintf(url, sizeof url, "%s/gateway/%s/action/increment", endpoint, actor_id);
    struct curl_slist *h = curl_slist_append(NULL, "x-rivet-encoding: bare");
    h = curl_slist_append(h, "content-type: application/octet-stream");
    static const unsigned char req[] = {0x02, 0x00, 0x02, 0x81, 0x01}; /* HttpActionRequest{[1]} */
    for (int i = 0; i < warm; i++)
      if (http("POST", url, h, req, sizeof req) != 200) die(resp.buf);
    double *t = malloc(n * sizeof *t), c0 = cpu(), t0 = now();
    for (int i = 0; i < n; i++) {
      double s = now();
      if (http("POST", url, h, req, sizeof req) != 200) die(resp.buf);
      t[i] = now() - s;
    }
    double wall = now() - t0, c = cpu() - c0;
    latencies(t, n);
    result("cpu_ms_per_10k", c / n * 1e4 * 1e3);
    result("ops_per_s", n / wall);
    return 0;
  }

  lws_set_log_level(LLL_ERR, NULL);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.max_http_header_data = 16384;
  info.gid = -1;
  info.uid = -1;
  ctx = lws_create_context(&info);
  if (!ctx) die("lws_create_context failed");
  snprintf(ws_path, sizeof ws_path, "/gateway/%s/connect", actor_id);

  if (!strcmp(workload, "conn") || !strcmp(workload, "pipeline")) {
    struct conn *c = ws_open();
    ws_wait_open(c);
    int pipe = !strcmp(workload, "pipeline");
    if (!pipe) {
      for (int i = 0; i < warm; i++) call(c, "increment", ARGS_ONE, 2);
      double *t = malloc(n * sizeof *t), c0 = cpu(), t0 = now();
      for (int i = 0; i < n; i++) {
        double s = now();
        call(c, "increment", ARGS_ONE, 2);
        t[i] = now() - s;
      }
      double wall = now() - t0, cp = cpu() - c0;
      latencies(t, n);
      result("cpu_ms_per_10k", cp / n * 1e4 * 1e3);
      result("ops_per_s", n / wall);
    } else {
      const char *w = getenv("BENCH_WINDOW");
      int window = w ? atoi(w) : 64;
      if (window >= QMAX) window = QMAX - 1;
      for (int round = 0; round < 2; round++) {
        long total = round ? n : warm * 4, sent = 0, base = c->responses;
        double c0 = cpu(), t0 = now();
        while (c->responses - base < total) {
          while (sent < total && sent - (c->responses - base) < window) {
            send_action(c, "increment", ARGS_ONE, 2);
            sent++;
          }
          lws_service(ctx, 0);
        }
        if (round) {
          result("ops_per_s", n / (now() - t0));
          result("cpu_ms_per_10k", (cpu() - c0) / n * 1e4 * 1e3);
        }
      }
    }
  } else if (!strcmp(workload, "events")) {
    struct conn *c = ws_open();
    ws_wait_open(c);
    static const unsigned char sub[] = {2, 0, 1, 4, 't', 'i', 'c', 'k', 1};
    send_frame(c, sub, sizeof sub);
    call(c, "getCount", ARGS_NONE, 1);
    static const unsigned char awarm[] = {0x81, 0x19, EVENTS_WARM >> 8, EVENTS_WARM & 0xff};
    call(c, "emitMany", awarm, 4);
    if (c->events != EVENTS_WARM) die("warm-up events missing");
    unsigned char an[] = {0x81, 0x19, (unsigned char)(n >> 8), (unsigned char)n};
    if (n > 65535) die("N too large for events");
    c->events = 0;
    double c0 = cpu(), t0 = now();
    send_action(c, "emitMany", an, 4);
    while (c->events < n) lws_service(ctx, 0);
    double wall = now() - t0;
    result("events_per_s", n / wall);
    result("cpu_ms_per_10k", (cpu() - c0) / n * 1e4 * 1e3);
  } else if (!strcmp(workload, "conns")) {
    struct conn **cs = calloc(n, sizeof *cs);
    cs[0] = ws_open();
    ws_wait_open(cs[0]);
    call(cs[0], "getCount", ARGS_NONE, 1);
    long r1 = rss_kb();
    for (int i = 1; i < n; i++) cs[i] = ws_open();
    for (int i = 1; i < n; i++) ws_wait_open(cs[i]);
    long rn = rss_kb();
    result("rss_1_kb", r1);
    result("rss_n_kb", rn);
    result("kb_per_conn", (double)(rn - r1) / (n - 1));
    for (int i = 0; i < n; i++) ws_close(cs[i]);
    for (int i = 0; i < n; i++)
      while (!cs[i]->closed) lws_service(ctx, 0);
  } else if (!strcmp(workload, "connect")) {
    double *t = malloc(n * sizeof *t);
    for (int i = -CONNECT_WARM; i < n; i++) {
      struct conn *c = ws_open();
      ws_wait_open(c);
      if (i >= 0) t[i] = c->t_open - c->t_start;
      ws_close(c);
      while (!c->closed) lws_service(ctx, 0);
      free(c);
    }
    latencies(t, n);
  } else {
    die("unknown workload");
  }
  lws_context_destroy(ctx);
  curl_easy_cleanup(easy);
  return 0;
}
