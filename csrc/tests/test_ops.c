/*
 * test_ops.c - the completion-style operations: recv, send, accept, connect,
 * recvfrom, sendto, watch, cancel, forget, rx_pending_done, on socketpairs,
 * loopback TCP/UDP (IPv4, and IPv6 when there is ::1), pipes and a regular
 * file; inline and deferred paths, errors, and -EBUSY.
 */
#include "tests.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check_clean(rx_loop *loop)
{
    rx_stats s = ct_stats(loop);
    CHECK_EQ(s.pending_ops, 0);
    CHECK_EQ(s.registered_fds, 0);
    CHECK_EQ(s.known_fds, 0);
    CHECK_EQ(s.queued_events, 0);
}

static void forget_close(rx_loop *loop, int fd)
{
    CHECK_EQ(rx_forget(loop, fd), 0);
    ct_close(fd);
}

/* Wait (bounded) until the pending op on fd's side has moved `want` bytes. */
static void wait_progress(rx_loop *loop, int fd, int side, int64_t want)
{
    int64_t end = ct_mono() + 5000000000LL;
    rx_event ev;
    while (rx_pending_done(loop, fd, side) != want) {
        CHECK_CMP(ct_mono(), <, end);
        CHECK_EQ(rx_poll(loop, 1000000, &ev, 1), 0);
    }
}

/* ---- recv ------------------------------------------------------------- */

TEST(recv_inline)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    ct_write_all(sv[1], "hello", 5);
    char buf[16] = {0};
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 1), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    ct_expect_none(loop);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    /* partial: a buffer smaller than the data, then the rest */
    ct_socketpair(sv);
    ct_write_all(sv[1], "abcdef", 6);
    CHECK_EQ(rx_recv(loop, sv[0], buf, 4, 0, 2), 4);
    CHECK(memcmp(buf, "abcd", 4) == 0);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 3), 2);
    CHECK(memcmp(buf, "ef", 2) == 0);
    ct_expect_none(loop);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(recv_deferred)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[16] = {0};
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 42), RX_PENDING);
    rx_stats s = ct_stats(loop);
    CHECK_EQ(s.pending_ops, 1);
    CHECK_EQ(s.known_fds, 1);
    CHECK_EQ(s.registered_fds, 1);
    ct_expect_none(loop);
    ct_write_all(sv[1], "world", 5);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 42, 5);
    CHECK(memcmp(buf, "world", 5) == 0);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    ct_expect_none(loop);
    /* and again, several rounds on the same descriptor */
    for (int i = 0; i < 50; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%03d", i % 1000);
        int64_t r = rx_recv(loop, sv[0], buf, sizeof buf, 0, 100 + i);
        CHECK_EQ(r, RX_PENDING);
        ct_write_all(sv[1], m, 4);
        ct_wait_event(loop, &ev);
        CHECK_DONE(ev, 100 + i, 4);
        CHECK(memcmp(buf, m, 4) == 0);
    }
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

/* Hints (see loop.c): after a short read or a cancelled wait the read side
 * is known drained, so the next recv waits for the backend's readiness
 * report instead of paying for an EAGAIN.  Data that arrived meanwhile must
 * still be delivered whole by the very next rx_poll, never lost or delayed
 * beyond it; if the hint was still set the recv completes inline. */
static void expect_recv(rx_loop *loop, int64_t r, const char *buf, int64_t token,
                        const char *want, const char *what)
{
    rx_event ev;
    if (r == RX_PENDING) {
        rx_event evs[4];
        int n = rx_poll(loop, 0, evs, 4);
        if (n != 1)
            ct_fail(__FILE__, __LINE__, "%s: data was ready but the next "
                    "rx_poll returned %d events", what, n);
        ev = evs[0];
        CHECK_DONE(ev, token, (int64_t)strlen(want));
    } else {
        CHECK_EQ(r, (int64_t)strlen(want));
    }
    CHECK(memcmp(buf, want, strlen(want)) == 0);
}

TEST(recv_ready_after_short_read)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[16];

    ct_write_all(sv[1], "abc", 3);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 1), 3);
    ct_write_all(sv[1], "def", 3);
    CHECK_EQ(ct_poll1(sv[0], POLLIN, 0) & POLLIN, POLLIN);
    expect_recv(loop, rx_recv(loop, sv[0], buf, sizeof buf, 0, 2), buf, 2,
                "def", "after a short read");
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    rx_loop_close(loop);
}

TEST(recv_ready_after_cancel)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[16];
    rx_event ev;

    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 3), RX_PENDING);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ), 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 3, RX_EV_DONE, 0, -ECANCELED);
    ct_write_all(sv[1], "ghi", 3);
    CHECK_EQ(ct_poll1(sv[0], POLLIN, 0) & POLLIN, POLLIN);
    expect_recv(loop, rx_recv(loop, sv[0], buf, sizeof buf, 0, 4), buf, 4,
                "ghi", "after a cancelled wait");
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    rx_loop_close(loop);
}

/* RX_LAZY: inline like any recv; when it must wait it holds no buffer and
 * completes as a READY event, after which a new recv reads the data. */
TEST(recv_lazy)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[16];
    rx_event ev;

    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_ALL | RX_LAZY, 1), -EINVAL);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);

    ct_write_all(sv[1], "abc", 3);                      /* ready: inline */
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 2), 3);
    CHECK(memcmp(buf, "abc", 3) == 0);

    for (int round = 0; round < 3; round++) {           /* must wait */
        memset(buf, 'x', sizeof buf);
        CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 10 + round), RX_PENDING);
        CHECK_EQ(ct_stats(loop).pending_ops, 1);
        ct_write_all(sv[1], "hello", 5);
        ct_wait_event(loop, &ev);
        CHECK_EV(ev, 10 + round, RX_EV_READY, RX_READ, 0);
        for (size_t i = 0; i < sizeof buf; i++) CHECK_EQ(buf[i], 'x');   /* untouched */
        CHECK_EQ(ct_stats(loop).pending_ops, 0);
        CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 20 + round), 5);
        CHECK(memcmp(buf, "hello", 5) == 0);
    }

    /* cancelled like any operation; end of stream wakes it */
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 30), RX_PENDING);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ), 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 30, RX_EV_DONE, 0, -ECANCELED);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 31), RX_PENDING);
    ct_close(sv[1]);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 31, RX_EV_READY, RX_READ, 0);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 32), 0);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    ct_expect_none(loop);
    forget_close(loop, sv[0]);
    rx_loop_close(loop);
}

/* rx_drained: a caller that read the descriptor itself after a READY event
 * and found it drained clears the hint, so its next recv waits without an
 * EAGAIN syscall; data that came meanwhile still arrives by the next poll. */
TEST(recv_after_caller_drained)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[16];
    rx_event ev;

    CHECK_EQ(rx_take_error(loop, -1), 0);
    CHECK_EQ(rx_take_error(loop, sv[0]), 0);                  /* unknown: none */
    CHECK_EQ(rx_drained(loop, -1, RX_READ), -EBADF);
    CHECK_EQ(rx_drained(loop, sv[0], 4), -EINVAL);
    CHECK_EQ(rx_drained(loop, sv[0], RX_READ), 0);          /* not seen yet: nothing */
    CHECK_EQ(ct_stats(loop).known_fds, 0);

    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 1), RX_PENDING);
    ct_write_all(sv[1], "abc", 3);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 1, RX_EV_READY, RX_READ, 0);
    CHECK_EQ(read(sv[0], buf, sizeof buf), 3);                  /* the caller reads */
    CHECK(memcmp(buf, "abc", 3) == 0);
    CHECK_EQ(rx_drained(loop, sv[0], RX_READ), 0);
    int64_t before = ct_stats(loop).syscalls;
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 2), RX_PENDING);
    CHECK_EQ(ct_stats(loop).syscalls - before, 0);              /* no EAGAIN paid */

    /* data that came before the wait was registered is reported at once */
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ), 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 2, RX_EV_DONE, 0, -ECANCELED);
    ct_write_all(sv[1], "def", 3);
    CHECK_EQ(rx_drained(loop, sv[0], RX_READ), 0);              /* stale in the unsafe way */
    int64_t r = rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 3);
    if (r == RX_PENDING) {
        rx_event evs[4];
        int n = rx_poll(loop, 0, evs, 4);
        if (n != 1)
            ct_fail(__FILE__, __LINE__, "data was ready but the next rx_poll returned %d "
                    "events", n);
        CHECK_EV(evs[0], 3, RX_EV_READY, RX_READ, 0);
        r = rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 4);
    }
    CHECK_EQ(r, 3);
    CHECK(memcmp(buf, "def", 3) == 0);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    rx_loop_close(loop);
}

