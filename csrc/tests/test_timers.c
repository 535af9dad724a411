/*
 * test_timers.c - timers, deadlines, the manual clock, and a model check of
 * 100k timers started and cancelled in random order.
 */
#include "tests.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(timer_start_cancel)
{
    rx_loop *loop = ct_loop(backend);
    CHECK_EQ(rx_next_deadline(loop), RX_NEVER);
    int64_t now = rx_now(loop);
    int64_t a = rx_timer_start(loop, now + 60000000000LL, 1);
    int64_t b = rx_timer_start(loop, now + 30000000000LL, 2);
    CHECK_CMP(a, >, 0);
    CHECK_CMP(b, >, 0);
    CHECK(a != b);
    CHECK_EQ(ct_stats(loop).timers, 2);
    CHECK_EQ(rx_next_deadline(loop), now + 30000000000LL);
    CHECK_EQ(rx_timer_cancel(loop, b), 0);
    CHECK_EQ(rx_next_deadline(loop), now + 60000000000LL);
    CHECK_EQ(rx_timer_cancel(loop, b), -ENOENT);
    CHECK_EQ(rx_timer_cancel(loop, a), 0);
    CHECK_EQ(rx_next_deadline(loop), RX_NEVER);
    CHECK_EQ(ct_stats(loop).timers, 0);
    /* a reused slot does not revive an old id */
    int64_t c = rx_timer_start(loop, now + 1000000000LL, 3);
    CHECK_CMP(c, >, 0);
    CHECK(c != a && c != b);
    CHECK_EQ(rx_timer_cancel(loop, a), -ENOENT);
    CHECK_EQ(rx_timer_cancel(loop, b), -ENOENT);
    CHECK_EQ(ct_stats(loop).timers, 1);
    CHECK_EQ(rx_timer_cancel(loop, c), 0);
    ct_expect_none(loop);
    rx_loop_close(loop);
}

