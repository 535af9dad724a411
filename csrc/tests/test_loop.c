/*
 * test_loop.c - loop creation and close, backends, rx_loop_fd, rx_poll's
 * timeout and batching, and rx_loop_stats.
 */
#include "tests.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#endif

/* Windows has one backend, iocp: the tests that name two use it twice. */
#ifdef _WIN32
#define FIRST_NAME "iocp"
#define SECOND_NAME "iocp"
#else
#define FIRST_NAME "epoll"
#define SECOND_NAME "poll"
#endif

TEST(loop_new_named)
{
    int err = 999;
    rx_loop *loop = rx_loop_new(backend, &err);
    CHECK(loop != NULL);
    CHECK_EQ(err, 0);
    CHECK(strcmp(rx_loop_backend(loop), backend) == 0);
    rx_loop_close(loop);

    /* both names work whatever the run's backend */
    const char *names[] = {FIRST_NAME, SECOND_NAME};
    for (int i = 0; i < 2; i++) {
        loop = rx_loop_new(names[i], NULL);   /* err may be NULL */
        CHECK(loop != NULL);
        CHECK(strcmp(rx_loop_backend(loop), names[i]) == 0);
        rx_loop_close(loop);
    }
    rx_loop_close(NULL);   /* harmless */
}

TEST(loop_new_unknown)
{
    int err = 0;
    CHECK(rx_loop_new("nonesuch", &err) == NULL);
    CHECK_EQ(err, -EINVAL);
    err = 0;
    CHECK(rx_loop_new("EPOLL", &err) == NULL);   /* names are exact */
    CHECK_EQ(err, -EINVAL);
    CHECK(rx_loop_new("kqueue", NULL) == NULL);   /* not compiled in here */
}

TEST(loop_new_env)
{
    CHECK_SYS(setenv("PYCOS_BACKEND", backend, 1));
    int err = 1;
    rx_loop *loop = rx_loop_new(NULL, &err);
    CHECK(loop != NULL);
    CHECK_EQ(err, 0);
    CHECK(strcmp(rx_loop_backend(loop), backend) == 0);
    rx_loop_close(loop);

    /* an explicit name beats the environment */
    const char *other = strcmp(backend, SECOND_NAME) == 0 ? FIRST_NAME : SECOND_NAME;
    loop = rx_loop_new(other, &err);
    CHECK(loop != NULL);
    CHECK(strcmp(rx_loop_backend(loop), other) == 0);
    rx_loop_close(loop);

    CHECK_SYS(setenv("PYCOS_BACKEND", "bogus", 1));
    err = 0;
    CHECK(rx_loop_new(NULL, &err) == NULL);
    CHECK_EQ(err, -EINVAL);

    /* no variable: the best backend, the first of rx_backends() */
    CHECK_SYS(unsetenv("PYCOS_BACKEND"));
    loop = rx_loop_new(NULL, &err);
    CHECK(loop != NULL);
    const char *all = rx_backends();
    size_t n = strlen(rx_loop_backend(loop));
    CHECK(strncmp(all, rx_loop_backend(loop), n) == 0 && (all[n] == ',' || all[n] == 0));
    rx_loop_close(loop);
}

TEST(backends_list)
{
    const char *all = rx_backends();
    CHECK(all != NULL);
    CHECK(strcmp(all, rx_backends()) == 0);
#ifdef __linux__
    CHECK(strcmp(all, "epoll,poll") == 0);
#endif
    /* every listed name makes a loop of that name */
    char copy[128];
    CHECK(strlen(all) < sizeof copy);
    strcpy(copy, all);
    int count = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        rx_loop *loop = rx_loop_new(t, NULL);
        CHECK(loop != NULL);
        CHECK(strcmp(rx_loop_backend(loop), t) == 0);
        rx_loop_close(loop);
        count++;
    }
    CHECK(count >= 1);
}

