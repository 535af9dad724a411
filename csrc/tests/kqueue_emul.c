/*
 * kqueue_emul.c - the test-only kqueue emulation on epoll (the contract,
 * and what is not emulated, are in kqueue_emul.h).  Compiled into the C
 * test binary only, with -DRX_KQUEUE_EMUL on Linux.
 */
#if defined(__linux__) && defined(RX_KQUEUE_EMUL)

#define KQEMUL_IMPLEMENTATION
#include "kqueue_emul.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>

#define KQE_MAX_KQ 65536   /* kqueue descriptors are numbered below this */
#define KQE_MAX_USER 8     /* EVFILT_USER identifiers per kqueue */
#define KQE_SOURCES 3      /* read filters, write filters, user events */

typedef struct kqe_note {
    uint8_t used;
    uint8_t enabled;        /* in epoll (or, always-ready, reportable) */
    uint8_t always;         /* epoll refuses the descriptor: always ready */
    uint8_t fired;          /* always-ready EV_CLEAR note reported since armed */
    unsigned short flags;   /* EV_CLEAR | EV_ONESHOT | EV_DISPATCH */
    void *udata;
} kqe_note;

/* EVFILT_USER: NOTE_TRIGGER may come from any thread or a signal handler,
 * so what it touches is atomic, and `ident` is written before `used`. */
typedef struct kqe_user {
    atomic_int used;
    atomic_int enabled;
    atomic_int triggered;
    atomic_uint fflags;
    uintptr_t ident;
    unsigned short flags;
    int64_t data;
    void *udata;
} kqe_user;

typedef struct kqe {
    int kq;                 /* the epoll descriptor handed out as the kqueue */
    int ep[2];              /* nested epolls: [0] read filters, [1] write filters */
    int evfd;               /* eventfd: an EVFILT_USER was triggered */
    kqe_note *notes[2];     /* per filter, indexed by descriptor */
    int cap[2];
    int n_always;           /* notes on descriptors epoll refuses */
    atomic_long changes;
    kqe_user user[KQE_MAX_USER];
} kqe;

static _Atomic(kqe *) table[KQE_MAX_KQ];
static atomic_int refuse_user;

static kqe *kq_get(int kq)
{
    if (kq < 0 || kq >= KQE_MAX_KQ) return NULL;
    return atomic_load(&table[kq]);
}

static void kq_free(kqe *q)
{
    for (int i = 0; i < 2; i++) {
        if (q->ep[i] >= 0) (close)(q->ep[i]);
        free(q->notes[i]);
    }
    if (q->evfd >= 0) (close)(q->evfd);
    free(q);
}

int kqueue(void)
{
    kqe *q = calloc(1, sizeof *q);
    if (!q) {
        errno = ENOMEM;
        return -1;
    }
    q->ep[0] = q->ep[1] = q->evfd = -1;
    /* like BSD's kqueue(), the descriptor itself is not close-on-exec */
    q->kq = epoll_create1(0);
    if (q->kq < 0) {
        int e = errno;
        kq_free(q);
        errno = e;
        return -1;
    }
    int err = 0;
    q->ep[0] = epoll_create1(EPOLL_CLOEXEC);
    q->ep[1] = epoll_create1(EPOLL_CLOEXEC);
    q->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->ep[0] < 0 || q->ep[1] < 0 || q->evfd < 0) err = errno;
    if (!err && q->kq >= KQE_MAX_KQ) err = EMFILE;
    int srcs[KQE_SOURCES] = {q->ep[0], q->ep[1], q->evfd};
    for (uint32_t i = 0; !err && i < KQE_SOURCES; i++) {
        struct epoll_event ev = {0};
        ev.events = EPOLLIN;
        ev.data.u32 = i;
        if (epoll_ctl(q->kq, EPOLL_CTL_ADD, srcs[i], &ev) < 0) err = errno;
    }
    if (err) {
        (close)(q->kq);
        kq_free(q);
        errno = err;
        return -1;
    }
    atomic_store(&table[q->kq], q);
    return q->kq;
}

int kqemul_close(int fd)
{
    if (fd >= 0 && fd < KQE_MAX_KQ) {
        kqe *q = atomic_exchange(&table[fd], NULL);
        if (q) kq_free(q);
    }
    return (close)(fd);
}

void kqemul_refuse_user_filter(int on)
{
    atomic_store(&refuse_user, on != 0);
}

