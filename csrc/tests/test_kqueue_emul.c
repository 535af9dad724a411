/*
 * test_kqueue_emul.c - the kqueue emulation itself (kqueue_emul.h), through
 * the BSD API only: the suite's kqueue runs mean something only if the
 * emulation behaves like kqueue.  These tests do not use the loop, so they
 * run once, under [kqueue-emul], and are skipped on the other backends.
 */
#ifdef RX_KQUEUE_EMUL

#include "tests.h"
#include "kqueue_emul.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ONCE()                                                                  \
    do {                                                                        \
        if (strcmp(backend, "kqueue-emul") != 0)                                \
            SKIP("tests the kqueue emulation, not a backend: runs under [kqueue-emul]"); \
    } while (0)

static int kq_new(void)
{
    int kq = kqueue();
    CHECK_SYS(kq);
    return kq;
}

/* close() here is the header's kqemul_close, which frees the emulation's
 * descriptors with the kqueue (ct_close would leak them) */
static void kq_close(int kq)
{
    CHECK_SYS(close(kq));
}

/* kevent with a timeout in nanoseconds (< 0: none) */
static int kev(int kq, const struct kevent *ch, int nch, struct kevent *out, int nout, int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    return kevent(kq, ch, nch, out, nout, ns < 0 ? NULL : &ts);
}

/* Apply one change without receipt or event list; 0 or the errno. */
static int change1(int kq, uintptr_t ident, int filter, int flags, unsigned fflags, void *udata)
{
    struct kevent ch;
    EV_SET(&ch, ident, filter, flags, fflags, 0, udata);
    return kevent(kq, &ch, 1, NULL, 0, NULL) == 0 ? 0 : errno;
}

static void expect_none(int kq)
{
    struct kevent out[4];
    int n = kev(kq, NULL, 0, out, 4, 0);
    if (n != 0)
        ct_fail(__FILE__, __LINE__, "expected no event, got %d (ident %d filter %d flags %#x)", n,
                (int)out[0].ident, out[0].filter, out[0].flags);
}

/* Exactly one event within 5 s. */
static struct kevent expect_one(int kq)
{
    struct kevent out[4];
    int n = kev(kq, NULL, 0, out, 4, 5000000000LL);
    if (n != 1) ct_fail(__FILE__, __LINE__, "expected one event, got %d", n);
    return out[0];
}

TEST(kqemul_read_level_and_clear)
{
    ONCE();
    int kq = kq_new();
    int sv[2];
    ct_socketpair(sv);
    static int tag;
    /* level: reported while readable, with the byte count */
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD, 0, &tag), 0);
    expect_none(kq);
    ct_write_all(sv[1], "hello", 5);
    for (int i = 0; i < 2; i++) {
        struct kevent e = expect_one(kq);
        CHECK_EQ(e.ident, sv[0]);
        CHECK_EQ(e.filter, EVFILT_READ);
        CHECK_EQ(e.data, 5);
        CHECK(e.udata == &tag);
        CHECK_EQ(e.flags & (EV_EOF | EV_ERROR | EV_CLEAR), 0);
    }
    char buf[16];
    CHECK_EQ(ct_drain(sv[0]), 5);
    expect_none(kq);
    /* EV_CLEAR on the same filter: EV_ADD keeps an existing filter's
     * flags (as BSD does), so delete and add again */
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, NULL), 0);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, NULL), 0);
    expect_none(kq);
    ct_write_all(sv[1], "abc", 3);
    struct kevent e = expect_one(kq);
    CHECK_EQ(e.data, 3);
    CHECK(e.flags & EV_CLEAR);
    expect_none(kq);   /* still readable, but reported once per change */
    ct_write_all(sv[1], "de", 2);
    e = expect_one(kq);
    CHECK_EQ(e.data, 5);
    expect_none(kq);
    CHECK_EQ(read(sv[0], buf, sizeof buf), 5);
    /* adding a filter whose condition already holds reports it */
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, NULL), 0);
    ct_write_all(sv[1], "x", 1);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, NULL), 0);
    e = expect_one(kq);
    CHECK_EQ(e.data, 1);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, NULL), 0);
    ct_close(sv[0]);
    ct_close(sv[1]);
    kq_close(kq);
}