TEST(recv_all)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[10];
    rx_event ev;
    /* deferred across three writes */
    CHECK_EQ(rx_recv(loop, sv[0], buf, 10, RX_ALL, 1), RX_PENDING);
    ct_write_all(sv[1], "012", 3);
    wait_progress(loop, sv[0], RX_READ, 3);
    ct_write_all(sv[1], "345", 3);
    wait_progress(loop, sv[0], RX_READ, 6);
    ct_expect_none(loop);
    ct_write_all(sv[1], "6789XY", 6);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, 10);
    CHECK(memcmp(buf, "0123456789", 10) == 0);
    /* the two extra bytes are still there: inline */
    CHECK_EQ(rx_recv(loop, sv[0], buf, 2, RX_ALL, 2), 2);
    CHECK(memcmp(buf, "XY", 2) == 0);
    /* inline when everything is there */
    ct_write_all(sv[1], "abcdefghij", 10);
    CHECK_EQ(ct_poll1(sv[0], POLLIN, 5000) & POLLIN, POLLIN);
    int64_t r = rx_recv(loop, sv[0], buf, 10, RX_ALL, 3);
    if (r == RX_PENDING) {   /* reported by recv_inline_after_short_read / _after_cancel */
        ct_wait_event(loop, &ev);
        r = ev.result;
    }
    CHECK_EQ(r, 10);
    CHECK(memcmp(buf, "abcdefghij", 10) == 0);
    /* inline part, rest deferred */
    ct_write_all(sv[1], "ab", 2);
    r = rx_recv(loop, sv[0], buf, 5, RX_ALL, 4);
    CHECK_EQ(r, RX_PENDING);
    ct_write_all(sv[1], "cde", 3);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 4, 5);
    CHECK(memcmp(buf, "abcde", 5) == 0);
    /* end of stream cuts it short: the bytes so far */
    CHECK_EQ(rx_recv(loop, sv[0], buf, 10, RX_ALL, 5), RX_PENDING);
    ct_write_all(sv[1], "123456", 6);
    wait_progress(loop, sv[0], RX_READ, 6);
    CHECK_SYS(shutdown(sv[1], SHUT_WR));
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 5, 6);
    CHECK(memcmp(buf, "123456", 6) == 0);
    CHECK_EQ(rx_recv(loop, sv[0], buf, 10, RX_ALL, 6), 0);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(recv_eof)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    char buf[8];
    rx_event ev;
    /* inline */
    ct_socketpair(sv);
    ct_close(sv[1]);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 1), 0);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_ALL, 2), 0);
    forget_close(loop, sv[0]);
    /* deferred */
    ct_socketpair(sv);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 3), RX_PENDING);
    ct_close(sv[1]);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 3, 0);
    /* stays at end of stream */
    int64_t r = rx_recv(loop, sv[0], buf, sizeof buf, 0, 4);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        r = ev.result;
    }
    CHECK_EQ(r, 0);
    forget_close(loop, sv[0]);
    /* shutdown(SHUT_WR) by the peer, TCP */
    int tp[2];
    CHECK_EQ(ct_tcp_pair(AF_INET, tp), 0);
    CHECK_EQ(rx_recv(loop, tp[0], buf, sizeof buf, 0, 5), RX_PENDING);
    CHECK_SYS(shutdown(tp[1], SHUT_WR));
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 5, 0);
    forget_close(loop, tp[0]);
    ct_close(tp[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(recv_zero_length)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[1];
    ct_write_all(sv[1], "x", 1);
    CHECK_EQ(rx_recv(loop, sv[0], buf, 0, 0, 1), 0);
    CHECK_EQ(rx_send(loop, sv[0], buf, 0, RX_ALL, 2), 0);
    ct_expect_none(loop);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    rx_loop_close(loop);
}

/* ---- send ------------------------------------------------------------- */

TEST(send_inline)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    CHECK_EQ(rx_send(loop, sv[0], "abc", 3, 0, 1), 3);
    CHECK_EQ(rx_send(loop, sv[0], "defg", 4, RX_ALL, 2), 4);
    CHECK_EQ(rx_send(loop, sv[0], "", 0, 0, 3), 0);
    char buf[7];
    ct_read_all(sv[1], buf, 7);
    CHECK(memcmp(buf, "abcdefg", 7) == 0);
    ct_expect_none(loop);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

/* Without RX_ALL, a send into a nearly full buffer returns what fit. */
TEST(send_partial)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    static unsigned char big[1 << 20];
    int64_t r = rx_send(loop, sv[0], big, sizeof big, 0, 1);
    CHECK_CMP(r, >, 0);
    CHECK_CMP(r, <, (int64_t)sizeof big);
    /* full now: a plain send waits, and completes with what fits later */
    r = rx_send(loop, sv[0], big, sizeof big, 0, 2);
    CHECK_EQ(r, RX_PENDING);
    ct_drain(sv[1]);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_EQ(ev.token, 2);
    CHECK_EQ(ev.kind, RX_EV_DONE);
    CHECK_CMP(ev.result, >, 0);
    CHECK_CMP(ev.result, <=, (int64_t)sizeof big);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    rx_loop_close(loop);
}

/* Move `size` bytes from wfd to rfd through one loop: an RX_ALL send and
 * a chain of plain recvs. */
static void transfer_same_loop(rx_loop *loop, int wfd, int rfd, size_t size, size_t chunk)
{
    unsigned char *src = malloc(size), *dst = malloc(size);
    CHECK(src && dst);
    ct_pattern(src, size, (uint32_t)size);
    memset(dst, 0, size);
    int64_t r = rx_send(loop, wfd, src, size, RX_ALL, 1);
    int sent = 0;
    if (r != RX_PENDING) {
        CHECK_EQ(r, (int64_t)size);
        sent = 1;
    }
    size_t got = 0;
    int recv_pending = 0, polls = 0;
    while (!sent || got < size) {
        while (!recv_pending && got < size) {
            size_t n = size - got < chunk ? size - got : chunk;
            r = rx_recv(loop, rfd, dst + got, n, 0, 2);
            if (r == RX_PENDING) {
                recv_pending = 1;
            } else {
                CHECK_CMP(r, >, 0);
                got += (size_t)r;
            }
        }
        if (sent && got == size) break;
        rx_event ev[4];
        int n = rx_poll(loop, 5000000000LL, ev, 4);
        if (n <= 0) {
            rx_stats st = ct_stats(loop);
            ct_fail(__FILE__, __LINE__,
                    "transfer stalled: rx_poll %d; sent %d got %zu of %zu, recv pending %d; "
                    "send moved %lld; pending_ops %lld; writer POLLOUT %d reader POLLIN %d",
                    n, sent, got, size, recv_pending, (long long)rx_pending_done(loop, wfd, RX_WRITE),
                    (long long)st.pending_ops, ct_poll1(wfd, POLLOUT, 0), ct_poll1(rfd, POLLIN, 0));
        }
        polls++;
        for (int i = 0; i < n; i++) {
            CHECK_EQ(ev[i].kind, RX_EV_DONE);
            if (ev[i].token == 1) {
                CHECK(!sent);
                CHECK_EQ(ev[i].result, (int64_t)size);
                sent = 1;
            } else {
                CHECK_EQ(ev[i].token, 2);
                CHECK(recv_pending);
                CHECK_CMP(ev[i].result, >, 0);
                got += (size_t)ev[i].result;
                recv_pending = 0;
            }
        }
    }
    CHECK_EQ(got, size);
    CHECK(memcmp(src, dst, size) == 0);
    CHECK(polls > 1);
    free(src);
    free(dst);
}

