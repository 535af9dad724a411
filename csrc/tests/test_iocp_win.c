/*
 * test_iocp_win.c - the operations on Windows (the iocp backend), the
 * counterpart of test_ops.c, whose descriptors are POSIX ones (AF_UNIX
 * socketpairs, pipe2, fcntl flags, open/unlink): the same behaviours on
 * loopback TCP/UDP sockets, overlapped named pipes and an overlapped file.
 * Inline and deferred completion, RX_ALL, end of stream, reset, refused,
 * accept and connect, datagrams, cancel and forget with the buffers left
 * alone afterwards (the loop owns the kernel's memory until it is done),
 * readiness watches where Windows has them, -EBUSY, bad descriptors.
 * Timers and wakeups are test_timers.c and test_wakeup.c, which run here
 * too.  Compiled only on Windows.
 */
#ifdef _WIN32
#include "tests.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void close_pair(rx_loop *loop, int sv[2])
{
    CHECK_EQ(rx_forget(loop, sv[0]), 0);
    CHECK_EQ(rx_forget(loop, sv[1]), 0);
    ct_close(sv[0]);
    ct_close(sv[1]);
}

/* the peer of fd resets the connection (RST, not FIN) */
static void reset_close(int fd)
{
    struct linger lg = {1, 0};
    CHECK_WSA(setsockopt((SOCKET)fd, SOL_SOCKET, SO_LINGER, (char *)&lg, sizeof lg));
    ct_close(fd);
}

/* wait until fd has something to read (the kernel has the bytes) */
static void until_readable(int fd)
{
    CHECK(ct_poll1(fd, POLLIN, 5000) & POLLIN);
}

TEST(iocp_recv_inline)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    ct_write_all(sv[1], "hello", 5);
    until_readable(sv[0]);
    char buf[16];
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 1), 5);   /* no event */
    CHECK(memcmp(buf, "hello", 5) == 0);
    ct_expect_none(loop);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    close_pair(loop, sv);
    rx_loop_close(loop);
}

TEST(iocp_recv_deferred)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[16];
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 7), RX_PENDING);
    CHECK_EQ(ct_stats(loop).pending_ops, 1);
    CHECK_EQ(rx_poll(loop, 10000000, (rx_event[1]){{0}}, 1), 0);
    ct_write_all(sv[1], "abc", 3);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 7, 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    /* many rounds, alternating who waits */
    for (int i = 0; i < 200; i++) {
        char out[8], in[8];
        snprintf(out, sizeof out, "m%05d", i);
        CHECK_EQ(rx_recv(loop, sv[0], in, 6, RX_ALL, 100 + i), RX_PENDING);
        CHECK_EQ(rx_send(loop, sv[1], out, 6, RX_ALL, 1000 + i), 6);   /* inline */
        ct_wait_event(loop, &ev);
        CHECK_DONE(ev, 100 + i, 6);
        CHECK(memcmp(in, out, 6) == 0);
    }
    ct_expect_none(loop);
    close_pair(loop, sv);
    rx_loop_close(loop);
}

TEST(iocp_recv_all_and_eof)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    unsigned char pat[100], buf[100];
    ct_pattern(pat, sizeof pat, 3);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_ALL, 1), RX_PENDING);
    ct_write_all(sv[1], pat, 30);
    CHECK_EQ(rx_poll(loop, 20000000, (rx_event[1]){{0}}, 1), 0);
    CHECK_EQ(rx_pending_done(loop, sv[0], RX_READ), 30);
    ct_write_all(sv[1], pat + 30, 70);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, 100);
    CHECK(ct_pattern_ok(buf, sizeof buf, 3));

    /* end of stream: fewer bytes, then 0 */
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_ALL, 2), RX_PENDING);
    ct_write_all(sv[1], "xyz", 3);
    CHECK_WSA(shutdown((SOCKET)sv[1], SD_SEND));
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 2, 3);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 3), 0);   /* inline EOF */
    close_pair(loop, sv);

    /* end of stream while waiting */
    ct_socketpair(sv);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 4), RX_PENDING);
    CHECK_WSA(shutdown((SOCKET)sv[1], SD_SEND));
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 4, 0);
    close_pair(loop, sv);
    rx_loop_close(loop);
}