TEST(kqemul_oneshot_dispatch_disable)
{
    ONCE();
    int kq = kq_new();
    int sv[2];
    ct_socketpair(sv);
    ct_write_all(sv[1], "zz", 2);
    /* EV_ONESHOT: reported once, then gone */
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_ONESHOT, 0, NULL), 0);
    struct kevent e = expect_one(kq);
    CHECK(e.flags & EV_ONESHOT);
    expect_none(kq);
    CHECK_EQ(kqemul_filters(kq, sv[0]), 0);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, NULL), ENOENT);
    /* EV_DISPATCH: reported once, then disabled until EV_ENABLE */
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_DISPATCH, 0, NULL), 0);
    e = expect_one(kq);
    CHECK(e.flags & EV_DISPATCH);
    expect_none(kq);
    CHECK_EQ(kqemul_filters(kq, sv[0]), 1);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ENABLE, 0, NULL), 0);
    e = expect_one(kq);
    CHECK_EQ(e.data, 2);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, NULL), 0);
    /* EV_DISABLE / EV_ENABLE on a level filter; EV_ADD | EV_DISABLE */
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_DISABLE, 0, NULL), 0);
    expect_none(kq);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ENABLE, 0, NULL), 0);
    expect_one(kq);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DISABLE, 0, NULL), 0);
    expect_none(kq);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, NULL), 0);
    ct_close(sv[0]);
    ct_close(sv[1]);
    kq_close(kq);
}

TEST(kqemul_errors_and_receipts)
{
    ONCE();
    int kq = kq_new();
    int sv[2];
    ct_socketpair(sv);
    int closed = dup(sv[0]);
    CHECK_SYS(closed);
    ct_close(closed);
    struct kevent ch[4], out[8];
    EV_SET(&ch[0], (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&ch[1], (uintptr_t)sv[0], EVFILT_WRITE, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&ch[2], (uintptr_t)closed, EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&ch[3], (uintptr_t)sv[0], 77, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    ct_write_all(sv[1], "q", 1);   /* pending, yet receipts do not drain it */
    CHECK_EQ(kevent(kq, ch, 4, out, 8, NULL), 4);   /* NULL timeout: no wait */
    int64_t want[4] = {0, ENOENT, EBADF, EINVAL};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(out[i].flags, EV_ERROR);
        CHECK_EQ(out[i].data, want[i]);
        CHECK_EQ(out[i].ident, ch[i].ident);
        CHECK_EQ(out[i].filter, ch[i].filter);
    }
    struct kevent e = expect_one(kq);
    CHECK_EQ(e.filter, EVFILT_READ);
    /* without receipts: errors only, in the event list when it has room ... */
    EV_SET(&ch[0], (uintptr_t)sv[1], EVFILT_READ, EV_ADD, 0, 0, NULL);
    EV_SET(&ch[1], (uintptr_t)sv[1], EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    CHECK_EQ(kevent(kq, ch, 2, out, 8, NULL), 1);
    CHECK_EQ(out[0].flags, EV_ERROR);
    CHECK_EQ(out[0].data, ENOENT);
    CHECK_EQ(kqemul_filters(kq, sv[1]), 1);   /* the first change was made */
    /* ... else kevent fails with the first one */
    errno = 0;
    CHECK_EQ(kevent(kq, ch + 1, 1, NULL, 0, NULL), -1);
    CHECK_EQ(errno, ENOENT);
    /* bad calls */
    errno = 0;
    CHECK_EQ(kevent(-1, NULL, 0, out, 1, NULL), -1);
    CHECK_EQ(errno, EBADF);
    errno = 0;
    CHECK_EQ(kevent(sv[0], NULL, 0, out, 1, NULL), -1);   /* not a kqueue */
    CHECK_EQ(errno, EBADF);
    struct timespec bad = {0, 1000000000};
    errno = 0;
    CHECK_EQ(kevent(kq, NULL, 0, out, 1, &bad), -1);
    CHECK_EQ(errno, EINVAL);
    /* nevents == 0 never waits */
    CHECK_EQ(kevent(kq, NULL, 0, NULL, 0, NULL), 0);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, NULL), 0);
    CHECK_EQ(change1(kq, (uintptr_t)sv[1], EVFILT_READ, EV_DELETE, 0, NULL), 0);
    ct_close(sv[0]);
    ct_close(sv[1]);
    kq_close(kq);
}