TEST(send_all_large_socketpair)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    transfer_same_loop(loop, sv[0], sv[1], 8u << 20, 65536);
    forget_close(loop, sv[0]);
    forget_close(loop, sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(send_all_large_tcp)
{
    rx_loop *loop = ct_loop(backend);
    int tp[2];
    CHECK_EQ(ct_tcp_pair(AF_INET, tp), 0);
    transfer_same_loop(loop, tp[0], tp[1], 8u << 20, 100000);
    forget_close(loop, tp[0]);
    forget_close(loop, tp[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

struct reader_arg {
    int fd;
    unsigned char *dst;
    size_t size;
};

static void *reader_thread(void *p)
{
    struct reader_arg *a = p;
    ct_read_all(a->fd, a->dst, a->size);
    return NULL;
}

TEST(send_all_large_thread_reader)
{
    rx_loop *loop = ct_loop(backend);
    int tp[2];
    CHECK_EQ(ct_tcp_pair(AF_INET, tp), 0);
    size_t size = 8u << 20;
    unsigned char *src = malloc(size), *dst = calloc(1, size);
    CHECK(src && dst);
    ct_pattern(src, size, 77);
    struct reader_arg a = {tp[1], dst, size};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, reader_thread, &a), 0);
    int64_t r = rx_send(loop, tp[0], src, size, RX_ALL, 9);
    if (r == RX_PENDING) {
        rx_event ev;
        ct_wait_event(loop, &ev);
        CHECK_DONE(ev, 9, (int64_t)size);
    } else {
        CHECK_EQ(r, (int64_t)size);
    }
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK(memcmp(src, dst, size) == 0);
    free(src);
    free(dst);
    forget_close(loop, tp[0]);
    ct_close(tp[1]);
    rx_loop_close(loop);
}

TEST(send_closed_peer_epipe)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    rx_event ev;
    /* inline: SIGPIPE keeps its default action, which would kill us */
    ct_socketpair(sv);
    ct_close(sv[1]);
    CHECK_EQ(rx_send(loop, sv[0], "x", 1, 0, 1), -EPIPE);
    CHECK_EQ(rx_send(loop, sv[0], "xyz", 3, RX_ALL, 2), -EPIPE);
    ct_expect_none(loop);
    forget_close(loop, sv[0]);
    /* deferred: the peer goes away while an RX_ALL send waits */
    ct_socketpair(sv);
    static unsigned char big[4 << 20];
    CHECK_EQ(rx_send(loop, sv[0], big, sizeof big, RX_ALL, 3), RX_PENDING);
    int64_t moved = rx_pending_done(loop, sv[0], RX_WRITE);
    CHECK_CMP(moved, >, 0);
    ct_close(sv[1]);
    ct_wait_event(loop, &ev);
    CHECK_EQ(ev.token, 3);
    CHECK_EQ(ev.kind, RX_EV_DONE);
    if (ev.result != -EPIPE && ev.result != -ECONNRESET)
        ct_fail(__FILE__, __LINE__, "result %s, want -EPIPE or -ECONNRESET", ct_errname(ev.result));
    CHECK_EQ(ev.aux, moved);
    forget_close(loop, sv[0]);
    /* TCP: after the peer's close, sends fail (first may be accepted) */
    int tp[2];
    CHECK_EQ(ct_tcp_pair(AF_INET, tp), 0);
    ct_close(tp[1]);
    int64_t r = 0;
    for (int i = 0; i < 100 && r >= 0; i++) {
        r = rx_send(loop, tp[0], "x", 1, 0, 4);
        if (r == RX_PENDING) {
            ct_wait_event(loop, &ev);
            r = ev.result;
        }
        if (r >= 0) ct_poll1(tp[0], POLLERR | POLLHUP, 100);   /* wait for the RST */
    }
    if (r != -EPIPE && r != -ECONNRESET) ct_fail(__FILE__, __LINE__, "tcp send: %s", ct_errname(r));
    forget_close(loop, tp[0]);
    check_clean(loop);
    rx_loop_close(loop);
}

static void reset_close(int fd)
{
    struct linger lg = {1, 0};
    CHECK_SYS(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    ct_close(fd);
}

/* Arena recvs (tokens tok, tok + 1) waiting on the two socketpairs, then
 * their peers write a and b and both become readable. */
static void arena_pair(rx_loop *loop, int sv[2][2], char *buf, int64_t tok, const char *a,
                       const char *b)
{
    CHECK_EQ(rx_recv(loop, sv[0][0], buf, 8, RX_LAZY | RX_ARENA, tok), RX_PENDING);
    CHECK_EQ(rx_recv(loop, sv[1][0], buf, 8, RX_LAZY | RX_ARENA, tok + 1), RX_PENDING);
    ct_write_all(sv[0][1], a, strlen(a));
    ct_write_all(sv[1][1], b, strlen(b));
    CHECK_EQ(ct_poll1(sv[0][0], POLLIN, 5000) & POLLIN, POLLIN);
    CHECK_EQ(ct_poll1(sv[1][0], POLLIN, 5000) & POLLIN, POLLIN);
}

/* RX_ARENA: a lazy recv that waits reads into the loop's arena when its
 * descriptor becomes ready, and the event carries the bytes' place there;
 * without room for its length it reports readiness like RX_LAZY alone. */
TEST(recv_arena)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2][2];
    ct_socketpair(sv[0]);
    ct_socketpair(sv[1]);
    char buf[16];
    rx_event ev, evs[2];

    CHECK_EQ(rx_recv(loop, sv[0][0], buf, 8, RX_ARENA, 1), -EINVAL);   /* not without LAZY */
    /* before rx_arena is called there is no arena: readiness, as RX_LAZY */
    CHECK_EQ(rx_recv(loop, sv[0][0], buf, 8, RX_LAZY | RX_ARENA, 2), RX_PENDING);
    ct_write_all(sv[0][1], "ab", 2);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 2, RX_EV_READY, RX_READ, 0);
    CHECK_EQ(rx_recv(loop, sv[0][0], buf, 8, RX_LAZY, 3), 2);

    size_t size = 0;
    char *arena = rx_arena(loop, &size);
    CHECK(arena != NULL);
    CHECK(size >= 4096);
    CHECK(rx_arena(loop, NULL) == arena);               /* one per loop */

    /* two connections in one poll: both read, one after the other */
    arena_pair(loop, sv, buf, 10, "hello", "world!");
    ct_collect(loop, evs, 2);
    CHECK_EQ(evs[0].kind, RX_EV_DATA);
    CHECK_EQ(evs[1].kind, RX_EV_DATA);
    for (int i = 0; i < 2; i++) {
        const rx_event *e = evs[0].token == 10 + i ? &evs[0] : &evs[1];
        const char *want = i == 0 ? "hello" : "world!";
        CHECK_EQ(e->token, 10 + i);
        CHECK_EQ(e->result, (int64_t)strlen(want));
        CHECK(e->aux >= 0 && (size_t)e->aux + (size_t)e->result <= size);
        CHECK(memcmp(arena + e->aux, want, strlen(want)) == 0);
    }
    /* side by side, not overlapping */
    CHECK(evs[0].aux + evs[0].result <= evs[1].aux || evs[1].aux + evs[1].result <= evs[0].aux);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);

    /* a poll empties the arena once its events are handed out; the
     * caller's buffer is not touched */
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(rx_recv(loop, sv[0][0], buf, 8, RX_LAZY | RX_ARENA, 12), RX_PENDING);
    ct_write_all(sv[0][1], "again", 5);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 12, RX_EV_DATA, 0, 5);
    CHECK(memcmp(arena, "again", 5) == 0);
    for (size_t i = 0; i < sizeof buf; i++) CHECK_EQ(buf[i], 'x');

    /* events still queued keep their bytes: polled one at a time */
    arena_pair(loop, sv, buf, 13, "first", "second");
    int got = 0;
    int64_t end = ct_mono() + 5000000000LL;
    while (got < 2 && ct_mono() < end) {
        int n = rx_poll(loop, 10000000, &ev, 1);
        CHECK(n >= 0);
        if (n == 0) continue;
        CHECK_EQ(ev.kind, RX_EV_DATA);
        const char *want = ev.token == 13 ? "first" : "second";
        CHECK_EQ(ev.result, (int64_t)strlen(want));
        CHECK(memcmp(arena + ev.aux, want, strlen(want)) == 0);
        got++;
    }
    CHECK_EQ(got, 2);

    /* a length the arena has no room for: readiness instead */
    char big[16];
    CHECK_EQ(rx_recv(loop, sv[0][0], big, size + 1, RX_LAZY | RX_ARENA, 15), RX_PENDING);
    ct_write_all(sv[0][1], "z", 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 15, RX_EV_READY, RX_READ, 0);
    CHECK_EQ(rx_recv(loop, sv[0][0], buf, sizeof buf, RX_LAZY, 16), 1);

    /* cancelled like any operation; end of stream is a DATA event of 0 */
    CHECK_EQ(rx_recv(loop, sv[0][0], buf, 8, RX_LAZY | RX_ARENA, 17), RX_PENDING);
    CHECK_EQ(rx_cancel(loop, sv[0][0], RX_READ), 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 17, RX_EV_DONE, 0, -ECANCELED);
    CHECK_EQ(rx_recv(loop, sv[0][0], buf, 8, RX_LAZY | RX_ARENA, 18), RX_PENDING);
    ct_close(sv[0][1]);
    ct_wait_event(loop, &ev);
    CHECK_EQ(ev.token, 18);
    CHECK_EQ(ev.kind, RX_EV_DATA);
    CHECK_EQ(ev.result, 0);
    forget_close(loop, sv[0][0]);
    forget_close(loop, sv[1][0]);
    ct_close(sv[1][1]);
    /* an error is a DONE event */
    int tp[2];
    CHECK_EQ(ct_tcp_pair(AF_INET, tp), 0);
    CHECK_EQ(rx_recv(loop, tp[0], buf, 8, RX_LAZY | RX_ARENA, 19), RX_PENDING);
    reset_close(tp[1]);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 19, RX_EV_DONE, 0, -ECONNRESET);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    ct_expect_none(loop);
    forget_close(loop, tp[0]);
    rx_loop_close(loop);
}

