/*
 * loop.c - the loop core: creation, the clock, wakeups, the event queue,
 * rx_poll, and the completion-style operations built on readiness.
 *
 * How an operation runs (see internal.h for the state it keeps):
 *
 *   submit:   slot busy -> -EBUSY.  Hint set -> try the syscall now; if it
 *             completes (success or error) return its result inline.
 *             Otherwise the operation waits in its slot and the backend is
 *             told the descriptor's interest.
 *   ready:    the backend reports a side ready -> set its hint and perform
 *             the waiting operation; a completion is queued as an event.
 *   cancel:   the slot is emptied and a DONE event with -ECANCELED queued.
 *
 * Hints make the common cases cheap.  A socket that has just returned
 * EAGAIN or a short read is known to be drained, so the next recv goes
 * straight to waiting instead of paying for another EAGAIN; a socket that
 * has been reported ready is tried at once.  A hint can only be stale in
 * the safe direction (set while not ready), which costs one syscall.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#endif
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* Internal result: the operation must wait for readiness. */
#define AGAIN INT64_MIN

static int64_t mono_now(void)
{
#ifdef _WIN32
    return rx__win_mono_now();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
#endif
}

/* ---- backends --------------------------------------------------------- */

static const struct rx_backend *const all_backends[] = {
#ifdef _WIN32
    &rx__backend_iocp,
#else
#ifdef __linux__
    &rx__backend_epoll,
#endif
#if defined(RX_HAVE_KQUEUE) && !defined(RX_KQUEUE_TEST_ONLY)
    &rx__backend_kqueue,
#endif
    &rx__backend_poll,
#ifdef RX_KQUEUE_TEST_ONLY
    &rx__backend_kqueue,   /* "kqueue-emul": found by name, not listed */
#endif
#endif /* !_WIN32 */
    NULL
};

const char *rx_backends(void)
{
#if defined(_WIN32)
    return "iocp";
#elif defined(__linux__)
    return "epoll,poll";
#elif defined(RX_HAVE_KQUEUE)
    return "kqueue,poll";
#else
    return "poll";
#endif
}

static const struct rx_backend *find_backend(const char *name)
{
    if (!name || !*name) return all_backends[0];
    for (int i = 0; all_backends[i]; i++)
        if (strcmp(all_backends[i]->name, name) == 0) return all_backends[i];
    return NULL;
}

const char *rx_loop_backend(const rx_loop *loop)
{
    return loop->backend->name;
}

int rx_loop_fd(const rx_loop *loop)
{
    return loop->backend->fd ? loop->backend->fd(loop) : -ENOTSUP;
}

/* ---- wakeup ----------------------------------------------------------- */

#if !defined(__linux__) && !defined(_WIN32)
static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return -errno;
    return 0;
}
#endif

static int wake_open(rx_loop *loop)
{
#if defined(_WIN32)
    (void)loop;   /* the IOCP backend wakes its port itself (wake_fn) */
    return 0;
#elif defined(__linux__)
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -errno;
    loop->wake_rfd = loop->wake_wfd = fd;
    return 0;
#else
    int p[2];
    if (pipe(p) < 0) return -errno;
    int rc = set_flags(p[0]);
    if (rc == 0) rc = set_flags(p[1]);
    if (rc < 0) {
        close(p[0]);
        close(p[1]);
        return rc;
    }
    loop->wake_rfd = p[0];
    loop->wake_wfd = p[1];
    return 0;
#endif
}

static void wake_close(rx_loop *loop)
{
#ifndef _WIN32
    if (loop->wake_rfd >= 0) close(loop->wake_rfd);
    if (loop->wake_wfd >= 0 && loop->wake_wfd != loop->wake_rfd) close(loop->wake_wfd);
#endif
    loop->wake_rfd = loop->wake_wfd = -1;
}

int rx_wakeup(rx_loop *loop)
{
    /* Only the first wakeup since the last drain writes; the rest coalesce.
     * write() and lock-free atomics are async-signal-safe. */
    if (atomic_exchange(&loop->wake_pending, 1)) return 0;
    int saved = errno;
    int rc = 0;
    if (loop->wake_fn) {
        rc = loop->wake_fn(loop);   /* the backend's own (kqueue: EVFILT_USER) */
        if (rc < 0) atomic_store(&loop->wake_pending, 0);
    } else {
#ifndef _WIN32
        uint64_t one = 1;
        for (;;) {
            ssize_t n = write(loop->wake_wfd, &one, sizeof one);
            if (n >= 0 || errno == EAGAIN) break;   /* full: a wakeup is pending anyway */
            if (errno != EINTR) {
                rc = -errno;
                atomic_store(&loop->wake_pending, 0);
                break;
            }
        }
#endif
    }
    errno = saved;
    return rc;
}

