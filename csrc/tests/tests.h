/*
 * tests.h - the C test suite's tiny framework.
 *
 *   TEST(name) { ... }   defines a test; it registers itself (a constructor)
 *                        and receives `backend`, the backend name to use.
 *   CHECK(expr)          fails the test (prints file:line and the expression)
 *   CHECK_EQ(a, b)       ... and the two values, compared as int64
 *   CHECK_RC(call)       the call must return >= 0 (prints the errno name)
 *   SKIP("why")          ends the test as skipped
 *
 * runner.c runs every test once per backend of rx_backends(), each in its own
 * forked child with an alarm() as the time limit, and checks in the child
 * that the test closed every descriptor it opened.  On Windows runner_win.c
 * does the same with a child process per run (tests_win.h, helpers_win.c).
 */
#ifndef PYCOS_CTESTS_H
#define PYCOS_CTESTS_H

#include "reactor.h"

#include <stdint.h>
#include <stddef.h>
#ifdef _WIN32
#include "tests_win.h"
#else
#include <sys/socket.h>
#endif

typedef void (*ct_test_fn)(const char *backend);

void ct_register(const char *name, ct_test_fn fn, const char *file, int line);

#define TEST(name)                                                              \
    static void ct_test_##name(const char *backend __attribute__((unused)));   \
    __attribute__((constructor)) static void ct_reg_##name(void)               \
    {                                                                           \
        ct_register(#name, ct_test_##name, __FILE__, __LINE__);                 \
    }                                                                           \
    static void ct_test_##name(const char *backend __attribute__((unused)))

/* ---- assertions ---------------------------------------------------------- */

__attribute__((noreturn, format(printf, 3, 4)))
void ct_fail(const char *file, int line, const char *fmt, ...);
__attribute__((noreturn, format(printf, 1, 2)))
void ct_skip(const char *fmt, ...);
const char *ct_errname(int64_t v);   /* "-EAGAIN", "RX_PENDING", "42" */

#define CHECK(expr)                                                             \
    do {                                                                        \
        if (!(expr)) ct_fail(__FILE__, __LINE__, "CHECK(%s) failed", #expr);    \
    } while (0)

#define CHECK_EQ(a, b)                                                          \
    do {                                                                        \
        int64_t ct_a_ = (int64_t)(a), ct_b_ = (int64_t)(b);                     \
        if (ct_a_ != ct_b_)                                                     \
            ct_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s) failed: %lld (%s) != %lld (%s)", \
                    #a, #b, (long long)ct_a_, ct_errname(ct_a_), (long long)ct_b_,         \
                    ct_errname(ct_b_));                                         \
    } while (0)

#define CHECK_CMP(a, op, b)                                                     \
    do {                                                                        \
        int64_t ct_a_ = (int64_t)(a), ct_b_ = (int64_t)(b);                     \
        if (!(ct_a_ op ct_b_))                                                  \
            ct_fail(__FILE__, __LINE__, "CHECK(%s %s %s) failed: %lld vs %lld", \
                    #a, #op, #b, (long long)ct_a_, (long long)ct_b_);           \
    } while (0)

#define CHECK_RC(call)                                                          \
    do {                                                                        \
        int64_t ct_r_ = (int64_t)(call);                                        \
        if (ct_r_ < 0)                                                          \
            ct_fail(__FILE__, __LINE__, "%s failed: %lld (%s)", #call,          \
                    (long long)ct_r_, ct_errname(ct_r_));                       \
    } while (0)

/* a libc call that returns -1 and sets errno on failure */
#define CHECK_SYS(call)                                                         \
    do {                                                                        \
        if ((call) < 0)                                                         \
            ct_fail(__FILE__, __LINE__, "%s failed: %s", #call, strerror(errno)); \
    } while (0)

#define SKIP(...) ct_skip(__VA_ARGS__)

/* ---- helpers (helpers.c) ------------------------------------------------- */

/* The runner's backend loop; fails the test when it cannot be made. */
rx_loop *ct_loop(const char *backend);

/* Monotonic nanoseconds (independent of any loop's clock). */
int64_t ct_mono(void);

/* Poll until exactly one event arrives (at most 5 s, else the test fails). */
void ct_wait_event(rx_loop *loop, rx_event *ev);
/* Collect exactly n events (at most 5 s in all). */
void ct_collect(rx_loop *loop, rx_event *evs, int n);
/* Nothing is queued and nothing is ready now. */
void ct_expect_none(rx_loop *loop);
/* Check an event's fields. */
#define CHECK_EV(ev, tok, knd, ax, res)                                         \
    do {                                                                        \
        CHECK_EQ((ev).token, (tok));                                            \
        CHECK_EQ((ev).kind, (knd));                                             \
        CHECK_EQ((ev).aux, (ax));                                               \
        CHECK_EQ((ev).result, (res));                                           \
    } while (0)

/* A DONE event with this token and result (aux is only defined for
 * cancelled / failed RX_ALL operations, so it is not checked). */
#define CHECK_DONE(ev, tok, res)                                                \
    do {                                                                        \
        CHECK_EQ((ev).token, (tok));                                            \
        CHECK_EQ((ev).kind, RX_EV_DONE);                                        \
        CHECK_EQ((ev).result, (res));                                           \
    } while (0)

/* Stats snapshot. */
rx_stats ct_stats(rx_loop *loop);

/* socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC), blocking. */
void ct_socketpair(int sv[2]);
/* Fill fd's send path until it would block (peer reads nothing); returns
 * the byte count written.  Leaves fd's O_NONBLOCK flag as it found it. */
size_t ct_fill(int fd);
/* Read everything available now (non-blocking); returns the byte count. */
size_t ct_drain(int fd);
/* Blocking full write / read; fail the test on error or early EOF. */
void ct_write_all(int fd, const void *buf, size_t len);
void ct_read_all(int fd, void *buf, size_t len);
/* poll() one descriptor for `events` for at most ms; returns revents. */
int ct_poll1(int fd, short events, int ms);
/* Close and check. */
void ct_close(int fd);

/* Loopback listener (family AF_INET or AF_INET6) on port 0; returns the fd
 * (blocking, listening) or -1 when the family is unavailable; addr/len get
 * its address. */
int ct_listener(int family, int type, struct sockaddr_storage *addr, socklen_t *len);
/* A connected TCP pair over loopback (both blocking, CLOEXEC). -1 if family
 * unavailable. */
int ct_tcp_pair(int family, int sv[2]);
/* A socket bound but not listening: its address refuses connections. */
int ct_refusing(int family, struct sockaddr_storage *addr, socklen_t *len);

/* fill/verify a deterministic pattern */
void ct_pattern(unsigned char *buf, size_t len, uint32_t seed);
int ct_pattern_ok(const unsigned char *buf, size_t len, uint32_t seed);

/* A fixed-seed PRNG (xorshift64*). */
typedef struct ct_rng { uint64_t s; } ct_rng;
uint64_t ct_rand(ct_rng *r);

/* The file descriptors of this process, for the leak check. */
int ct_count_fds(void);

#endif