long kqemul_changes(int kq)
{
    kqe *q = kq_get(kq);
    return q ? atomic_load(&q->changes) : -1;
}

static kqe_note *note_at(kqe *q, int which, int fd)
{
    return fd < q->cap[which] ? &q->notes[which][fd] : NULL;
}

int kqemul_filters(int kq, int fd)
{
    kqe *q = kq_get(kq);
    if (!q || fd < 0) return -1;
    int r = 0;
    for (int i = 0; i < 2; i++) {
        kqe_note *n = note_at(q, i, fd);
        if (n && n->used) r |= 1 << i;
    }
    return r;
}

static kqe_note *note_make(kqe *q, int which, int fd)
{
    if (fd >= q->cap[which]) {
        int cap = q->cap[which] ? q->cap[which] : 64;
        while (cap <= fd) cap *= 2;
        kqe_note *t = realloc(q->notes[which], (size_t)cap * sizeof *t);
        if (!t) return NULL;
        memset(t + q->cap[which], 0, (size_t)(cap - q->cap[which]) * sizeof *t);
        q->notes[which] = t;
        q->cap[which] = cap;
    }
    return &q->notes[which][fd];
}

/* ---- what a filter reports ------------------------------------------------- */

static int is_socket(int fd, int *domain, int *proto)
{
    socklen_t l = sizeof *domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, domain, &l) < 0) return 0;
    l = sizeof *proto;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, proto, &l) < 0) *proto = 0;
    return 1;
}

/* The socket's pending error, guessed without clearing it (kqueue_emul.h). */
static unsigned sock_error_guess(int fd)
{
    int domain, proto;
    if (!is_socket(fd, &domain, &proto)) return 0;
    if (domain == AF_UNIX) return ECONNRESET;
    if ((domain == AF_INET || domain == AF_INET6) && proto == IPPROTO_TCP) {
        struct tcp_info ti;
        socklen_t l = sizeof ti;
        memset(&ti, 0, sizeof ti);
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 && ti.tcpi_options == 0 &&
            ti.tcpi_rtt == 0)
            return ECONNREFUSED;
        return ECONNRESET;
    }
    return EIO;
}

static int64_t readable_bytes(int fd)
{
    int v = 0;
    if (ioctl(fd, FIONREAD, &v) == 0) return v;
    struct tcp_info ti;
    socklen_t l = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 && ti.tcpi_state == TCP_LISTEN)
        return ti.tcpi_unacked;   /* a listener's accept queue */
    int acc = 0;
    l = sizeof acc;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) == 0 && acc) return 1;
    return 0;
}

static int64_t writable_room(int fd)
{
    int domain, proto, queued = 0;
    if (is_socket(fd, &domain, &proto)) {
        int sndbuf = 0;
        socklen_t l = sizeof sndbuf;
        if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &l) < 0) return 0;
        if (ioctl(fd, TIOCOUTQ, &queued) < 0) queued = 0;
        return sndbuf > queued ? sndbuf - queued : 0;
    }
    int size = fcntl(fd, F_GETPIPE_SZ);
    if (size > 0) {
        if (ioctl(fd, FIONREAD, &queued) < 0) queued = 0;
        return size > queued ? size - queued : 0;
    }
    return 0;
}

static void fill_fd(int which, int fd, const kqe_note *n, uint32_t re, struct kevent *kev)
{
    kev->ident = (uintptr_t)fd;
    kev->filter = which ? EVFILT_WRITE : EVFILT_READ;
    kev->flags = n->flags;
    kev->fflags = 0;
    kev->udata = n->udata;
    int eof = which == 0 ? (re & (EPOLLRDHUP | EPOLLHUP)) != 0 : (re & (EPOLLHUP | EPOLLERR)) != 0;
    if (eof) {
        kev->flags |= EV_EOF;
        if (re & EPOLLERR) kev->fflags = sock_error_guess(fd);
    }
    kev->data = which == 0 ? readable_bytes(fd) : writable_room(fd);
}

/* ---- changes --------------------------------------------------------------- */

static uint32_t ep_events(int which, unsigned short flags)
{
    uint32_t e = which == 0 ? (EPOLLIN | EPOLLRDHUP) : EPOLLOUT;
    if (flags & EV_CLEAR) e |= EPOLLET;
    if (flags & (EV_ONESHOT | EV_DISPATCH)) e |= EPOLLONESHOT;
    return e;
}

