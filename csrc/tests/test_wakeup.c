/*
 * test_wakeup.c - rx_wakeup: coalescing, from another thread into a
 * blocking rx_poll, and from a signal handler.
 */
#include "tests.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

TEST(wakeup_basic)
{
    rx_loop *loop = ct_loop(backend);
    rx_event ev[4];
    CHECK_EQ(rx_wakeup(loop), 0);
    CHECK_EQ(ct_stats(loop).queued_events, 0);   /* reported by the next poll */
    CHECK_EQ(rx_poll(loop, 0, ev, 4), 1);
    CHECK_EV(ev[0], 0, RX_EV_WAKEUP, 0, 0);
    CHECK_EQ(rx_poll(loop, 0, ev, 4), 0);
    /* blocking poll returns for a wakeup made before it */
    CHECK_EQ(rx_wakeup(loop), 0);
    CHECK_EQ(rx_poll(loop, -1, ev, 4), 1);
    CHECK_EV(ev[0], 0, RX_EV_WAKEUP, 0, 0);
    rx_loop_close(loop);
}

TEST(wakeup_coalesces)
{
    rx_loop *loop = ct_loop(backend);
    rx_event ev[4];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10000; i++) CHECK_EQ(rx_wakeup(loop), 0);
        CHECK_EQ(rx_poll(loop, 0, ev, 4), 1);
        CHECK_EV(ev[0], 0, RX_EV_WAKEUP, 0, 0);
        CHECK_EQ(rx_poll(loop, 0, ev, 4), 0);
        CHECK_EQ(rx_poll(loop, 1000000, ev, 4), 0);
    }
    /* a wakeup and other events in one poll */
    CHECK_RC(rx_timer_after(loop, 0, 5));
    CHECK_EQ(rx_wakeup(loop), 0);
    CHECK_EQ(rx_wakeup(loop), 0);
    ct_collect(loop, ev, 2);
    int wakeups = 0, timers = 0;
    for (int i = 0; i < 2; i++) {
        wakeups += ev[i].kind == RX_EV_WAKEUP;
        timers += ev[i].kind == RX_EV_TIMER && ev[i].token == 5;
    }
    CHECK_EQ(wakeups, 1);
    CHECK_EQ(timers, 1);
    ct_expect_none(loop);
    rx_loop_close(loop);
}

struct waker {
    rx_loop *loop;
    int go[2];    /* main -> thread: one byte per wakeup wanted, EOF to stop */
    int many;     /* wakeups per request */
};

static void *waker_thread(void *p)
{
    struct waker *w = p;
    char c;
    while (read(w->go[0], &c, 1) == 1)
        for (int i = 0; i < w->many; i++) CHECK_EQ(rx_wakeup(w->loop), 0);
    return NULL;
}

static void thread_rounds(const char *backend, int many)
{
    rx_loop *loop = ct_loop(backend);
    struct waker w = {loop, {-1, -1}, many};
    CHECK_SYS(pipe2(w.go, O_CLOEXEC));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, waker_thread, &w), 0);
    for (int round = 0; round < 300; round++) {
        ct_write_all(w.go[1], "g", 1);
        /* the thread wakes us while we wait (or just before): either way a
         * blocking poll returns with exactly one wakeup */
        rx_event ev[4];
        int64_t t0 = ct_mono();
        int n = rx_poll(loop, -1, ev, 4);
        CHECK_EQ(n, 1);
        CHECK_EV(ev[0], 0, RX_EV_WAKEUP, 0, 0);
        CHECK_CMP(ct_mono() - t0, <, 5000000000LL);
        if (many > 1) {
            /* late coalesced writes may give one more wakeup, never more */
            n = rx_poll(loop, 0, ev, 4);
            CHECK_CMP(n, <=, 1);
        }
    }
    ct_close(w.go[1]);
    CHECK_EQ(pthread_join(th, NULL), 0);
    ct_close(w.go[0]);
    rx_event ev[4];
    CHECK_CMP(rx_poll(loop, 0, ev, 4), <=, 1);
    ct_expect_none(loop);
    rx_loop_close(loop);
}

TEST(wakeup_from_thread)
{
    thread_rounds(backend, 1);
}

TEST(wakeup_from_thread_many)
{
    thread_rounds(backend, 50);
}

/* ---- from a signal handler ----------------------------------------------- */

#ifdef _WIN32
TEST(wakeup_from_signal_handler)
{
    SKIP("no POSIX signals on Windows (SIGUSR1, sigaction, pthread_kill): nothing "
         "interrupts a thread to run a handler; cross-thread wakeups are tested above");
}
#else

static rx_loop *sig_loop;
static volatile sig_atomic_t sig_rc = 1, sig_count;

static void on_usr1(int sig)
{
    (void)sig;
    int saved = errno;
    errno = 4242;
    sig_rc = rx_wakeup(sig_loop);
    if (errno != 4242) sig_rc = -10000;   /* errno must be preserved */
    sig_count++;
    errno = saved;
}

static void *kill_main(void *p)
{
    pthread_t *main_thread = p;
    CHECK_EQ(pthread_kill(*main_thread, SIGUSR1), 0);
    return NULL;
}

TEST(wakeup_from_signal_handler)
{
    rx_loop *loop = ct_loop(backend);
    sig_loop = loop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));
    rx_event ev[4];

    /* raised before the poll */
    CHECK_SYS(raise(SIGUSR1));
    CHECK_EQ(sig_count, 1);
    CHECK_EQ(sig_rc, 0);
    CHECK_EQ(rx_poll(loop, 0, ev, 4), 1);
    CHECK_EV(ev[0], 0, RX_EV_WAKEUP, 0, 0);

    /* delivered to this thread while it waits (EINTR may end that poll
     * with 0 events; the next one has the wakeup) */
    for (int round = 0; round < 50; round++) {
        pthread_t self = pthread_self(), th;
        int before = sig_count;
        CHECK_EQ(pthread_create(&th, NULL, kill_main, &self), 0);
        int64_t end = ct_mono() + 5000000000LL;
        int got = 0;
        while (!got) {
            int64_t left = end - ct_mono();
            CHECK_CMP(left, >, 0);
            int n = rx_poll(loop, left, ev, 4);
            CHECK_CMP(n, >=, 0);
            CHECK_CMP(n, <=, 1);
            if (n == 1) {
                CHECK_EV(ev[0], 0, RX_EV_WAKEUP, 0, 0);
                got = 1;
            } else {
                CHECK(sig_count > before);   /* 0 events only after EINTR */
            }
        }
        CHECK_EQ(pthread_join(th, NULL), 0);
        CHECK_EQ(sig_count, before + 1);
        CHECK_EQ(sig_rc, 0);
        ct_expect_none(loop);
    }
    sa.sa_handler = SIG_DFL;
    CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));
    rx_loop_close(loop);
}
#endif /* !_WIN32 */