TEST(timer_cancel_bad_ids)
{
    rx_loop *loop = ct_loop(backend);
    int64_t bad[] = {0, -1, INT64_MIN, INT64_MAX, 1, 12345, (int64_t)1 << 32,
                     ((int64_t)1 << 32) | 1, ((int64_t)7 << 32) | 3, 0xffffffffLL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK_EQ(rx_timer_cancel(loop, bad[i]), -ENOENT);
    int64_t id = rx_timer_after(loop, 0, 9);
    CHECK_RC(id);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (bad[i] != id) CHECK_EQ(rx_timer_cancel(loop, bad[i]), -ENOENT);
    /* same slot, other generations */
    CHECK_EQ(rx_timer_cancel(loop, id + ((int64_t)1 << 32)), -ENOENT);
    if (id >> 32 > 1) CHECK_EQ(rx_timer_cancel(loop, id - ((int64_t)1 << 32)), -ENOENT);
    CHECK_EQ(ct_stats(loop).timers, 1);
    rx_event ev;
    ct_wait_event(loop, &ev);
    CHECK_EV(ev, 9, RX_EV_TIMER, 0, 0);
    CHECK_EQ(rx_timer_cancel(loop, id), -ENOENT);   /* fired */
    CHECK_EQ(ct_stats(loop).timers, 0);
    rx_loop_close(loop);
}

TEST(timer_equal_deadlines_in_start_order)
{
    rx_loop *loop = ct_loop(backend);
    int64_t d = rx_now(loop) + 2000000;   /* 2 ms ahead, real clock */
    enum { N = 300 };
    for (int i = 0; i < N; i++) CHECK_RC(rx_timer_start(loop, d, i));
    rx_event ev[N];
    ct_collect(loop, ev, N);
    CHECK_CMP(rx_now(loop), >=, d);
    for (int i = 0; i < N; i++) CHECK_EV(ev[i], i, RX_EV_TIMER, 0, 0);

    /* mixed: order by deadline, ties by start order (manual clock) */
    rx_loop_close(loop);
    loop = ct_loop(backend);
    CHECK_EQ(rx_clock_manual(loop, 0), 0);
    int64_t dl[] = {30, 10, 20, 10, 30, 10, 20};
    int64_t want[] = {1, 3, 5, 2, 6, 0, 4};
    for (int i = 0; i < 7; i++) CHECK_RC(rx_timer_start(loop, dl[i], i));
    CHECK_EQ(rx_next_deadline(loop), 10);
    CHECK_EQ(rx_clock_set(loop, 30), 0);
    rx_event e7[7];
    ct_collect(loop, e7, 7);
    for (int i = 0; i < 7; i++) CHECK_EV(e7[i], want[i], RX_EV_TIMER, 0, 0);
    ct_expect_none(loop);
    rx_loop_close(loop);
}

TEST(timer_never_early)
{
    rx_loop *loop = ct_loop(backend);
    const int64_t ms = 1000000;
    int64_t base = rx_now(loop);
    int64_t offs[] = {1 * ms, 3 * ms, 3 * ms + 1, 7 * ms, 20 * ms, 40 * ms + 500};
    enum { N = 6 };
    int64_t deadline[N];
    for (int i = 0; i < N; i++) {
        deadline[i] = base + offs[i];
        CHECK_RC(rx_timer_start(loop, deadline[i], i));
    }
    for (int i = 0; i < N; i++) {
        rx_event ev;
        ct_wait_event(loop, &ev);
        int64_t t = rx_now(loop);
        CHECK_EQ(ev.kind, RX_EV_TIMER);
        CHECK_EQ(ev.token, i);
        CHECK_CMP(t, >=, deadline[i]);
    }
    /* rx_timer_after rounds up: never before the delay */
    double delays[] = {0.001, 0.0025, 1e-9, 0.015};
    for (int i = 0; i < 4; i++) {
        int64_t t0 = rx_now(loop);
        CHECK_RC(rx_timer_after(loop, delays[i], 50 + i));
        rx_event ev;
        ct_wait_event(loop, &ev);
        CHECK_EV(ev, 50 + i, RX_EV_TIMER, 0, 0);
        CHECK_CMP(rx_now(loop) - t0, >=, (int64_t)(delays[i] * 1e9));
    }
    /* rx_poll(-1) returns for a timer */
    CHECK_RC(rx_timer_after(loop, 0.005, 77));
    rx_event ev;
    int64_t t0 = ct_mono();
    CHECK_EQ(rx_poll(loop, -1, &ev, 1), 1);
    CHECK_EV(ev, 77, RX_EV_TIMER, 0, 0);
    CHECK_CMP(ct_mono() - t0, >=, 5 * ms);
    rx_loop_close(loop);
}

TEST(timer_after_special_values)
{
    rx_loop *loop = ct_loop(backend);
    CHECK_EQ(rx_clock_manual(loop, 1000), 0);
    CHECK_EQ(rx_timer_after(loop, NAN, 1), -EINVAL);
    CHECK_EQ(rx_timer_after(loop, -NAN, 1), -EINVAL);
    CHECK_EQ(ct_stats(loop).timers, 0);

    /* zero / negative: due now */
    CHECK_RC(rx_timer_after(loop, 0.0, 2));
    CHECK_RC(rx_timer_after(loop, -1.0, 3));
    CHECK_RC(rx_timer_after(loop, -INFINITY, 4));
    CHECK_RC(rx_timer_after(loop, -1e300, 5));
    CHECK_EQ(rx_next_deadline(loop), 1000);
    rx_event ev[8];
    ct_collect(loop, ev, 4);
    for (int i = 0; i < 4; i++) CHECK_EV(ev[i], 2 + i, RX_EV_TIMER, 0, 0);

    /* exact conversion on the manual clock */
    int64_t id = rx_timer_after(loop, 1.5, 6);
    CHECK_RC(id);
    CHECK_EQ(rx_next_deadline(loop), 1000 + 1500000000LL);
    CHECK_EQ(rx_timer_cancel(loop, id), 0);

    /* huge and infinite saturate to RX_NEVER */
    int64_t ids[4];
    ids[0] = rx_timer_after(loop, INFINITY, 7);
    ids[1] = rx_timer_after(loop, 1e300, 8);
    ids[2] = rx_timer_after(loop, 9.3e9, 9);
    ids[3] = rx_timer_after(loop, DBL_MAX, 10);
    for (int i = 0; i < 4; i++) CHECK_RC(ids[i]);
    CHECK_EQ(rx_next_deadline(loop), RX_NEVER);
    /* a delay that overflows only once added to a late clock saturates too */
    CHECK_EQ(rx_clock_set(loop, INT64_MAX - 1000), 0);
    int64_t late = rx_timer_after(loop, 9.0e9, 11);
    CHECK_RC(late);
    CHECK_EQ(rx_next_deadline(loop), RX_NEVER);
    CHECK_EQ(rx_clock_set(loop, INT64_MAX), 0);
    CHECK_EQ(rx_poll(loop, 0, ev, 8), 0);   /* never fire, even at the end of time */
    CHECK_EQ(ct_stats(loop).timers, 5);
    for (int i = 0; i < 4; i++) CHECK_EQ(rx_timer_cancel(loop, ids[i]), 0);
    CHECK_EQ(rx_timer_cancel(loop, late), 0);
    rx_loop_close(loop);

    /* real clock: an RX_NEVER timer does not shorten or lengthen a wait */
    loop = ct_loop(backend);
    CHECK_RC(rx_timer_after(loop, INFINITY, 1));
    int64_t t0 = ct_mono();
    CHECK_EQ(rx_poll(loop, 20000000, ev, 8), 0);
    CHECK_CMP(ct_mono() - t0, >=, 20000000);
    rx_loop_close(loop);
}

TEST(timer_extreme_deadlines)
{
    rx_loop *loop = ct_loop(backend);
    int64_t lo = rx_timer_start(loop, INT64_MIN, 1);
    int64_t hi = rx_timer_start(loop, INT64_MAX, 2);
    int64_t zero = rx_timer_start(loop, 0, 3);
    CHECK_RC(lo);
    CHECK_RC(hi);
    CHECK_RC(zero);
    CHECK_EQ(rx_next_deadline(loop), INT64_MIN);
    rx_event ev[4];
    /* the past fires at the next poll, even a blocking one */
    ct_collect(loop, ev, 2);
    CHECK_EV(ev[0], 1, RX_EV_TIMER, 0, 0);
    CHECK_EV(ev[1], 3, RX_EV_TIMER, 0, 0);
    CHECK_EQ(rx_next_deadline(loop), INT64_MAX);
    CHECK_EQ(rx_poll(loop, 0, ev, 4), 0);
    CHECK_EQ(rx_timer_cancel(loop, lo), -ENOENT);
    CHECK_EQ(rx_timer_cancel(loop, hi), 0);
    rx_loop_close(loop);

    loop = ct_loop(backend);
    CHECK_EQ(rx_clock_manual(loop, INT64_MIN), 0);
    CHECK_EQ(rx_now(loop), INT64_MIN);
    CHECK_RC(rx_timer_start(loop, INT64_MIN, 1));
    CHECK_RC(rx_timer_start(loop, INT64_MAX - 1, 2));
    CHECK_RC(rx_timer_start(loop, INT64_MAX, 3));
    CHECK_EQ(rx_poll(loop, -1, ev, 4), 1);
    CHECK_EV(ev[0], 1, RX_EV_TIMER, 0, 0);
    CHECK_EQ(rx_clock_advance(loop, INT64_MAX), 0);
    CHECK_EQ(rx_now(loop), -1);
    CHECK_EQ(rx_clock_advance(loop, INT64_MAX), 0);
    CHECK_EQ(rx_now(loop), INT64_MAX - 1);
    CHECK_EQ(rx_poll(loop, 0, ev, 4), 1);
    CHECK_EV(ev[0], 2, RX_EV_TIMER, 0, 0);
    CHECK_EQ(rx_clock_advance(loop, INT64_MAX), 0);   /* saturates */
    CHECK_EQ(rx_now(loop), INT64_MAX);
    CHECK_EQ(rx_poll(loop, 0, ev, 4), 0);
    CHECK_EQ(ct_stats(loop).timers, 1);
    rx_loop_close(loop);
}

TEST(clock_manual)
{
    rx_loop *loop = ct_loop(backend);
    CHECK_EQ(rx_clock_is_manual(loop), 0);
    CHECK_EQ(rx_clock_set(loop, 5), -EPERM);
    CHECK_EQ(rx_clock_advance(loop, 5), -EPERM);
    int64_t a = rx_now(loop), b = rx_now(loop), m = ct_mono();
    CHECK_CMP(b, >=, a);
    CHECK_CMP(m, >=, b);   /* CLOCK_MONOTONIC */

    CHECK_EQ(rx_clock_manual(loop, 1000), 0);
    CHECK(rx_clock_is_manual(loop) != 0);
    CHECK_EQ(rx_now(loop), 1000);
    CHECK_EQ(rx_clock_set(loop, 2000), 0);
    CHECK_EQ(rx_now(loop), 2000);
    CHECK_EQ(rx_clock_set(loop, 2000), 0);   /* not backwards: allowed */
    CHECK_EQ(rx_clock_set(loop, 1999), -EINVAL);
    CHECK_EQ(rx_now(loop), 2000);
    CHECK_EQ(rx_clock_advance(loop, -1), -EINVAL);
    CHECK_EQ(rx_clock_advance(loop, 0), 0);
    CHECK_EQ(rx_clock_advance(loop, 500), 0);
    CHECK_EQ(rx_now(loop), 2500);

    CHECK_RC(rx_timer_start(loop, 3000, 1));
    CHECK_RC(rx_timer_start(loop, 3001, 2));
    ct_expect_none(loop);
    CHECK_EQ(rx_clock_set(loop, 2999), 0);
    ct_expect_none(loop);
    CHECK_EQ(rx_clock_set(loop, 3000), 0);
    rx_event ev[4];
    CHECK_EQ(rx_poll(loop, 0, ev, 4), 1);
    CHECK_EV(ev[0], 1, RX_EV_TIMER, 0, 0);
    CHECK_EQ(rx_clock_advance(loop, 1), 0);
    CHECK_EQ(rx_poll(loop, 0, ev, 4), 1);
    CHECK_EV(ev[0], 2, RX_EV_TIMER, 0, 0);

    /* a manual clock never waits for a timer: a 30 ms poll with a timer
     * 1 ns ahead waits the whole 30 ms of real time and reports nothing */
    CHECK_RC(rx_timer_start(loop, rx_now(loop) + 1, 3));
    int64_t t0 = ct_mono();
    CHECK_EQ(rx_poll(loop, 30000000, ev, 4), 0);
    CHECK_CMP(ct_mono() - t0, >=, 30000000);
    CHECK_EQ(rx_now(loop), 3001);   /* time did not move by itself */
    /* due: even a blocking poll returns it at once */
    CHECK_EQ(rx_clock_advance(loop, 1), 0);
    CHECK_EQ(rx_poll(loop, -1, ev, 4), 1);
    CHECK_EV(ev[0], 3, RX_EV_TIMER, 0, 0);
    rx_loop_close(loop);
}

static void *wake_after_go(void *arg)
{
    rx_loop *loop = arg;
    CHECK_EQ(rx_wakeup(loop), 0);
    return NULL;
}

/* Manual clock + rx_poll(-1) with a not-due timer: waits for I/O/wakeup. */
TEST(clock_manual_poll_waits_for_io)
{
    rx_loop *loop = ct_loop(backend);
    CHECK_EQ(rx_clock_manual(loop, 0), 0);
    CHECK_RC(rx_timer_start(loop, 10, 1));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, wake_after_go, loop), 0);
    rx_event ev[2];
    CHECK_EQ(rx_poll(loop, -1, ev, 2), 1);
    CHECK_EV(ev[0], 0, RX_EV_WAKEUP, 0, 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(ct_stats(loop).timers, 1);
    rx_loop_close(loop);
}

