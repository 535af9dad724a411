/*
 * backend_kqueue.c - the backend of the BSDs and macOS, on kqueue(2).
 *
 * Edge-triggered, like the epoll backend, because that is what the loop's
 * hints want (internal.h): a filter is added with EV_CLEAR the first time an
 * operation on its side has to wait, and stays until rx_forget.  EV_CLEAR
 * reports each change of state once (new bytes, new room, a new connection,
 * end of stream); between reports the hints remember what may be ready, so
 * a busy descriptor costs no kevent change at all.  EV_ONESHOT would need
 * one change per wait (re-adding the filter) and level-triggered filters
 * would report a readable descriptor on every wait while its operation is
 * not pending, which is why neither is used.
 *
 * Each side is added on its own (EVFILT_READ when a read-side operation
 * first waits, EVFILT_WRITE likewise), not both at once as with epoll: a
 * listening socket never needs EVFILT_WRITE, and a recv never hears about
 * writability it did not ask for.  Adding a filter evaluates it at once, so
 * a side that became ready between the EAGAIN and the kevent is reported.
 * Both changes of an update go in one kevent call with EV_RECEIPT, which
 * returns one receipt per change and never drains pending events.
 * st->bidx holds the sides added so far (RX_READ|RX_WRITE bits; < 0: none).
 *
 * EV_EOF: on EVFILT_READ the peer will send nothing more, on EVFILT_WRITE
 * nothing more can be sent; both are hang-ups (RX__HUP: after it a short
 * read no longer proves the descriptor drained, since that edge will not
 * come again).  EV_EOF with fflags set carries the socket's error (a reset,
 * a refused connect): like EPOLLERR it makes both sides ready, and the
 * operations find the error themselves (recv, or SO_ERROR for a connect),
 * so its value is not needed here.
 *
 * Wakeups from other threads and signal handlers: an EVFILT_USER event
 * (ident 0, EV_CLEAR) triggered with NOTE_TRIGGER, so the loop needs no
 * eventfd or pipe.  Where EVFILT_USER is missing (not in the headers, or
 * refused by an older kernel) the loop's pipe is watched with EVFILT_READ.
 *
 * rx_loop_fd is the kqueue descriptor: it polls readable while it has
 * events to report.  Timeouts are nanoseconds (a timespec), never rounded
 * down, so a timer is never reported before its deadline.
 *
 * Compiled where the headers have kqueue (RX_HAVE_KQUEUE in internal.h).
 * On Linux it is compiled only into the C test binary, against a test-only
 * emulation on epoll (csrc/tests/kqueue_emul.h), as "kqueue-emul".
 */
#include "internal.h"

#ifdef RX_HAVE_KQUEUE

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef RX_KQUEUE_TEST_ONLY
#include "kqueue_emul.h"
#define KQ_NAME "kqueue-emul"
#else
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#define KQ_NAME "kqueue"
#endif

#define MAX_EVENTS 256
#define WAKE_IDENT 0

/* tv_sec beyond this waits "forever" in slices (some kernels refuse huge
 * timeouts); rx_poll goes on waiting after an early return */
#define MAX_WAIT_SEC 100000000

typedef struct kq_data {
    int kq;
    struct kevent events[MAX_EVENTS];
} kq_data;

/* Apply n (<= 2) changes; each one's error is reported (EV_RECEIPT).
 * ok gets a bit per change that succeeded.  Returns the first error. */
