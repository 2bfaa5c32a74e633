/*
 * ioload: a lean Engine.IO v4 / Socket.IO v5 load generator (Linux, epoll, one thread).
 *
 * It speaks the protocols itself over raw sockets: HTTP/1.1 long-polling requests
 * (Content-Length and chunked responses) and WebSocket (masked client frames,
 * unmasked server frames of any split, fragmented messages). Every reply is
 * checked byte for byte against what it must be.
 *
 *   ioload MODE --port P [--host 127.0.0.1] [--path /socket.io/] [options]
 *
 * Modes (a Socket.IO client here is: WebSocket upgrade on
 * PATH?EIO=4&transport=websocket, the open packet 0{"sid":...}, "40", the reply
 * 40{"sid":...}; server pings "2" are answered "3" in every mode):
 *
 *   sio-acks    --conns N --size B [--inflight K]
 *       N clients; each emits 42<id>["echo","<B bytes>"] and waits for
 *       43<id>["<same B bytes>"] before the next one (K at a time, default 1).
 *       Counts acks.
 *   sio-fanout  --conns N --msgs M --size B
 *       N clients emit 42<id>["join","bench"] and wait for 43<id>[]; one more
 *       client (the controller, not in the room) then runs rounds: it emits M
 *       42["blast","<B bytes>"] events at once, and the round ends when each of
 *       the N clients has received each of the M 42["msg","<same bytes>"]
 *       exactly once. The next round starts at once. Counts deliveries in the
 *       window (which may end in the middle of a round); "rounds" and
 *       "round_ms" tell how many rounds began and ended inside it, and how long
 *       they took on average.
 *   sio-idle    --conns N [--concurrency C] [--hold S]
 *       Opens N clients, at most C handshakes in progress at a time, and reports
 *       {"phase":"connected",...} with the connect rate; then keeps them idle
 *       (answering pings) until standard input closes or S seconds pass.
 *   eio-sessions [--concurrency C]
 *       C slots, each opening sessions one after the other: polling handshake
 *       (GET PATH?EIO=4&transport=polling on a keep-alive connection) -> sid;
 *       WebSocket upgrade on a new connection (GET ...&transport=websocket&sid=)
 *       -> "2probe", "3probe", "5"; then one message "4<text>" whose echo must
 *       come back over the WebSocket; then a close frame and the server's close.
 *       Counts sessions.
 *   eio-polling --conns N --batch K --size B
 *       N polling sessions; each keeps a long-poll GET pending on one keep-alive
 *       connection and POSTs K messages of B bytes in one payload on another;
 *       the next POST goes when all K echoes came back through the GETs, in
 *       order. Counts echoed messages.
 *
 * stdout, one JSON object per line:
 *   {"phase":"measure"}            the measured window opens (after --warmup)
 *   {"phase":"connect"} / {"phase":"connected",...}    sio-idle only
 *   {"mode":...,"count":C,"seconds":T,"errors":E,"error":"...",...}   at the end
 * A connection that breaks the protocol, sends a wrong reply or closes is an
 * error: "errors" counts them and "error" says what the first one was.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH (256 * 1024)
#define MAX_EVENTS 512
#define MAX_MESSAGE (4 * 1024 * 1024)
#define STALL_SECONDS 15.0

/* RFC 6455 section 1.3 sample key and its accept value. */
static const char *WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
static const char *WS_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
static const uint8_t MASK[4] = {0x5a, 0x13, 0xc7, 0x2e};

enum mode { SIO_ACKS, SIO_FANOUT, SIO_IDLE, EIO_SESSIONS, EIO_POLLING };
enum kind { K_HTTP, K_WS };

/* Connection states. */
enum {
    ST_CONNECTING,  /* TCP connect in progress */
    ST_HTTP_WAIT,   /* waiting for an HTTP response (upgrade or polling) */
    ST_HTTP_IDLE,   /* keep-alive connection with no request out */
    ST_SIO_OPEN,    /* websocket up, waiting for the Engine.IO open packet */
    ST_SIO_CONNECT, /* "40" sent, waiting for 40{...} */
    ST_SIO_JOIN,    /* join emitted, waiting for its ack */
    ST_READY,       /* in the mode's steady state */
    ST_PROBE,       /* eio: "2probe" sent, waiting for "3probe" */
    ST_ECHO,        /* eio: upgraded, message sent, waiting for its echo */
    ST_CLOSING,     /* close frame sent, waiting for the server to close */
};

struct buf {
    uint8_t *data;
    size_t len, cap;
};

struct slot;

struct conn {
    int fd;
    int alive;
    int kind;
    int state;
    int role;       /* mode specific: member / controller; get / post */
    int idx;        /* index of the client or session */
    int want_out;   /* EPOLLOUT registered */
    int dirty;      /* in the flush list */
    int http_close; /* the last response said Connection: close */
    struct buf in, out, frag;
    int in_frag;
    uint64_t ack_id;
    uint64_t seq;   /* next message number */
    int inflight;
    double since;   /* when the current state began */
    struct slot *slot;
    struct conn *next_zombie;
};

/* eio-sessions: a slot opening sessions one after the other.
 * eio-polling: one polling session. */
struct slot {
    int idx;
    struct conn *http;   /* keep-alive polling connection (GET side for eio-polling) */
    struct conn *other;  /* sessions: the WebSocket; polling: the POST connection */
    char sid[128];
    uint64_t number;     /* sessions: how many this slot opened */
    uint64_t sent, echoed;
    int post_out;        /* polling: a POST is waiting for its response */
    int pong_due;        /* polling: answer a ping in the next POST */
    int started;
};