/* Each filter has its own edges: new bytes do not report EVFILT_WRITE,
 * new room does not report EVFILT_READ. */
TEST(kqemul_filters_independent)
{
    ONCE();
    int kq = kq_new();
    int sv[2];
    ct_socketpair(sv);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, NULL), 0);
    struct kevent e = expect_one(kq);   /* writable when added */
    CHECK_EQ(e.filter, EVFILT_WRITE);
    CHECK_CMP(e.data, >, 0);
    expect_none(kq);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, NULL), 0);
    CHECK_EQ(kqemul_filters(kq, sv[0]), 3);
    for (int i = 0; i < 5; i++) {
        ct_write_all(sv[1], "r", 1);
        e = expect_one(kq);
        CHECK_EQ(e.filter, EVFILT_READ);
        CHECK_EQ(e.data, i + 1);
    }
    /* fill sv[0]'s path; draining it on the other side reports room only */
    size_t filled = ct_fill(sv[0]);
    CHECK_CMP(filled, >, 0);
    expect_none(kq);
    CHECK_EQ(ct_drain(sv[1]), filled);
    e = expect_one(kq);
    CHECK_EQ(e.filter, EVFILT_WRITE);
    CHECK_CMP(e.data, >, 0);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, NULL), 0);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_WRITE, EV_DELETE, 0, NULL), 0);
    CHECK_EQ(kqemul_filters(kq, sv[0]), 0);
    ct_close(sv[0]);
    ct_close(sv[1]);
    kq_close(kq);
}

static void reset_close(int fd)
{
    struct linger lg = {1, 0};
    CHECK_SYS(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    ct_close(fd);
}

static int so_error(int fd)
{
    int e = -1;
    socklen_t l = sizeof e;
    CHECK_SYS(getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l));
    return e;
}

/* EV_EOF on hang-up, with fflags = the socket's error, which stays there
 * for the code that reads the socket. */
