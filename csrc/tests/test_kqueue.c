/*
 * test_kqueue.c - behaviours the kqueue backend has to get right that the
 * other test files do not pin down: a hang-up that came with the last
 * bytes (EV_EOF, reported once with EV_CLEAR), an error that must wake
 * both sides (EV_EOF with fflags), a descriptor closed before rx_forget,
 * readiness nobody waits for (EV_CLEAR, not a level filter).  These run on
 * every backend.  The last ones look inside the emulation (kqueue_emul.h)
 * and run on [kqueue-emul] only: filters are added one side at a time and
 * never re-armed, and the wakeup uses EVFILT_USER, or the loop's pipe when
 * the kernel has no EVFILT_USER.
 */
#include "tests.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef RX_KQUEUE_EMUL
#include "kqueue_emul.h"
#endif

static void forget_close(rx_loop *loop, int fd)
{
    CHECK_EQ(rx_forget(loop, fd), 0);
    ct_close(fd);
}

/* Bytes and end of stream arrive together and are reported once (an edge
 * that will not come again).  After that a short read must not count as
 * "drained", or the recv that should see the end of stream would wait for
 * an edge that never comes. */
TEST(hup_with_last_bytes)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[16];
    rx_event ev;
    CHECK_EQ(rx_recv(loop, sv[0], buf, 4, 0, 1), RX_PENDING);
    ct_write_all(sv[1], "0123456789", 10);
    CHECK_SYS(shutdown(sv[1], SHUT_WR));
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, 4);
    CHECK_EQ(rx_recv(loop, sv[0], buf, 4, 0, 2), 4);
    CHECK(memcmp(buf, "4567", 4) == 0);
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 3), 2);   /* a short read */
    int64_t r = rx_recv(loop, sv[0], buf, sizeof buf, 0, 4);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        CHECK_DONE(ev, 4, 0);
    } else {
        CHECK_EQ(r, 0);
    }
    ct_expect_none(loop);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    rx_loop_close(loop);
}

static void reset_close(int fd)
{
    struct linger lg = {1, 0};
    CHECK_SYS(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    ct_close(fd);
}

/* A reset while a recv and a send both wait: both complete, and the recv
 * gets the reset (the kernel reports it once; a send that ran first would
 * take it and leave the recv a plain end of stream). */
TEST(reset_wakes_both_sides)
{
    rx_loop *loop = ct_loop(backend);
    int tp[2];
    CHECK_EQ(ct_tcp_pair(AF_INET, tp), 0);
    char buf[8];
    static char more[65536];
    CHECK_EQ(rx_recv(loop, tp[0], buf, sizeof buf, 0, 1), RX_PENDING);
    CHECK_CMP(ct_fill(tp[0]), >, 0);
    CHECK_EQ(rx_send(loop, tp[0], more, sizeof more, RX_ALL, 2), RX_PENDING);
    int64_t moved = rx_pending_done(loop, tp[0], RX_WRITE);
    reset_close(tp[1]);
    rx_event evs[2];
    ct_collect(loop, evs, 2);
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(evs[i].kind, RX_EV_DONE);
        if (evs[i].token == 1) {
            CHECK_EQ(evs[i].result, -ECONNRESET);
            seen |= 1;
        } else {
            CHECK_EQ(evs[i].token, 2);
            if (evs[i].result != -EPIPE && evs[i].result != -ECONNRESET)
                ct_fail(__FILE__, __LINE__, "send: %s", ct_errname(evs[i].result));
            CHECK_EQ(evs[i].aux, moved);
            seen |= 2;
        }
    }
    CHECK_EQ(seen, 3);
    ct_expect_none(loop);
    forget_close(loop, tp[0]);
    rx_loop_close(loop);
}

/* A descriptor closed while an operation waits, then forgotten: the kernel
 * has already dropped it from its interest set (epoll, kqueue), rx_forget
 * still cancels, and the number, reused, works like a new descriptor. */