/* Make the note reportable: into its epoll (which evaluates it at once, as
 * attaching a knote does), or always-ready if epoll refuses the descriptor.
 * Returns 0 or an errno. */
static int note_arm(kqe *q, int which, int fd, kqe_note *n)
{
    if (n->always) {
        n->fired = 0;
        return 0;
    }
    struct epoll_event ev = {0};
    ev.events = ep_events(which, n->flags);
    ev.data.fd = fd;
    if (epoll_ctl(q->ep[which], EPOLL_CTL_ADD, fd, &ev) == 0) return 0;
    if (errno == EEXIST) return epoll_ctl(q->ep[which], EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : errno;
    if (errno == EPERM) {
        n->always = 1;
        n->fired = 0;
        q->n_always++;
        return 0;
    }
    return errno;
}

static void note_disarm(kqe *q, int which, int fd, kqe_note *n)
{
    if (n->always) return;
    struct epoll_event ev = {0};
    (void)epoll_ctl(q->ep[which], EPOLL_CTL_DEL, fd, &ev);
}

static void note_drop(kqe *q, int which, int fd, kqe_note *n)
{
    if (n->enabled) note_disarm(q, which, fd, n);
    if (n->always) q->n_always--;
    memset(n, 0, sizeof *n);
}

static int change_fd(kqe *q, int which, const struct kevent *kev)
{
    if (kev->ident > INT_MAX) return EBADF;
    int fd = (int)kev->ident;
    kqe_note *n = note_at(q, which, fd);
    if (fcntl(fd, F_GETFD) < 0) {
        /* closed: the kernel would have dropped its filters with it */
        if (n && n->used) note_drop(q, which, fd, n);
        return EBADF;
    }
    unsigned short fl = kev->flags;
    int exists = n && n->used;
    if (fl & EV_DELETE) {
        if (!exists) return ENOENT;
        note_drop(q, which, fd, n);
        return 0;
    }
    if ((fl & EV_ADD) && !exists) {
        n = note_make(q, which, fd);
        if (!n) return ENOMEM;
        memset(n, 0, sizeof *n);
        n->used = 1;
        n->flags = fl & (EV_CLEAR | EV_ONESHOT | EV_DISPATCH);
        n->udata = kev->udata;
        if (!(fl & EV_DISABLE)) {
            int e = note_arm(q, which, fd, n);
            if (e) {
                note_drop(q, which, fd, n);
                return e;
            }
            n->enabled = 1;
        }
        return 0;
    }
    if (!exists) return ENOENT;
    if (fl & EV_ADD) n->udata = kev->udata;
    if (fl & EV_DISABLE) {
        if (n->enabled) note_disarm(q, which, fd, n);
        n->enabled = 0;
        return 0;
    }
    /* EV_ENABLE, or EV_ADD on an enabled note: evaluated again (BSD does) */
    if ((fl & EV_ENABLE) || ((fl & EV_ADD) && n->enabled)) {
        int e = note_arm(q, which, fd, n);
        if (e) return e;
        n->enabled = 1;
    }
    return 0;
}

static void user_wake(kqe *q)
{
    uint64_t one = 1;
    while (write(q->evfd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

static kqe_user *user_find(kqe *q, uintptr_t ident)
{
    for (int i = 0; i < KQE_MAX_USER; i++) {
        kqe_user *u = &q->user[i];
        if (atomic_load(&u->used) && u->ident == ident) return u;
    }
    return NULL;
}

static int change_user(kqe *q, const struct kevent *kev)
{
    unsigned short fl = kev->flags;
    kqe_user *u = user_find(q, kev->ident);
    if (fl & EV_DELETE) {
        if (!u) return ENOENT;
        atomic_store(&u->used, 0);
        return 0;
    }
    if ((fl & EV_ADD) && !u) {
        if (atomic_load(&refuse_user)) return EINVAL;
        for (int i = 0; i < KQE_MAX_USER && !u; i++)
            if (!atomic_load(&q->user[i].used)) u = &q->user[i];
        if (!u) return ENOMEM;
        u->ident = kev->ident;
        u->flags = fl & (EV_CLEAR | EV_ONESHOT | EV_DISPATCH);
        u->data = 0;
        atomic_store(&u->triggered, 0);
        atomic_store(&u->fflags, 0);
        atomic_store(&u->enabled, !(fl & EV_DISABLE));
        atomic_store(&u->used, 1);
    } else if (!u) {
        return ENOENT;
    }
    if (fl & EV_ADD) {
        u->udata = kev->udata;
        u->data = kev->data;
    }
    if (fl & EV_DISABLE) atomic_store(&u->enabled, 0);
    if (fl & EV_ENABLE) atomic_store(&u->enabled, 1);
    unsigned v = kev->fflags & NOTE_FFLAGSMASK;
    switch (kev->fflags & NOTE_FFCTRLMASK) {
    case NOTE_FFAND:
        atomic_fetch_and(&u->fflags, v);
        break;
    case NOTE_FFOR:
        atomic_fetch_or(&u->fflags, v);
        break;
    case NOTE_FFCOPY:
        atomic_store(&u->fflags, v);
        break;
    default:
        break;
    }
    if (kev->fflags & NOTE_TRIGGER) atomic_store(&u->triggered, 1);
    /* seen by the next collection, even when it was triggered while disabled */
    if (atomic_load(&u->triggered) && atomic_load(&u->enabled)) user_wake(q);
    return 0;
}

static int change(kqe *q, const struct kevent *kev)
{
    atomic_fetch_add(&q->changes, 1);
    switch (kev->filter) {
    case EVFILT_READ:
        return change_fd(q, 0, kev);
    case EVFILT_WRITE:
        return change_fd(q, 1, kev);
    case EVFILT_USER:
        return change_user(q, kev);
    default:
        return EINVAL;
    }
}

/* ---- collecting events ------------------------------------------------------- */

static int collect_fd(kqe *q, int which, struct kevent *out, int room)
{
    struct epoll_event evs[64];
    int n = 0;
    while (n < room) {
        int want = room - n < 64 ? room - n : 64;
        int got = epoll_wait(q->ep[which], evs, want, 0);
        if (got <= 0) break;
        for (int i = 0; i < got; i++) {
            int fd = evs[i].data.fd;
            kqe_note *nt = note_at(q, which, fd);
            if (!nt || !nt->used || !nt->enabled || nt->always) {
                /* a registration the tables no longer have: drop it */
                if (!nt || !nt->used) {
                    struct epoll_event ev = {0};
                    (void)epoll_ctl(q->ep[which], EPOLL_CTL_DEL, fd, &ev);
                }
                continue;
            }
            fill_fd(which, fd, nt, evs[i].events, &out[n++]);
            if (nt->flags & EV_ONESHOT) {
                note_drop(q, which, fd, nt);
            } else if (nt->flags & EV_DISPATCH) {
                note_disarm(q, which, fd, nt);
                nt->enabled = 0;
            }
        }
        if (got < want) break;
    }
    return n;
}

static int collect_user(kqe *q, struct kevent *out, int room)
{
    /* drain first: a trigger after this sets its flag, then writes again */
    uint64_t c;
    while (read(q->evfd, &c, sizeof c) < 0 && errno == EINTR) {
    }
    int n = 0, again = 0;
    for (int i = 0; i < KQE_MAX_USER; i++) {
        kqe_user *u = &q->user[i];
        if (!atomic_load(&u->used) || !atomic_load(&u->enabled)) continue;
        if (n == room) {
            again |= atomic_load(&u->triggered);
            continue;
        }
        int clear = (u->flags & EV_CLEAR) != 0;
        int t = clear ? atomic_exchange(&u->triggered, 0) : atomic_load(&u->triggered);
        if (!t) continue;
        struct kevent *kev = &out[n++];
        kev->ident = u->ident;
        kev->filter = EVFILT_USER;
        kev->flags = u->flags;
        kev->fflags = clear ? atomic_exchange(&u->fflags, 0) : atomic_load(&u->fflags);
        kev->data = u->data;
        kev->udata = u->udata;
        if (clear) u->data = 0;
        if (u->flags & EV_ONESHOT)
            atomic_store(&u->used, 0);
        else if (u->flags & EV_DISPATCH)
            atomic_store(&u->enabled, 0);
        else if (!clear)
            again = 1;   /* level: stays triggered */
    }
    if (again) user_wake(q);
    return n;
}

static int always_pending(kqe *q)
{
    for (int w = 0; w < 2; w++)
        for (int fd = 0; fd < q->cap[w]; fd++) {
            kqe_note *n = &q->notes[w][fd];
            if (n->used && n->enabled && n->always && !((n->flags & EV_CLEAR) && n->fired)) return 1;
        }
    return 0;
}

static int collect_always(kqe *q, struct kevent *out, int room)
{
    int n = 0;
    for (int w = 0; w < 2; w++)
        for (int fd = 0; fd < q->cap[w] && n < room; fd++) {
            kqe_note *nt = &q->notes[w][fd];
            if (!nt->used || !nt->enabled || !nt->always) continue;
            if ((nt->flags & EV_CLEAR) && nt->fired) continue;
            fill_fd(w, fd, nt, w ? EPOLLOUT : EPOLLIN, &out[n++]);
            nt->fired = 1;
            if (nt->flags & EV_ONESHOT)
                note_drop(q, w, fd, nt);
            else if (nt->flags & EV_DISPATCH)
                nt->enabled = 0;
        }
    return n;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait on the kqueue descriptor itself: < 0 without limit. */
static int wait_top(kqe *q, struct epoll_event *evs, int64_t ns)
{
#ifdef SYS_epoll_pwait2
    static atomic_int no_pwait2;
    if (ns > 0 && !atomic_load(&no_pwait2)) {
        struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
        int r = (int)syscall(SYS_epoll_pwait2, q->kq, evs, KQE_SOURCES, &ts, NULL, 0);
        if (r >= 0 || errno != ENOSYS) return r;
        atomic_store(&no_pwait2, 1);
    }
#endif
    int ms;
    if (ns < 0)
        ms = -1;
    else if (ns > (int64_t)INT_MAX * 1000000)
        ms = INT_MAX;
    else
        ms = (int)((ns + 999999) / 1000000);
    return epoll_wait(q->kq, evs, KQE_SOURCES, ms);
}

int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout)
{
    kqe *q = kq_get(kq);
    if (!q) {
        errno = EBADF;
        return -1;
    }
    if (nchanges < 0 || nevents < 0) {
        errno = EINVAL;
        return -1;
    }
    if ((nchanges && !changelist) || (nevents && !eventlist)) {
        errno = EFAULT;
        return -1;
    }
    int out = 0;
    for (int i = 0; i < nchanges; i++) {
        int e = change(q, &changelist[i]);
        if (!e && !(changelist[i].flags & EV_RECEIPT)) continue;
        if (out < nevents) {
            eventlist[out] = changelist[i];
            eventlist[out].flags = EV_ERROR;
            eventlist[out].data = e;
            out++;
        } else if (e) {
            errno = e;
            return -1;
        }
    }
    if (out || !nevents) return out;

    int64_t deadline = 0;
    if (timeout) {
        if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000) {
            errno = EINVAL;
            return -1;
        }
        int64_t ns = timeout->tv_sec > INT64_MAX / 1000000000 - 1
                         ? INT64_MAX / 2
                         : (int64_t)timeout->tv_sec * 1000000000 + timeout->tv_nsec;
        deadline = mono_ns() + ns;
    }
    for (;;) {
        int64_t left = -1;
        if (timeout) {
            left = deadline - mono_ns();
            if (left < 0) left = 0;
        }
        if (q->n_always && always_pending(q)) left = 0;
        struct epoll_event top[KQE_SOURCES];
        int r = wait_top(q, top, left);
        if (r < 0) return -1;   /* errno: EINTR when a signal came */
        int ready[KQE_SOURCES] = {0};
        for (int i = 0; i < r; i++) ready[top[i].data.u32 % KQE_SOURCES] = 1;
        /* write filters first: kqueue promises no order, and a consumer
         * that handles a socket error only on the side whose filter
         * reported it first would lose it to the send (see
         * reset_wakes_both_sides in test_kqueue.c) */
        static const int order[KQE_SOURCES] = {1, 0, 2};
        int n = 0;
        for (int k = 0; k < KQE_SOURCES && n < nevents; k++) {
            int src = order[k];
            if (!ready[src]) continue;
            if (src < 2)
                n += collect_fd(q, src, eventlist + n, nevents - n);
            else
                n += collect_user(q, eventlist + n, nevents - n);
        }
        if (q->n_always && n < nevents) n += collect_always(q, eventlist + n, nevents - n);
        if (n > 0) return n;
        if (timeout && mono_ns() >= deadline) return 0;
    }
}

#endif /* __linux__ && RX_KQUEUE_EMUL */