static int kq_apply(rx_loop *loop, kq_data *d, struct kevent *ch, int n, int *ok)
{
    int err = 0;
    *ok = 0;
    loop->syscalls++;
#ifdef EV_RECEIPT
    struct kevent res[2];
    const struct timespec zero = {0, 0};   /* never waits, even if no receipt came */
    for (int i = 0; i < n; i++) ch[i].flags |= EV_RECEIPT;
    int r;
    do {
        r = kevent(d->kq, ch, n, res, n, &zero);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    for (int i = 0; i < r; i++) {
        /* receipts only: a kevent call that returns receipts reports no
         * pending event (those stay queued for the next wait) */
        if (!(res[i].flags & EV_ERROR)) continue;
        int k = -1;
        for (int j = 0; j < n; j++)
            if (res[i].ident == ch[j].ident && res[i].filter == ch[j].filter) k = j;
        if (k < 0) continue;
        if (res[i].data == 0) {
            *ok |= 1 << k;
        } else if (!err) {
            err = -(int)res[i].data;
        }
    }
#else
    /* no receipts: one change per call, no event list, so that nothing
     * pending is drained here */
    for (int i = 0; i < n; i++) {
        if (i) loop->syscalls++;
        int r;
        do {
            r = kevent(d->kq, &ch[i], 1, NULL, 0, NULL);
        } while (r < 0 && errno == EINTR);
        if (r == 0) {
            *ok |= 1 << i;
        } else if (!err) {
            err = -errno;
        }
    }
#endif
    return err;
}

#ifdef EVFILT_USER
static int kq_wake(rx_loop *loop)
{
    /* one system call, no lock, no allocation: async-signal-safe */
    kq_data *d = loop->bdata;
    struct kevent kev;
    EV_SET(&kev, WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, 0);
    for (;;) {
        if (kevent(d->kq, &kev, 1, NULL, 0, NULL) == 0) return 0;
        if (errno != EINTR) return -errno;
    }
}
#endif

static int kq_init(rx_loop *loop)
{
    kq_data *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    d->kq = kqueue();
    if (d->kq < 0) {
        int rc = -errno;
        free(d);
        return rc;
    }
    /* a kqueue is not inherited by fork; keep it from exec'd programs too */
    int fdfl = fcntl(d->kq, F_GETFD);
    if (fdfl < 0 || fcntl(d->kq, F_SETFD, fdfl | FD_CLOEXEC) < 0) {
        int rc = -errno;
        close(d->kq);
        free(d);
        return rc;
    }
    loop->bdata = d;
    struct kevent ch;
    int ok, rc;
#ifdef EVFILT_USER
    EV_SET(&ch, WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, 0);
    rc = kq_apply(loop, d, &ch, 1, &ok);
    if (rc == 0) {
        loop->wake_fn = kq_wake;
        return 0;
    }
    /* EINVAL: a kernel without EVFILT_USER; use the loop's pipe */
#endif
    /* level-triggered: rx__woken drains the pipe at every report */
    EV_SET(&ch, (uintptr_t)loop->wake_rfd, EVFILT_READ, EV_ADD, 0, 0, 0);
    rc = kq_apply(loop, d, &ch, 1, &ok);
    if (rc < 0) {
        close(d->kq);
        free(d);
        loop->bdata = NULL;
        return rc;
    }
    return 0;
}

static void kq_close(rx_loop *loop)
{
    kq_data *d = loop->bdata;
    if (!d) return;
    close(d->kq);
    free(d);
    loop->bdata = NULL;
}

static int kq_update(rx_loop *loop, int fd, rx_fd *st, int want)
{
    int have = st->bidx > 0 ? st->bidx : 0;
    int add = want & ~have & (RX_READ | RX_WRITE);
    if (!add) return 0;
    kq_data *d = loop->bdata;
    struct kevent ch[2];
    int sides[2], n = 0;
    if (add & RX_READ) {
        EV_SET(&ch[n], (uintptr_t)fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, 0);
        sides[n++] = RX_READ;
    }
    if (add & RX_WRITE) {
        EV_SET(&ch[n], (uintptr_t)fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, 0);
        sides[n++] = RX_WRITE;
    }
    int ok;
    int rc = kq_apply(loop, d, ch, n, &ok);
    for (int i = 0; i < n; i++)
        if (ok & (1 << i)) have |= sides[i];
    st->bidx = have;
    if (have) st->registered = 1;
    return rc;
}

static void kq_forget(rx_loop *loop, int fd, rx_fd *st)
{
    kq_data *d = loop->bdata;
    int have = st->bidx > 0 ? st->bidx : 0;
    struct kevent ch[2];
    int n = 0, ok;
    if (have & RX_READ) {
        EV_SET(&ch[n], (uintptr_t)fd, EVFILT_READ, EV_DELETE, 0, 0, 0);
        n++;
    }
    if (have & RX_WRITE) {
        EV_SET(&ch[n], (uintptr_t)fd, EVFILT_WRITE, EV_DELETE, 0, 0, 0);
        n++;
    }
    /* EBADF/ENOENT: already closed, and the kernel dropped its filters */
    if (n) (void)kq_apply(loop, d, ch, n, &ok);
    st->bidx = -1;
    st->registered = 0;
}

static int kq_wait(rx_loop *loop, int64_t timeout_ns)
{
    kq_data *d = loop->bdata;
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        int64_t sec = timeout_ns / 1000000000;
        ts.tv_sec = (time_t)(sec > MAX_WAIT_SEC ? MAX_WAIT_SEC : sec);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    int n = kevent(d->kq, NULL, 0, d->events, MAX_EVENTS, tp);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) {
        const struct kevent *ev = &d->events[i];
#ifdef EVFILT_USER
        if (ev->filter == EVFILT_USER) {
            rx__woken(loop);
            continue;
        }
#endif
        if (ev->flags & EV_ERROR) continue;   /* no changes were passed */
        int fd = (int)ev->ident;
        if (fd == loop->wake_rfd && ev->filter == EVFILT_READ) {
            rx__woken(loop);
            continue;
        }
        int sides;
        if (ev->filter == EVFILT_READ)
            sides = RX_READ;
        else if (ev->filter == EVFILT_WRITE)
            sides = RX_WRITE;
        else
            continue;
        if (ev->flags & EV_EOF) {
            sides |= RX__HUP;
            if (ev->fflags) sides |= RX_READ | RX_WRITE;   /* a socket error */
        }
        rx__ready(loop, fd, sides);
    }
    return n;
}

static int kq_fd(const rx_loop *loop)
{
    const kq_data *d = loop->bdata;
    return d->kq;
}

const struct rx_backend rx__backend_kqueue = {
    KQ_NAME, kq_init, kq_close, kq_update, kq_forget, kq_wait, kq_fd,
};

#endif /* RX_HAVE_KQUEUE */