/* ---- model check ---------------------------------------------------------- */

typedef struct mt {
    int64_t deadline;
    int64_t id;
    int32_t seq;     /* start order == token */
    int8_t state;    /* 0 waiting, 1 cancelled, 2 fired */
} mt;

static int cmp_mt(const void *a, const void *b)
{
    const mt *x = *(mt *const *)a, *y = *(mt *const *)b;
    if (x->deadline != y->deadline) return x->deadline < y->deadline ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

TEST(timer_model_100k)
{
    enum { N = 100000, PHASES = 25 };
    rx_loop *loop = ct_loop(backend);
    CHECK_EQ(rx_clock_manual(loop, 0), 0);
    mt *m = calloc(N, sizeof *m);
    mt **due = calloc(N, sizeof *due);
    rx_event *ev = calloc(4096, sizeof *ev);
    CHECK(m && due && ev);
    ct_rng rng = {0x1234567887654321ull};
    int started = 0, waiting = 0;
    int64_t now = 0;

    for (int phase = 0; phase < PHASES; phase++) {
        /* start a batch: deadlines near "now" with many ties, some past */
        int batch = phase == PHASES - 1 ? N - started : N / PHASES;
        for (int i = 0; i < batch && started < N; i++) {
            mt *t = &m[started];
            t->seq = started;
            t->deadline = now - 50 + (int64_t)(ct_rand(&rng) % 2000);
            if (ct_rand(&rng) % 1000 == 0) t->deadline = RX_NEVER;
            t->id = rx_timer_start(loop, t->deadline, started);
            CHECK_CMP(t->id, >, 0);
            started++;
            waiting++;
        }
        /* cancel about a third of the waiting ones, in random order */
        for (int k = 0; k < waiting / 3; k++) {
            mt *t = &m[ct_rand(&rng) % (uint64_t)started];
            int rc = rx_timer_cancel(loop, t->id);
            if (t->state == 0) {
                CHECK_EQ(rc, 0);
                t->state = 1;
                waiting--;
            } else {
                CHECK_EQ(rc, -ENOENT);
            }
        }
        CHECK_EQ(ct_stats(loop).timers, waiting);
        /* next deadline == the model's minimum */
        int64_t mn = RX_NEVER;
        for (int i = 0; i < started; i++)
            if (m[i].state == 0 && m[i].deadline < mn) mn = m[i].deadline;
        CHECK_EQ(rx_next_deadline(loop), mn);

        /* move the clock and collect: exactly the due ones, in model order */
        now += phase == PHASES - 1 ? 1000000 : (int64_t)(ct_rand(&rng) % 1500);
        CHECK_EQ(rx_clock_set(loop, now), 0);
        int nd = 0;
        for (int i = 0; i < started; i++)
            if (m[i].state == 0 && m[i].deadline <= now && m[i].deadline != RX_NEVER) due[nd++] = &m[i];
        qsort(due, (size_t)nd, sizeof *due, cmp_mt);
        int got = 0;
        for (;;) {
            int max = 1 + (int)(ct_rand(&rng) % 4096);
            int n = rx_poll(loop, 0, ev, max);
            CHECK_RC(n);
            if (n == 0) break;
            for (int j = 0; j < n; j++) {
                CHECK(got < nd);
                CHECK_EQ(ev[j].kind, RX_EV_TIMER);
                if (ev[j].token != due[got]->seq)
                    ct_fail(__FILE__, __LINE__, "phase %d event %d: token %lld, model says %d (deadline %lld)",
                            phase, got, (long long)ev[j].token, due[got]->seq, (long long)due[got]->deadline);
                due[got]->state = 2;
                got++;
                waiting--;
            }
        }
        CHECK_EQ(got, nd);
        /* fired ids are refused */
        for (int k = 0; k < 20 && nd; k++) CHECK_EQ(rx_timer_cancel(loop, due[ct_rand(&rng) % (uint64_t)nd]->id), -ENOENT);
    }
    CHECK_EQ(started, N);
    /* only RX_NEVER timers remain */
    for (int i = 0; i < N; i++) {
        if (m[i].state != 0) continue;
        CHECK_EQ(m[i].deadline, RX_NEVER);
        CHECK_EQ(rx_timer_cancel(loop, m[i].id), 0);
        waiting--;
    }
    CHECK_EQ(waiting, 0);
    CHECK_EQ(ct_stats(loop).timers, 0);
    CHECK_EQ(rx_next_deadline(loop), RX_NEVER);
    free(m);
    free(due);
    free(ev);
    rx_loop_close(loop);
}
