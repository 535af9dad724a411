/*
 * kqueue_emul.h - a TEST-ONLY emulation of BSD kqueue on Linux epoll.
 *
 * Why: the kqueue backend (csrc/backend_kqueue.c) is written against the
 * BSD/macOS API, and no BSD machine runs the tests here.  Compiled with
 * -DRX_KQUEUE_EMUL, the backend includes this header instead of
 * <sys/event.h>, and the C suite runs against it as the "kqueue-emul"
 * backend.  It lives in csrc/tests/ and is never compiled into the Python
 * extension (build_reactor.py compiles only the .c files of csrc/ itself).
 *
 * What it emulates (FreeBSD's constants and semantics):
 *   kqueue()            a descriptor that polls readable while events are
 *                       pending (an epoll descriptor), close-on-exec
 *   kevent()            changes applied in order, then events collected:
 *                       an error with room in the event list becomes an
 *                       EV_ERROR entry (data = errno) and processing goes
 *                       on, without room kevent fails with it; EV_RECEIPT
 *                       gives an entry for every change (data 0 on
 *                       success); a call that produced entries returns them
 *                       without collecting events; nevents == 0 never
 *                       waits; timeout NULL waits without limit, {0, 0}
 *                       not at all, else up to the timespec (never less);
 *                       a signal ends a wait with EINTR; events come
 *                       write filters first, then read filters, then user
 *                       events (kqueue promises no order; this one is the
 *                       least kind to a consumer that handles an error
 *                       only on the side that reported it first)
 *   EV_ADD/EV_DELETE/EV_ENABLE/EV_DISABLE, EV_ONESHOT (deleted once
 *                       reported), EV_CLEAR (reported once per change of
 *                       state), EV_DISPATCH (disabled once reported), level
 *                       filters (reported while the condition holds); at
 *                       most one filter per (ident, filter) pair; ENOENT
 *                       for a missing one, EBADF for a bad descriptor,
 *                       EINVAL for an unknown filter
 *   EVFILT_READ         data = bytes readable (FIONREAD), for a TCP
 *                       listening socket the connections waiting; EV_EOF
 *                       when the peer will send no more (EPOLLRDHUP/HUP),
 *                       with fflags = the socket's error if it has one
 *   EVFILT_WRITE        data = room in the send buffer (sockets, pipes);
 *                       EV_EOF when nothing more can be sent (EPOLLHUP or
 *                       EPOLLERR), fflags = the socket's error
 *   EVFILT_USER         EV_ADD/DELETE/ENABLE/DISABLE, NOTE_TRIGGER,
 *                       NOTE_FFNOP/FFAND/FFOR/FFCOPY on the low 24 fflags
 *                       bits; EV_CLEAR resets the trigger, fflags and data
 *                       once reported.  NOTE_TRIGGER is lock-free, one
 *                       write(2) to an eventfd: safe from any thread and
 *                       from signal handlers, like the kernel's
 *
 * How: one epoll instance per filter (read filters, write filters) nested
 * in the epoll instance that is the kqueue descriptor, so that each filter
 * has its own edge/level mode and its own edges, plus an eventfd for
 * EVFILT_USER.  EV_CLEAR is EPOLLET, EV_ONESHOT and EV_DISPATCH are
 * EPOLLONESHOT; a disabled filter is taken out of epoll.
 *
 * What it does NOT emulate (differences a test must not rely on):
 *   - fflags on EV_EOF: Linux has no way to read a socket's pending error
 *     without clearing it (SO_ERROR clears it, and the code under test must
 *     still find it), so fflags is derived without touching the socket:
 *     0 without EPOLLERR; with it, on a TCP socket ECONNREFUSED if the
 *     connection was never established (TCP_INFO: no options negotiated,
 *     no RTT sample) else ECONNRESET; on a Unix socket ECONNRESET.
 *     It is non-zero exactly when the socket has an error, as on BSD, but
 *     e.g. ETIMEDOUT or EHOSTUNREACH read as ECONNRESET/ECONNREFUSED;
 *     other sockets say EIO, other descriptors 0 (as BSD pipes do).
 *   - data of EVFILT_READ is the first datagram's size for UDP (BSD: all
 *     bytes queued), 1 for a Unix-domain listening socket; data of
 *     EVFILT_WRITE is SO_SNDBUF minus the bytes queued (Linux doubles
 *     SO_SNDBUF), 0 for descriptors that are neither sockets nor pipes.
 *   - Closing a descriptor does not remove its filters from the
 *     emulation's tables at once (the kernel does that on BSD): epoll
 *     forgets the descriptor once its file is gone, a stale entry is
 *     ignored when reported and dropped by the next change naming the
 *     closed descriptor (which fails with EBADF, as on BSD); EV_ADD on a
 *     reused number before that keeps the stale entry's EV_CLEAR/ONESHOT
 *     flags and re-registers it.
 *   - Wakeups that carry no epoll key (a state change such as a FIN) reach
 *     the write filter too: an EV_CLEAR EVFILT_WRITE may report once more
 *     than BSD would (a spurious edge, never a missing one).
 *   - Descriptors epoll refuses (regular files, some devices) are "always
 *     ready": EV_CLEAR reports them once per EV_ADD/EV_ENABLE, level filters
 *     at every call; data of their EVFILT_READ is the bytes to end of file.
 *   - A kqueue is inherited by fork here (it is not on BSD); NOTE_* filter
 *     flags other than EVFILT_USER's, EVFILT_VNODE/PROC/SIGNAL/TIMER/AIO,
 *     EV_KEEPUDATA, EV_FORCEONESHOT, kevent64/kevent_qos, and udata-specific
 *     events (EV_UDATA_SPECIFIC) are not emulated (EINVAL or ignored).
 *   - Only NOTE_TRIGGER may be used concurrently with other calls on the
 *     same kqueue (as the loop does from other threads and signal
 *     handlers); adding and deleting filters is for one thread at a time.
 *
 * Code that includes this header closes a kqueue with close(), which the
 * macro below routes to kqemul_close() so that the emulation's own
 * descriptors and tables are freed with it.
 */
