/*
 * test_scale.c - 10,000 descriptors (5,000 socketpairs), each with a
 * pending recv; then data on all of them: every completion arrives exactly
 * once, with its own data.
 */
#include "tests.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/resource.h>
#include <unistd.h>
#endif

enum { PAIRS = 5000, FDS = 2 * PAIRS };

TEST(scale_10k_descriptors)
{
#ifdef _WIN32
    SKIP("built on AF_UNIX socketpairs and RLIMIT_NOFILE; 5,000 loopback TCP pairs "
         "under Wine measure Wine, not the backend");
#else
    struct rlimit rl;
    CHECK_SYS(getrlimit(RLIMIT_NOFILE, &rl));
    rlim_t need = FDS + 64;
    if (rl.rlim_cur < need) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
            SKIP("RLIMIT_NOFILE hard limit %llu < %llu", (unsigned long long)rl.rlim_max,
                 (unsigned long long)need);
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            SKIP("cannot raise RLIMIT_NOFILE to %llu: %s", (unsigned long long)rl.rlim_max,
                 strerror(errno));
    }

    rx_loop *loop = ct_loop(backend);
    int *fds = malloc(FDS * sizeof *fds);
    char(*buf)[8] = calloc(FDS, sizeof *buf);
    unsigned char *seen = calloc(FDS, 1);
    CHECK(fds && buf && seen);
    int maxfd = 0;
    for (int i = 0; i < PAIRS; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            int e = errno;
            for (int j = 0; j < 2 * i; j++) close(fds[j]);
            rx_loop_close(loop);
            if (e == EMFILE || e == ENFILE) SKIP("socketpair #%d: %s", i, strerror(e));
            ct_fail(__FILE__, __LINE__, "socketpair: %s", strerror(e));
        }
        fds[2 * i] = sv[0];
        fds[2 * i + 1] = sv[1];
        if (sv[1] > maxfd) maxfd = sv[1];
    }
    /* a pending recv on every descriptor; token = index */
    for (int i = 0; i < FDS; i++) CHECK_EQ(rx_recv(loop, fds[i], buf[i], 8, RX_ALL, i), RX_PENDING);
    rx_stats s = ct_stats(loop);
    CHECK_EQ(s.pending_ops, FDS);
    CHECK_EQ(s.known_fds, FDS);
    CHECK_EQ(s.registered_fds, FDS);
    ct_expect_none(loop);

    /* every descriptor gets its own index from its peer, in a scrambled
     * order */
    ct_rng rng = {42};
    int *order = malloc(FDS * sizeof *order);
    CHECK(order);
    for (int i = 0; i < FDS; i++) order[i] = i;
    for (int i = FDS - 1; i > 0; i--) {
        int j = (int)(ct_rand(&rng) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int k = 0; k < FDS; k++) {
        int i = order[k];
        char msg[8];
        memcpy(msg, &i, sizeof i);
        memcpy(msg + 4, "done", 4);
        ct_write_all(fds[i ^ 1], msg, 8);   /* the peer writes */
    }

    rx_event *ev = malloc(1024 * sizeof *ev);
    CHECK(ev);
    int got = 0;
    int64_t end = ct_mono() + 20000000000LL;
    while (got < FDS) {
        CHECK_CMP(ct_mono(), <, end);
        int n = rx_poll(loop, 1000000000, ev, 1024);
        CHECK_RC(n);
        for (int j = 0; j < n; j++) {
            CHECK_EQ(ev[j].kind, RX_EV_DONE);
            CHECK_EQ(ev[j].result, 8);
            int64_t t = ev[j].token;
            CHECK(t >= 0 && t < FDS);
            CHECK_EQ(seen[t], 0);
            seen[t] = 1;
            int idx;
            memcpy(&idx, buf[t], sizeof idx);
            CHECK_EQ(idx, t);
            CHECK(memcmp(buf[t] + 4, "done", 4) == 0);
            got++;
        }
    }
    CHECK_EQ(ct_stats(loop).pending_ops, 0);
    CHECK_EQ(rx_poll(loop, 10000000, ev, 1024), 0);   /* and nothing more */

    /* tear down half by forget, half by loop close */
    for (int i = 0; i < FDS; i += 2) CHECK_EQ(rx_forget(loop, fds[i]), 0);
    CHECK_EQ(ct_stats(loop).known_fds, PAIRS);
    rx_loop_close(loop);
    for (int i = 0; i < FDS; i++) ct_close(fds[i]);
    free(fds);
    free(buf);
    free(seen);
    free(order);
    free(ev);
    (void)maxfd;
#endif
}