TEST(kqemul_eof_and_errors)
{
    ONCE();
    int kq = kq_new();
    /* end of stream with bytes still unread: EV_EOF, data = the bytes */
    int sv[2];
    ct_socketpair(sv);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, NULL), 0);
    ct_write_all(sv[1], "bye", 3);
    CHECK_SYS(shutdown(sv[1], SHUT_WR));
    struct kevent e = expect_one(kq);
    CHECK(e.flags & EV_EOF);
    CHECK_EQ(e.data, 3);
    CHECK_EQ(e.fflags, 0);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, NULL), 0);
    ct_close(sv[0]);
    ct_close(sv[1]);
    /* a pipe whose reader is gone: EVFILT_WRITE has EV_EOF, no error */
    int p[2];
    CHECK_SYS(pipe2(p, O_CLOEXEC));
    CHECK_EQ(change1(kq, (uintptr_t)p[1], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, NULL), 0);
    e = expect_one(kq);
    CHECK_EQ(e.flags & EV_EOF, 0);
    CHECK_CMP(e.data, >, 0);
    ct_close(p[0]);
    e = expect_one(kq);
    CHECK(e.flags & EV_EOF);
    CHECK_EQ(e.fflags, 0);
    CHECK_EQ(change1(kq, (uintptr_t)p[1], EVFILT_WRITE, EV_DELETE, 0, NULL), 0);
    ct_close(p[1]);
    /* TCP reset: both filters EV_EOF with ECONNRESET */
    int tp[2];
    CHECK_EQ(ct_tcp_pair(AF_INET, tp), 0);
    CHECK_EQ(change1(kq, (uintptr_t)tp[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, NULL), 0);
    CHECK_EQ(change1(kq, (uintptr_t)tp[0], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, NULL), 0);
    e = expect_one(kq);
    CHECK_EQ(e.filter, EVFILT_WRITE);
    reset_close(tp[1]);
    struct kevent out[4];
    int got = 0, seen = 0;
    int64_t end = ct_mono() + 5000000000LL;
    while (seen != 3 && ct_mono() < end) {
        int n = kev(kq, NULL, 0, out, 4, 100000000);
        CHECK_CMP(n, >=, 0);
        for (int i = 0; i < n; i++, got++) {
            CHECK(out[i].flags & EV_EOF);
            CHECK_EQ(out[i].fflags, ECONNRESET);
            seen |= out[i].filter == EVFILT_READ ? 1 : 2;
        }
    }
    CHECK_EQ(seen, 3);
    CHECK_EQ(so_error(tp[0]), ECONNRESET);   /* not consumed by the emulation */
    CHECK_EQ(change1(kq, (uintptr_t)tp[0], EVFILT_READ, EV_DELETE, 0, NULL), 0);
    CHECK_EQ(change1(kq, (uintptr_t)tp[0], EVFILT_WRITE, EV_DELETE, 0, NULL), 0);
    ct_close(tp[0]);
    /* refused connect: EVFILT_WRITE EV_EOF with ECONNREFUSED */
    struct sockaddr_storage addr;
    socklen_t alen;
    int ref = ct_refusing(AF_INET, &addr, &alen);
    CHECK_CMP(ref, >=, 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK_SYS(c);
    int r = connect(c, (struct sockaddr *)&addr, alen);
    CHECK(r < 0 && (errno == EINPROGRESS || errno == ECONNREFUSED));
    CHECK_EQ(change1(kq, (uintptr_t)c, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, NULL), 0);
    e = expect_one(kq);
    CHECK_EQ(e.filter, EVFILT_WRITE);
    CHECK(e.flags & EV_EOF);
    CHECK_EQ(e.fflags, ECONNREFUSED);
    CHECK_EQ(so_error(c), ECONNREFUSED);
    CHECK_EQ(change1(kq, (uintptr_t)c, EVFILT_WRITE, EV_DELETE, 0, NULL), 0);
    ct_close(c);
    ct_close(ref);
    kq_close(kq);
}

TEST(kqemul_listener_backlog)
{
    ONCE();
    int kq = kq_new();
    struct sockaddr_storage addr;
    socklen_t alen;
    int l = ct_listener(AF_INET, SOCK_STREAM, &addr, &alen);
    CHECK_CMP(l, >=, 0);
    CHECK_EQ(change1(kq, (uintptr_t)l, EVFILT_READ, EV_ADD, 0, NULL), 0);
    expect_none(kq);
    int c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK_SYS(c[i]);
        CHECK_SYS(connect(c[i], (struct sockaddr *)&addr, alen));
    }
    /* level: the count of connections waiting to be accepted */
    int64_t end = ct_mono() + 5000000000LL;
    struct kevent e;
    do {
        e = expect_one(kq);
        CHECK_CMP(ct_mono(), <, end);
    } while (e.data < 3);
    CHECK_EQ(e.data, 3);
    CHECK_EQ(change1(kq, (uintptr_t)l, EVFILT_READ, EV_DELETE, 0, NULL), 0);
    for (int i = 0; i < 3; i++) ct_close(c[i]);
    ct_close(l);
    kq_close(kq);
}

struct trigger_arg {
    int kq;
    int go[2];   /* main -> thread: one byte per trigger wanted */
};

/* Triggers while the main thread blocks in kevent, or just before it
 * does: either way that kevent must return the event. */
static void *trigger_later(void *p)
{
    struct trigger_arg *a = p;
    char c;
    CHECK_EQ(read(a->go[0], &c, 1), 1);
    struct kevent ch;
    EV_SET(&ch, 7, EVFILT_USER, 0, NOTE_TRIGGER | NOTE_FFOR | 0x10, 0, NULL);
    CHECK_EQ(kevent(a->kq, &ch, 1, NULL, 0, NULL), 0);
    return NULL;
}

