/*
 * A plain C epoll echo server: the physical ceiling of the echo and c10k
 * tables of bench/run.py (what this machine and the echo client can do
 * with no interpreter in the server at all).
 *
 * One thread, level-triggered epoll, non-blocking sockets.  A connection is
 * watched for EPOLLIN only; what a read returns is written back at once,
 * and only if the socket buffer is full does the connection switch to
 * EPOLLOUT until the rest is out (so a 100-byte echo costs one read and one
 * write: 2 syscalls, plus one epoll_wait per batch of ready connections).
 *
 * Prints {"port": P, "pid": PID} on stdout once it listens (the protocol of
 * bench/workloads/common.py) and serves until killed.
 *
 * Build: gcc -O2 -o echo_server echo.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#define BUFSZ 65536

typedef struct {
    int fd;
    size_t off, len;      /* unsent part of buf: buf[off:len] */
    char *buf;            /* allocated only while output is pending */
} conn_t;

static int ep;
static char rbuf[BUFSZ];

__attribute__((noreturn)) static void die(const char *what) {
    fprintf(stderr, "echo_server: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void drop(conn_t *c) {
    close(c->fd);     /* also removes it from the epoll set */
    free(c->buf);
    free(c);
}

/* Write buf[off:len]; 1 = all out, 0 = blocked (watch EPOLLOUT), -1 = error */
static int flush_out(conn_t *c) {
    while (c->off < c->len) {
        ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (w < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        c->off += (size_t)w;
    }
    free(c->buf);
    c->buf = NULL;
    c->off = c->len = 0;
    return 1;
}

static void on_readable(conn_t *c) {
    for (;;) {
        ssize_t n = recv(c->fd, rbuf, BUFSZ, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) { drop(c); return; }
        if (n < 0) return;
        ssize_t w = send(c->fd, rbuf, (size_t)n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) { drop(c); return; }
            w = 0;
        }
        if (w < n) {  /* keep the rest, wait until writable */
            c->buf = malloc((size_t)(n - w));
            memcpy(c->buf, rbuf + w, (size_t)(n - w));
            c->off = 0;
            c->len = (size_t)(n - w);
            struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
            return;
        }
        if (n < BUFSZ) return;  /* drained: no need for a read that says EAGAIN */
    }
}

static void on_writable(conn_t *c) {
    int r = flush_out(c);
    if (r < 0) { drop(c); return; }
    if (r == 1) {
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    }
}

int main(int argc, char **argv) {
    int backlog = argc > 1 ? atoi(argv[1]) : 4096;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (lfd < 0) die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
    if (listen(lfd, backlog) < 0) die("listen");
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    static conn_t listener;
    listener.fd = lfd;
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = &listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le);
    printf("{\"port\": %d, \"pid\": %d}\n", ntohs(sa.sin_port), (int)getpid());
    fflush(stdout);

    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c == &listener) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                }
            } else if (evs[i].events & EPOLLOUT) {
                on_writable(c);
            } else {
                on_readable(c);
            }
        }
    }
}