void rx__woken(rx_loop *loop)
{
    /* Drain first, then re-arm: a wakeup racing with this is either drained
     * (and its work is seen by the caller after this poll) or writes again. */
#ifndef _WIN32
    uint64_t buf[16];
    while (loop->wake_rfd >= 0 && read(loop->wake_rfd, buf, sizeof buf) > 0) {
    }
#endif
    atomic_store(&loop->wake_pending, 0);
    rx__push(loop, 0, RX_EV_WAKEUP, 0, 0);
}

/* ---- loop ------------------------------------------------------------- */

rx_loop *rx_loop_new(const char *backend, int *err)
{
    int dummy;
    if (!err) err = &dummy;
    if (!backend) backend = getenv("PYCOS_BACKEND");
    const struct rx_backend *be = find_backend(backend);
    if (!be) {
        *err = -EINVAL;
        return NULL;
    }
    rx_loop *loop = calloc(1, sizeof *loop);
    if (!loop) {
        *err = -ENOMEM;
        return NULL;
    }
    loop->backend = be;
    loop->wake_rfd = loop->wake_wfd = -1;
    atomic_init(&loop->wake_pending, 0);
    rx__timers_init(loop);
    int rc = wake_open(loop);
    if (rc == 0) rc = be->init(loop);
    if (rc < 0) {
        wake_close(loop);
        rx__timers_free(loop);
        free(loop);
        *err = rc;
        return NULL;
    }
    if (loop->wake_fn) wake_close(loop);   /* the backend wakes itself */
    *err = 0;
    return loop;
}

void rx_loop_close(rx_loop *loop)
{
    if (!loop) return;
    loop->backend->close(loop);
    wake_close(loop);
    rx__timers_free(loop);
    free(loop->fds);
    free(loop->q);
    free(loop->arena);
    free(loop);
}

/* ---- clock ------------------------------------------------------------ */

int64_t rx_now(const rx_loop *loop)
{
    return loop->manual ? loop->manual_now : mono_now();
}

int rx_clock_manual(rx_loop *loop, int64_t start_ns)
{
    loop->manual = 1;
    loop->manual_now = start_ns;
    return 0;
}

int rx_clock_is_manual(const rx_loop *loop)
{
    return loop->manual;
}

int rx_clock_set(rx_loop *loop, int64_t now_ns)
{
    if (!loop->manual) return -EPERM;
    if (now_ns < loop->manual_now) return -EINVAL;
    loop->manual_now = now_ns;
    return 0;
}

int rx_clock_advance(rx_loop *loop, int64_t delta_ns)
{
    if (!loop->manual) return -EPERM;
    if (delta_ns < 0) return -EINVAL;
    loop->manual_now = rx__sat_add(loop->manual_now, delta_ns);
    return 0;
}

/* ---- event queue ------------------------------------------------------ */

int rx__push(rx_loop *loop, int64_t token, int64_t kind, int64_t aux, int64_t result)
{
    if (loop->q_tail == loop->q_cap) {
        if (loop->q_head > 0) {
            size_t n = loop->q_tail - loop->q_head;
            memmove(loop->q, loop->q + loop->q_head, n * sizeof *loop->q);
            loop->q_head = 0;
            loop->q_tail = n;
        }
        if (loop->q_tail == loop->q_cap) {
            size_t cap = loop->q_cap ? loop->q_cap * 2 : 256;
            rx_event *q = realloc(loop->q, cap * sizeof *q);
            if (!q) return -ENOMEM;
            loop->q = q;
            loop->q_cap = cap;
        }
    }
    rx_event *e = &loop->q[loop->q_tail++];
    e->token = token;
    e->kind = kind;
    e->aux = aux;
    e->result = result;
    return 0;
}

/* How long one backend wait may last: the caller's timeout, shortened to the
 * next timer (which, on a manual clock, only matters when it is due). */
static int64_t wait_budget(rx_loop *loop, int64_t timeout_ns)
{
    if (loop->q_tail > loop->q_head) return 0;
    if (timeout_ns == 0 || !loop->heap_n) return timeout_ns;
    int64_t next = rx_next_deadline(loop);
    if (next == RX_NEVER) return timeout_ns;
    int64_t now = rx_now(loop);
    if (loop->manual) return next <= now ? 0 : timeout_ns;
    int64_t left = next > now ? next - now : 0;
    return (timeout_ns < 0 || left < timeout_ns) ? left : timeout_ns;
}