TEST(kqemul_user_events)
{
    ONCE();
    int kq = kq_new();
    static int tag;
    CHECK_EQ(change1(kq, 7, EVFILT_USER, EV_ADD | EV_CLEAR, 0, &tag), 0);
    expect_none(kq);
    /* NOTE_TRIGGER, with NOTE_FFOR on the low 24 bits */
    CHECK_EQ(change1(kq, 7, EVFILT_USER, 0, NOTE_TRIGGER | NOTE_FFOR | 0x3, NULL), 0);
    struct kevent e = expect_one(kq);
    CHECK_EQ(e.ident, 7);
    CHECK_EQ(e.filter, EVFILT_USER);
    CHECK_EQ(e.fflags, 0x3);
    CHECK(e.udata == &tag);
    expect_none(kq);   /* EV_CLEAR: reset once reported */
    CHECK_EQ(change1(kq, 7, EVFILT_USER, 0, NOTE_FFCOPY | 0x55, NULL), 0);
    expect_none(kq);   /* fflags alone do not trigger */
    CHECK_EQ(change1(kq, 7, EVFILT_USER, 0, NOTE_TRIGGER | NOTE_FFAND | 0x0f, NULL), 0);
    e = expect_one(kq);
    CHECK_EQ(e.fflags, 0x05);
    /* many triggers before a collection: one event */
    for (int i = 0; i < 100; i++)
        CHECK_EQ(change1(kq, 7, EVFILT_USER, 0, NOTE_TRIGGER, NULL), 0);
    expect_one(kq);
    expect_none(kq);
    /* disabled: the trigger waits for EV_ENABLE */
    CHECK_EQ(change1(kq, 7, EVFILT_USER, EV_DISABLE, NOTE_TRIGGER, NULL), 0);
    expect_none(kq);
    CHECK_EQ(change1(kq, 7, EVFILT_USER, EV_ENABLE, 0, NULL), 0);
    expect_one(kq);
    expect_none(kq);
    /* without EV_CLEAR it stays triggered */
    CHECK_EQ(change1(kq, 8, EVFILT_USER, EV_ADD, NOTE_TRIGGER, NULL), 0);
    for (int i = 0; i < 3; i++) CHECK_EQ(expect_one(kq).ident, 8);
    CHECK_EQ(change1(kq, 8, EVFILT_USER, EV_DELETE, 0, NULL), 0);
    expect_none(kq);
    CHECK_EQ(change1(kq, 8, EVFILT_USER, 0, NOTE_TRIGGER, NULL), ENOENT);
    /* from another thread into a blocked kevent */
    struct trigger_arg a = {kq, {-1, -1}};
    CHECK_SYS(pipe2(a.go, O_CLOEXEC));
    for (int round = 0; round < 200; round++) {
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, trigger_later, &a), 0);
        ct_write_all(a.go[1], "g", 1);
        int64_t t0 = ct_mono();
        struct kevent out[2];
        CHECK_EQ(kev(kq, NULL, 0, out, 2, -1), 1);
        CHECK_CMP(ct_mono() - t0, <, 5000000000LL);
        CHECK_EQ(out[0].ident, 7);
        CHECK_EQ(out[0].fflags, 0x10);
        CHECK_EQ(pthread_join(th, NULL), 0);
    }
    ct_close(a.go[0]);
    ct_close(a.go[1]);
    /* a kernel without EVFILT_USER (the test knob): EV_ADD is EINVAL,
     * existing ones still work */
    kqemul_refuse_user_filter(1);
    CHECK_EQ(change1(kq, 9, EVFILT_USER, EV_ADD | EV_CLEAR, 0, NULL), EINVAL);
    CHECK_EQ(change1(kq, 7, EVFILT_USER, 0, NOTE_TRIGGER, NULL), 0);
    expect_one(kq);
    kqemul_refuse_user_filter(0);
    CHECK_EQ(change1(kq, 7, EVFILT_USER, EV_DELETE, 0, NULL), 0);
    kq_close(kq);
}

/* The descriptor polls readable while events are pending, and kqueue()
 * does not make it close-on-exec (BSD's does not either). */