TEST(iocp_recv_reset)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[16];
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 1), RX_PENDING);
    reset_close(sv[1]);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, -ECONNRESET);
    /* and a send to the reset connection fails */
    int64_t r = rx_send(loop, sv[0], "x", 1, 0, 2);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        r = ev.result;
    }
    CHECK_CMP(r, <, 0);
    CHECK_EQ(rx_forget(loop, sv[0]), 0);
    ct_close(sv[0]);
    rx_loop_close(loop);
}

/* rx_withdraw counts what the kernel call in flight moved since the last
 * poll: an RX_ALL recv whose first bytes the kernel has taken off the
 * socket (its completion still queued) gives them back, where
 * rx_pending_done() still says 0 */
TEST(iocp_withdraw_counts_the_call_in_flight)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[100];
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_ALL, 1), RX_PENDING);
    ct_write_all(sv[1], "part", 4);
    u_long unread = 1;
    for (int i = 0; i < 5000 && unread; i++) {   /* until the kernel took them */
        CHECK_WSA(ioctlsocket((SOCKET)sv[0], FIONREAD, &unread));
        if (unread) Sleep(1);
    }
    CHECK_EQ(unread, 0);
    CHECK_EQ(rx_pending_done(loop, sv[0], RX_READ), 0);
    CHECK_EQ(rx_withdraw(loop, sv[0], RX_READ), 4);
    CHECK(memcmp(buf, "part", 4) == 0);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 1, RX_EV_DONE, 4, -ECANCELED);
    close_pair(loop, sv);
    rx_loop_close(loop);
}

/* a lazy recv (a zero-byte WSARecv) waiting when the peer resets: READY,
 * then the recv says reset, not end of stream */
TEST(iocp_lazy_recv_reset)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[16];
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 1), RX_PENDING);
    reset_close(sv[1]);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 1, RX_EV_READY, RX_READ, 0);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 2), -ECONNRESET);
    CHECK_EQ(rx_forget(loop, sv[0]), 0);
    ct_close(sv[0]);
    rx_loop_close(loop);
}

struct reader {
    int fd;
    size_t len;
    unsigned char *buf;
};

static void *reader_thread(void *p)
{
    struct reader *a = p;
    ct_read_all(a->fd, a->buf, a->len);
    return NULL;
}

TEST(iocp_send_all_large)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    enum { LEN = 8 << 20 };
    unsigned char *out = malloc(LEN), *in = malloc(LEN);
    CHECK(out && in);
    ct_pattern(out, LEN, 11);
    CHECK_EQ(rx_send(loop, sv[0], "hi", 2, 0, 1), 2);   /* inline */
    char hi[2];
    ct_read_all(sv[1], hi, 2);
    struct reader a = {sv[1], LEN, in};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, reader_thread, &a), 0);
    int64_t r = rx_send(loop, sv[0], out, LEN, RX_ALL, 2);
    if (r == RX_PENDING) {
        rx_event ev;
        ct_wait_event(loop, &ev);
        CHECK_DONE(ev, 2, LEN);
    } else {
        CHECK_EQ(r, LEN);
    }
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK(ct_pattern_ok(in, LEN, 11));
    free(out);
    free(in);
    close_pair(loop, sv);
    rx_loop_close(loop);
}