TEST(forget_after_close)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[8];
    rx_event ev;
    int fd = sv[0];
    CHECK_EQ(rx_recv(loop, fd, buf, sizeof buf, 0, 1), RX_PENDING);
    ct_close(fd);
    ct_close(sv[1]);
    CHECK_EQ(rx_forget(loop, fd), 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 1, RX_EV_DONE, 0, -ECANCELED);
    rx_stats s = ct_stats(loop);
    CHECK_EQ(s.registered_fds, 0);
    CHECK_EQ(s.known_fds, 0);
    ct_socketpair(sv);
    CHECK_EQ(sv[0], fd);   /* the lowest free number comes back */
    CHECK_EQ(rx_recv(loop, fd, buf, sizeof buf, 0, 2), RX_PENDING);
    ct_write_all(sv[1], "again", 5);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 2, 5);
    ct_expect_none(loop);
    forget_close(loop, fd);
    ct_close(sv[1]);
    rx_loop_close(loop);
}

/* A readable descriptor with no operation waiting must not make the wait
 * spin: edge-triggered backends report it once (kqueue: EV_CLEAR, not a
 * level filter), the poll backend no longer asks about it. */
TEST(ready_without_op_does_not_spin)
{
    rx_loop *loop = ct_loop(backend);
    int sv[2];
    ct_socketpair(sv);
    char buf[8];
    rx_event ev;
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 1), RX_PENDING);
    ct_write_all(sv[1], "a", 1);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, 1);
    ct_write_all(sv[1], "bc", 2);   /* readable, and nobody asks */
    int64_t waits = ct_stats(loop).syscalls;
    int64_t t0 = ct_mono();
    CHECK_EQ(rx_poll(loop, 30000000, &ev, 1), 0);
    CHECK_CMP(ct_mono() - t0, >=, 30000000);
    waits = ct_stats(loop).syscalls - waits;
    CHECK_CMP(waits, <=, 4);
    int64_t r = rx_recv(loop, sv[0], buf, sizeof buf, 0, 2);
    if (r == RX_PENDING) {
        ct_wait_event(loop, &ev);
        r = ev.result;
    }
    CHECK_EQ(r, 2);
    CHECK(memcmp(buf, "bc", 2) == 0);
    forget_close(loop, sv[0]);
    ct_close(sv[1]);
    rx_loop_close(loop);
}

#ifdef RX_KQUEUE_EMUL

#define KQUEUE_ONLY()                                                           \
    do {                                                                        \
        if (strcmp(backend, "kqueue-emul") != 0)                                \
            SKIP("looks inside the kqueue emulation: runs under [kqueue-emul]"); \
    } while (0)

/* Filters are added per side, when an operation on that side first waits,
 * and never re-armed: a steady exchange makes no kevent change. */
TEST(kqueue_filters_added_once_per_side)
{
    KQUEUE_ONLY();
    rx_loop *loop = ct_loop(backend);
    int kq = rx_loop_fd(loop);
    CHECK_CMP(kq, >=, 0);
    int sv[2];
    ct_socketpair(sv);
    char buf[16];
    rx_event ev;
    CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 1), RX_PENDING);
    CHECK_EQ(kqemul_filters(kq, sv[0]), 1);   /* EVFILT_READ only */
    CHECK_EQ(ct_poll1(kq, POLLIN, 0), 0);     /* so no writability to report */
    long changes = kqemul_changes(kq);
    CHECK_CMP(changes, >, 0);
    ct_write_all(sv[1], "a", 1);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 1, 1);
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(rx_recv(loop, sv[0], buf, sizeof buf, 0, 10 + i), RX_PENDING);
        ct_write_all(sv[1], "ping", 4);
        ct_wait_event(loop, &ev);
        CHECK_DONE(ev, 10 + i, 4);
        CHECK_EQ(rx_send(loop, sv[0], "pong", 4, RX_ALL, 200 + i), 4);
        ct_read_all(sv[1], buf, 4);
    }
    CHECK_EQ(kqemul_changes(kq), changes);
    /* a send that waits adds EVFILT_WRITE */
    ct_fill(sv[0]);
    CHECK_EQ(rx_send(loop, sv[0], "y", 1, 0, 3), RX_PENDING);
    CHECK_EQ(kqemul_filters(kq, sv[0]), 3);
    ct_drain(sv[1]);
    ct_wait_event(loop, &ev);
    CHECK_DONE(ev, 3, 1);
    CHECK_EQ(kqemul_changes(kq), changes + 1);   /* one more, in one call */
    CHECK_EQ(rx_forget(loop, sv[0]), 0);
    CHECK_EQ(kqemul_filters(kq, sv[0]), 0);
    ct_close(sv[0]);
    ct_close(sv[1]);
    /* a listener waits on EVFILT_READ alone */
    struct sockaddr_storage addr;
    socklen_t alen;
    int l = ct_listener(AF_INET, SOCK_STREAM, &addr, &alen);
    CHECK_CMP(l, >=, 0);
    CHECK_EQ(rx_accept(loop, l, 4), RX_PENDING);
    CHECK_EQ(kqemul_filters(kq, l), 1);
    CHECK_EQ(rx_forget(loop, l), 1);
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 4, RX_EV_DONE, 0, -ECANCELED);
    ct_close(l);
    rx_loop_close(loop);
}

