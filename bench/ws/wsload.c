/*
 * wsload: a lean WebSocket echo load generator (Linux, epoll, one thread).
 *
 *   wsload --port P [--host 127.0.0.1] [--conns N] [--inflight K] [--size BYTES]
 *          [--binary] [--warmup S] [--duration S]
 *
 * Opens N connections (HTTP/1.1 upgrade, no extension offered), keeps K messages
 * in flight on each and sends the next one whenever an echo completes. Every
 * outgoing message is the same pre-built masked frame, so sending costs one
 * send() of bytes that already sit in memory. Echo frames (unmasked, any split,
 * 7/16/64-bit lengths, fragmented messages too) are parsed in place; the echoed
 * length is checked for every message and the content for every message of at
 * most FULL_CHECK bytes (for larger ones: the first and last EDGE bytes).
 *
 * stdout, one JSON object per line:
 *   {"phase":"measure"}                         when the measured window opens
 *   {"messages":M,"bytes":B,"seconds":T,...}    at the end
 * "bytes" counts echoed payload bytes received in the window. A connection that
 * fails (refused handshake, bad frame, wrong echo, close) is counted in "errors",
 * the first reason goes to "error", and the connection is dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FULL_CHECK 4096
#define EDGE 64
#define READ_BUF (1 << 20)
#define MAX_EVENTS 256

/* RFC 6455 section 1.3 sample key and its accept value. */
static const char *WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
static const char *WS_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

struct conn {
    int fd;
    int alive;
    int want_out;        /* EPOLLOUT registered */
    uint64_t to_send;    /* whole frames queued, the first one maybe partly sent */
    size_t send_pos;     /* bytes of the first queued frame already sent */
    /* parser */
    uint8_t hdr[14];
    size_t hdr_have;
    uint64_t pay_left;   /* payload bytes left in the current frame */
    int in_frame;        /* reading a payload */
    int control;         /* the current frame is a control frame */
    int fin;             /* the current data frame ends its message */
    int in_msg;          /* inside a fragmented data message */
    uint64_t msg_off;    /* payload bytes of the current message so far */
};

static struct {
    uint8_t *frames;     /* K copies of the masked frame, back to back */
    size_t frame_len;
    uint8_t *expect;     /* the payload the echo must carry */
    uint64_t size;
    int opcode;
    uint64_t inflight;
    int measuring;
    int running;
    uint64_t messages, bytes, errors;
    char first_error[200];
} g;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(struct conn *c, const char *why) {
    if (!c->alive) return;
    c->alive = 0;
    g.errors++;
    if (!g.first_error[0]) snprintf(g.first_error, sizeof g.first_error, "%s", why);
    close(c->fd);
}

static void build_frames(int k) {
    uint8_t head[14];
    size_t h = 0;
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    head[h++] = (uint8_t)(0x80 | g.opcode);
    if (g.size < 126) {
        head[h++] = (uint8_t)(0x80 | g.size);
    } else if (g.size < 65536) {
        head[h++] = 0x80 | 126;
        head[h++] = (uint8_t)(g.size >> 8);
        head[h++] = (uint8_t)g.size;
    } else {
        head[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) head[h++] = (uint8_t)(g.size >> (8 * i));
    }
    memcpy(head + h, mask, 4);
    h += 4;
    g.expect = malloc(g.size ? g.size : 1);
    for (uint64_t i = 0; i < g.size; i++)
        g.expect[i] = g.opcode == 1 ? (uint8_t)('a' + i % 26) : (uint8_t)(i * 31 + 7);
    g.frame_len = h + g.size;
    g.frames = malloc(g.frame_len * (size_t)k);
    memcpy(g.frames, head, h);
    for (uint64_t i = 0; i < g.size; i++) g.frames[h + i] = g.expect[i] ^ mask[i & 3];
    for (int i = 1; i < k; i++) memcpy(g.frames + g.frame_len * (size_t)i, g.frames, g.frame_len);
}

/* Compare an echoed chunk at message offset `off` with what was sent. */
static int chunk_ok(const uint8_t *p, uint64_t off, uint64_t n) {
    if (off + n > g.size) return 0;
    if (g.size <= FULL_CHECK) return memcmp(p, g.expect + off, n) == 0;
    uint64_t ranges[2][2] = {{0, EDGE}, {g.size - EDGE, g.size}};
    for (int r = 0; r < 2; r++) {
        uint64_t lo = off > ranges[r][0] ? off : ranges[r][0];
        uint64_t hi = off + n < ranges[r][1] ? off + n : ranges[r][1];
        if (lo < hi && memcmp(p + (lo - off), g.expect + lo, hi - lo) != 0) return 0;
    }
    return 1;
}