int rx_poll(rx_loop *loop, int64_t timeout_ns, rx_event *events, int max)
{
    if (!events || max <= 0) return -EINVAL;
    loop->polls++;
    /* the caller has taken the bytes of every RX_EV_DATA event handed out */
    if (!loop->arena_live) loop->arena_used = 0;
    /* Readiness that completes nothing (an edge with no operation waiting)
     * must not end the wait early: keep waiting until something is queued
     * or the caller's timeout has passed. */
    int64_t start = timeout_ns > 0 ? mono_now() : 0;
    int64_t left = timeout_ns;
    for (;;) {
        loop->syscalls++;
        int rc = loop->backend->wait(loop, wait_budget(loop, left));
        if (loop->heap_n) rx__timers_expire(loop, rx_now(loop));
        if (rc < 0 && rc != -EINTR) return rc;
        if (rc == -EINTR || loop->q_tail > loop->q_head || timeout_ns == 0) break;
        if (timeout_ns > 0) {
            int64_t spent = mono_now() - start;
            if (spent >= timeout_ns) break;
            left = timeout_ns - spent;
        }
    }

    size_t avail = loop->q_tail - loop->q_head;
    size_t n = avail < (size_t)max ? avail : (size_t)max;
    if (n == 0) return 0;   /* loop->q may still be NULL: no memcpy from it */
    memcpy(events, loop->q + loop->q_head, n * sizeof *events);
    if (loop->arena_live) {
        for (size_t i = 0; i < n; i++)
            if (events[i].kind == RX_EV_DATA) loop->arena_live--;
    }
    loop->q_head += n;
    if (loop->q_head == loop->q_tail) loop->q_head = loop->q_tail = 0;
    return (int)n;
}

int rx_loop_stats(const rx_loop *loop, rx_stats *out)
{
    out->pending_ops = loop->pending_ops;
    out->registered_fds = loop->registered_fds;
    out->known_fds = loop->known_fds;
    out->timers = (int64_t)loop->heap_n;
    out->queued_events = (int64_t)(loop->q_tail - loop->q_head);
    out->polls = loop->polls;
    out->syscalls = loop->syscalls;
    return 0;
}

#ifdef _WIN32
/* ---- a completion backend: forward the operations ---------------------- */

int64_t rx_recv(rx_loop *loop, int fd, void *buf, size_t len, int flags, int64_t token)
{
    if ((flags & RX_ALL) && (flags & RX_LAZY)) return -EINVAL;
    if ((flags & RX_ARENA) && !(flags & RX_LAZY)) return -EINVAL;
    return loop->ops->recv(loop, fd, buf, len, flags & (RX_ALL | RX_LAZY | RX_ARENA), token);
}

int64_t rx_send(rx_loop *loop, int fd, const void *buf, size_t len, int flags, int64_t token)
{
    return loop->ops->send(loop, fd, buf, len, flags & RX_ALL, token);
}

int64_t rx_accept(rx_loop *loop, int fd, int64_t token)
{
    return loop->ops->accept(loop, fd, token);
}

int64_t rx_connect(rx_loop *loop, int fd, const void *addr, uint32_t addrlen, int64_t token)
{
    return loop->ops->connect(loop, fd, addr, addrlen, token);
}

int64_t rx_recvfrom(rx_loop *loop, int fd, void *buf, size_t len, void *addr,
                    uint32_t *addrlen, int64_t token)
{
    return loop->ops->recvfrom(loop, fd, buf, len, addr, addrlen, token);
}

int64_t rx_sendto(rx_loop *loop, int fd, const void *buf, size_t len, const void *addr,
                  uint32_t addrlen, int64_t token)
{
    return loop->ops->sendto(loop, fd, buf, len, addr, addrlen, token);
}

int64_t rx_watch(rx_loop *loop, int fd, int sides, int64_t token)
{
    if (sides <= 0 || sides > (RX_READ | RX_WRITE)) return -EINVAL;
    return loop->ops->watch(loop, fd, sides, token);
}

int rx_cancel(rx_loop *loop, int fd, int sides)
{
    return loop->ops->cancel(loop, fd, sides);
}