TEST(loop_fd)
{
    rx_loop *loop = ct_loop(backend);
    int lfd = rx_loop_fd(loop);
    /* a completion port is no descriptor another program could poll */
    if (strcmp(backend, "poll") == 0 || strcmp(backend, "iocp") == 0) {
        CHECK_EQ(lfd, -ENOTSUP);
        rx_loop_close(loop);
        return;
    }
    CHECK_CMP(lfd, >=, 0);
    CHECK_EQ(rx_loop_fd(loop), lfd);
#ifndef _WIN32
    int fdfl = fcntl(lfd, F_GETFD);
    CHECK(fdfl >= 0 && (fdfl & FD_CLOEXEC));
    CHECK_EQ(ct_poll1(lfd, POLLIN, 0), 0);

    /* a wakeup makes it readable; rx_poll consumes it */
    CHECK_EQ(rx_wakeup(loop), 0);
    CHECK(ct_poll1(lfd, POLLIN, 5000) & POLLIN);
    rx_event ev;
    CHECK_EQ(rx_poll(loop, 0, &ev, 1), 1);
    CHECK_EV(ev, 0, RX_EV_WAKEUP, 0, 0);
    CHECK_EQ(ct_poll1(lfd, POLLIN, 0), 0);

    /* I/O readiness of a waiting operation makes it readable */
    int sv[2];
    ct_socketpair(sv);
    char buf[8];
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 7), RX_PENDING);
    /* registering the socket may report its (unwanted) writability once:
     * that makes the descriptor readable but rx_poll reports nothing */
    if (ct_poll1(lfd, POLLIN, 0)) CHECK_EQ(rx_poll(loop, 0, &ev, 1), 0);
    CHECK_EQ(ct_poll1(lfd, POLLIN, 0), 0);
    ct_write_all(sv[1], "hey", 3);
    CHECK(ct_poll1(lfd, POLLIN, 5000) & POLLIN);
    CHECK_EQ(rx_poll(loop, 0, &ev, 1), 1);
    CHECK_DONE(ev, 7, 3);
    CHECK(memcmp(buf, "hey", 3) == 0);
    ct_expect_none(loop);

    CHECK_EQ(rx_forget(loop, sv[0]), 0);
    rx_loop_close(loop);
    ct_close(sv[0]);
    ct_close(sv[1]);
#endif
}

/* Closing a loop with everything in flight frees it all (ASan / valgrind
 * check) and leaves the caller's descriptors open. */
TEST(loop_close_busy)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2], sv2[2];
    ct_socketpair(sv);
    ct_socketpair(sv2);
    struct sockaddr_storage addr;
    socklen_t alen;
    int l = ct_listener(AF_INET, SOCK_STREAM, &addr, &alen);

    static char rbuf[100];
    CHECK_EQ(rx_recv(loop, sv[0], rbuf, sizeof rbuf, RX_ALL, 1), RX_PENDING);
    ct_fill(sv[0]);
    static char big[1 << 20];
    CHECK_EQ(rx_send(loop, sv[0], big, sizeof big, RX_ALL, 2), RX_PENDING);
    CHECK_EQ(rx_accept(loop, l, 3), RX_PENDING);
    CHECK_EQ(rx_watch(loop, sv2[0], RX_READ, 4), RX_PENDING);
    for (int i = 0; i < 1000; i++) CHECK_RC(rx_timer_after(loop, 100.0 + i, 10 + i));
    CHECK_RC(rx_timer_after(loop, 0, 5));   /* due, not yet collected */
    CHECK_EQ(rx_wakeup(loop), 0);
    rx_event ev;
    /* one event out, the rest stays queued */
    CHECK_EQ(rx_poll(loop, 0, &ev, 1), 1);
    rx_stats s = ct_stats(loop);
    CHECK_EQ(s.pending_ops, 4);
    CHECK_EQ(s.timers, 1000);
    CHECK_EQ(s.queued_events, 1);
    rx_loop_close(loop);

    int fds[] = {sv[0], sv[1], sv2[0], sv2[1], l};
    for (int i = 0; i < 5; i++) {
#ifdef _WIN32
        int type, tl = sizeof type;
        CHECK_WSA(getsockopt((SOCKET)fds[i], SOL_SOCKET, SO_TYPE, (char *)&type, &tl));
#else
        CHECK(fcntl(fds[i], F_GETFD) >= 0);
#endif
        ct_close(fds[i]);
    }
}