TEST(recv_connection_reset)
{
    rx_loop *loop = ct_loop(backend);
    int tp[2];
    char buf[8];
    rx_event ev;
    /* deferred */
    CHECK_EQ(ct_tcp_pair(AF_INET, tp), 0);
    CHECK_EQ(rx_recv(loop, tp[0], buf, sizeof buf, 0, 1), RX_PENDING);
    reset_close(tp[1]);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, -ECONNRESET);
    forget_close(loop, tp[0]);
    /* inline: the reset has arrived before the recv */
    CHECK_EQ(ct_tcp_pair(AF_INET, tp), 0);
    reset_close(tp[1]);
    CHECK(ct_poll1(tp[0], POLLIN, 5000) != 0);
    CHECK_EQ(rx_recv(loop, tp[0], buf, sizeof buf, 0, 2), -ECONNRESET);
    forget_close(loop, tp[0]);
    /* RX_ALL with bytes before the reset: the bytes, then the error */
    CHECK_EQ(ct_tcp_pair(AF_INET, tp), 0);
    CHECK_EQ(rx_recv(loop, tp[0], buf, sizeof buf, RX_ALL, 3), RX_PENDING);
    ct_write_all(tp[1], "abc", 3);
    wait_progress(loop, tp[0], RX_READ, 3);
    reset_close(tp[1]);
    ct_wait_event(loop, &ev);
    CHECK_EQ(ev.token, 3);
    CHECK_EQ(ev.kind, RX_EV_DONE);
    CHECK_EQ(ev.aux, 3);
    /* either the 3 bytes or the error, but the bytes are reported in aux */
    CHECK(ev.result == 3 || ev.result == -ECONNRESET);
    if (ev.result == 3) {
        /* the error is not lost: the next recv reports it, at once */
        CHECK(memcmp(buf, "abc", 3) == 0);
        CHECK_EQ(rx_recv(loop, tp[0], buf, sizeof buf, RX_LAZY, 4), -ECONNRESET);
        CHECK_EQ(rx_recv(loop, tp[0], buf, sizeof buf, 0, 5), 0);     /* then the end */
    }
    forget_close(loop, tp[0]);
    /* the same when the bytes and the reset are both there before the recv */
    CHECK_EQ(ct_tcp_pair(AF_INET, tp), 0);
    ct_write_all(tp[1], "defg", 4);
    CHECK(ct_poll1(tp[0], POLLIN, 5000) != 0);
    reset_close(tp[1]);
    int64_t r = rx_recv(loop, tp[0], buf, sizeof buf, RX_ALL, 6);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        CHECK_EQ(ev.token, 6);
        r = ev.result;
    }
    if (r == 4) {
        CHECK(memcmp(buf, "defg", 4) == 0);
        /* rx_take_error hands it over instead, once */
        CHECK_EQ(rx_take_error(loop, tp[0]), -ECONNRESET);
        CHECK_EQ(rx_take_error(loop, tp[0]), 0);
        CHECK_EQ(rx_recv(loop, tp[0], buf, sizeof buf, RX_ALL, 7), 0);
    } else {
        CHECK_EQ(r, -ECONNRESET);     /* the reset discarded the bytes */
    }
    forget_close(loop, tp[0]);
    check_clean(loop);
    rx_loop_close(loop);
}

/* ---- accept / connect ------------------------------------------------- */

static void check_new_fd(int fd)
{
    CHECK_CMP(fd, >=, 0);
    int fl = fcntl(fd, F_GETFL);
    CHECK(fl >= 0 && (fl & O_NONBLOCK));
    int fdfl = fcntl(fd, F_GETFD);
    CHECK(fdfl >= 0 && (fdfl & FD_CLOEXEC));
}

static int connect_blocking(const struct sockaddr_storage *addr, socklen_t len)
{
    int c = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_SYS(c);
    CHECK_SYS(connect(c, (const struct sockaddr *)addr, len));
    return c;
}