int64_t rx_pending_done(const rx_loop *loop, int fd, int side)
{
    if (side != RX_READ && side != RX_WRITE) return -ENOENT;
    return loop->ops->pending_done(loop, fd, side);
}

int64_t rx_withdraw(rx_loop *loop, int fd, int side)
{
    if (side != RX_READ && side != RX_WRITE) return -ENOENT;
    return loop->ops->withdraw(loop, fd, side);
}

int rx_take_error(rx_loop *loop, int fd)
{
    return loop->ops->take_error(loop, fd);
}

int rx_drained(rx_loop *loop, int fd, int sides)
{
    if (fd < 0) return -EBADF;
    if (sides & ~(RX_READ | RX_WRITE)) return -EINVAL;
    return loop->ops->drained(loop, fd, sides);
}

int rx_forget(rx_loop *loop, int fd)
{
    return loop->ops->forget(loop, fd);
}

#else /* !_WIN32: the readiness half */

/* ---- descriptor state -------------------------------------------------- */

static rx_fd *fd_state(rx_loop *loop, int fd, int *err)
{
    if (fd < 0) {
        *err = -EBADF;
        return NULL;
    }
    if (fd >= loop->fds_cap || !loop->fds[fd].known) {
        /* first sight of this descriptor: make sure it is one, before the
         * table grows to its number */
        loop->syscalls++;
        if (fcntl(fd, F_GETFD) < 0) {
            *err = -errno;
            return NULL;
        }
    }
    if (fd >= loop->fds_cap) {
        int cap = loop->fds_cap ? loop->fds_cap : 64;
        while (cap <= fd) {
            if (cap > INT32_MAX / 2) {
                *err = -ENOMEM;
                return NULL;
            }
            cap *= 2;
        }
        /* calloc, not realloc + memset: a big table comes from fresh
         * zeroed pages that stay untouched (no RSS) until descriptors with
         * those numbers show up (10,000 connections: 16,384 slots, 2 MiB,
         * of which only the part in use is resident) */
        rx_fd *t = calloc((size_t)cap, sizeof *t);
        if (!t) {
            *err = -ENOMEM;
            return NULL;
        }
        if (loop->fds_cap) memcpy(t, loop->fds, (size_t)loop->fds_cap * sizeof *t);
        free(loop->fds);
        loop->fds = t;
        loop->fds_cap = cap;
    }
    rx_fd *st = &loop->fds[fd];
    if (!st->known) {
        memset(st, 0, sizeof *st);
        st->known = 1;
        st->hint = RX_READ | RX_WRITE;
        st->bidx = -1;
        loop->known_fds++;
    }
    return st;
}

static int ensure_nonblock(rx_loop *loop, int fd, rx_fd *st)
{
    if (st->nonblock) return 0;
    loop->syscalls++;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -errno;
    if (!(fl & O_NONBLOCK)) {
        loop->syscalls++;
        if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
    }
    st->nonblock = 1;
    return 0;
}

static int want_of(const rx_fd *st)
{
    int want = 0;
    if (st->rd.kind) want |= (st->rd.kind == OP_WATCH) ? (st->rd.sides & RX_READ) : RX_READ;
    if (st->wr.kind) want |= (st->wr.kind == OP_WATCH) ? (st->wr.sides & RX_WRITE) : RX_WRITE;
    return want;
}

static int update_interest(rx_loop *loop, int fd, rx_fd *st)
{
    int want = want_of(st);
    if (want == st->interest) return 0;
    int was = st->registered;
    int rc = loop->backend->update(loop, fd, st, want);
    if (rc == 0) st->interest = (uint8_t)want;
    loop->registered_fds += st->registered - was;
    return rc;
}

/* ---- performing operations --------------------------------------------- */

/* Clear `side`'s hint: the descriptor is known not to be ready. */
#define DRAINED(st, side) ((st)->hint &= (uint8_t)~(side))

static int64_t do_read_bytes(rx_loop *loop, int fd, rx_fd *st, char *buf, size_t len)
{
    for (;;) {
        ssize_t n;
        loop->syscalls++;
        if (st->sock != 2) {
            n = recv(fd, buf, len, MSG_DONTWAIT);
            if (n < 0 && errno == ENOTSOCK) {
                st->sock = 2;
                int rc = ensure_nonblock(loop, fd, st);
                if (rc < 0) return rc;
                continue;
            }
            if (n >= 0) st->sock = 1;
        } else {
            n = read(fd, buf, len);
        }
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return AGAIN;
        return -errno;
    }
}