TEST(iocp_accept_and_connect)
{
    rx_loop *loop = ct_loop(backend);
    struct sockaddr_storage addr;
    socklen_t alen;
    int l = ct_listener(AF_INET, SOCK_STREAM, &addr, &alen);
    rx_event ev;
    /* deferred accept, connect from the loop */
    CHECK_EQ(rx_accept(loop, l, 1), RX_PENDING);
    SOCKET c = WSASocketW(AF_INET, SOCK_STREAM, 0, NULL, 0, WSA_FLAG_OVERLAPPED);
    CHECK(c != INVALID_SOCKET);
    int64_t r = rx_connect(loop, (int)c, &addr, alen, 2);
    CHECK(r == 0 || r == RX_PENDING);
    int got = 0, a = -1;
    rx_event evs[2];
    ct_collect(loop, evs, r == RX_PENDING ? 2 : 1);
    for (int i = 0; i < (r == RX_PENDING ? 2 : 1); i++) {
        if (evs[i].token == 1) {
            CHECK_EQ(evs[i].kind, RX_EV_DONE);
            CHECK_CMP(evs[i].result, >=, 0);
            a = (int)evs[i].result;
            got |= 1;
        } else {
            CHECK_DONE(evs[i], 2, 0);
            got |= 2;
        }
    }
    CHECK(got & 1);
    /* the accepted socket works with the loop, both ways */
    char buf[8];
    CHECK_EQ(rx_send(loop, (int)c, "ping", 4, RX_ALL, 3), 4);
    r = rx_recv(loop, a, buf, 4, RX_ALL, 4);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        CHECK_DONE(ev, 4, 4);
    } else {
        CHECK_EQ(r, 4);
    }
    CHECK(memcmp(buf, "ping", 4) == 0);
    /* getpeername works on the accepted socket (SO_UPDATE_ACCEPT_CONTEXT) */
    struct sockaddr_storage peer;
    int pl = sizeof peer;
    CHECK_WSA(getpeername((SOCKET)a, (struct sockaddr *)&peer, &pl));

    /* a connection already waiting: accept completes (inline or at once) */
    SOCKET c2 = WSASocketW(AF_INET, SOCK_STREAM, 0, NULL, 0, WSA_FLAG_OVERLAPPED);
    CHECK_WSA(connect(c2, (struct sockaddr *)&addr, alen));
    r = rx_accept(loop, l, 5);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        CHECK_EQ(ev.token, 5);
        r = ev.result;
    }
    CHECK_CMP(r, >=, 0);
    CHECK_EQ(rx_forget(loop, (int)r), 0);
    ct_close((int)r);
    ct_close((int)c2);
    CHECK_EQ(rx_forget(loop, a), 0);
    CHECK_EQ(rx_forget(loop, (int)c), 0);
    CHECK_EQ(rx_forget(loop, l), 0);
    ct_close(a);
    ct_close((int)c);
    ct_close(l);
    rx_loop_close(loop);
}

TEST(iocp_connect_refused)
{
    rx_loop *loop = ct_loop(backend);
    struct sockaddr_storage addr;
    socklen_t alen;
    int b = ct_refusing(AF_INET, &addr, &alen);
    SOCKET c = WSASocketW(AF_INET, SOCK_STREAM, 0, NULL, 0, WSA_FLAG_OVERLAPPED);
    int64_t r = rx_connect(loop, (int)c, &addr, alen, 1);
    if (r == RX_PENDING) {
        rx_event ev;
        ct_wait_event(loop, &ev);
        CHECK_EQ(ev.token, 1);
        r = ev.result;
    }
    CHECK_EQ(r, -ECONNREFUSED);
    CHECK_EQ(rx_connect(loop, (int)c, NULL, 0, 2), -EINVAL);
    CHECK_EQ(rx_forget(loop, (int)c), 0);
    ct_close((int)c);
    ct_close(b);
    rx_loop_close(loop);
}