static void flush(int ep, struct conn *c) {
    while (c->alive && c->to_send > 0) {
        size_t len = (size_t)c->to_send * g.frame_len - c->send_pos;
        ssize_t n = send(c->fd, g.frames + c->send_pos, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            fail(c, "send failed");
            return;
        }
        c->send_pos += (size_t)n;
        c->to_send -= c->send_pos / g.frame_len;
        c->send_pos %= g.frame_len;
    }
    if (!c->alive) return;
    int want = c->to_send > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
}

/* Feed received bytes to the frame parser; returns 0 when the connection failed. */
static int parse(struct conn *c, const uint8_t *p, size_t n) {
    const uint8_t *end = p + n;
    while (p < end) {
        if (!c->in_frame) {
            const uint8_t *h;
            size_t avail = (size_t)(end - p);
            if (c->hdr_have == 0 && avail >= 14) {
                h = p; /* the whole header is here: decode in place */
            } else {
                size_t take = 14 - c->hdr_have < avail ? 14 - c->hdr_have : avail;
                memcpy(c->hdr + c->hdr_have, p, take);
                h = c->hdr;
                avail = c->hdr_have + take;
            }
            if (avail < 2) { c->hdr_have = avail; return 1; }
            if (h[1] & 0x80) { fail(c, "server frame is masked"); return 0; }
            if (h[0] & 0x70) { fail(c, "RSV bit set on an echo frame"); return 0; }
            size_t need = 2 + ((h[1] & 0x7f) == 126 ? 2 : (h[1] & 0x7f) == 127 ? 8 : 0);
            if (avail < need) { c->hdr_have = avail; return 1; }
            uint64_t len = h[1] & 0x7f;
            if (len == 126) len = (uint64_t)h[2] << 8 | h[3];
            else if (len == 127) { len = 0; for (int i = 2; i < 10; i++) len = len << 8 | h[i]; }
            p += need - (h == p ? 0 : c->hdr_have); /* consume this header's bytes */
            c->hdr_have = 0;
            int fin = h[0] & 0x80, op = h[0] & 0x0f;
            c->pay_left = len;
            c->in_frame = 1;
            c->control = op >= 8;
            if (op == 8) { fail(c, "server sent close"); return 0; }
            if (!c->control) {
                if ((op == 0) != c->in_msg) { fail(c, "bad fragmentation"); return 0; }
                if (op != 0 && op != g.opcode) { fail(c, "echo has the wrong opcode"); return 0; }
                c->fin = fin != 0;
            }
            if (len > 0) continue;
        } else {
            uint64_t take = c->pay_left < (uint64_t)(end - p) ? c->pay_left : (uint64_t)(end - p);
            if (!c->control) {
                if (!chunk_ok(p, c->msg_off, take)) { fail(c, "echo payload differs"); return 0; }
                c->msg_off += take;
            }
            p += take;
            c->pay_left -= take;
            if (c->pay_left > 0) return 1;
        }
        /* frame complete */
        c->in_frame = 0;
        if (c->control) continue; /* ping/pong: ignored */
        c->in_msg = !c->fin;
        if (c->in_msg) continue;
        /* message complete */
        if (c->msg_off != g.size) { fail(c, "echo has the wrong length"); return 0; }
        c->msg_off = 0;
        if (g.measuring) { g.messages++; g.bytes += g.size; }
        if (g.running && ++c->to_send > g.inflight) { fail(c, "more echoes than messages sent"); return 0; }
    }
    return 1;
}