static void accept_family(rx_loop *loop, int family)
{
    struct sockaddr_storage addr;
    socklen_t len;
    int l = ct_listener(family, SOCK_STREAM, &addr, &len);
    if (l < 0) return;   /* no IPv6 here */
    rx_event ev;
    /* inline: a connection is already waiting */
    int c1 = connect_blocking(&addr, len);
    int64_t a1 = rx_accept(loop, l, 1);
    check_new_fd((int)a1);
    /* deferred */
    int64_t r = rx_accept(loop, l, 2);
    CHECK_EQ(r, RX_PENDING);
    CHECK_EQ(ct_stats(loop).pending_ops, 1);
    ct_expect_none(loop);
    int c2 = connect_blocking(&addr, len);
    ct_wait_event(loop, &ev);
    CHECK_EQ(ev.token, 2);
    CHECK_EQ(ev.kind, RX_EV_DONE);
    int a2 = (int)ev.result;
    check_new_fd(a2);
    /* each accepted descriptor is the peer of its client */
    ct_write_all(c1, "1", 1);
    ct_write_all(c2, "2", 1);
    char b;
    CHECK_EQ(ct_poll1((int)a1, POLLIN, 5000) & POLLIN, POLLIN);
    CHECK_EQ(rx_recv(loop, (int)a1, &b, 1, 0, 3), 1);
    CHECK_EQ(b, '1');
    CHECK_EQ(ct_poll1(a2, POLLIN, 5000) & POLLIN, POLLIN);
    CHECK_EQ(read(a2, &b, 1), 1);
    CHECK_EQ(b, '2');
    forget_close(loop, (int)a1);
    ct_close(a2);
    ct_close(c1);
    ct_close(c2);
    forget_close(loop, l);
}

TEST(accept_inline_and_deferred)
{
    rx_loop *loop = ct_loop(backend);
    accept_family(loop, AF_INET);
    accept_family(loop, AF_INET6);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(accept_errors)
{
    rx_loop *loop = ct_loop(backend);
    /* not listening */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_SYS(s);
    CHECK_EQ(rx_accept(loop, s, 1), -EINVAL);
    forget_close(loop, s);
    /* not a socket */
    int p[2];
    CHECK_SYS(pipe2(p, O_CLOEXEC));
    int64_t r = rx_accept(loop, p[0], 2);
    CHECK(r == -ENOTSOCK);
    forget_close(loop, p[0]);
    ct_close(p[1]);
    ct_expect_none(loop);
    rx_loop_close(loop);
}

static void connect_family(rx_loop *loop, int family)
{
    struct sockaddr_storage addr;
    socklen_t len;
    int l = ct_listener(family, SOCK_STREAM, &addr, &len);
    if (l < 0) return;
    rx_event ev;
    int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);   /* blocking: the loop fixes it */
    CHECK_SYS(c);
    int64_t r = rx_connect(loop, c, &addr, (uint32_t)len, 1);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        CHECK_DONE(ev, 1, 0);
    } else {
        CHECK_EQ(r, 0);
    }
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    CHECK_SYS(s);
    /* the connection works through the loop */
    CHECK_EQ(rx_send(loop, c, "ping", 4, RX_ALL, 2), 4);
    char buf[4];
    ct_read_all(s, buf, 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK_EQ(rx_recv(loop, c, buf, 4, RX_ALL, 3), RX_PENDING);
    ct_write_all(s, "pong", 4);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 3, 4);
    CHECK(memcmp(buf, "pong", 4) == 0);
    /* connecting again: Linux answers 0 to the first connect() after an
     * asynchronous completion, -EISCONN after that */
    r = rx_connect(loop, c, &addr, (uint32_t)len, 4);
    CHECK(r == 0 || r == -EISCONN);
    CHECK_EQ(rx_connect(loop, c, &addr, (uint32_t)len, 5), -EISCONN);
    forget_close(loop, c);
    ct_close(s);
    ct_close(l);
}

TEST(connect_ok)
{
    rx_loop *loop = ct_loop(backend);
    connect_family(loop, AF_INET);
    connect_family(loop, AF_INET6);
    check_clean(loop);
    rx_loop_close(loop);
}

static void refused_family(rx_loop *loop, int family)
{
    struct sockaddr_storage addr;
    socklen_t len;
    int ref = ct_refusing(family, &addr, &len);
    if (ref < 0) return;
    for (int i = 0; i < 3; i++) {
        int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        CHECK_SYS(c);
        int64_t r = rx_connect(loop, c, &addr, (uint32_t)len, 10 + i);
        if (r == RX_PENDING) {
            rx_event ev;
            ct_wait_event(loop, &ev);
            CHECK_DONE(ev, 10 + i, -ECONNREFUSED);
        } else {
            CHECK_EQ(r, -ECONNREFUSED);
        }
        CHECK_EQ(ct_stats(loop).pending_ops, 0);
        forget_close(loop, c);
    }
    ct_close(ref);
}