TEST(iocp_udp)
{
    rx_loop *loop = ct_loop(backend);
    struct sockaddr_storage aaddr, baddr, from;
    socklen_t alen, blen;
    int a = ct_listener(AF_INET, SOCK_DGRAM, &aaddr, &alen);
    int b = ct_listener(AF_INET, SOCK_DGRAM, &baddr, &blen);
    char buf[64];
    uint32_t flen = sizeof from;
    CHECK_EQ(rx_recvfrom(loop, b, buf, sizeof buf, &from, &flen, 1), RX_PENDING);
    CHECK_EQ(rx_sendto(loop, a, "dgram", 5, &baddr, blen, 2), 5);   /* inline */
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, 5);
    CHECK(memcmp(buf, "dgram", 5) == 0);
    CHECK_EQ(flen, sizeof(struct sockaddr_in));
    CHECK_EQ(((struct sockaddr_in *)&from)->sin_port, ((struct sockaddr_in *)&aaddr)->sin_port);
    /* a datagram already there: inline; too long for the buffer: truncated */
    CHECK_EQ(rx_sendto(loop, a, "0123456789", 10, &baddr, blen, 3), 10);
    until_readable(b);
    flen = sizeof from;
    CHECK_EQ(rx_recvfrom(loop, b, buf, 4, &from, &flen, 4), 4);
    CHECK(memcmp(buf, "0123", 4) == 0);
    /* a datagram to a closed port does not fail the next recvfrom */
    struct sockaddr_storage gone;
    socklen_t glen;
    int g = ct_listener(AF_INET, SOCK_DGRAM, &gone, &glen);
    ct_close(g);
    CHECK_EQ(rx_sendto(loop, b, "x", 1, &gone, glen, 5), 1);
    CHECK_EQ(rx_sendto(loop, a, "y", 1, &baddr, blen, 6), 1);
    flen = sizeof from;
    int64_t r = rx_recvfrom(loop, b, buf, sizeof buf, &from, &flen, 7);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        CHECK_EQ(ev.token, 7);
        r = ev.result;
    }
    CHECK_EQ(r, 1);
    CHECK_EQ(buf[0], 'y');
    CHECK_EQ(rx_forget(loop, a), 0);
    CHECK_EQ(rx_forget(loop, b), 0);
    ct_close(a);
    ct_close(b);
    rx_loop_close(loop);
}

/* ---- cancel: memory stays the loop's until the kernel is done ----------- */

TEST(iocp_cancel_keeps_data)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[16];
    memset(buf, '.', sizeof buf);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 1), RX_PENDING);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ), 1);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ), 0);   /* nothing left */
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 1, RX_EV_DONE, 0, -ECANCELED);
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    /* bytes sent after the cancel are not taken by the cancelled recv */
    ct_write_all(sv[1], "after", 5);
    until_readable(sv[0]);
    CHECK_EQ(rx_poll(loop, 20000000, &ev, 1), 0);
    CHECK_EQ(buf[0], '.');
    char buf2[16];
    CHECK_EQ(rx_recv(loop, sv[0], buf2, sizeof buf2, 0, 2), 5);
    CHECK(memcmp(buf2, "after", 5) == 0);
    close_pair(loop, sv);
    rx_loop_close(loop);
}

TEST(iocp_cancel_send_all_reports_bytes)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    size_t filled = ct_fill(sv[0]);
    CHECK_CMP(filled, >, 0);
    static char big[4 << 20];
    int64_t r = rx_send(loop, sv[0], big, sizeof big, RX_ALL, 1);
    if (r != RX_PENDING) SKIP("the send was taken whole at once (%lld): Wine buffers it",
                              (long long)r);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_WRITE), 1);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_EQ(ev.token, 1);
    CHECK_EQ(ev.result, -ECANCELED);
    CHECK_CMP(ev.aux, >=, 0);
    CHECK_CMP(ev.aux, <, (int64_t)sizeof big);
    close_pair(loop, sv);
    rx_loop_close(loop);
}