static int open_conn(struct conn *c, const struct addrinfo *ai, const char *host, int port,
                     uint8_t *buf, size_t *leftover) {
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    c->fd = fd;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) { close(fd); return -1; }
    char req[512];
    int len = snprintf(req, sizeof req,
                       "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n",
                       host, port, WS_KEY);
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) { close(fd); return -1; }
    size_t have = 0;
    char *eoh = NULL;
    while (!eoh) {
        if (have >= 8191) { close(fd); return -1; }
        ssize_t n = recv(fd, buf + have, 8191 - have, 0);
        if (n <= 0) { close(fd); return -1; }
        have += (size_t)n;
        buf[have] = 0;
        eoh = strstr((char *)buf, "\r\n\r\n");
    }
    *eoh = 0;
    if (strncmp((char *)buf, "HTTP/1.1 101", 12) != 0 || !strstr((char *)buf, WS_ACCEPT) ||
        strcasestr((char *)buf, "sec-websocket-extensions")) {
        fprintf(stderr, "wsload: handshake refused:\n%s\n", (char *)buf);
        close(fd);
        return -1;
    }
    size_t head = (size_t)(eoh + 4 - (char *)buf);
    *leftover = have - head;
    memmove(buf, buf + head, *leftover);
    c->alive = 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0, conns = 1, inflight = 16;
    double warmup = 1.0, duration = 5.0;
    g.size = 32;
    g.opcode = 1;
    static const struct option opts[] = {
        {"host", required_argument, 0, 'h'},     {"port", required_argument, 0, 'p'},
        {"conns", required_argument, 0, 'c'},    {"inflight", required_argument, 0, 'k'},
        {"size", required_argument, 0, 's'},     {"binary", no_argument, 0, 'b'},
        {"warmup", required_argument, 0, 'w'},   {"duration", required_argument, 0, 'd'},
        {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 'k': inflight = atoi(optarg); break;
        case 's': g.size = strtoull(optarg, NULL, 10); break;
        case 'b': g.opcode = 2; break;
        case 'w': warmup = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        default: fprintf(stderr, "wsload: bad arguments\n"); return 2;
        }
    }
    if (port <= 0 || conns <= 0 || inflight <= 0 || duration <= 0 || warmup < 0) {
        fprintf(stderr, "wsload: need --port and positive --conns, --inflight, --duration\n");
        return 2;
    }
    g.inflight = (uint64_t)inflight;
    build_frames(inflight);

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    if (getaddrinfo(host, portstr, &hints, &ai) != 0) { fprintf(stderr, "wsload: bad host\n"); return 2; }

    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    uint8_t *buf = malloc(READ_BUF + 1);
    for (int i = 0; i < conns; i++) {
        size_t leftover = 0;
        if (open_conn(&cs[i], ai, host, port, buf, &leftover) < 0) {
            printf("{\"messages\":0,\"bytes\":0,\"seconds\":0,\"errors\":1,"
                   "\"error\":\"connect or handshake failed\"}\n");
            return 1;
        }
        struct timeval tv = {0};
        setsockopt(cs[i].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
        if (leftover) parse(&cs[i], buf, leftover);
    }
    freeaddrinfo(ai);

    g.running = 1;
    for (int i = 0; i < conns; i++) {
        cs[i].to_send = (uint64_t)inflight;
        flush(ep, &cs[i]);
    }
    double t0 = now(), t_measure = t0 + warmup, t_end = t_measure + duration, t_start = 0, t_stop = 0;
    struct epoll_event evs[MAX_EVENTS];
    int alive = conns;
    while (alive > 0) {
        double t = now();
        if (!g.measuring && t_start == 0 && t >= t_measure) {
            g.measuring = 1;
            g.messages = g.bytes = 0;
            t_start = t;
            printf("{\"phase\":\"measure\"}\n");
            fflush(stdout);
        }
        if (g.measuring && t >= t_end) {
            g.measuring = 0;
            g.running = 0;
            t_stop = t;
            break;
        }
        int n = epoll_wait(ep, evs, MAX_EVENTS, 20);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c->alive) continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                ssize_t r = recv(c->fd, buf, READ_BUF, 0);
                if (r == 0) { fail(c, "server closed the connection"); }
                else if (r < 0) { if (errno != EAGAIN && errno != EINTR) fail(c, "recv failed"); }
                else parse(c, buf, (size_t)r);
            }
            if (c->alive && c->to_send > 0) flush(ep, c);
        }
        alive = 0;
        for (int i = 0; i < conns; i++) alive += cs[i].alive;
    }
    if (t_stop == 0) t_stop = now();
    double secs = t_start > 0 ? t_stop - t_start : 0;

    /* Best-effort close frame (masked, code 1000), then close the sockets. */
    static const uint8_t close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
    for (int i = 0; i < conns; i++) {
        if (!cs[i].alive) continue;
        if (cs[i].send_pos == 0) send(cs[i].fd, close_frame, sizeof close_frame, MSG_NOSIGNAL);
        close(cs[i].fd);
    }
    printf("{\"messages\":%llu,\"bytes\":%llu,\"seconds\":%.6f,\"errors\":%llu,\"alive\":%d,"
           "\"conns\":%d,\"inflight\":%d,\"size\":%llu,\"binary\":%s,\"error\":\"%s\"}\n",
           (unsigned long long)g.messages, (unsigned long long)g.bytes, secs,
           (unsigned long long)g.errors, alive, conns, inflight, (unsigned long long)g.size,
           g.opcode == 2 ? "true" : "false", g.first_error);
    return g.errors ? 1 : 0;
}
