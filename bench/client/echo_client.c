/*
 * The one echo client of the benchmark harness (bench/run.py): the same
 * program drives every server, so the servers are compared on equal terms.
 *
 * Plain C, non-blocking sockets and level-triggered epoll, one process, one
 * thread; OpenSSL for --tls.  Every connection keeps exactly one message in
 * flight: send SIZE bytes, read SIZE bytes back, repeat (a closed loop).
 *
 * Talks to bench/run.py with JSON lines on stdout and plain lines on stdin:
 *
 *   --mode echo   connect CONNS (TLS handshake too), run round trips for
 *                 WARMUP seconds, drain, print {"event":"warm",...}; wait for
 *                 a line on stdin; run for DURATION seconds, stop issuing new
 *                 messages, drain the ones in flight, print
 *                 {"event":"done","msgs":M,"bytes":B,"seconds":T} and exit.
 *                 Every counted message was echoed completely, so the
 *                 server's CPU time between "go" and "done" is spent on
 *                 exactly M messages.
 *   --mode c10k   open CONNS connections (at most INFLIGHT unfinished at a
 *                 time), each sends one byte and waits for it to come back
 *                 (proof that the server accepted it and serves it); print
 *                 {"event":"accepted","conns":N,"seconds":T} once all have;
 *                 keep them open (idle) until stdin has a line or EOF.
 *
 * Build: gcc -O2 -o echo_client echo_client.c -lssl -lcrypto
 *        (-DNO_TLS to build without OpenSSL; --tls is then refused)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifndef NO_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

enum { ST_CONNECTING, ST_HANDSHAKE, ST_SENDING, ST_RECEIVING, ST_IDLE, ST_CLOSED };

typedef struct {
    int fd;
    int state;
    uint32_t events;  /* what epoll watches now */
    size_t sent, got;
#ifndef NO_TLS
    SSL *ssl;
#endif
} conn_t;

static const char *host = "127.0.0.1";
static int port, nconns = 100, use_tls, c10k, inflight_max = 512;
static size_t size = 100;
static double warmup = 0.5, duration = 3.0;
static conn_t *conns;
static int ep;
static char *sendbuf, *recvbuf;
static size_t recvcap;
static int issuing;          /* start a new message after a completed one */
static long long completed;  /* messages completed while counting */
static int counting, outstanding;
#ifndef NO_TLS
static SSL_CTX *ctx;
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noreturn)) static void die(const char *what) {
    fprintf(stderr, "echo_client: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void watch(conn_t *c, uint32_t ev) {
    if (c->events == ev) return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) < 0) die("epoll_ctl");
    c->events = ev;
}

__attribute__((noreturn)) static void fail(conn_t *c, const char *what) {
    fprintf(stderr, "echo_client: connection %ld: %s (%s)\n", (long)(c - conns), what,
            errno ? strerror(errno) : "closed by server");
    exit(2);
}

/* I/O wrappers: >0 bytes, 0 = would block (watch set), <0 = fatal */
static ssize_t do_send(conn_t *c, const char *p, size_t n) {
#ifndef NO_TLS
    if (c->ssl) {
        int r = SSL_write(c->ssl, p, (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) { watch(c, EPOLLOUT); return 0; }
        if (e == SSL_ERROR_WANT_READ) { watch(c, EPOLLIN); return 0; }
        ERR_print_errors_fp(stderr);
        return -1;
    }
#endif
    ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
    if (r >= 0) return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK) { watch(c, EPOLLOUT); return 0; }
    return -1;
}

static ssize_t do_recv(conn_t *c, char *p, size_t n) {
#ifndef NO_TLS
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) { watch(c, EPOLLIN); return 0; }
        if (e == SSL_ERROR_WANT_WRITE) { watch(c, EPOLLOUT); return 0; }
        errno = 0;
        return -1;
    }
#endif
    ssize_t r = recv(c->fd, p, n, 0);
    if (r > 0) return r;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { watch(c, EPOLLIN); return 0; }
    if (r == 0) errno = 0;
    return -1;
}

static void start_message(conn_t *c) {
    c->state = ST_SENDING;
    c->sent = c->got = 0;
    outstanding++;
}