static int64_t do_write_bytes(rx_loop *loop, int fd, rx_fd *st, const char *buf, size_t len)
{
    for (;;) {
        ssize_t n;
        loop->syscalls++;
        if (st->sock != 2) {
            n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0 && errno == ENOTSOCK) {
                st->sock = 2;
                int rc = ensure_nonblock(loop, fd, st);
                if (rc < 0) return rc;
                continue;
            }
            if (n >= 0) st->sock = 1;
        } else {
            n = write(fd, buf, len);
        }
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return AGAIN;
        return -errno;
    }
}

/* Perform a read-side operation as far as it goes.  Returns its result, or
 * AGAIN when it has to wait (progress is kept in op->done). */
static int64_t perform_read(rx_loop *loop, int fd, rx_fd *st, rx_op *op)
{
    switch (op->kind) {
    case OP_RECV:
        if (st->rd_err) {
            int64_t e = st->rd_err;
            st->rd_err = 0;
            return e;
        }
        for (;;) {
            size_t want = op->len - op->done;
            int64_t n = do_read_bytes(loop, fd, st, op->buf + op->done, want);
            if (n == AGAIN) {
                DRAINED(st, RX_READ);
                return AGAIN;
            }
            if (n < 0) {
                if (!op->done) return n;
                /* the kernel reports an error once: keep it for the next
                 * recv, or it would read as a plain end of stream */
                st->rd_err = (int32_t)n;
                return (int64_t)op->done;
            }
            if (n == 0) return (int64_t)op->done;          /* end of stream */
            op->done += (size_t)n;
            if ((size_t)n < want && st->sock == 1 && !st->hup) DRAINED(st, RX_READ);
            if (!(op->flags & RX_ALL) || op->done == op->len) return (int64_t)op->done;
            if (!(st->hint & RX_READ)) return AGAIN;
        }
    case OP_RECVFROM:
        for (;;) {
            socklen_t alen = *op->addrlenp;
            loop->syscalls++;
            ssize_t n = recvfrom(fd, op->buf, op->len, MSG_DONTWAIT,
                                 (struct sockaddr *)op->addr, &alen);
            if (n >= 0) {
                *op->addrlenp = (uint32_t)alen;
                return n;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                DRAINED(st, RX_READ);
                return AGAIN;
            }
            return -errno;
        }
    case OP_ACCEPT:
        for (;;) {
            loop->syscalls++;
            int nfd;
#ifdef __linux__
            nfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
            nfd = accept(fd, NULL, NULL);
            if (nfd >= 0) {
                int rc = set_flags(nfd);
                if (rc < 0) {
                    close(nfd);
                    return rc;
                }
            }
#endif
            if (nfd >= 0) {
                /* The kernel handed out this number, so any state we kept
                 * for it belongs to a descriptor closed without rx_forget. */
                if (nfd < loop->fds_cap && loop->fds[nfd].known) rx_forget(loop, nfd);
                return nfd;
            }
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                DRAINED(st, RX_READ);
                return AGAIN;
            }
            return -errno;
        }
    }
    return -EINVAL;
}

static int64_t perform_write(rx_loop *loop, int fd, rx_fd *st, rx_op *op)
{
    switch (op->kind) {
    case OP_SEND:
        for (;;) {
            size_t want = op->len - op->done;
            int64_t n = do_write_bytes(loop, fd, st, op->buf + op->done, want);
            if (n == AGAIN) {
                DRAINED(st, RX_WRITE);
                if (!(op->flags & RX_ALL) && op->done) return (int64_t)op->done;
                return AGAIN;
            }
            if (n < 0) return n;
            op->done += (size_t)n;
            if (op->done == op->len) return (int64_t)op->done;
            DRAINED(st, RX_WRITE);                 /* short write: buffer full */
            if (!(op->flags & RX_ALL)) return (int64_t)op->done;
            return AGAIN;
        }
    case OP_SENDTO:
        for (;;) {
            loop->syscalls++;
            ssize_t n = sendto(fd, op->buf, op->len, MSG_DONTWAIT | MSG_NOSIGNAL,
                               (const struct sockaddr *)op->addr, (socklen_t)op->addrlen);
            if (n >= 0) return n;
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                DRAINED(st, RX_WRITE);
                return AGAIN;
            }
            return -errno;
        }
    case OP_CONNECT:
        if (!op->done) {
            loop->syscalls++;
            int r = connect(fd, (const struct sockaddr *)op->addr, (socklen_t)op->addrlen);
            if (r == 0) return 0;
            if (errno == EINPROGRESS || errno == EINTR) {
                /* EINTR: the connection goes on asynchronously, as EINPROGRESS */
                op->done = 1;
                op->addr = NULL;
                DRAINED(st, RX_WRITE);
                return AGAIN;
            }
            return -errno;
        } else {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            loop->syscalls++;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) return -errno;
            if (soerr == EINPROGRESS || soerr == EALREADY) return AGAIN;
            return soerr ? -soerr : 0;
        }
    }
    return -EINVAL;
}