TEST(iocp_forget_and_close_leave_buffers_alone)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char *buf = malloc(64);
    CHECK(buf);
    memset(buf, '.', 64);
    CHECK_EQ(rx_recv(loop, sv[0], buf, 64, 0, 1), RX_PENDING);
    CHECK_EQ(rx_watch(loop, sv[1], RX_READ, 2), RX_PENDING);
    CHECK_EQ(rx_forget(loop, sv[0]), 1);
    CHECK_EQ(rx_forget(loop, sv[1]), 1);
    rx_event ev[2];
    ct_collect(loop, ev, 2);
    for (int i = 0; i < 2; i++) CHECK_EV(ev[i], i + 1, RX_EV_DONE, 0, -ECANCELED);
    rx_stats s = ct_stats(loop);
    CHECK_EQ(s.pending_ops, 0);
    CHECK_EQ(s.known_fds, 0);
    CHECK_EQ(s.registered_fds, 0);
    ct_write_all(sv[1], "late", 4);
    until_readable(sv[0]);
    CHECK_EQ(rx_poll(loop, 20000000, ev, 2), 0);
    for (int i = 0; i < 64; i++) CHECK_EQ(buf[i], '.');

    /* closing the loop with a recv in flight: the buffer is the caller's
     * again at once */
    char rd[4];
    CHECK_EQ(rx_recv(loop, sv[0], rd, 4, 0, 3), 4);   /* "late", inline */
    CHECK_EQ(rx_recv(loop, sv[0], buf, 64, 0, 4), RX_PENDING);
    rx_loop_close(loop);
    ct_write_all(sv[1], "after close", 11);
    until_readable(sv[0]);
    for (int i = 0; i < 64; i++) CHECK_EQ(buf[i], '.');
    free(buf);
    ct_close(sv[0]);
    ct_close(sv[1]);
}

/* ---- watches, lazy recvs, -EBUSY, bad descriptors ----------------------- */

TEST(iocp_watch_and_lazy)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    rx_event ev;
    CHECK_EQ(rx_watch(loop, sv[0], RX_WRITE, 1), RX_WRITE);   /* inline */
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ | RX_WRITE, 1), RX_WRITE);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ, 2), RX_PENDING);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ, 2), -EBUSY);
    ct_write_all(sv[1], "r", 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 2, RX_EV_READY, RX_READ, 0);
    CHECK_EQ(rx_watch(loop, sv[0], RX_READ, 3), RX_READ);   /* the byte is still there */
    char c;
    CHECK_EQ(rx_recv(loop, sv[0], &c, 1, 0, 4), 1);
    CHECK_EQ(c, 'r');

    /* RX_LAZY: waits without the buffer, then READY; the caller reads */
    char buf[8];
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 5), RX_PENDING);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 6), -EBUSY);
    ct_write_all(sv[1], "lazy", 4);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 5, RX_EV_READY, RX_READ, 0);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY, 7), 4);   /* data: inline */
    CHECK(memcmp(buf, "lazy", 4) == 0);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, RX_LAZY | RX_ALL, 8), -EINVAL);

    /* a write watch that would have to wait: Windows has no such report */
    ct_fill(sv[0]);
    CHECK_EQ(rx_watch(loop, sv[0], RX_WRITE, 9), -ENOTSUP);
    CHECK_EQ(rx_watch(loop, sv[0], 0, 9), -EINVAL);
    ct_expect_none(loop);
    close_pair(loop, sv);
    rx_loop_close(loop);
}

TEST(iocp_ebusy_and_bad_descriptors)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char a[4], b[4];
    CHECK_EQ(rx_recv(loop, sv[0], a, 4, 0, 1), RX_PENDING);
    CHECK_EQ(rx_recv(loop, sv[0], b, 4, 0, 2), -EBUSY);
    CHECK_EQ(rx_accept(loop, sv[0], 3), -EBUSY);
    CHECK_EQ(rx_send(loop, sv[0], "z", 1, 0, 4), 1);   /* the other side is free */
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ | RX_WRITE), 1);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 1, RX_EV_DONE, 0, -ECANCELED);
    close_pair(loop, sv);

    CHECK_EQ(rx_recv(loop, -1, a, 4, 0, 5), -EBADF);
    CHECK_EQ(rx_send(loop, -1, a, 4, 0, 5), -EBADF);
    SOCKET s = WSASocketW(AF_INET, SOCK_STREAM, 0, NULL, 0, WSA_FLAG_OVERLAPPED);
    int closed = (int)s;
    ct_close(closed);
    CHECK_EQ(rx_recv(loop, closed, a, 4, 0, 6), -EBADF);
    CHECK_EQ(rx_drained(loop, -1, RX_READ), -EBADF);
    CHECK_EQ(rx_drained(loop, 5, 8), -EINVAL);
    CHECK_EQ(rx_pending_done(loop, 12345, RX_READ), -ENOENT);
    CHECK_EQ(ct_stats(loop).known_fds, 0);
    rx_loop_close(loop);
}