#ifndef PYCOS_KQUEUE_EMUL_H
#define PYCOS_KQUEUE_EMUL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

struct kevent {
    uintptr_t ident;       /* a descriptor, or EVFILT_USER's identifier */
    short filter;          /* EVFILT_* */
    unsigned short flags;  /* EV_* */
    unsigned int fflags;   /* filter flags (NOTE_*), or the error on EV_EOF */
    int64_t data;          /* filter data; errno in an EV_ERROR entry */
    void *udata;           /* returned as given */
};

#define EV_SET(kevp, a, b, c, d, e, f)                                          \
    do {                                                                        \
        struct kevent *kqemul_kev_ = (kevp);                                    \
        kqemul_kev_->ident = (a);                                               \
        kqemul_kev_->filter = (short)(b);                                       \
        kqemul_kev_->flags = (unsigned short)(c);                               \
        kqemul_kev_->fflags = (unsigned int)(d);                                \
        kqemul_kev_->data = (e);                                                \
        kqemul_kev_->udata = (f);                                               \
    } while (0)

#define EVFILT_READ  (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_USER  (-11)

#define EV_ADD      0x0001
#define EV_DELETE   0x0002
#define EV_ENABLE   0x0004
#define EV_DISABLE  0x0008
#define EV_ONESHOT  0x0010
#define EV_CLEAR    0x0020
#define EV_RECEIPT  0x0040
#define EV_DISPATCH 0x0080
#define EV_ERROR    0x4000
#define EV_EOF      0x8000

#define NOTE_FFNOP      0x00000000u
#define NOTE_FFAND      0x40000000u
#define NOTE_FFOR       0x80000000u
#define NOTE_FFCOPY     0xc0000000u
#define NOTE_FFCTRLMASK 0xc0000000u
#define NOTE_FFLAGSMASK 0x00ffffffu
#define NOTE_TRIGGER    0x01000000u

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout);

/* close() that also frees an emulated kqueue (see above) */
int kqemul_close(int fd);
#ifndef KQEMUL_IMPLEMENTATION
#define close(fd) kqemul_close(fd)
#endif

/* ---- test knobs and introspection (not BSD API) ---------------------------- */

/* on != 0: EV_ADD of EVFILT_USER fails with EINVAL, as on a kernel without
 * it (kqueues made before keep theirs) */
void kqemul_refuse_user_filter(int on);
/* Changes applied by kevent() on this kqueue so far (including failed ones
 * and triggers), or -1 if kq is not an emulated kqueue. */
long kqemul_changes(int kq);
/* The filters present for a descriptor: 1 read, 2 write (disabled ones
 * included), or -1 if kq is not an emulated kqueue. */
int kqemul_filters(int kq, int fd);

#endif
