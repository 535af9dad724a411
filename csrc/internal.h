/*
 * internal.h - what the loop core, the timer heap and the backends share.
 *
 * The loop core (loop.c) turns readiness into completions: every descriptor
 * has a small state record with one read-side and one write-side operation
 * slot and two "may be ready" hints.  An operation is tried at once when its
 * hint is set; a syscall that says EAGAIN (or a short read on a stream)
 * clears the hint, and only then is interest registered with the backend.
 * A readiness report from the backend sets the hint and performs whatever
 * is pending.  With an edge-triggered backend (epoll, kqueue with EV_CLEAR)
 * a descriptor is registered once and never re-armed, so a steady echo
 * costs one recv and one send per message and no epoll_ctl or kevent.
 *
 * The backend contract is the struct rx_backend below: a readiness backend
 * implements init/close/update/forget/wait and calls rx__ready() for each
 * ready descriptor.  A completion backend (IOCP) sets loop->ops in init and
 * performs operations itself; the core then forwards rx_recv & co. to it.  A backend
 * with a wakeup of its own (kqueue's EVFILT_USER) sets loop->wake_fn in
 * init; the loop then closes its eventfd/pipe and rx_wakeup calls wake_fn.
 *
 * On Windows the only backend is IOCP (backend_iocp.c): it sets `ops` and
 * wake_fn (PostQueuedCompletionStatus), the readiness half of loop.c is
 * not compiled, and compat_win.h supplies the headers, the clock and the
 * errno numbers.
 */
#ifndef PYCOS_INTERNAL_H
#define PYCOS_INTERNAL_H

#include "reactor.h"

#include <stdatomic.h>

#ifdef _WIN32
#include "compat_win.h"
#endif

/* kqueue: the native backend of the BSDs and macOS.  On Linux it is compiled
 * only into the C test binary, over a test-only emulation of kqueue on epoll
 * (RX_KQUEUE_EMUL, csrc/tests/kqueue_emul.h), under the name "kqueue-emul":
 * rx_loop_new finds it by that name, rx_backends() does not list it (it is
 * not part of the product), and the test runner adds it to its runs. */
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || \
    defined(__NetBSD__) || defined(__DragonFly__)
#define RX_HAVE_KQUEUE 1
#elif defined(RX_KQUEUE_EMUL) && defined(__linux__)
#define RX_HAVE_KQUEUE 1
#define RX_KQUEUE_TEST_ONLY 1
#endif

/* Operation kinds held in a slot. */
enum {
    OP_NONE = 0,
    OP_RECV,
    OP_SEND,
    OP_ACCEPT,
    OP_CONNECT,
    OP_RECVFROM,
    OP_SENDTO,
    OP_WATCH
};

typedef struct rx_op {
    int64_t token;
    char *buf;
    size_t len;
    size_t done;        /* bytes moved so far (RX_ALL); connect: 1 once started */
    void *addr;         /* recvfrom: where to put the peer; sendto: destination */
    uint32_t *addrlenp; /* recvfrom: capacity in, length out */
    uint32_t addrlen;   /* sendto: destination length */
    uint8_t kind;       /* OP_* */
    uint8_t flags;      /* RX_ALL, RX_LAZY, RX_ARENA */
    uint8_t sides;      /* OP_WATCH: the sides asked for */
} rx_op;

/* Per-descriptor state, in a table indexed by the descriptor. */
typedef struct rx_fd {
    rx_op rd;           /* read-side slot */
    rx_op wr;           /* write-side slot */
    int32_t bidx;       /* backend's private index (poll: slot in pollfd array) */
    uint8_t known;      /* the loop keeps state for this descriptor */
    uint8_t hint;       /* RX_READ/RX_WRITE: may be ready, try the syscall */
    uint8_t sock;       /* 0 unknown, 1 socket, 2 not a socket (read/write) */
    uint8_t nonblock;   /* O_NONBLOCK has been ensured */
    uint8_t registered; /* known to the backend */
    uint8_t interest;   /* RX_READ/RX_WRITE interest currently asked for */
    uint8_t hup;        /* the backend saw hang-up/error/peer shutdown: a short
                           read no longer proves the descriptor drained */
    int32_t rd_err;     /* an error an RX_ALL recv met after it had data: it
                           returned the data, the next recv reports this */
} rx_fd;

/* Extra bit a backend may add to the sides it reports: hang-up, error or
 * peer shutdown.  An edge that carried it will not come again, so the core
 * must keep trying the descriptor. */
#define RX__HUP 4

typedef struct rx_timer {
    int64_t deadline;
    uint64_t seq;
    int64_t token;
    uint32_t slot;
} rx_timer;

typedef struct rx_timer_slot {
    uint32_t gen;       /* bumped on every reuse so stale ids are refused */
    int32_t heap_idx;   /* -1 when free */
    uint32_t next_free;
} rx_timer_slot;