static int64_t perform(rx_loop *loop, int fd, rx_fd *st, rx_op *op, int side)
{
    return side == RX_READ ? perform_read(loop, fd, st, op) : perform_write(loop, fd, st, op);
}

/* Try an operation now when its side may be ready; else park it. */
static int64_t submit(rx_loop *loop, int fd, rx_fd *st, int side)
{
    rx_op *op = side == RX_READ ? &st->rd : &st->wr;
    if (st->hint & side || op->kind == OP_CONNECT || (side == RX_READ && st->rd_err)) {
        int64_t r = perform(loop, fd, st, op, side);
        if (r != AGAIN) {
            op->kind = OP_NONE;
            return r;
        }
    }
    if (op->kind == OP_RECV && (op->flags & RX_LAZY)) {
        /* wait as a read watch; the buffer is the caller's again (an
         * RX_ARENA recv keeps its length: it reads that much at readiness) */
        op->kind = OP_WATCH;
        op->sides = RX_READ;
        op->buf = NULL;
        if (!(op->flags & RX_ARENA)) op->len = 0;
    }
    int rc = update_interest(loop, fd, st);
    if (rc < 0) {
        op->kind = OP_NONE;
        return rc;
    }
    loop->pending_ops++;
    return RX_PENDING;
}

static void finish_op(rx_loop *loop, rx_op *op, int64_t kind, int64_t aux, int64_t result)
{
    int64_t token = op->token;
    op->kind = OP_NONE;
    loop->pending_ops--;
    rx__push(loop, token, kind, aux, result);
}

/* A waiting RX_ARENA recv whose descriptor is readable: read into the
 * arena if it has room for the whole length.  Returns 0 when it has not (the
 * caller reports readiness instead), else 1: the recv completed (RX_EV_DATA,
 * or RX_EV_DONE with an error) or waits on (readiness without data). */
static int arena_read(rx_loop *loop, int fd, rx_fd *st, rx_op *op)
{
    if (!loop->arena || loop->arena_size - loop->arena_used < op->len) return 0;
    size_t off = loop->arena_used;
    op->kind = OP_RECV;
    op->buf = loop->arena + off;
    op->done = 0;
    int64_t r = perform_read(loop, fd, st, op);
    if (r == AGAIN) {
        op->kind = OP_WATCH;
        op->buf = NULL;
        return 1;
    }
    if (r < 0) {
        finish_op(loop, op, RX_EV_DONE, 0, r);
        return 1;
    }
    loop->arena_used += (size_t)r;
    loop->arena_live++;
    finish_op(loop, op, RX_EV_DATA, (int64_t)off, r);
    return 1;
}

static void run_side(rx_loop *loop, int fd, rx_fd *st, int side, int ready)
{
    rx_op *op = side == RX_READ ? &st->rd : &st->wr;
    if (op->kind == OP_NONE || !(ready & side)) return;
    if (op->kind == OP_WATCH && (op->flags & RX_ARENA) && arena_read(loop, fd, st, op)) return;
    if (op->kind == OP_WATCH) {
        int got = ready & op->sides;
        /* a watch on both sides sits in both slots; it fires once */
        rx_op *other = side == RX_READ ? &st->wr : &st->rd;
        if (op->sides == (RX_READ | RX_WRITE) && other->kind == OP_WATCH) other->kind = OP_NONE;
        finish_op(loop, op, RX_EV_READY, got, 0);
        return;
    }
    int64_t r = perform(loop, fd, st, op, side);
    if (r == AGAIN) return;
    finish_op(loop, op, RX_EV_DONE, (int64_t)op->done, r);
}

void rx__ready(rx_loop *loop, int fd, int sides)
{
    if (fd < 0 || fd >= loop->fds_cap) return;
    rx_fd *st = &loop->fds[fd];
    if (!st->known) return;
    if (sides & RX__HUP) st->hup = 1;
    sides &= RX_READ | RX_WRITE;
    st->hint |= (uint8_t)sides;
    run_side(loop, fd, st, RX_READ, sides);
    run_side(loop, fd, st, RX_WRITE, sides);
    if (st->interest != want_of(st)) {
        int rc = update_interest(loop, fd, st);
        (void)rc; /* a failure to lower interest only costs a spurious wakeup */
    }
}