TEST(connect_refused)
{
    rx_loop *loop = ct_loop(backend);
    refused_family(loop, AF_INET);
    refused_family(loop, AF_INET6);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(connect_bad_args)
{
    rx_loop *loop = ct_loop(backend);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_SYS(c);
    CHECK_EQ(rx_connect(loop, c, NULL, 16, 1), -EINVAL);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    CHECK_EQ(rx_connect(loop, c, &a, 3, 2), -EINVAL);   /* too short */
    ct_expect_none(loop);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    forget_close(loop, c);
    rx_loop_close(loop);
}

/* ---- datagrams -------------------------------------------------------- */

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

static void udp_family(rx_loop *loop, int family)
{
    struct sockaddr_storage aaddr, baddr;
    socklen_t alen, blen;
    int a = ct_listener(family, SOCK_DGRAM, &aaddr, &alen);
    if (a < 0) return;
    int b = ct_listener(family, SOCK_DGRAM, &baddr, &blen);
    CHECK(b >= 0);
    uint32_t want_len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    rx_event ev;

    /* deferred recvfrom, inline sendto */
    char buf[64];
    struct sockaddr_storage from;
    memset(&from, 0xee, sizeof from);
    uint32_t fromlen = sizeof from;
    CHECK_EQ(rx_recvfrom(loop, b, buf, sizeof buf, &from, &fromlen, 1), RX_PENDING);
    CHECK_EQ(rx_sendto(loop, a, "ping", 4, &baddr, (uint32_t)blen, 2), 4);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK_EQ(fromlen, want_len);
    CHECK(same_addr(&from, &aaddr));

    /* inline recvfrom: the datagram is already there */
    CHECK_EQ(rx_sendto(loop, b, "pong!", 5, &aaddr, (uint32_t)alen, 3), 5);
    CHECK_EQ(ct_poll1(a, POLLIN, 5000) & POLLIN, POLLIN);
    memset(&from, 0, sizeof from);
    fromlen = sizeof from;
    int64_t r = rx_recvfrom(loop, a, buf, sizeof buf, &from, &fromlen, 4);
    CHECK_EQ(r, 5);
    CHECK(memcmp(buf, "pong!", 5) == 0);
    CHECK_EQ(fromlen, want_len);
    CHECK(same_addr(&from, &baddr));

    /* a datagram larger than the buffer is cut to the buffer */
    CHECK_EQ(rx_sendto(loop, a, "0123456789", 10, &baddr, (uint32_t)blen, 5), 10);
    CHECK_EQ(ct_poll1(b, POLLIN, 5000) & POLLIN, POLLIN);
    fromlen = sizeof from;
    CHECK_EQ(rx_recvfrom(loop, b, buf, 4, &from, &fromlen, 6), 4);
    CHECK(memcmp(buf, "0123", 4) == 0);
    /* a zero-length datagram is a datagram */
    CHECK_EQ(rx_sendto(loop, a, "", 0, &baddr, (uint32_t)blen, 7), 0);
    CHECK_EQ(ct_poll1(b, POLLIN, 5000) & POLLIN, POLLIN);
    fromlen = sizeof from;
    CHECK_EQ(rx_recvfrom(loop, b, buf, sizeof buf, &from, &fromlen, 8), 0);
    CHECK(same_addr(&from, &aaddr));

    /* -EINVAL without an address buffer */
    CHECK_EQ(rx_recvfrom(loop, b, buf, sizeof buf, NULL, &fromlen, 9), -EINVAL);
    CHECK_EQ(rx_recvfrom(loop, b, buf, sizeof buf, &from, NULL, 9), -EINVAL);
    ct_expect_none(loop);
    forget_close(loop, a);
    forget_close(loop, b);
}

TEST(udp_recvfrom_sendto)
{
    rx_loop *loop = ct_loop(backend);
    udp_family(loop, AF_INET);
    udp_family(loop, AF_INET6);
    check_clean(loop);
    rx_loop_close(loop);
}

/* A datagram socket whose peer's queue is full makes sendto wait. */
TEST(sendto_deferred_unix_dgram)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    CHECK_SYS(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
    char d[256] = {0};
    int sent = 0;
    while (send(sv[0], d, sizeof d, MSG_DONTWAIT) == (ssize_t)sizeof d) sent++;
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    CHECK_EQ(rx_sendto(loop, sv[0], "last", 4, NULL, 0, 1), RX_PENDING);
    CHECK_EQ(ct_stats(loop).pending_ops, 1);
    ct_expect_none(loop);
    /* read them all; the waiting datagram goes out */
    char buf[256];
    for (int i = 0; i < sent; i++) CHECK_EQ(recv(sv[1], buf, sizeof buf, 0), 256);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, 4);
    CHECK_EQ(recv(sv[1], buf, sizeof buf, 0), 4);
    CHECK(memcmp(buf, "last", 4) == 0);
    /* recvfrom on an unnamed AF_UNIX socket: deferred, tiny address */
    struct sockaddr_storage from;
    uint32_t fromlen = sizeof from;
    CHECK_EQ(rx_recvfrom(loop, sv[1], buf, sizeof buf, &from, &fromlen, 2), RX_PENDING);
    ct_write_all(sv[0], "hi", 2);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 2, 2);
    CHECK_CMP(fromlen, <=, sizeof from);
    forget_close(loop, sv[0]);
    forget_close(loop, sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

/* ---- watch ------------------------------------------------------------ */

TEST(watch_inline_and_deferred)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    rx_event ev;
    CHECK_EQ(rx_watch(loop, sv[0], RX_WRITE, 1), RX_WRITE);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ | RX_WRITE, 2), RX_WRITE);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    /* read side: deferred */
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ, 3), RX_PENDING);
    CHECK_EQ(ct_stats(loop).pending_ops, 1);
    ct_expect_none(loop);
    ct_write_all(sv[1], "x", 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 3, RX_EV_READY, RX_READ, 0);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    /* a watch does not consume: still readable, inline now */
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ, 4), RX_READ);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ | RX_WRITE, 5), RX_READ | RX_WRITE);
    char b;
    CHECK_EQ(rx_recv(loop, sv[0], &b, 1, 0, 6), 1);
    /* write side: deferred */
    size_t filled = ct_fill(sv[0]);
    CHECK_CMP(filled, >, 0);
    CHECK_EQ(rx_watch(loop, sv[0], RX_WRITE, 7), RX_PENDING);
    ct_expect_none(loop);
    ct_drain(sv[1]);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 7, RX_EV_READY, RX_WRITE, 0);
    /* hang-up counts as readable */
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ, 8), RX_PENDING);
    ct_close(sv[1]);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 8, RX_EV_READY, RX_READ, 0);
    ct_expect_none(loop);
    forget_close(loop, sv[0]);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(watch_both_sides_fires_once)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    rx_event ev;
    ct_fill(sv[0]);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ | RX_WRITE, 5), RX_PENDING);
    CHECK_EQ(ct_stats(loop).pending_ops, 1);
    ct_write_all(sv[1], "x", 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 5, RX_EV_READY, RX_READ, 0);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    /* the write side becoming ready later reports nothing */
    ct_drain(sv[1]);
    CHECK_EQ(ct_poll1(sv[0], POLLOUT, 5000) & POLLOUT, POLLOUT);
    CHECK_EQ(rx_poll(loop, 20000000, &ev, 1), 0);
    /* both sides free again for new operations */
    char b;
    CHECK_EQ(rx_recv(loop, sv[0], &b, 1, 0, 6), 1);
    CHECK_EQ(rx_send(loop, sv[0], "y", 1, 0, 7), 1);
    /* the write side fires it too (and only once) */
    ct_fill(sv[0]);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ | RX_WRITE, 8), RX_PENDING);
    ct_drain(sv[1]);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 8, RX_EV_READY, RX_WRITE, 0);
    CHECK_EQ(rx_poll(loop, 20000000, &ev, 1), 0);
    /* cancelling either side cancels the one watch: one event */
    ct_fill(sv[0]);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ | RX_WRITE, 9), RX_PENDING);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_WRITE), 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 9, RX_EV_DONE, 0, -ECANCELED);
    ct_expect_none(loop);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ | RX_WRITE, 10), RX_PENDING);
    CHECK_EQ(rx_forget(loop, sv[0]), 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 10, RX_EV_DONE, 0, -ECANCELED);
    ct_expect_none(loop);
    ct_close(sv[0]);
    ct_close(sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

/* Two separate one-sided watches that happen to share a token are two
 * watches: each reports its own event and can be cancelled on its own. */
TEST(watch_two_watches_same_token)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    rx_event ev;
    ct_fill(sv[0]);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ, 7), RX_PENDING);
    CHECK_EQ(rx_watch(loop, sv[0], RX_WRITE, 7), RX_PENDING);
    CHECK_EQ(ct_stats(loop).pending_ops, 2);
    ct_write_all(sv[1], "x", 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 7, RX_EV_READY, RX_READ, 0);
    CHECK_EQ(ct_stats(loop).pending_ops, 1);   /* the write watch still waits */
    ct_drain(sv[1]);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 7, RX_EV_READY, RX_WRITE, 0);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);

    /* cancel one of them: the other stays */
    char b;
    CHECK_EQ(rx_recv(loop, sv[0], &b, 1, 0, 1), 1);
    ct_fill(sv[0]);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ, 8), RX_PENDING);
    CHECK_EQ(rx_watch(loop, sv[0], RX_WRITE, 8), RX_PENDING);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ), 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 8, RX_EV_DONE, 0, -ECANCELED);
    CHECK_EQ(ct_stats(loop).pending_ops, 1);
    CHECK_EQ(rx_forget(loop, sv[0]), 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 8, RX_EV_DONE, 0, -ECANCELED);
    ct_close(sv[0]);
    ct_close(sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(watch_bad_args)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    CHECK_EQ(rx_watch(loop, sv[0], 0, 1), -EINVAL);
    CHECK_EQ(rx_watch(loop, sv[0], 4, 1), -EINVAL);
    CHECK_EQ(rx_watch(loop, sv[0], -1, 1), -EINVAL);
    CHECK_EQ(rx_watch(loop, -1, RX_READ, 1), -EBADF);
    ct_expect_none(loop);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    rx_loop_close(loop);
}

/* ---- busy / cancel / forget ------------------------------------------- */