struct rx_backend;

/* A completion backend (IOCP) performs the operations itself: the public
 * functions of the same names forward to these (loop.c), after the checks
 * of their arguments that do not depend on the backend. */
struct rx_ops {
    int64_t (*recv)(rx_loop *loop, int fd, void *buf, size_t len, int flags, int64_t token);
    int64_t (*send)(rx_loop *loop, int fd, const void *buf, size_t len, int flags,
                    int64_t token);
    int64_t (*accept)(rx_loop *loop, int fd, int64_t token);
    int64_t (*connect)(rx_loop *loop, int fd, const void *addr, uint32_t addrlen,
                       int64_t token);
    int64_t (*recvfrom)(rx_loop *loop, int fd, void *buf, size_t len, void *addr,
                        uint32_t *addrlen, int64_t token);
    int64_t (*sendto)(rx_loop *loop, int fd, const void *buf, size_t len, const void *addr,
                      uint32_t addrlen, int64_t token);
    int64_t (*watch)(rx_loop *loop, int fd, int sides, int64_t token);
    int (*cancel)(rx_loop *loop, int fd, int sides);
    int64_t (*pending_done)(const rx_loop *loop, int fd, int side);
    int64_t (*withdraw)(rx_loop *loop, int fd, int side);
    int (*forget)(rx_loop *loop, int fd);
    int (*take_error)(rx_loop *loop, int fd);
    int (*drained)(rx_loop *loop, int fd, int sides);
};

struct rx_loop {
    const struct rx_backend *backend;
    void *bdata;                 /* backend's private data */

    rx_fd *fds;
    int fds_cap;
    int64_t known_fds;
    int64_t registered_fds;
    int64_t pending_ops;

    /* completed events waiting for rx_poll */
    rx_event *q;
    size_t q_head, q_tail, q_cap;

    /* timers: a binary min-heap on (deadline, seq) plus a slot table so ids
     * can be cancelled in O(log n) */
    rx_timer *heap;
    size_t heap_n, heap_cap;
    rx_timer_slot *slots;
    uint32_t slots_cap;
    uint32_t free_slot;          /* head of the free list, UINT32_MAX if none */
    uint64_t timer_seq;

    /* clock */
    int manual;
    int64_t manual_now;

    /* wakeup: eventfd (or a pipe); wake_pending coalesces writes.  A
     * backend that wakes its wait by other means sets wake_fn in init (it
     * must be thread- and async-signal-safe); the descriptors are then -1. */
    int wake_rfd, wake_wfd;
    atomic_int wake_pending;
    int (*wake_fn)(rx_loop *loop);

    /* a completion backend's operations, set by its init (NULL for a
     * readiness backend, whose update/forget/wait the core drives) */
    const struct rx_ops *ops;

    /* read arena (rx_arena): RX_ARENA recvs read into it at readiness.
     * arena_live counts its RX_EV_DATA events still queued; the arena is
     * emptied when a poll starts with none. */
    char *arena;
    size_t arena_size, arena_used, arena_live;

    int64_t polls;
    int64_t syscalls;
};

struct rx_backend {
    const char *name;
    int (*init)(rx_loop *loop);                 /* 0 or -errno */
    void (*close)(rx_loop *loop);
    /* interest of fd changed to `want` (RX_READ|RX_WRITE bits, maybe 0) */
    int (*update)(rx_loop *loop, int fd, rx_fd *st, int want);
    /* drop fd (it may already be closed) */
    void (*forget)(rx_loop *loop, int fd, rx_fd *st);
    /* wait up to timeout_ns (<0: no limit); report with rx__ready/rx__woken;
     * returns >= 0 or -errno (-EINTR is not an error for the caller) */
    int (*wait)(rx_loop *loop, int64_t timeout_ns);
    /* pollable descriptor, or -ENOTSUP */
    int (*fd)(const rx_loop *loop);
};

extern const struct rx_backend rx__backend_epoll;
extern const struct rx_backend rx__backend_poll;
#ifdef RX_HAVE_KQUEUE
extern const struct rx_backend rx__backend_kqueue;
#endif
#ifdef _WIN32
extern const struct rx_backend rx__backend_iocp;
#endif

/* Called by backends. */
void rx__ready(rx_loop *loop, int fd, int sides);   /* RX_READ|RX_WRITE|RX__HUP */
void rx__woken(rx_loop *loop);                       /* the wakeup fd is readable */

/* Event queue and timers (loop.c / timers.c). */
int rx__push(rx_loop *loop, int64_t token, int64_t kind, int64_t aux, int64_t result);
int rx__timers_init(rx_loop *loop);
void rx__timers_free(rx_loop *loop);
void rx__timers_expire(rx_loop *loop, int64_t now);

/* Saturating helpers for deadlines. */
static inline int64_t rx__sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
    return a + b;
}

#endif /* PYCOS_INTERNAL_H */