TEST(poll_timeout_zero)
{
    rx_loop *loop = ct_loop(backend);
    rx_event ev[4];
    int64_t t0 = ct_mono();
    for (int i = 0; i < 100; i++) CHECK_EQ(rx_poll(loop, 0, ev, 4), 0);
    CHECK_CMP(ct_mono() - t0, <, 2000000000LL);
    /* a far timer does not make a zero timeout wait */
    CHECK_RC(rx_timer_after(loop, 60.0, 1));
    t0 = ct_mono();
    CHECK_EQ(rx_poll(loop, 0, ev, 4), 0);
    CHECK_CMP(ct_mono() - t0, <, 1000000000LL);
    rx_loop_close(loop);
}

TEST(poll_timeout_honoured)
{
    rx_loop *loop = ct_loop(backend);
    rx_event ev[4];
    const int64_t ms = 1000000;
    int64_t sizes[] = {1 * ms, 30 * ms, 1500 * 1000 /* 1.5 ms */, 50 * ms};
    for (int i = 0; i < 4; i++) {
        int64_t t0 = ct_mono();
        CHECK_EQ(rx_poll(loop, sizes[i], ev, 4), 0);
        CHECK_CMP(ct_mono() - t0, >=, sizes[i]);
    }
    /* a later timer does not end the wait */
    CHECK_RC(rx_timer_after(loop, 30.0, 1));
    int64_t t0 = ct_mono();
    CHECK_EQ(rx_poll(loop, 20 * ms, ev, 4), 0);
    CHECK_CMP(ct_mono() - t0, >=, 20 * ms);

    /* readiness that completes nothing does not end the wait either: make
     * the descriptor known and registered, then leave it without an op */
    int sv[2];
    ct_socketpair(sv);
    char buf[4];
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 5), RX_PENDING);
    CHECK_EQ(rx_cancel(loop, sv[0], RX_READ), 1);
    ct_wait_event(loop, ev);
    CHECK_EV(ev[0], 5, RX_EV_DONE, 0, -ECANCELED);
    ct_write_all(sv[1], "x", 1);
    t0 = ct_mono();
    CHECK_EQ(rx_poll(loop, 30 * ms, ev, 4), 0);
    CHECK_CMP(ct_mono() - t0, >=, 30 * ms);
    /* the data is still there for the next recv (inline: see
     * recv_inline_after_cancel in test_ops.c) */
    int64_t r = rx_recv(loop, sv[0], buf, sizeof buf, 0, 6);
    if (r == RX_PENDING) {
        ct_wait_event(loop, ev);
        CHECK_DONE(ev[0], 6, 1);
    } else {
        CHECK_EQ(r, 1);
    }
    CHECK_EQ(buf[0], 'x');
    CHECK_EQ(rx_forget(loop, sv[0]), 0);
    ct_close(sv[0]);
    ct_close(sv[1]);
    rx_loop_close(loop);
}

TEST(poll_einval)
{
    rx_loop *loop = ct_loop(backend);
    rx_event ev[2];
    CHECK_EQ(rx_poll(loop, 0, ev, 0), -EINVAL);
    CHECK_EQ(rx_poll(loop, 0, ev, -1), -EINVAL);
    CHECK_EQ(rx_poll(loop, 0, NULL, 1), -EINVAL);
    CHECK_EQ(rx_poll(loop, -1, NULL, 0), -EINVAL);   /* returns, does not wait */
    /* nothing was consumed by the refused calls */
    CHECK_EQ(rx_wakeup(loop), 0);
    CHECK_EQ(rx_poll(loop, 0, NULL, 4), -EINVAL);
    CHECK_EQ(rx_poll(loop, 0, ev, 2), 1);
    CHECK_EQ(ev[0].kind, RX_EV_WAKEUP);
    rx_loop_close(loop);
}