static struct {
    enum mode mode;
    const char *host;
    int port;
    const char *path;
    int conns, size, msgs, batch, concurrency, inflight;
    double warmup, duration, hold;
    struct sockaddr_in addr;
    int ep;
    uint8_t *scratch;
    struct conn **dirty;
    int ndirty, cap_dirty;
    struct conn *zombies;
    /* progress */
    int running, measuring, done;
    double t_run, t_measure_at, t_start, t_stop, t_progress;
    uint64_t count;          /* counted units in the window */
    uint64_t errors;
    char first_error[240];
    /* clients */
    struct conn **cs;
    int nready, launched, connected;
    /* fanout */
    struct conn *controller;
    uint64_t round, rounds_measured;
    uint64_t round_got;
    double round_t0, round_ms_sum;
    uint8_t *seen;           /* conns x msgs */
    uint8_t **expect_msg;    /* msgs expected 42["msg",...] texts for this round */
    size_t expect_len;
    /* idle */
    double t_connect0, t_connected;
    int stdin_open;
    /* eio */
    struct slot *slots;
    int nslots;
    uint64_t reconnects;
} g;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ioload: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* -- buffers ----------------------------------------------------------------------- */

static void buf_reserve(struct buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    b->data = realloc(b->data, cap);
    if (!b->data) die("out of memory");
    b->cap = cap;
}