TEST(kqemul_descriptor_pollable)
{
    ONCE();
    int kq = kq_new();
    int fdfl = fcntl(kq, F_GETFD);
    CHECK(fdfl >= 0 && !(fdfl & FD_CLOEXEC));
    CHECK_EQ(ct_poll1(kq, POLLIN, 0), 0);
    CHECK_EQ(change1(kq, 1, EVFILT_USER, EV_ADD | EV_CLEAR, 0, NULL), 0);
    CHECK_EQ(change1(kq, 1, EVFILT_USER, 0, NOTE_TRIGGER, NULL), 0);
    CHECK(ct_poll1(kq, POLLIN, 5000) & POLLIN);
    expect_one(kq);
    CHECK_EQ(ct_poll1(kq, POLLIN, 0), 0);
    int sv[2];
    ct_socketpair(sv);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, NULL), 0);
    CHECK_EQ(ct_poll1(kq, POLLIN, 0), 0);
    ct_write_all(sv[1], "p", 1);
    CHECK(ct_poll1(kq, POLLIN, 5000) & POLLIN);
    expect_one(kq);
    CHECK_EQ(ct_poll1(kq, POLLIN, 0), 0);
    CHECK_EQ(change1(kq, (uintptr_t)sv[0], EVFILT_READ, EV_DELETE, 0, NULL), 0);
    CHECK_EQ(change1(kq, 1, EVFILT_USER, EV_DELETE, 0, NULL), 0);
    ct_close(sv[0]);
    ct_close(sv[1]);
    kq_close(kq);
}

TEST(kqemul_timeouts)
{
    ONCE();
    int kq = kq_new();
    struct kevent out[2];
    const int64_t ms = 1000000;
    int64_t sizes[] = {0, 1500 * 1000, 20 * ms};
    for (int i = 0; i < 3; i++) {
        int64_t t0 = ct_mono();
        CHECK_EQ(kev(kq, NULL, 0, out, 2, sizes[i]), 0);
        CHECK_CMP(ct_mono() - t0, >=, sizes[i]);   /* never early */
    }
    kq_close(kq);
}

/* Descriptors epoll refuses (a regular file) are always ready, as files
 * are to kqueue, with data = bytes to end of file. */
TEST(kqemul_regular_file)
{
    ONCE();
    int kq = kq_new();
    char path[] = "/tmp/pycos-kqemul-XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    CHECK_SYS(fd);
    CHECK_SYS(unlink(path));
    ct_write_all(fd, "0123456789", 10);
    CHECK_SYS(lseek(fd, 4, SEEK_SET));
    CHECK_EQ(change1(kq, (uintptr_t)fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, NULL), 0);
    struct kevent e = expect_one(kq);
    CHECK_EQ(e.data, 6);
    expect_none(kq);
    CHECK_EQ(change1(kq, (uintptr_t)fd, EVFILT_READ, EV_DELETE, 0, NULL), 0);
    CHECK_EQ(change1(kq, (uintptr_t)fd, EVFILT_WRITE, EV_ADD, 0, NULL), 0);
    for (int i = 0; i < 2; i++) CHECK_EQ(expect_one(kq).filter, EVFILT_WRITE);
    CHECK_EQ(change1(kq, (uintptr_t)fd, EVFILT_WRITE, EV_DELETE, 0, NULL), 0);
    expect_none(kq);
    ct_close(fd);
    kq_close(kq);
}

/* A change naming a closed descriptor fails with EBADF and its filters
 * are gone, as when BSD drops them at close; the number can be reused. */
TEST(kqemul_closed_descriptor)
{
    ONCE();
    int kq = kq_new();
    int sv[2];
    ct_socketpair(sv);
    int fd = sv[0];
    CHECK_EQ(change1(kq, (uintptr_t)fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, NULL), 0);
    ct_close(fd);
    CHECK_EQ(change1(kq, (uintptr_t)fd, EVFILT_READ, EV_DELETE, 0, NULL), EBADF);
    CHECK_EQ(kqemul_filters(kq, fd), 0);
    ct_close(sv[1]);
    ct_socketpair(sv);
    CHECK_EQ(sv[0], fd);   /* the lowest free number */
    CHECK_EQ(change1(kq, (uintptr_t)fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, NULL), 0);
    ct_write_all(sv[1], "n", 1);
    CHECK_EQ(expect_one(kq).ident, fd);
    CHECK_EQ(change1(kq, (uintptr_t)fd, EVFILT_READ, EV_DELETE, 0, NULL), 0);
    ct_close(sv[0]);
    ct_close(sv[1]);
    kq_close(kq);
}

#endif /* RX_KQUEUE_EMUL */