TEST(ebusy_one_op_per_side)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[8];
    struct sockaddr_storage ss;
    uint32_t sl = sizeof ss;
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 1), RX_PENDING);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 2), -EBUSY);
    CHECK_EQ(rx_accept(loop, sv[0], 2), -EBUSY);
    CHECK_EQ(rx_recvfrom(loop, sv[0], buf, sizeof buf, &ss, &sl, 2), -EBUSY);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ, 2), -EBUSY);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ | RX_WRITE, 2), -EBUSY);
    /* the write side is free */
    CHECK_EQ(rx_watch(loop, sv[0], RX_WRITE, 3), RX_WRITE);
    CHECK_EQ(rx_send(loop, sv[0], "a", 1, 0, 3), 1);
    ct_fill(sv[0]);
    CHECK_EQ(rx_send(loop, sv[0], "b", 1, 0, 4), RX_PENDING);
    CHECK_EQ(rx_send(loop, sv[0], "c", 1, 0, 5), -EBUSY);
    CHECK_EQ(rx_sendto(loop, sv[0], "c", 1, NULL, 0, 5), -EBUSY);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    CHECK_EQ(rx_connect(loop, sv[0], &a, sizeof a, 5), -EBUSY);
    CHECK_EQ(rx_watch(loop, sv[0], RX_WRITE, 5), -EBUSY);
    CHECK_EQ(ct_stats(loop).pending_ops, 2);
    /* the busy calls queued nothing and changed nothing */
    ct_expect_none(loop);
    /* the original two still complete */
    ct_write_all(sv[1], "z", 1);
    ct_drain(sv[1]);
    rx_event ev[2];
    ct_collect(loop, ev, 2);
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        if (ev[i].token == 1) {
            CHECK_DONE(ev[i], 1, 1);
            seen |= 1;
        }
        if (ev[i].token == 4) {
            CHECK_DONE(ev[i], 4, 1);
            seen |= 2;
        }
    }
    CHECK_EQ(seen, 3);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(cancel_pending_recv)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[8] = {0};
    rx_event ev;
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ | RX_WRITE), 0);   /* unknown fd */
    CHECK_EQ(rx_cancel(loop, -1, RX_READ), 0);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 3), RX_PENDING);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_WRITE), 0);   /* other side: nothing */
    CHECK_EQ(ct_stats(loop).pending_ops, 1);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ), 1);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    CHECK_EQ(ct_stats(loop).queued_events, 1);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ), 0);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 3, RX_EV_DONE, 0, -ECANCELED);
    ct_expect_none(loop);
    /* data sent afterwards is not delivered into the cancelled buffer */
    ct_write_all(sv[1], "zz", 2);
    CHECK_EQ(rx_poll(loop, 10000000, &ev, 1), 0);
    CHECK(buf[0] == 0);
    char b2[8];
    int64_t r = rx_recv(loop, sv[0], b2, sizeof b2, 0, 4);
    if (r == RX_PENDING) {   /* see recv_inline_after_short_read / _after_cancel */
        ct_wait_event(loop, &ev);
        r = ev.result;
    }
    CHECK_EQ(r, 2);
    /* an RX_ALL recv cancelled halfway reports its bytes in aux */
    CHECK_EQ(rx_recv(loop, sv[0], buf, 8, RX_ALL, 5), RX_PENDING);
    ct_write_all(sv[1], "1234", 4);
    wait_progress(loop, sv[0], RX_READ, 4);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ | RX_WRITE), 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 5, RX_EV_DONE, 4, -ECANCELED);
    CHECK(memcmp(buf, "1234", 4) == 0);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(cancel_send_all_reports_bytes)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    size_t size = 8u << 20;
    unsigned char *src = malloc(size), *dst = malloc(size);
    CHECK(src && dst);
    ct_pattern(src, size, 5);
    CHECK_EQ(rx_send(loop, sv[0], src, size, RX_ALL, 1), RX_PENDING);
    int64_t moved = rx_pending_done(loop, sv[0], RX_WRITE);
    CHECK_CMP(moved, >, 0);
    CHECK_CMP(moved, <, (int64_t)size);
    /* the reader takes most of it (an AF_UNIX sender gets space back only
     * as whole buffers are consumed); the loop sends more */
    size_t taken = (size_t)moved / 8 * 7;
    ct_read_all(sv[1], dst, taken);
    int64_t end = ct_mono() + 5000000000LL;
    rx_event ev;
    while (rx_pending_done(loop, sv[0], RX_WRITE) == moved) {
        CHECK_CMP(ct_mono(), <, end);
        CHECK_EQ(rx_poll(loop, 1000000, &ev, 1), 0);
    }
    moved = rx_pending_done(loop, sv[0], RX_WRITE);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_WRITE), 1);
    CHECK_EQ(rx_pending_done(loop, sv[0], RX_WRITE), -ENOENT);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 1, RX_EV_DONE, moved, -ECANCELED);
    /* exactly aux bytes went out, and they are the buffer's first bytes */
    for (;;) {
        ssize_t n = recv(sv[1], dst + taken, size - taken, MSG_DONTWAIT);
        if (n <= 0) break;
        taken += (size_t)n;
    }
    CHECK_EQ(taken, moved);
    CHECK(memcmp(src, dst, taken) == 0);
    free(src);
    free(dst);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(pending_done)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    CHECK_EQ(rx_pending_done(loop, sv[0], RX_READ), -ENOENT);   /* unknown */
    CHECK_EQ(rx_pending_done(loop, -1, RX_READ), -ENOENT);
    char buf[10];
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_ALL, 1), RX_PENDING);
    CHECK_EQ(rx_pending_done(loop, sv[0], RX_READ), 0);
    CHECK_EQ(rx_pending_done(loop, sv[0], RX_WRITE), -ENOENT);
    CHECK_EQ(rx_pending_done(loop, sv[0], RX_READ | RX_WRITE), -ENOENT);
    CHECK_EQ(rx_pending_done(loop, sv[0], 0), -ENOENT);
    ct_write_all(sv[1], "abc", 3);
    wait_progress(loop, sv[0], RX_READ, 3);
    CHECK_EQ(rx_forget(loop, sv[0]), 1);
    CHECK_EQ(rx_pending_done(loop, sv[0], RX_READ), -ENOENT);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 1, RX_EV_DONE, 3, -ECANCELED);
    /* a pending connect reports 0 */
    struct sockaddr_storage addr;
    socklen_t len;
    int l = ct_listener(AF_INET, SOCK_STREAM, &addr, &len);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    CHECK_SYS(c);
    int64_t r = rx_connect(loop, c, &addr, (uint32_t)len, 2);
    if (r == RX_PENDING) {
        CHECK_EQ(rx_pending_done(loop, c, RX_WRITE), 0);
        ct_wait_event(loop, &ev);
        CHECK_DONE(ev, 2, 0);
    }
    forget_close(loop, c);
    ct_close(l);
    ct_close(sv[0]);
    ct_close(sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

/* rx_withdraw: cancels one side and returns what its operation moved */
TEST(withdraw)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    CHECK_EQ(rx_withdraw(loop, sv[0], RX_READ), -ENOENT);   /* unknown */
    CHECK_EQ(rx_withdraw(loop, -1, RX_READ), -ENOENT);
    char buf[10];
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_ALL, 1), RX_PENDING);
    CHECK_EQ(rx_withdraw(loop, sv[0], RX_READ | RX_WRITE), -ENOENT);
    CHECK_EQ(rx_withdraw(loop, sv[0], RX_WRITE), -ENOENT);   /* nothing there */
    ct_write_all(sv[1], "abc", 3);
    wait_progress(loop, sv[0], RX_READ, 3);
    CHECK_EQ(rx_withdraw(loop, sv[0], RX_READ), 3);
    CHECK_EQ(rx_withdraw(loop, sv[0], RX_READ), -ENOENT);    /* gone */
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 1, RX_EV_DONE, 3, -ECANCELED);
    CHECK(memcmp(buf, "abc", 3) == 0);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(forget_drops_everything)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[8];
    static unsigned char big[1 << 20];
    CHECK_EQ(rx_forget(loop, sv[0]), 0);   /* unknown: nothing */
    CHECK_EQ(rx_forget(loop, -5), 0);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 1), RX_PENDING);
    CHECK_EQ(rx_send(loop, sv[0], big, sizeof big, RX_ALL, 2), RX_PENDING);
    int64_t moved = rx_pending_done(loop, sv[0], RX_WRITE);
    rx_stats s = ct_stats(loop);
    CHECK_EQ(s.pending_ops, 2);
    CHECK_EQ(s.known_fds, 1);
    CHECK_EQ(s.registered_fds, 1);
    CHECK_EQ(rx_forget(loop, sv[0]), 2);
    s = ct_stats(loop);
    CHECK_EQ(s.pending_ops, 0);
    CHECK_EQ(s.known_fds, 0);
    CHECK_EQ(s.registered_fds, 0);
    CHECK_EQ(s.queued_events, 2);
    rx_event ev[2];
    ct_collect(loop, ev, 2);
    CHECK_EV(ev[0], 1, RX_EV_DONE, 0, -ECANCELED);
    CHECK_EV(ev[1], 2, RX_EV_DONE, moved, -ECANCELED);
    CHECK_EQ(rx_forget(loop, sv[0]), 0);
    /* readiness after forget reports nothing */
    ct_drain(sv[1]);
    ct_write_all(sv[1], "q", 1);
    CHECK_EQ(rx_poll(loop, 10000000, ev, 2), 0);
    /* the descriptor can be used again */
    int64_t r = rx_recv(loop, sv[0], buf, sizeof buf, 0, 3);
    if (r == RX_PENDING) {
        ct_wait_event(loop, ev);
        CHECK_DONE(ev[0], 3, 1);
    } else {
        CHECK_EQ(r, 1);
    }
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 4), RX_PENDING);
    forget_close(loop, sv[1]);   /* never seen by the loop: forget is a no-op */
    ct_wait_event(loop, ev);     /* the close is an end of stream */
    CHECK_DONE(ev[0], 4, 0);
    /* forget, close, and a new descriptor with the same number */
    int old = sv[0];
    CHECK_EQ(rx_forget(loop, sv[0]), 0);
    ct_close(sv[0]);
    ct_socketpair(sv);
    int fresh = sv[0] == old ? sv[0] : sv[1];
    int other = fresh == sv[0] ? sv[1] : sv[0];
    CHECK_EQ(fresh, old);
    CHECK_EQ(rx_recv(loop, fresh, buf, sizeof buf, 0, 5), RX_PENDING);
    ct_write_all(other, "new", 3);
    ct_wait_event(loop, ev);
    CHECK_DONE(ev[0], 5, 3);
    forget_close(loop, sv[0]);
    forget_close(loop, sv[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

/* ---- pipes, files, bad descriptors ----------------------------------- */

TEST(pipe_ops)
{
    rx_loop *loop = ct_loop(backend);
    int p[2];
    CHECK_SYS(pipe2(p, O_CLOEXEC));   /* blocking on purpose */
    char buf[8];
    rx_event ev;
    CHECK_EQ(rx_recv(loop, p[0], buf, sizeof buf, 0, 1), RX_PENDING);
    CHECK_EQ(rx_send(loop, p[1], "abc", 3, 0, 2), 3);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
    /* inline read */
    CHECK_EQ(rx_send(loop, p[1], "de", 2, RX_ALL, 3), 2);
    CHECK_EQ(rx_recv(loop, p[0], buf, sizeof buf, 0, 4), 2);
    /* RX_ALL across writes */
    CHECK_EQ(rx_recv(loop, p[0], buf, 6, RX_ALL, 5), RX_PENDING);
    CHECK_EQ(rx_send(loop, p[1], "123", 3, 0, 6), 3);
    wait_progress(loop, p[0], RX_READ, 3);
    CHECK_EQ(rx_send(loop, p[1], "456", 3, 0, 7), 3);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 5, 6);
    CHECK(memcmp(buf, "123456", 6) == 0);
    /* large RX_ALL through the pipe, read by the same loop */
    transfer_same_loop(loop, p[1], p[0], 1u << 20, 4096);
    /* end of stream */
    CHECK_EQ(rx_recv(loop, p[0], buf, sizeof buf, 0, 8), RX_PENDING);
    forget_close(loop, p[1]);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 8, 0);
    /* a watch on a pipe */
    forget_close(loop, p[0]);
    CHECK_SYS(pipe2(p, O_CLOEXEC));
    CHECK_EQ(rx_watch(loop, p[1], RX_WRITE, 9), RX_WRITE);
    CHECK_EQ(rx_watch(loop, p[0], RX_READ, 10), RX_PENDING);
    ct_write_all(p[1], "w", 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 10, RX_EV_READY, RX_READ, 0);
    forget_close(loop, p[0]);
    forget_close(loop, p[1]);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(regular_file_ops)
{
    rx_loop *loop = ct_loop(backend);
    char path[] = "/tmp/pycos-ctest-XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    CHECK_SYS(fd);
    CHECK_SYS(unlink(path));
    unsigned char data[10000], back[10000];
    ct_pattern(data, sizeof data, 3);
    CHECK_EQ(rx_send(loop, fd, data, sizeof data, RX_ALL, 1), (int64_t)sizeof data);
    CHECK_EQ(rx_send(loop, fd, data, 10, 0, 2), 10);
    CHECK_SYS(lseek(fd, 0, SEEK_SET));
    CHECK_EQ(rx_recv(loop, fd, back, sizeof back, RX_ALL, 3), (int64_t)sizeof back);
    CHECK(memcmp(data, back, sizeof data) == 0);
    CHECK_EQ(rx_recv(loop, fd, back, sizeof back, 0, 4), 10);
    CHECK_EQ(rx_recv(loop, fd, back, sizeof back, 0, 5), 0);   /* end of file */
    CHECK_EQ(rx_recv(loop, fd, back, sizeof back, RX_ALL, 6), 0);
    CHECK_EQ(rx_watch(loop, fd, RX_READ | RX_WRITE, 7), RX_READ | RX_WRITE);
    ct_expect_none(loop);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    forget_close(loop, fd);
    check_clean(loop);
    rx_loop_close(loop);
}

TEST(bad_descriptors)
{
    rx_loop *loop = ct_loop(backend);
    int closed = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_SYS(closed);
    ct_close(closed);
    int bad[] = {-1, closed, 1000000};
    char buf[4];
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    struct sockaddr_storage ss;
    uint32_t sl = sizeof ss;
    for (int i = 0; i < 3; i++) {
        int fd = bad[i];
        CHECK_EQ(rx_recv(loop, fd, buf, sizeof buf, 0, 1), -EBADF);
        CHECK_EQ(rx_send(loop, fd, buf, sizeof buf, RX_ALL, 1), -EBADF);
        CHECK_EQ(rx_accept(loop, fd, 1), -EBADF);
        CHECK_EQ(rx_connect(loop, fd, &a, sizeof a, 1), -EBADF);
        CHECK_EQ(rx_recvfrom(loop, fd, buf, sizeof buf, &ss, &sl, 1), -EBADF);
        CHECK_EQ(rx_sendto(loop, fd, buf, sizeof buf, &a, sizeof a, 1), -EBADF);
        CHECK_EQ(rx_watch(loop, fd, RX_READ, 1), -EBADF);
        CHECK_EQ(rx_cancel(loop, fd, RX_READ | RX_WRITE), 0);
        CHECK_EQ(rx_forget(loop, fd), 0);
        CHECK_EQ(rx_pending_done(loop, fd, RX_READ), -ENOENT);
    }
    ct_expect_none(loop);
    check_clean(loop);
    rx_loop_close(loop);
}