static void buf_append(struct buf *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_consume(struct buf *b, size_t n) {
    if (n >= b->len) { b->len = 0; return; }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

static void buf_free(struct buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* -- connections ------------------------------------------------------------------- */

static void note_error(const char *fmt, ...) {
    g.errors++;
    if (g.first_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g.first_error, sizeof g.first_error, fmt, ap);
    va_end(ap);
    for (char *p = g.first_error; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) *p = '\'';
}

static void conn_close(struct conn *c) {
    if (!c->alive) return;
    c->alive = 0;
    epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->next_zombie = g.zombies;
    g.zombies = c;
}

static void on_conn_failed(struct conn *c);

static void fail(struct conn *c, const char *fmt, ...) {
    if (!c->alive) return;
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    note_error("%s", why);
    conn_close(c);
    on_conn_failed(c);
}

static void mark_dirty(struct conn *c) {
    if (c->dirty) return;
    if (g.ndirty == g.cap_dirty) {
        g.cap_dirty = g.cap_dirty ? g.cap_dirty * 2 : 1024;
        g.dirty = realloc(g.dirty, sizeof *g.dirty * (size_t)g.cap_dirty);
    }
    g.dirty[g.ndirty++] = c;
    c->dirty = 1;
}

static void set_events(struct conn *c, int want_out) {
    if (want_out == c->want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static void flush(struct conn *c) {
    c->dirty = 0;
    if (!c->alive || c->state == ST_CONNECTING) return;
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            fail(c, "send failed: %s", strerror(errno));
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
    set_events(c, c->out.len > 0);
}

static struct conn *conn_open(int kind, int idx) {
    struct conn *c = calloc(1, sizeof *c);
    if (!c) die("out of memory");
    c->kind = kind;
    c->idx = idx;
    c->since = now();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        /* out of descriptors or memory: nothing sensible can follow */
        note_error("socket() failed: %s", strerror(errno));
        free(c);
        g.done = 1;
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->alive = 1;
    c->state = ST_CONNECTING;
    if (connect(fd, (struct sockaddr *)&g.addr, sizeof g.addr) < 0 && errno != EINPROGRESS) {
        fail(c, "connect failed: %s", strerror(errno));
        return NULL;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev);
    c->want_out = 1;
    return c;
}

/* -- writing requests and frames ----------------------------------------------------- */

static void send_raw(struct conn *c, const void *p, size_t n) {
    buf_append(&c->out, p, n);
    mark_dirty(c);
}

static void ws_send(struct conn *c, int opcode, const char *p, size_t n) {
    uint8_t head[14];
    size_t h = 0;
    head[h++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        head[h++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        head[h++] = 0x80 | 126;
        head[h++] = (uint8_t)(n >> 8);
        head[h++] = (uint8_t)n;
    } else {
        head[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) head[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memcpy(head + h, MASK, 4);
    h += 4;
    buf_reserve(&c->out, h + n);
    uint8_t *dst = c->out.data + c->out.len;
    memcpy(dst, head, h);
    for (size_t i = 0; i < n; i++) dst[h + i] = (uint8_t)p[i] ^ MASK[i & 3];
    c->out.len += h + n;
    mark_dirty(c);
}

static void ws_text(struct conn *c, const char *p, size_t n) { ws_send(c, 1, p, n); }

static void send_upgrade(struct conn *c, const char *query) {
    char req[768];
    int n = snprintf(req, sizeof req,
                     "GET %s?%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     g.path, query, g.host, g.port, WS_KEY);
    send_raw(c, req, (size_t)n);
    c->state = ST_HTTP_WAIT;
    c->since = now();
}

static void send_get(struct conn *c, const char *query) {
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s?%s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", g.path, query,
                     g.host, g.port);
    send_raw(c, req, (size_t)n);
    c->state = ST_HTTP_WAIT;
    c->since = now();
}

static void send_post(struct conn *c, const char *query, const char *body, size_t len) {
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST %s?%s HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n",
                     g.path, query, g.host, g.port, len);
    send_raw(c, req, (size_t)n);
    send_raw(c, body, len);
    c->state = ST_HTTP_WAIT;
    c->since = now();
}

/* -- payloads ---------------------------------------------------------------------------- */

/* A string of `size` JSON-safe characters that encodes `n` at its start. */
static void payload(char *dst, int size, uint64_t n) {
    char num[24];
    int k = snprintf(num, sizeof num, "%020llu", (unsigned long long)n);
    for (int i = 0; i < size; i++)
        dst[i] = i < k && i < size ? num[i] : (char)('a' + (unsigned)(n + (uint64_t)i) % 26);
}

/* A printable excerpt of a reply for error messages (at most 60 bytes). */
static const char *snip(const void *p, size_t n) {
    static char out[64];
    size_t k = n < 60 ? n : 60;
    memcpy(out, p, k);
    out[k] = 0;
    return out;
}

/* -- mode callbacks (defined below) ------------------------------------------------------ */

static void on_connected(struct conn *c);
static void on_ws_open(struct conn *c);
static void on_ws_message(struct conn *c, const uint8_t *p, size_t n);
static void on_http_response(struct conn *c, int status, const uint8_t *body, size_t n);
static void on_eof(struct conn *c);

/* -- HTTP responses -------------------------------------------------------------------- */

static const uint8_t *find_header(const uint8_t *head, size_t n, const char *name, size_t *vlen) {
    size_t nl = strlen(name);
    const uint8_t *p = head, *end = head + n;
    while (p < end) {
        const uint8_t *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp((const char *)p, name, nl) == 0) {
            const uint8_t *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* Decode a chunked body that starts at p; returns bytes used, 0 when incomplete, -1 bad. */
static long dechunk(const uint8_t *p, size_t n, struct buf *body) {
    size_t pos = 0;
    body->len = 0;
    for (;;) {
        const uint8_t *eol = memmem(p + pos, n - pos, "\r\n", 2);
        if (!eol) return 0;
        char *endp;
        unsigned long size = strtoul((const char *)p + pos, &endp, 16);
        if ((const uint8_t *)endp == p + pos) return -1;
        pos = (size_t)(eol - p) + 2;
        if (size == 0) {
            /* no trailers expected: the final CRLF */
            if (n - pos < 2) return 0;
            return (long)(pos + 2);
        }
        if (n - pos < size + 2) return 0;
        buf_append(body, p + pos, size);
        pos += size + 2;
    }
}

/* Consume one HTTP response from p; returns bytes used, 0 when incomplete. */
static size_t http_feed(struct conn *c, const uint8_t *p, size_t n) {
    const uint8_t *eoh = memmem(p, n, "\r\n\r\n", 4);
    if (!eoh) {
        if (n > 16384) fail(c, "response head too large");
        return 0;
    }
    size_t head = (size_t)(eoh - p) + 4;
    if (n < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0) {
        fail(c, "not an HTTP/1.1 response");
        return 0;
    }
    int status = atoi((const char *)p + 9);
    size_t vlen;
    const uint8_t *v;
    if (status == 101) {
        v = find_header(p, head, "Sec-WebSocket-Accept", &vlen);
        if (!v || vlen != strlen(WS_ACCEPT) || memcmp(v, WS_ACCEPT, vlen) != 0) {
            fail(c, "bad Sec-WebSocket-Accept");
            return 0;
        }
        if (find_header(p, head, "Sec-WebSocket-Extensions", &vlen)) {
            fail(c, "server negotiated an extension nobody offered");
            return 0;
        }
        c->kind = K_WS;
        on_ws_open(c);
        return head;
    }
    v = find_header(p, head, "Connection", &vlen);
    c->http_close = v && vlen >= 5 && strncasecmp((const char *)v, "close", 5) == 0;
    v = find_header(p, head, "Transfer-Encoding", &vlen);
    if (v && vlen >= 7 && strncasecmp((const char *)v, "chunked", 7) == 0) {
        static struct buf body;
        long used = dechunk(eoh + 4, n - head, &body);
        if (used < 0) { fail(c, "bad chunked body"); return 0; }
        if (used == 0) return 0;
        on_http_response(c, status, body.data, body.len);
        return head + (size_t)used;
    }
    size_t len = 0;
    v = find_header(p, head, "Content-Length", &vlen);
    if (v) len = strtoul((const char *)v, NULL, 10);
    else if (status != 204 && status != 304) {
        fail(c, "response without Content-Length or chunked body (status %d)", status);
        return 0;
    }
    if (n - head < len) return 0;
    on_http_response(c, status, eoh + 4, len);
    return head + len;
}

/* -- WebSocket frames --------------------------------------------------------------- */

/* Consume complete frames from p; returns bytes used. */
static size_t ws_feed(struct conn *c, const uint8_t *p, size_t n) {
    size_t pos = 0;
    while (c->alive && c->kind == K_WS && n - pos >= 2) {
        const uint8_t *h = p + pos;
        if (h[1] & 0x80) { fail(c, "server frame is masked"); return pos; }
        if (h[0] & 0x70) { fail(c, "RSV bit set without an extension"); return pos; }
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (n - pos < 4) break;
            len = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (len == 127) {
            if (n - pos < 10) break;
            len = 0;
            for (int i = 2; i < 10; i++) len = len << 8 | h[i];
            hl = 10;
        }
        if (len > MAX_MESSAGE) { fail(c, "frame too large"); return pos; }
        if (n - pos < hl + len) break;
        const uint8_t *pay = h + hl;
        int fin = h[0] & 0x80, op = h[0] & 0x0f;
        pos += hl + (size_t)len;
        if (op == 8) {
            if (c->state == ST_CLOSING) { conn_close(c); on_eof(c); return pos; }
            fail(c, "server sent a close frame (code %d)", len >= 2 ? pay[0] << 8 | pay[1] : 1005);
            return pos;
        }
        if (op == 9) { ws_send(c, 10, (const char *)pay, (size_t)len); continue; }
        if (op == 10) continue;
        if (op == 2) { fail(c, "unexpected binary message"); return pos; }
        if (op == 1 && !c->in_frag && fin) {
            on_ws_message(c, pay, (size_t)len);
            continue;
        }
        if ((op == 0) != c->in_frag) { fail(c, "bad fragmentation"); return pos; }
        buf_append(&c->frag, pay, (size_t)len);
        c->in_frag = !fin;
        if (fin) {
            on_ws_message(c, c->frag.data, c->frag.len);
            c->frag.len = 0;
        }
    }
    return pos;
}

static size_t feed(struct conn *c, const uint8_t *p, size_t n) {
    size_t pos = 0;
    while (c->alive && pos < n) {
        size_t used;
        if (c->kind == K_WS) {
            used = ws_feed(c, p + pos, n - pos);
        } else {
            if (c->state != ST_HTTP_WAIT) { fail(c, "data while no request was out"); break; }
            used = http_feed(c, p + pos, n - pos);
        }
        if (used == 0) break;
        pos += used;
    }
    return pos;
}

static void on_readable(struct conn *c) {
    for (;;) {
        ssize_t r = recv(c->fd, g.scratch, SCRATCH, 0);
        if (r == 0) {
            if (c->in.len) { fail(c, "connection closed in the middle of a reply"); return; }
            on_eof(c);
            return;
        }
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) fail(c, "recv failed: %s", strerror(errno));
            return;
        }
        if (c->in.len) {
            buf_append(&c->in, g.scratch, (size_t)r);
            size_t used = feed(c, c->in.data, c->in.len);
            if (!c->alive) return;
            buf_consume(&c->in, used);
        } else {
            size_t used = feed(c, g.scratch, (size_t)r);
            if (!c->alive) return;
            if (used < (size_t)r) buf_append(&c->in, g.scratch + used, (size_t)r - used);
        }
        if (r < SCRATCH) return;
    }
}

static void on_writable_connecting(struct conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { fail(c, "connect failed: %s", strerror(err)); return; }
    c->state = ST_HTTP_IDLE;
    c->since = now();
    on_connected(c);
    flush(c);
}

/* -- progress and the measured window ----------------------------------------------------- */

static void emit_line(const char *s) {
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static void count(uint64_t n) {
    g.t_progress = now();
    if (g.measuring) g.count += n;
}

static void start_running(void) {
    g.running = 1;
    g.t_run = now();
    g.t_progress = g.t_run;
    g.t_measure_at = g.t_run + g.warmup;
}

/* Open or close the window by time; fanout does it at round boundaries instead. */
static void tick_window(double t) {
    if (!g.running || g.mode == SIO_IDLE) return;
    if (!g.measuring && g.t_start == 0 && t >= g.t_measure_at) {
        g.measuring = 1;
        g.count = 0;
        g.t_start = t;
        emit_line("{\"phase\":\"measure\"}");
    } else if (g.measuring && t >= g.t_start + g.duration) {
        g.measuring = 0;
        g.t_stop = t;
        g.done = 1;
    }
}

/* -- Socket.IO client steps ------------------------------------------------------------- */

static void sio_begin(struct conn *c) {
    send_upgrade(c, "EIO=4&transport=websocket");
}

static int starts(const uint8_t *p, size_t n, const char *s) {
    size_t k = strlen(s);
    return n >= k && memcmp(p, s, k) == 0;
}

static int contains(const uint8_t *p, size_t n, const char *s) {
    return memmem(p, n, s, strlen(s)) != NULL;
}

static void sio_ready(struct conn *c);

/* Steps shared by the Socket.IO modes; returns 1 when the message was handled. */
static int sio_common(struct conn *c, const uint8_t *p, size_t n) {
    if (n == 1 && p[0] == '2') {
        ws_text(c, "3", 1);
        return 1;
    }
    switch (c->state) {
    case ST_SIO_OPEN:
        if (!starts(p, n, "0{") || !contains(p, n, "\"sid\"")) {
            fail(c, "expected the Engine.IO open packet, got %s", snip(p, n));
            return 1;
        }
        ws_text(c, "40", 2);
        c->state = ST_SIO_CONNECT;
        return 1;
    case ST_SIO_CONNECT:
        if (!starts(p, n, "40{") || !contains(p, n, "\"sid\"")) {
            fail(c, "expected the CONNECT reply 40{\"sid\":...}, got %s", snip(p, n));
            return 1;
        }
        c->state = ST_READY;
        c->since = now();
        sio_ready(c);
        return 1;
    }
    if (n >= 2 && p[0] == '4' && p[1] == '1') { fail(c, "server disconnected the socket"); return 1; }
    if (n >= 1 && p[0] == '1') { fail(c, "server closed the Engine.IO session"); return 1; }
    return 0;
}

/* -- sio-acks ---------------------------------------------------------------------------- */

static void acks_send(struct conn *c) {
    char msg[64 + 1024], pay[1024];
    payload(pay, g.size, c->seq);
    int n = snprintf(msg, sizeof msg, "42%llu[\"echo\",\"%.*s\"]", (unsigned long long)c->ack_id,
                     g.size, pay);
    ws_text(c, msg, (size_t)n);
    c->ack_id++;
    c->seq++;
    c->inflight++;
}

static void acks_message(struct conn *c, const uint8_t *p, size_t n) {
    if (!g.running || c->inflight == 0) { fail(c, "unexpected message %s", snip(p, n)); return; }
    /* the oldest outstanding ack: ids and payload numbers go up together */
    uint64_t id = c->ack_id - (uint64_t)c->inflight, seq = c->seq - (uint64_t)c->inflight;
    char want[64 + 1024], pay[1024];
    payload(pay, g.size, seq);
    int k = snprintf(want, sizeof want, "43%llu[\"%.*s\"]", (unsigned long long)id, g.size, pay);
    if ((size_t)k != n || memcmp(want, p, n) != 0) {
        fail(c, "wrong ack: expected %.60s, got %s", want, snip(p, n));
        return;
    }
    c->inflight--;
    count(1);
    if (!g.done) acks_send(c);
}

/* -- sio-fanout --------------------------------------------------------------------------- */

static const char *ROOM_JOIN = "420[\"join\",\"bench\"]";
static const char *MSG_PREFIX = "42[\"msg\",\"";

static void fanout_round(void) {
    g.round++;
    g.round_got = 0;
    g.round_t0 = now();
    memset(g.seen, 0, (size_t)g.conns * (size_t)g.msgs);
    char pay[1024], msg[1100];
    for (int i = 0; i < g.msgs; i++) {
        /* r<round>i<index> at the start, letters after */
        payload(pay, g.size, g.round * 100000 + (uint64_t)i);
        int n = snprintf(msg, sizeof msg, "%s%.*s\"]", MSG_PREFIX, g.size, pay);
        memcpy(g.expect_msg[i], msg, (size_t)n);
        n = snprintf(msg, sizeof msg, "42[\"blast\",\"%.*s\"]", g.size, pay);
        ws_text(g.controller, msg, (size_t)n);
    }
}

static void fanout_start_if_ready(void) {
    if (g.running || g.nready < g.conns + 1) return;
    start_running();
    fanout_round();
}

static void fanout_message(struct conn *c, const uint8_t *p, size_t n) {
    if (c->role == 1) { fail(c, "controller got %s", snip(p, n)); return; }
    if (c->state == ST_SIO_JOIN) {
        if (n != 5 || memcmp(p, "430[]", 5) != 0) { /* the ack (id 0) of the join */
            fail(c, "expected the join ack 430[], got %s", snip(p, n));
            return;
        }
        c->state = ST_READY;
        g.nready++;
        fanout_start_if_ready();
        return;
    }
    /* 42["msg","<payload>"]: the payload starts with a 20-digit number */
    size_t pre = strlen(MSG_PREFIX);
    if (n != g.expect_len || n < pre + 20 || memcmp(p, MSG_PREFIX, pre) != 0) {
        fail(c, "unexpected message %s", snip(p, n));
        return;
    }
    uint64_t num = 0;
    for (size_t i = pre; i < pre + 20 && i < pre + (size_t)g.size; i++) num = num * 10 + (p[i] - '0');
    uint64_t round = num / 100000, i = num % 100000;
    if (round != g.round || i >= (uint64_t)g.msgs) {
        fail(c, "message of round %llu index %llu during round %llu", (unsigned long long)round,
             (unsigned long long)i, (unsigned long long)g.round);
        return;
    }
    uint8_t *seen = &g.seen[(size_t)c->idx * (size_t)g.msgs + i];
    if (*seen) { fail(c, "message %llu delivered twice", (unsigned long long)i); return; }
    if (memcmp(p, g.expect_msg[i], n) != 0) { fail(c, "wrong content %s", snip(p, n)); return; }
    *seen = 1;
    count(1);
    if (++g.round_got < (uint64_t)g.conns * (uint64_t)g.msgs) return;
    /* round complete: every member has every message; the next burst goes at once */
    if (g.measuring && g.round_t0 >= g.t_start) {
        g.rounds_measured++;
        g.round_ms_sum += (now() - g.round_t0) * 1000;
    }
    if (!g.done) fanout_round();
}

/* -- sio-idle ------------------------------------------------------------------------------ */

static void idle_launch(void) {
    while (g.launched < g.conns && g.launched - g.connected < g.concurrency) {
        int i = g.launched++;
        g.cs[i] = conn_open(K_HTTP, i); /* a failure is counted by on_conn_failed */
        if (g.done) return;
    }
}

static void idle_done_one(void) {
    g.connected++;
    if (g.connected == g.conns) {
        g.t_connected = now();
        char line[256];
        int ok = 0;
        for (int i = 0; i < g.conns; i++) ok += g.cs[i] && g.cs[i]->alive;
        snprintf(line, sizeof line,
                 "{\"phase\":\"connected\",\"conns\":%d,\"seconds\":%.6f,\"errors\":%llu}", ok,
                 g.t_connected - g.t_connect0, (unsigned long long)g.errors);
        emit_line(line);
        g.running = 1;
        g.t_run = g.t_connected;
    } else {
        idle_launch();
    }
}

/* -- eio-sessions ------------------------------------------------------------------------- */

static void session_start(struct slot *s);

static void session_handshake(struct slot *s) {
    if (!s->http || !s->http->alive || s->http->http_close) {
        if (s->http) conn_close(s->http);
        s->http = conn_open(K_HTTP, s->idx);
        if (!s->http) return;
        s->http->slot = s;
        g.reconnects++;
        return; /* on_connected sends the handshake */
    }
    send_get(s->http, "EIO=4&transport=polling");
}

static int parse_sid(const uint8_t *body, size_t n, char *sid, size_t cap) {
    const uint8_t *p = memmem(body, n, "\"sid\":\"", 7);
    if (!p || !starts(body, n, "0{")) return 0;
    p += 7;
    const uint8_t *q = memchr(p, '"', (size_t)(body + n - p));
    if (!q || (size_t)(q - p) >= cap || q == p) return 0;
    memcpy(sid, p, (size_t)(q - p));
    sid[q - p] = 0;
    return 1;
}

static void session_echo_text(struct slot *s, char *dst, size_t cap, int *len) {
    *len = snprintf(dst, cap, "4session-%d-%llu", s->idx, (unsigned long long)s->number);
}

static void sessions_http(struct conn *c, int status, const uint8_t *body, size_t n) {
    struct slot *s = c->slot;
    c->state = ST_HTTP_IDLE;
    if (status != 200) { fail(c, "handshake answered %d: %s", status, snip(body, n)); return; }
    if (!parse_sid(body, n, s->sid, sizeof s->sid)) { fail(c, "bad open packet %s", snip(body, n)); return; }
    if (!contains(body, n, "\"upgrades\":[\"websocket\"]")) {
        fail(c, "the server offers no websocket upgrade: %s", snip(body, n));
        return;
    }
    s->other = conn_open(K_HTTP, s->idx);
    if (s->other) s->other->slot = s;
}

static void sessions_ws(struct conn *c, const uint8_t *p, size_t n) {
    struct slot *s = c->slot;
    if (c->state == ST_PROBE) {
        if (n == 6 && memcmp(p, "3probe", 6) == 0) {
            char msg[96];
            int k;
            ws_text(c, "5", 1);
            session_echo_text(s, msg, sizeof msg, &k);
            ws_text(c, msg, (size_t)k);
            c->state = ST_ECHO;
            return;
        }
        if (n == 1 && p[0] == '6') return; /* noop */
        fail(c, "expected 3probe, got %s", snip(p, n));
        return;
    }
    if (c->state == ST_ECHO) {
        if (n == 1 && p[0] == '6') return;
        if (n == 1 && p[0] == '2') { ws_text(c, "3", 1); return; }
        char msg[96];
        int k;
        session_echo_text(s, msg, sizeof msg, &k);
        if ((size_t)k != n || memcmp(msg, p, n) != 0) {
            fail(c, "expected the echo %s, got %s", msg, snip(p, n));
            return;
        }
        count(1);
        s->number++;
        static const char close_payload[] = {0x03, (char)0xe8};
        ws_send(c, 8, close_payload, 2);
        c->state = ST_CLOSING;
        c->since = now();
        return;
    }
    if (c->state == ST_CLOSING) return;
    fail(c, "unexpected message %s", snip(p, n));
}

static void session_start(struct slot *s) {
    if (g.done) return;
    session_handshake(s);
}

/* -- eio-polling -------------------------------------------------------------------------- */

static void polling_query(struct slot *s, char *dst, size_t cap) {
    snprintf(dst, cap, "EIO=4&transport=polling&sid=%s", s->sid);
}

static void polling_post(struct slot *s) {
    struct conn *c = s->other;
    if (!c || !c->alive || c->state != ST_HTTP_IDLE || g.done) return;
    static struct buf body;
    body.len = 0;
    char pay[1024];
    if (s->pong_due) {
        buf_append(&body, "3\x1e", 2);
        s->pong_due = 0;
    }
    for (int i = 0; i < g.batch; i++) {
        if (i) buf_append(&body, "\x1e", 1);
        buf_append(&body, "4", 1);
        payload(pay, g.size, s->sent++);
        buf_append(&body, pay, (size_t)g.size);
    }
    char q[256];
    polling_query(s, q, sizeof q);
    send_post(c, q, (const char *)body.data, body.len);
    s->post_out = 1;
}

static void polling_get(struct slot *s) {
    char q[256];
    polling_query(s, q, sizeof q);
    send_get(s->http, q);
}

static void polling_maybe_next(struct slot *s) {
    if (!s->post_out && s->echoed == s->sent && g.running) polling_post(s);
}

static void polling_start_if_ready(void) {
    if (g.running || g.nready < g.nslots) return;
    start_running();
    for (int i = 0; i < g.nslots; i++) polling_maybe_next(&g.slots[i]);
}

static void polling_http(struct conn *c, int status, const uint8_t *body, size_t n) {
    struct slot *s = c->slot;
    c->state = ST_HTTP_IDLE;
    if (status != 200) { fail(c, "polling request answered %d: %s", status, snip(body, n)); return; }
    if (c->http_close) { fail(c, "server closed a keep-alive polling connection"); return; }
    if (c == s->other) { /* the POST */
        /* the reference server says "ok", python-engineio "OK" */
        if (n != 2 || strncasecmp((const char *)body, "ok", 2) != 0) {
            fail(c, "POST answered %s", snip(body, n));
            return;
        }
        s->post_out = 0;
        polling_maybe_next(s);
        return;
    }
    if (!s->started) { /* the handshake */
        if (!parse_sid(body, n, s->sid, sizeof s->sid)) { fail(c, "bad open packet %s", snip(body, n)); return; }
        s->started = 1;
        polling_get(s);
        s->other = conn_open(K_HTTP, s->idx);
        if (s->other) { s->other->slot = s; s->other->role = 1; }
        return;
    }
    /* a GET: packets separated by 0x1e */
    const uint8_t *p = body, *end = body + n;
    char want[1024];
    uint64_t got = 0;
    while (p <= end) {
        const uint8_t *q = memchr(p, 0x1e, (size_t)(end - p));
        if (!q) q = end;
        size_t len = (size_t)(q - p);
        if (len == 1 && p[0] == '2') {
            s->pong_due = 1;
        } else if (len == 1 && p[0] == '6') {
            /* noop */
        } else if (len >= 1 && p[0] == '4') {
            if (s->echoed >= s->sent) { fail(c, "echo of a message never sent"); return; }
            payload(want, g.size, s->echoed);
            if (len != (size_t)g.size + 1 || memcmp(p + 1, want, (size_t)g.size) != 0) {
                fail(c, "wrong echo (message %llu): %s", (unsigned long long)s->echoed, snip(p, len));
                return;
            }
            s->echoed++;
            got++;
        } else {
            fail(c, "unexpected packet %s", snip(p, len));
            return;
        }
        p = q + 1;
    }
    if (got) count(got);
    polling_get(s);
    if (s->pong_due && !s->post_out && s->echoed != s->sent) {
        /* answer the ping at once when no batch is due soon */
        char q2[256];
        polling_query(s, q2, sizeof q2);
        send_post(s->other, q2, "3", 1);
        s->pong_due = 0;
        s->post_out = 1;
    }
    polling_maybe_next(s);
}

/* -- dispatch -------------------------------------------------------------------------------- */

static void on_connected(struct conn *c) {
    switch (g.mode) {
    case SIO_ACKS:
    case SIO_FANOUT:
    case SIO_IDLE:
        sio_begin(c);
        break;
    case EIO_SESSIONS: {
        struct slot *s = c->slot;
        if (c == s->http) {
            send_get(c, "EIO=4&transport=polling");
        } else {
            char q[256];
            snprintf(q, sizeof q, "EIO=4&transport=websocket&sid=%s", s->sid);
            send_upgrade(c, q);
        }
        break;
    }
    case EIO_POLLING: {
        struct slot *s = c->slot;
        if (c == s->http) {
            send_get(c, "EIO=4&transport=polling");
        } else {
            g.nready++;
            polling_start_if_ready();
        }
        break;
    }
    }
}

static void on_ws_open(struct conn *c) {
    c->since = now();
    if (g.mode == EIO_SESSIONS) {
        ws_text(c, "2probe", 6);
        c->state = ST_PROBE;
    } else {
        c->state = ST_SIO_OPEN;
    }
}

static void sio_ready(struct conn *c) {
    switch (g.mode) {
    case SIO_ACKS:
        g.nready++;
        if (g.nready == g.conns) {
            start_running();
            for (int i = 0; i < g.conns; i++)
                if (g.cs[i]->alive)
                    for (int k = 0; k < g.inflight; k++) acks_send(g.cs[i]);
        }
        break;
    case SIO_FANOUT:
        if (c->role == 1) {
            g.nready++;
            fanout_start_if_ready();
        } else {
            ws_text(c, ROOM_JOIN, strlen(ROOM_JOIN));
            c->state = ST_SIO_JOIN;
        }
        break;
    case SIO_IDLE:
        idle_done_one();
        break;
    default:
        break;
    }
}

static void on_ws_message(struct conn *c, const uint8_t *p, size_t n) {
    switch (g.mode) {
    case SIO_ACKS:
        if (!sio_common(c, p, n)) acks_message(c, p, n);
        break;
    case SIO_FANOUT:
        if (!sio_common(c, p, n)) fanout_message(c, p, n);
        break;
    case SIO_IDLE:
        if (!sio_common(c, p, n)) fail(c, "unexpected message on an idle client: %s", snip(p, n));
        break;
    case EIO_SESSIONS:
        sessions_ws(c, p, n);
        break;
    case EIO_POLLING:
        fail(c, "websocket message in polling mode");
        break;
    }
}

static void on_http_response(struct conn *c, int status, const uint8_t *body, size_t n) {
    if (g.mode == EIO_SESSIONS) sessions_http(c, status, body, n);
    else if (g.mode == EIO_POLLING) polling_http(c, status, body, n);
    else fail(c, "upgrade refused with status %d: %s", status, snip(body, n));
}

static void on_eof(struct conn *c) {
    if (g.mode == EIO_SESSIONS) {
        struct slot *s = c->slot;
        if (c == s->other && c->state == ST_CLOSING) {
            conn_close(c);
            s->other = NULL;
            session_start(s);
            return;
        }
        if (c == s->http && c->state == ST_HTTP_IDLE) { /* keep-alive ended: reopen later */
            conn_close(c);
            s->http = NULL;
            return;
        }
    }
    if (g.mode == EIO_POLLING && c->state == ST_HTTP_IDLE && !g.running) { conn_close(c); return; }
    fail(c, "server closed the connection");
}

/* A connection broke: keep the load going where the mode allows it. */
static void on_conn_failed(struct conn *c) {
    if (g.mode == EIO_SESSIONS && c->slot) {
        struct slot *s = c->slot;
        if (c == s->other) s->other = NULL;
        if (c == s->http) s->http = NULL;
        if (g.errors > 1000) g.done = 1; /* something is badly wrong: stop */
        if (s->other == NULL && !g.done) session_start(s);
    } else if (g.mode == SIO_IDLE && !g.running && c->state != ST_READY) {
        idle_done_one();
    }
}

/* Stall detection and per-mode timers. */
static void tick(double t) {
    tick_window(t);
    if (g.mode == SIO_IDLE) {
        if (g.running && g.hold >= 0 && t >= g.t_connected + g.hold) g.done = 1;
        if (!g.running && t - g.t_connect0 > 120) {
            note_error("connecting took over 120 s (%d of %d done)", g.connected, g.conns);
            g.done = 1;
        }
        return;
    }
    if (g.mode == EIO_SESSIONS) {
        /* a server that never closes its side: give up on that close after 2 s */
        for (int i = 0; i < g.nslots; i++) {
            struct conn *c = g.slots[i].other;
            if (c && c->alive && c->state == ST_CLOSING && t - c->since > 2.0) {
                fail(c, "server did not close the WebSocket within 2 s of the close frame");
            }
        }
    }
    if (!g.running) {
        if (g.t_connect0 && t - g.t_connect0 > 60) {
            note_error("clients not ready after 60 s (%d ready)", g.nready);
            g.done = 1;
        }
        return;
    }
    if (t - g.t_progress > STALL_SECONDS) {
        note_error("no progress for %.0f s", STALL_SECONDS);
        g.done = 1;
    }
}

static void raise_nofile(int need) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < (rlim_t)need)
        die("the open-file limit (hard %llu) is below the %d this run needs",
            (unsigned long long)rl.rlim_max, need);
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: ioload MODE --port P [options] (see the source)");
    const char *mode = argv[1];
    if (!strcmp(mode, "sio-acks")) g.mode = SIO_ACKS;
    else if (!strcmp(mode, "sio-fanout")) g.mode = SIO_FANOUT;
    else if (!strcmp(mode, "sio-idle")) g.mode = SIO_IDLE;
    else if (!strcmp(mode, "eio-sessions")) g.mode = EIO_SESSIONS;
    else if (!strcmp(mode, "eio-polling")) g.mode = EIO_POLLING;
    else die("unknown mode %s", mode);
    g.host = "127.0.0.1";
    g.path = g.mode >= EIO_SESSIONS ? "/engine.io/" : "/socket.io/";
    g.conns = 100;
    g.size = 32;
    g.msgs = 200;
    g.batch = 16;
    g.concurrency = 64;
    g.inflight = 1;
    g.warmup = 1.0;
    g.duration = 5.0;
    g.hold = -1;
    static const struct option opts[] = {
        {"host", required_argument, 0, 'h'},   {"port", required_argument, 0, 'p'},
        {"path", required_argument, 0, 'P'},   {"conns", required_argument, 0, 'c'},
        {"size", required_argument, 0, 's'},   {"msgs", required_argument, 0, 'm'},
        {"batch", required_argument, 0, 'b'},  {"concurrency", required_argument, 0, 'C'},
        {"inflight", required_argument, 0, 'k'}, {"warmup", required_argument, 0, 'w'},
        {"duration", required_argument, 0, 'd'}, {"hold", required_argument, 0, 'H'},
        {0, 0, 0, 0}};
    int o;
    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'h': g.host = optarg; break;
        case 'p': g.port = atoi(optarg); break;
        case 'P': g.path = optarg; break;
        case 'c': g.conns = atoi(optarg); break;
        case 's': g.size = atoi(optarg); break;
        case 'm': g.msgs = atoi(optarg); break;
        case 'b': g.batch = atoi(optarg); break;
        case 'C': g.concurrency = atoi(optarg); break;
        case 'k': g.inflight = atoi(optarg); break;
        case 'w': g.warmup = atof(optarg); break;
        case 'd': g.duration = atof(optarg); break;
        case 'H': g.hold = atof(optarg); break;
        default: die("bad arguments");
        }
    }
    if (g.port <= 0 || g.conns <= 0 || g.size < 20 || g.size > 1000 || g.msgs <= 0 ||
        g.msgs >= 100000 || g.batch <= 0 || g.concurrency <= 0 || g.inflight <= 0 ||
        g.duration <= 0 || g.warmup < 0)
        die("need --port, and --size between 20 and 1000, positive counts and duration");
    memset(&g.addr, 0, sizeof g.addr);
    g.addr.sin_family = AF_INET;
    g.addr.sin_port = htons((uint16_t)g.port);
    if (inet_pton(AF_INET, g.host, &g.addr.sin_addr) != 1) die("--host must be an IPv4 address");
    g.ep = epoll_create1(0);
    g.scratch = malloc(SCRATCH);

    switch (g.mode) {
    case SIO_ACKS:
        raise_nofile(g.conns + 64);
        g.cs = calloc((size_t)g.conns, sizeof *g.cs);
        g.t_connect0 = now();
        for (int i = 0; i < g.conns; i++) {
            g.cs[i] = conn_open(K_HTTP, i);
            if (!g.cs[i]) break;
        }
        break;
    case SIO_FANOUT:
        raise_nofile(g.conns + 64);
        g.cs = calloc((size_t)g.conns + 1, sizeof *g.cs);
        g.seen = calloc((size_t)g.conns * (size_t)g.msgs, 1);
        g.expect_len = strlen(MSG_PREFIX) + (size_t)g.size + 2;
        g.expect_msg = calloc((size_t)g.msgs, sizeof *g.expect_msg);
        for (int i = 0; i < g.msgs; i++) g.expect_msg[i] = malloc(g.expect_len + 1);
        g.t_connect0 = now();
        for (int i = 0; i <= g.conns; i++) {
            g.cs[i] = conn_open(K_HTTP, i);
            if (!g.cs[i]) break;
        }
        if (g.cs[g.conns]) {
            g.controller = g.cs[g.conns];
            g.controller->role = 1;
        }
        break;
    case SIO_IDLE: {
        raise_nofile(g.conns + 64);
        g.cs = calloc((size_t)g.conns, sizeof *g.cs);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        g.stdin_open = epoll_ctl(g.ep, EPOLL_CTL_ADD, 0, &ev) == 0;
        emit_line("{\"phase\":\"connect\"}");
        g.t_connect0 = now();
        idle_launch();
        break;
    }
    case EIO_SESSIONS:
        raise_nofile(2 * g.concurrency + 64);
        g.nslots = g.concurrency;
        g.slots = calloc((size_t)g.nslots, sizeof *g.slots);
        g.t_connect0 = now();
        start_running();
        for (int i = 0; i < g.nslots; i++) {
            g.slots[i].idx = i;
            session_start(&g.slots[i]);
        }
        break;
    case EIO_POLLING:
        raise_nofile(2 * g.conns + 64);
        g.nslots = g.conns;
        g.slots = calloc((size_t)g.nslots, sizeof *g.slots);
        g.t_connect0 = now();
        for (int i = 0; i < g.nslots; i++) {
            struct slot *s = &g.slots[i];
            s->idx = i;
            s->http = conn_open(K_HTTP, i);
            if (s->http) s->http->slot = s;
        }
        break;
    }
    for (int i = 0; i < g.ndirty; i++) flush(g.dirty[i]);
    g.ndirty = 0;

    struct epoll_event evs[MAX_EVENTS];
    while (!g.done) {
        int n = epoll_wait(g.ep, evs, MAX_EVENTS, 10);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) { /* standard input (sio-idle): EOF ends the hold */
                char tmp[256];
                ssize_t r = read(0, tmp, sizeof tmp);
                if (r <= 0) {
                    epoll_ctl(g.ep, EPOLL_CTL_DEL, 0, NULL);
                    g.stdin_open = 0;
                    if (g.running) g.done = 1;
                    else g.hold = 0; /* end as soon as everyone is connected */
                }
                continue;
            }
            if (!c->alive) continue;
            if (c->state == ST_CONNECTING) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable_connecting(c);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
            if (c->alive && (evs[i].events & EPOLLOUT)) flush(c);
        }
        /* flushing may fail a connection, which may queue more writes: index loop */
        for (int i = 0; i < g.ndirty; i++) flush(g.dirty[i]);
        g.ndirty = 0;
        /* Closed connections give back their buffers; the small structs stay
         * (slots and client arrays may still point at them and check ->alive). */
        while (g.zombies) {
            struct conn *z = g.zombies;
            g.zombies = z->next_zombie;
            buf_free(&z->in);
            buf_free(&z->out);
            buf_free(&z->frag);
        }
        tick(now());
    }
    if (g.t_stop == 0) g.t_stop = now();
    double secs = g.t_start > 0 ? g.t_stop - g.t_start : 0;
    int alive = 0;
    if (g.cs)
        for (int i = 0; i < g.conns + (g.mode == SIO_FANOUT); i++) alive += g.cs[i] && g.cs[i]->alive;
    char extra[256] = "";
    if (g.mode == SIO_FANOUT)
        snprintf(extra, sizeof extra, ",\"rounds\":%llu,\"round_ms\":%.3f",
                 (unsigned long long)g.rounds_measured,
                 g.rounds_measured ? g.round_ms_sum / (double)g.rounds_measured : 0.0);
    else if (g.mode == SIO_IDLE)
        snprintf(extra, sizeof extra, ",\"connect_seconds\":%.6f,\"hold_seconds\":%.3f",
                 g.t_connected ? g.t_connected - g.t_connect0 : 0.0,
                 g.t_connected ? now() - g.t_connected : 0.0);
    else if (g.mode == EIO_SESSIONS)
        snprintf(extra, sizeof extra, ",\"http_reconnects\":%llu",
                 (unsigned long long)(g.reconnects > (uint64_t)g.nslots ? g.reconnects - (uint64_t)g.nslots : 0));
    printf("{\"mode\":\"%s\",\"count\":%llu,\"seconds\":%.6f,\"errors\":%llu,\"alive\":%d%s,"
           "\"error\":\"%s\"}\n",
           mode, (unsigned long long)g.count, secs, (unsigned long long)g.errors, alive, extra,
           g.first_error);
    fflush(stdout);
    /* no close handshakes: the process exit closes the sockets */
    return g.errors ? 1 : 0;
}