/* Drive one connection as far as it goes without blocking. */
static void step(conn_t *c) {
    for (;;) {
        switch (c->state) {
        case ST_CONNECTING: {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) { errno = err; fail(c, "connect"); }
#ifndef NO_TLS
            if (use_tls) {
                c->ssl = SSL_new(ctx);
                SSL_set_fd(c->ssl, c->fd);
                SSL_set_connect_state(c->ssl);
                c->state = ST_HANDSHAKE;
                continue;
            }
#endif
            start_message(c);
            continue;
        }
#ifndef NO_TLS
        case ST_HANDSHAKE: {
            int r = SSL_do_handshake(c->ssl);
            if (r == 1) { start_message(c); continue; }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) { watch(c, EPOLLIN); return; }
            if (e == SSL_ERROR_WANT_WRITE) { watch(c, EPOLLOUT); return; }
            ERR_print_errors_fp(stderr);
            fail(c, "TLS handshake");
        }
#endif
        case ST_SENDING: {
            ssize_t r = do_send(c, sendbuf + c->sent, size - c->sent);
            if (r < 0) fail(c, "send");
            if (r == 0) return;
            c->sent += (size_t)r;
            if (c->sent == size) c->state = ST_RECEIVING;
            continue;
        }
        case ST_RECEIVING: {
            size_t want = size - c->got;
            ssize_t r = do_recv(c, recvbuf, want < recvcap ? want : recvcap);
            if (r < 0) fail(c, "recv");
            if (r == 0) return;
            c->got += (size_t)r;
            if (c->got < size) continue;
            outstanding--;
            if (counting) completed++;
            if (issuing) { start_message(c); continue; }
            c->state = ST_IDLE;
            watch(c, EPOLLIN);
            return;
        }
        default:
            return;
        }
    }
}

static void open_conn(conn_t *c, struct sockaddr_in *sa) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->events = 0;
    c->state = ST_CONNECTING;
    if (connect(c->fd, (struct sockaddr *)sa, sizeof *sa) < 0 && errno != EINPROGRESS) die("connect");
    watch(c, EPOLLOUT);
}

static void poll_once(int timeout_ms) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return;
        die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
        conn_t *c = evs[i].data.ptr;
        if (c->state == ST_IDLE) {
            /* an idle connection is readable only if the server closed it
               (or, with TLS, sent a post-handshake record: consumed here) */
            char b;
            ssize_t r = do_recv(c, &b, 1);
            if (r != 0) fail(c, r > 0 ? "unexpected data while idle" : "closed while idle");
            continue;
        }
        step(c);
    }
}

/* Run round trips on every connection until `until`, then drain. */
static void run_phase(double until) {
    issuing = 1;
    for (int i = 0; i < nconns; i++)
        if (conns[i].state == ST_IDLE) { start_message(&conns[i]); step(&conns[i]); }
    while (now() < until) poll_once(50);
    issuing = 0;
    while (outstanding > 0) poll_once(1000);
}

static void wait_line(void) {
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return;
}

static void usage(void) {
    fprintf(stderr, "usage: echo_client --port P [--host H] [--conns N] [--size BYTES] "
                    "[--warmup S] [--duration S] [--tls] [--mode echo|c10k] [--inflight K]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *mode = "echo";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--tls")) { use_tls = 1; continue; }
        if (!v) usage();
        if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--conns")) nconns = atoi(v);
        else if (!strcmp(a, "--size")) size = (size_t)atol(v);
        else if (!strcmp(a, "--warmup")) warmup = atof(v);
        else if (!strcmp(a, "--duration")) duration = atof(v);
        else if (!strcmp(a, "--mode")) mode = v;
        else if (!strcmp(a, "--inflight")) inflight_max = atoi(v);
        else usage();
        i++;
    }
    if (port <= 0 || nconns <= 0 || size == 0) usage();
    c10k = !strcmp(mode, "c10k");
    if (!c10k && strcmp(mode, "echo")) usage();
    if (c10k) size = 1;
#ifdef NO_TLS
    if (use_tls) { fprintf(stderr, "echo_client: built without TLS\n"); return 2; }
#else
    if (use_tls) {
        ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
#endif
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sendbuf = malloc(size);
    for (size_t i = 0; i < size; i++) sendbuf[i] = (char)('a' + i % 26);
    recvcap = size < 262144 ? size : 262144;
    recvbuf = malloc(recvcap);
    conns = calloc((size_t)nconns, sizeof *conns);
    ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) usage();

    if (c10k) {
        /* one byte round trip per connection proves it was accepted */
        double t0 = now();
        int opened = 0;
        issuing = 0;
        counting = 1;
        while (completed < nconns) {
            while (opened < nconns && opened - completed < inflight_max)
                open_conn(&conns[opened++], &sa);
            poll_once(1000);
        }
        printf("{\"event\":\"accepted\",\"conns\":%d,\"seconds\":%.6f}\n", nconns, now() - t0);
        fflush(stdout);
        wait_line();
        return 0;
    }

    issuing = 1;
    for (int i = 0; i < nconns; i++) open_conn(&conns[i], &sa);
    run_phase(now() + warmup);
    printf("{\"event\":\"warm\",\"conns\":%d}\n", nconns);
    fflush(stdout);
    wait_line();
    counting = 1;
    completed = 0;
    double t0 = now();
    run_phase(t0 + duration);
    double dt = now() - t0;
    printf("{\"event\":\"done\",\"msgs\":%lld,\"bytes\":%lld,\"seconds\":%.6f,\"size\":%zu,\"conns\":%d}\n",
           completed, completed * (long long)size, dt, size, nconns);
    fflush(stdout);
    return 0;
}
