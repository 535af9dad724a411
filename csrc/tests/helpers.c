/*
 * helpers.c - shared helpers of the C tests: loops, bounded waits for events,
 * sockets over loopback, patterns and a fixed-seed PRNG.
 */
#include "tests.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#ifndef _WIN32
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#endif

/* ct_errname, ct_mono and the descriptor helpers have Windows versions in
 * helpers_win.c. */
#ifndef _WIN32

const char *ct_errname(int64_t v)
{
    static char buf[4][48];
    static int k;
    char *b = buf[k++ & 3];
    if (v == RX_PENDING) return "RX_PENDING";
    if (v >= 0 || v < -4095) {
        snprintf(b, sizeof buf[0], "%lld", (long long)v);
        return b;
    }
    const char *n = strerrorname_np((int)-v);
    snprintf(b, sizeof buf[0], "-%s", n ? n : "?");
    return b;
}
#endif

rx_loop *ct_loop(const char *backend)
{
    int err = 12345;
    rx_loop *loop = rx_loop_new(backend, &err);
    if (!loop) ct_fail(__FILE__, __LINE__, "rx_loop_new(%s) failed: %s", backend, ct_errname(err));
    CHECK_EQ(err, 0);
    return loop;
}

#ifndef _WIN32
int64_t ct_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
#endif

void ct_collect(rx_loop *loop, rx_event *evs, int n)
{
    int64_t end = ct_mono() + 5000000000LL;
    int got = 0;
    while (got < n) {
        int64_t left = end - ct_mono();
        if (left <= 0)
            ct_fail(__FILE__, __LINE__, "waited 5 s for %d event(s), got %d", n, got);
        int r = rx_poll(loop, left, evs + got, n - got);
        if (r < 0) ct_fail(__FILE__, __LINE__, "rx_poll: %s", ct_errname(r));
        got += r;
    }
}

void ct_wait_event(rx_loop *loop, rx_event *ev)
{
    ct_collect(loop, ev, 1);
}

void ct_expect_none(rx_loop *loop)
{
    rx_event ev;
    int r = rx_poll(loop, 0, &ev, 1);
    if (r != 0)
        ct_fail(__FILE__, __LINE__,
                "expected no event, rx_poll returned %d (token %lld kind %lld aux %lld result %s)", r,
                (long long)ev.token, (long long)ev.kind, (long long)ev.aux, ct_errname(ev.result));
}

rx_stats ct_stats(rx_loop *loop)
{
    rx_stats s;
    memset(&s, 0xa5, sizeof s);
    CHECK_EQ(rx_loop_stats(loop, &s), 0);
    return s;
}

#ifndef _WIN32
void ct_socketpair(int sv[2])
{
    CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
}

size_t ct_fill(int fd)
{
    static char junk[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = send(fd, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* a socket may still take small pieces: finish with those */
            n = send(fd, junk, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n == 1) {
                total++;
                continue;
            }
            return total;
        }
        ct_fail(__FILE__, __LINE__, "ct_fill: send: %s", strerror(errno));
    }
}

size_t ct_drain(int fd)
{
    static char junk[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = recv(fd, junk, sizeof junk, MSG_DONTWAIT);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK) return total;
        ct_fail(__FILE__, __LINE__, "ct_drain: recv: %s", strerror(errno));
    }
}

void ct_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            ct_poll1(fd, POLLOUT, 5000);
            continue;
        }
        if (n <= 0) ct_fail(__FILE__, __LINE__, "ct_write_all: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

void ct_read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            ct_poll1(fd, POLLIN, 5000);
            continue;
        }
        if (n < 0) ct_fail(__FILE__, __LINE__, "ct_read_all: %s", strerror(errno));
        if (n == 0) ct_fail(__FILE__, __LINE__, "ct_read_all: early end of stream");
        p += n;
        len -= (size_t)n;
    }
}

int ct_poll1(int fd, short events, int ms)
{
    struct pollfd p = {fd, events, 0};
    int n;
    do {
        n = poll(&p, 1, ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0) ct_fail(__FILE__, __LINE__, "poll: %s", strerror(errno));
    return p.revents;
}

void ct_close(int fd)
{
    if (close(fd) < 0) ct_fail(__FILE__, __LINE__, "close(%d): %s", fd, strerror(errno));
}

static socklen_t loopback(int family, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        return sizeof *a;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof *a;
}

static int bound(int family, int type, struct sockaddr_storage *addr, socklen_t *len)
{
    int fd = socket(family, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (family == AF_INET6) return -1;
        ct_fail(__FILE__, __LINE__, "socket: %s", strerror(errno));
    }
    struct sockaddr_storage ss;
    socklen_t sl = loopback(family, &ss);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
        int e = errno;
        close(fd);
        if (family == AF_INET6) return -1;   /* no ::1 here */
        ct_fail(__FILE__, __LINE__, "bind: %s", strerror(e));
    }
    *len = sizeof *addr;
    CHECK_SYS(getsockname(fd, (struct sockaddr *)addr, len));
    return fd;
}

int ct_listener(int family, int type, struct sockaddr_storage *addr, socklen_t *len)
{
    int fd = bound(family, type, addr, len);
    if (fd >= 0 && type == SOCK_STREAM) CHECK_SYS(listen(fd, 128));
    return fd;
}

int ct_refusing(int family, struct sockaddr_storage *addr, socklen_t *len)
{
    return bound(family, SOCK_STREAM, addr, len);
}

int ct_tcp_pair(int family, int sv[2])
{
    struct sockaddr_storage addr;
    socklen_t len;
    int l = ct_listener(family, SOCK_STREAM, &addr, &len);
    if (l < 0) return -1;
    int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_SYS(c);
    CHECK_SYS(connect(c, (struct sockaddr *)&addr, len));
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    CHECK_SYS(s);
    ct_close(l);
    sv[0] = c;
    sv[1] = s;
    return 0;
}
#endif /* !_WIN32 */

void ct_pattern(unsigned char *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
}

int ct_pattern_ok(const unsigned char *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        if (buf[i] != (unsigned char)(x >> 16)) return 0;
    }
    return 1;
}

uint64_t ct_rand(ct_rng *r)
{
    uint64_t x = r->s ? r->s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}