/* ---- public operations ------------------------------------------------ */

#define BEGIN(side_slot)                               \
    int err_;                                          \
    rx_fd *st = fd_state(loop, fd, &err_);             \
    if (!st) return err_;                              \
    rx_op *op = &st->side_slot;                        \
    if (op->kind != OP_NONE) return -EBUSY;            \
    memset(op, 0, sizeof *op);                         \
    op->token = token

int64_t rx_recv(rx_loop *loop, int fd, void *buf, size_t len, int flags, int64_t token)
{
    if ((flags & RX_ALL) && (flags & RX_LAZY)) return -EINVAL;
    if ((flags & RX_ARENA) && !(flags & RX_LAZY)) return -EINVAL;
    BEGIN(rd);
    op->kind = OP_RECV;
    op->buf = buf;
    op->len = len;
    op->flags = (uint8_t)(flags & (RX_ALL | RX_LAZY | RX_ARENA));
    return submit(loop, fd, st, RX_READ);
}

int64_t rx_send(rx_loop *loop, int fd, const void *buf, size_t len, int flags, int64_t token)
{
    BEGIN(wr);
    op->kind = OP_SEND;
    op->buf = (char *)buf;
    op->len = len;
    op->flags = (uint8_t)(flags & RX_ALL);
    return submit(loop, fd, st, RX_WRITE);
}

int64_t rx_accept(rx_loop *loop, int fd, int64_t token)
{
    BEGIN(rd);
    int rc = ensure_nonblock(loop, fd, st);
    if (rc < 0) return rc;
    op->kind = OP_ACCEPT;
    return submit(loop, fd, st, RX_READ);
}

int64_t rx_connect(rx_loop *loop, int fd, const void *addr, uint32_t addrlen, int64_t token)
{
    BEGIN(wr);
    if (!addr) return -EINVAL;
    int rc = ensure_nonblock(loop, fd, st);
    if (rc < 0) return rc;
    op->kind = OP_CONNECT;
    op->addr = (void *)addr;
    op->addrlen = addrlen;
    return submit(loop, fd, st, RX_WRITE);
}

int64_t rx_recvfrom(rx_loop *loop, int fd, void *buf, size_t len, void *addr,
                    uint32_t *addrlen, int64_t token)
{
    BEGIN(rd);
    if (!addr || !addrlen) return -EINVAL;
    op->kind = OP_RECVFROM;
    op->buf = buf;
    op->len = len;
    op->addr = addr;
    op->addrlenp = addrlen;
    return submit(loop, fd, st, RX_READ);
}

int64_t rx_sendto(rx_loop *loop, int fd, const void *buf, size_t len, const void *addr,
                  uint32_t addrlen, int64_t token)
{
    BEGIN(wr);
    op->kind = OP_SENDTO;
    op->buf = (char *)buf;
    op->len = len;
    op->addr = (void *)addr;
    op->addrlen = addrlen;
    return submit(loop, fd, st, RX_WRITE);
}

int64_t rx_watch(rx_loop *loop, int fd, int sides, int64_t token)
{
    if (sides <= 0 || sides > (RX_READ | RX_WRITE)) return -EINVAL;
    int err;
    rx_fd *st = fd_state(loop, fd, &err);
    if (!st) return err;
    if (((sides & RX_READ) && st->rd.kind) || ((sides & RX_WRITE) && st->wr.kind)) return -EBUSY;

    /* Ask the descriptor itself, not the hints: an edge-triggered backend
     * will not report a readiness that began before the watch. */
    struct pollfd p = {fd, (short)(((sides & RX_READ) ? POLLIN : 0) | ((sides & RX_WRITE) ? POLLOUT : 0)), 0};
    int n;
    loop->syscalls++;
    do {
        n = poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    if (p.revents & POLLNVAL) return -EBADF;
    int ready = 0;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) ready |= RX_READ;
    if (p.revents & (POLLOUT | POLLHUP | POLLERR)) ready |= RX_WRITE;
    ready &= sides;
    if (ready) return ready;

    rx_op w = {0};
    w.token = token;
    w.kind = OP_WATCH;
    w.sides = (uint8_t)sides;
    if (sides & RX_READ) st->rd = w;
    if (sides & RX_WRITE) st->wr = w;
    int rc = update_interest(loop, fd, st);
    if (rc < 0) {
        if (sides & RX_READ) st->rd.kind = OP_NONE;
        if (sides & RX_WRITE) st->wr.kind = OP_NONE;
        return rc;
    }
    loop->pending_ops++;
    return RX_PENDING;
}