TEST(poll_max_smaller_than_queue)
{
    rx_loop *loop = ct_loop(backend);
    CHECK_EQ(rx_clock_manual(loop, 1000), 0);
    for (int i = 1; i <= 10; i++) CHECK_RC(rx_timer_start(loop, 500, i));
    rx_event ev[3];
    int next = 1;
    int sizes[] = {3, 3, 3, 1};
    for (int k = 0; k < 4; k++) {
        int n = rx_poll(loop, 0, ev, 3);
        CHECK_EQ(n, sizes[k]);
        for (int j = 0; j < n; j++) CHECK_EV(ev[j], next++, RX_EV_TIMER, 0, 0);
        CHECK_EQ(ct_stats(loop).queued_events, 10 - (next - 1));
    }
    ct_expect_none(loop);

    /* queued events are returned before anything newer, in order, even
     * with a blocking poll */
    for (int i = 1; i <= 5; i++) CHECK_RC(rx_timer_start(loop, 1000, 100 + i));
    CHECK_EQ(rx_poll(loop, -1, ev, 2), 2);
    CHECK_EQ(ev[0].token, 101);
    CHECK_EQ(ev[1].token, 102);
    CHECK_EQ(rx_wakeup(loop), 0);
    CHECK_EQ(rx_poll(loop, -1, ev, 3), 3);
    CHECK_EQ(ev[0].token, 103);
    CHECK_EQ(ev[1].token, 104);
    CHECK_EQ(ev[2].token, 105);
    CHECK_EQ(rx_poll(loop, -1, ev, 3), 1);
    CHECK_EQ(ev[0].kind, RX_EV_WAKEUP);
    ct_expect_none(loop);
    rx_loop_close(loop);
}

TEST(stats_counts)
{
    rx_loop *loop = ct_loop(backend);
    rx_stats s = ct_stats(loop);
    CHECK_EQ(s.pending_ops, 0);
    CHECK_EQ(s.registered_fds, 0);
    CHECK_EQ(s.known_fds, 0);
    CHECK_EQ(s.timers, 0);
    CHECK_EQ(s.queued_events, 0);
    CHECK_EQ(s.polls, 0);
    int64_t sys0 = s.syscalls;
    CHECK_CMP(sys0, >=, 0);

    rx_event ev[8];
    CHECK_EQ(rx_poll(loop, 0, ev, 8), 0);
    s = ct_stats(loop);
    CHECK_EQ(s.polls, 1);
    CHECK_CMP(s.syscalls, >, sys0);

    int sv[2];
    ct_socketpair(sv);
    char buf[4];
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 1), RX_PENDING);
    s = ct_stats(loop);
    CHECK_EQ(s.pending_ops, 1);
    CHECK_EQ(s.known_fds, 1);
    CHECK_EQ(s.registered_fds, 1);

    CHECK_EQ(rx_watch(loop, sv[1], RX_WRITE, 2), RX_WRITE);   /* inline */
    s = ct_stats(loop);
    CHECK_EQ(s.pending_ops, 1);
    CHECK_EQ(s.known_fds, 2);
#ifdef _WIN32
    CHECK_EQ(s.registered_fds, 2);   /* iocp: a handle joins the port on first sight */
#else
    CHECK_EQ(s.registered_fds, 1);
#endif

    int64_t t1 = rx_timer_after(loop, 50.0, 3);
    CHECK_RC(t1);
    CHECK_RC(rx_timer_after(loop, 0, 4));
    CHECK_EQ(ct_stats(loop).timers, 2);
    CHECK_EQ(rx_wakeup(loop), 0);
    ct_write_all(sv[1], "ab", 2);
    /* due timer, wakeup and the recv: three events, take one */
    ct_collect(loop, ev, 1);
    s = ct_stats(loop);
    CHECK_EQ(s.queued_events, 2);
    CHECK_EQ(s.timers, 1);
    CHECK_EQ(s.pending_ops, 0);
    CHECK_EQ(s.polls, 2);
    ct_collect(loop, ev + 1, 2);
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        if (ev[i].kind == RX_EV_TIMER && ev[i].token == 4) seen |= 1;
        if (ev[i].kind == RX_EV_WAKEUP) seen |= 2;
        if (ev[i].kind == RX_EV_DONE && ev[i].token == 1 && ev[i].result == 2) seen |= 4;
    }
    CHECK_EQ(seen, 7);
    CHECK_EQ(ct_stats(loop).queued_events, 0);
    CHECK_EQ(rx_timer_cancel(loop, t1), 0);
    CHECK_EQ(ct_stats(loop).timers, 0);

    CHECK_EQ(rx_forget(loop, sv[0]), 0);
    CHECK_EQ(rx_forget(loop, sv[1]), 0);
    s = ct_stats(loop);
    CHECK_EQ(s.pending_ops, 0);
    CHECK_EQ(s.registered_fds, 0);
    CHECK_EQ(s.known_fds, 0);
    CHECK_EQ(s.timers, 0);
    CHECK_EQ(s.queued_events, 0);
    ct_close(sv[0]);
    ct_close(sv[1]);
    rx_loop_close(loop);
}