/* ---- pipes and files (AsyncPipe, AsyncFile) ----------------------------- */

TEST(iocp_pipe_ops)
{
    rx_loop *loop = ct_loop(backend);
    int rd, wr;
    ct_win_pipe(&rd, &wr, 0);
    char buf[16];
    rx_event ev;
    CHECK_EQ(rx_recv(loop, rd, buf, sizeof buf, 0, 1), RX_PENDING);
    ct_write_all(wr, "pipe", 4);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, 4);
    CHECK(memcmp(buf, "pipe", 4) == 0);
    ct_close(wr);
    /* the writer is gone: end of stream */
    int64_t r = rx_recv(loop, rd, buf, sizeof buf, 0, 2);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        CHECK_EQ(ev.token, 2);
        r = ev.result;
    }
    CHECK_EQ(r, 0);
    CHECK_EQ(rx_watch(loop, rd, RX_READ, 3), -ENOTSUP);
    CHECK_EQ(rx_forget(loop, rd), 0);
    ct_close(rd);

    /* a large RX_ALL transfer through an overlapped pipe, both ends on the
     * loop */
    ct_win_pipe(&rd, &wr, 1);
    enum { LEN = 1 << 20 };
    unsigned char *out = malloc(LEN), *in = malloc(LEN);
    CHECK(out && in);
    ct_pattern(out, LEN, 5);
    int64_t rs = rx_send(loop, wr, out, LEN, RX_ALL, 10);
    int64_t rr = rx_recv(loop, rd, in, LEN, RX_ALL, 11);
    int want = (rs == RX_PENDING) + (rr == RX_PENDING);
    rx_event evs[2];
    ct_collect(loop, evs, want);
    for (int i = 0; i < want; i++) CHECK_EQ(evs[i].result, LEN);
    CHECK(ct_pattern_ok(in, LEN, 5));
    free(out);
    free(in);
    CHECK_EQ(rx_forget(loop, rd), 0);
    CHECK_EQ(rx_forget(loop, wr), 0);
    ct_close(rd);
    ct_close(wr);
    rx_loop_close(loop);
}

TEST(iocp_file_ops)
{
    rx_loop *loop = ct_loop(backend);
    wchar_t dir[MAX_PATH], path[MAX_PATH];
    CHECK(GetTempPathW(MAX_PATH, dir) > 0);
    CHECK(GetTempFileNameW(dir, L"rx", 0, path) != 0);
    HANDLE h = CreateFileW(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                           FILE_FLAG_OVERLAPPED | FILE_FLAG_DELETE_ON_CLOSE, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    int fd = (int)(intptr_t)h;
    rx_event ev;
    int64_t r = rx_send(loop, fd, "file data", 9, RX_ALL, 1);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        CHECK_EQ(ev.token, 1);
        r = ev.result;
    }
    CHECK_EQ(r, 9);
    /* the loop keeps the file position: a new state reads from the start */
    CHECK_EQ(rx_forget(loop, fd), 0);
    LARGE_INTEGER zero = {0};
    CHECK(SetFilePointerEx(h, zero, NULL, FILE_BEGIN));
    char buf[32];
    r = rx_recv(loop, fd, buf, sizeof buf, 0, 2);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        CHECK_EQ(ev.token, 2);
        r = ev.result;
    }
    CHECK_EQ(r, 9);
    CHECK(memcmp(buf, "file data", 9) == 0);
    r = rx_recv(loop, fd, buf, sizeof buf, 0, 3);   /* end of file */
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        r = ev.result;
    }
    CHECK_EQ(r, 0);
    CHECK_EQ(rx_forget(loop, fd), 0);
    CHECK(CloseHandle(h));
    rx_loop_close(loop);
}
#endif /* _WIN32 */