struct waker {
    rx_loop *loop;
    int go[2];
};

static void *waker_thread(void *p)
{
    struct waker *w = p;
    char c;
    while (read(w->go[0], &c, 1) == 1) CHECK_EQ(rx_wakeup(w->loop), 0);
    return NULL;
}

static rx_loop *sig_loop;
static volatile sig_atomic_t sig_rc = 1;

static void on_usr2(int sig)
{
    (void)sig;
    sig_rc = rx_wakeup(sig_loop);
}

/* Wakeups from another thread and from a signal handler, and the loop
 * descriptor polls readable for them. */
static void check_wakeups(rx_loop *loop)
{
    rx_event ev[4];
    int lfd = rx_loop_fd(loop);
    CHECK_CMP(lfd, >=, 0);
    CHECK_EQ(rx_wakeup(loop), 0);
    CHECK(ct_poll1(lfd, POLLIN, 5000) & POLLIN);
    CHECK_EQ(rx_poll(loop, 0, ev, 4), 1);
    CHECK_EV(ev[0], 0, RX_EV_WAKEUP, 0, 0);
    CHECK_EQ(ct_poll1(lfd, POLLIN, 0), 0);

    struct waker w = {loop, {-1, -1}};
    CHECK_SYS(pipe2(w.go, O_CLOEXEC));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, waker_thread, &w), 0);
    for (int round = 0; round < 100; round++) {
        ct_write_all(w.go[1], "g", 1);
        int64_t t0 = ct_mono();
        CHECK_EQ(rx_poll(loop, -1, ev, 4), 1);
        CHECK_EV(ev[0], 0, RX_EV_WAKEUP, 0, 0);
        CHECK_CMP(ct_mono() - t0, <, 5000000000LL);
    }
    ct_close(w.go[1]);
    CHECK_EQ(pthread_join(th, NULL), 0);
    ct_close(w.go[0]);

    sig_loop = loop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigemptyset(&sa.sa_mask);
    CHECK_SYS(sigaction(SIGUSR2, &sa, NULL));
    CHECK_SYS(raise(SIGUSR2));
    CHECK_EQ(sig_rc, 0);
    CHECK_EQ(rx_poll(loop, 5000000000LL, ev, 4), 1);
    CHECK_EV(ev[0], 0, RX_EV_WAKEUP, 0, 0);
    sa.sa_handler = SIG_DFL;
    CHECK_SYS(sigaction(SIGUSR2, &sa, NULL));
    ct_expect_none(loop);
}

/* With EVFILT_USER the loop keeps no descriptor besides its kqueue; on a
 * kernel without it (the emulation's knob) it keeps its eventfd/pipe, and
 * wakeups work the same either way. */
TEST(kqueue_wakeup_user_filter_or_pipe)
{
    KQUEUE_ONLY();
    int base = ct_count_fds();
    int kq = kqueue();
    CHECK_SYS(kq);
    int per_kqueue = ct_count_fds() - base;
    CHECK_SYS(close(kq));

    rx_loop *loop = ct_loop(backend);
    CHECK_EQ(ct_count_fds() - base, per_kqueue);
    check_wakeups(loop);
    rx_loop_close(loop);
    CHECK_EQ(ct_count_fds(), base);

    kqemul_refuse_user_filter(1);
    loop = ct_loop(backend);
    kqemul_refuse_user_filter(0);
    CHECK_EQ(ct_count_fds() - base, per_kqueue + 1);   /* + the eventfd */
    check_wakeups(loop);
    rx_loop_close(loop);
    CHECK_EQ(ct_count_fds(), base);
}

#endif /* RX_KQUEUE_EMUL */