int rx_cancel(rx_loop *loop, int fd, int sides)
{
    if (fd < 0 || fd >= loop->fds_cap || !loop->fds[fd].known) return 0;
    rx_fd *st = &loop->fds[fd];
    int n = 0;
    if ((sides & RX_READ) && st->rd.kind) {
        int both = st->rd.kind == OP_WATCH && st->rd.sides == (RX_READ | RX_WRITE);
        if (both) st->wr.kind = OP_NONE;   /* one watch, one event */
        finish_op(loop, &st->rd, RX_EV_DONE, (int64_t)st->rd.done, -ECANCELED);
        n++;
    }
    if ((sides & RX_WRITE) && st->wr.kind) {
        int both = st->wr.kind == OP_WATCH && st->wr.sides == (RX_READ | RX_WRITE);
        if (both) st->rd.kind = OP_NONE;
        finish_op(loop, &st->wr, RX_EV_DONE, (int64_t)st->wr.done, -ECANCELED);
        n++;
    }
    int rc = update_interest(loop, fd, st);
    (void)rc;
    return n;
}

int64_t rx_pending_done(const rx_loop *loop, int fd, int side)
{
    if (fd < 0 || fd >= loop->fds_cap || !loop->fds[fd].known) return -ENOENT;
    const rx_op *op = side == RX_READ ? &loop->fds[fd].rd : &loop->fds[fd].wr;
    if (op->kind == OP_NONE || (side != RX_READ && side != RX_WRITE)) return -ENOENT;
    return op->kind == OP_CONNECT ? 0 : (int64_t)op->done;
}

/* (readiness backends: an operation moves bytes only inside rx_* calls and
 * rx_poll, so what it has done is final once it is cancelled) */
int64_t rx_withdraw(rx_loop *loop, int fd, int side)
{
    int64_t done = rx_pending_done(loop, fd, side);
    if (done >= 0) rx_cancel(loop, fd, side);
    return done;
}

int rx_take_error(rx_loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->fds_cap || !loop->fds[fd].known) return 0;
    int e = loop->fds[fd].rd_err;
    loop->fds[fd].rd_err = 0;
    return e;
}

#endif /* !_WIN32 */

/* 256 KiB: the bytes one busy poll brings in, small messages of thousands
 * of connections or four reads of 64 KiB (a read needs room for all it asks) */
#define ARENA_SIZE (256 * 1024)

void *rx_arena(rx_loop *loop, size_t *size)
{
    if (!loop->arena) {
        loop->arena = malloc(ARENA_SIZE);
        if (!loop->arena) return NULL;
        loop->arena_size = ARENA_SIZE;
    }
    if (size) *size = loop->arena_size;
    return loop->arena;
}

#ifndef _WIN32
int rx_drained(rx_loop *loop, int fd, int sides)
{
    if (fd < 0) return -EBADF;
    if (sides & ~(RX_READ | RX_WRITE)) return -EINVAL;
    if (fd >= loop->fds_cap || !loop->fds[fd].known) return 0;   /* no hint to clear */
    DRAINED(&loop->fds[fd], sides);
    return 0;
}

int rx_forget(rx_loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->fds_cap || !loop->fds[fd].known) return 0;
    rx_fd *st = &loop->fds[fd];
    int n = 0;
    if (st->rd.kind || st->wr.kind) {
        /* cancel without re-arming interest: the descriptor is going away */
        if (st->rd.kind) {
            if (st->rd.kind == OP_WATCH && st->rd.sides == (RX_READ | RX_WRITE))
                st->wr.kind = OP_NONE;
            finish_op(loop, &st->rd, RX_EV_DONE, (int64_t)st->rd.done, -ECANCELED);
            n++;
        }
        if (st->wr.kind) {
            finish_op(loop, &st->wr, RX_EV_DONE, (int64_t)st->wr.done, -ECANCELED);
            n++;
        }
    }
    if (st->registered) {
        loop->backend->forget(loop, fd, st);
        loop->registered_fds--;
    }
    memset(st, 0, sizeof *st);
    loop->known_fds--;
    return n;
}
#endif /* !_WIN32 */
