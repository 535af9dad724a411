/*
 * reactor.h - the public face of the pycos reactor, a small C library that
 * waits for I/O and time.  Usable from C with no Python involved.
 *
 * The model is completion-style on every backend:
 *
 *   - An operation (recv, send, accept, connect, recvfrom, sendto) is first
 *     tried at once.  If it can complete, its result is returned inline and
 *     nothing else happens.  If it would block, the call returns RX_PENDING,
 *     the loop remembers it, performs it when the descriptor is ready, and a
 *     later rx_poll() reports {token, RX_EV_DONE, aux, result}.
 *   - Timers, one-shot readiness watches and cross-thread wakeups are reported
 *     the same way, as events in a caller-owned array.  There are no callbacks.
 *   - Every function returns 0 / a count / a byte count on success and a
 *     negative errno on failure.  Nothing here prints or aborts.
 *
 * Buffers handed to an operation belong to the caller but must stay valid
 * until that operation's DONE event has been returned by rx_poll() (which
 * also happens when it is cancelled).  A descriptor may have at most one
 * pending read-side operation (recv, recvfrom, accept, read watch) and one
 * pending write-side operation (send, sendto, connect, write watch); a second
 * one fails with -EBUSY.
 *
 * A loop is used by one thread at a time.  rx_wakeup() is the exception: it
 * may be called from any thread and from a signal handler.
 */
#ifndef PYCOS_REACTOR_H
#define PYCOS_REACTOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rx_loop rx_loop;

/* One reported event; all fields are 64-bit so a caller can read an array of
 * them as a flat array of int64 values. */
typedef struct rx_event {
    int64_t token;   /* the caller's token (0 for RX_EV_WAKEUP) */
    int64_t kind;    /* RX_EV_* */
    int64_t aux;     /* READY: RX_READ|RX_WRITE bits; DONE: bytes moved before
                        a cancel or error (sends/recvs of an RX_ALL op) */
    int64_t result;  /* DONE: bytes, new fd or 0; negative errno on failure */
} rx_event;

/* Event kinds. */
#define RX_EV_DONE   1   /* an operation completed (or was cancelled) */
#define RX_EV_TIMER  2   /* a timer reached its deadline */
#define RX_EV_READY  3   /* a one-shot watch fired; aux holds RX_READ/RX_WRITE */
#define RX_EV_WAKEUP 4   /* rx_wakeup() was called since the last poll */
#define RX_EV_DATA   5   /* an RX_ARENA recv read into the loop's arena:
                            aux = offset of the bytes in it, result = count
                            (0: end of stream) */

/* Sides of a descriptor, for watches and cancels. */
#define RX_READ  1
#define RX_WRITE 2

/* Flags for rx_send / rx_recv. */
#define RX_ALL   1       /* send: everything or an error; recv: fill buffer
                            completely, fewer bytes only at end of stream */
#define RX_LAZY  2       /* recv: if it must wait, wait without holding the
                            buffer: the completion is an RX_EV_READY event
                            (aux RX_READ) and the caller calls rx_recv again.
                            An idle connection then pins no buffer memory.
                            Not with RX_ALL (-EINVAL). */
#define RX_ARENA 4       /* recv, with RX_LAZY: when the descriptor becomes
                            ready, read into the loop's arena (rx_arena) if it
                            has room for len bytes, and report RX_EV_DATA;
                            without room (or without an arena), RX_EV_READY
                            as for RX_LAZY alone.  Errors are RX_EV_DONE. */

/* Returned by an operation that will complete later as an event. */
#define RX_PENDING (-1000000)

/* Deadlines are int64 nanoseconds on the loop's clock. */
#define RX_NEVER INT64_MAX

/* ---- loop ---------------------------------------------------------------- */

/* Create a loop.  backend is "epoll", "poll" (and on other systems "kqueue",
 * "iocp"), or NULL for the environment variable PYCOS_BACKEND, or failing that
 * the best one compiled in.  On failure returns NULL and, if err is not NULL,
 * stores a negative errno there (-EINVAL for an unknown backend name). */
rx_loop *rx_loop_new(const char *backend, int *err);

/* Free the loop and its descriptors.  Pending operations are dropped without
 * events; the caller's descriptors are not closed. */
void rx_loop_close(rx_loop *loop);

/* Name of the backend in use ("epoll", "poll", ...). */
const char *rx_loop_backend(const rx_loop *loop);

/* Comma separated names of the backends compiled in, best first. */
const char *rx_backends(void);

/* A descriptor that becomes readable when the loop has something to report
 * (I/O readiness, a wakeup; not timers - use rx_next_deadline).  A host
 * program polls it and then calls rx_poll(loop, 0, ...).  Returns -ENOTSUP for
 * backends that have no such descriptor (poll). */
int rx_loop_fd(const rx_loop *loop);

/* Wait for events.  timeout_ns < 0 waits without limit (until an event, a
 * timer or a wakeup), 0 only collects what is ready now.  Fills at most max
 * events and returns how many (events not returned stay queued for the next
 * call), or a negative errno.  Interrupted waits (EINTR) return 0. */
int rx_poll(rx_loop *loop, int64_t timeout_ns, rx_event *events, int max);

/* Thread-safe and async-signal-safe: make a concurrent or the next rx_poll
 * return promptly with an RX_EV_WAKEUP event.  Wakeups coalesce. */
int rx_wakeup(rx_loop *loop);

/* ---- clock and timers ---------------------------------------------------- */

/* Current time on the loop's clock in nanoseconds (CLOCK_MONOTONIC, or the
 * manual clock). */
int64_t rx_now(const rx_loop *loop);

/* Switch the loop to a manual clock starting at start_ns: time moves only by
 * rx_clock_set/rx_clock_advance, and rx_poll never waits for a timer (it
 * still waits for I/O and wakeups up to its timeout).  For tests. */
int rx_clock_manual(rx_loop *loop, int64_t start_ns);
int rx_clock_is_manual(const rx_loop *loop);
/* Move the manual clock; it never goes backwards (-EINVAL).  -EPERM when the
 * clock is not manual. */
int rx_clock_set(rx_loop *loop, int64_t now_ns);
int rx_clock_advance(rx_loop *loop, int64_t delta_ns);

/* Start a timer firing at an absolute deadline (a deadline in the past fires
 * at the next poll).  Timers with equal deadlines fire in the order they were
 * started.  Returns a positive timer id, or a negative errno. */
int64_t rx_timer_start(rx_loop *loop, int64_t deadline_ns, int64_t token);

/* Start a timer delay_s seconds from now.  NaN gives -EINVAL; infinite or
 * huge delays saturate to RX_NEVER; zero and negative delays fire at the next
 * poll. */
int64_t rx_timer_after(rx_loop *loop, double delay_s, int64_t token);

/* Cancel a timer that has not fired.  Returns 0, or -ENOENT when the id is
 * unknown, has fired or was cancelled already. */
int rx_timer_cancel(rx_loop *loop, int64_t timer_id);

/* Deadline of the earliest timer, or RX_NEVER when there is none. */
int64_t rx_next_deadline(const rx_loop *loop);

/* ---- completion-style operations ----------------------------------------- */

/* Read up to len bytes (exactly len with RX_ALL, fewer only at end of
 * stream, or when an error follows some data: the RX_ALL recv returns the
 * data and the next recv reports the error, see rx_take_error).  Works on
 * sockets, pipes, ttys and other descriptors. */
int64_t rx_recv(rx_loop *loop, int fd, void *buf, size_t len, int flags, int64_t token);

/* The error (negative errno) an RX_ALL recv on fd met after it had read
 * some data, which the next recv would report; taking it clears it.  0 when
 * there is none (or fd is unknown). */
int rx_take_error(rx_loop *loop, int fd);

/* Write up to len bytes (all of them with RX_ALL).  On sockets MSG_NOSIGNAL is
 * used, so a closed peer gives -EPIPE instead of SIGPIPE. */
int64_t rx_send(rx_loop *loop, int fd, const void *buf, size_t len, int flags, int64_t token);

/* Accept a connection; the result is the new descriptor, already
 * non-blocking and close-on-exec. */
int64_t rx_accept(rx_loop *loop, int fd, int64_t token);

/* Connect a non-blocking socket; result 0 or a negative errno
 * (-ECONNREFUSED, -ENETUNREACH, ...).  addr points at a struct sockaddr. */
int64_t rx_connect(rx_loop *loop, int fd, const void *addr, uint32_t addrlen, int64_t token);

/* Receive a datagram.  The sender's address is written to addr; *addrlen is
 * its capacity on entry and the address length on completion. */
int64_t rx_recvfrom(rx_loop *loop, int fd, void *buf, size_t len, void *addr,
                    uint32_t *addrlen, int64_t token);

/* Send a datagram to addr. */
int64_t rx_sendto(rx_loop *loop, int fd, const void *buf, size_t len, const void *addr,
                  uint32_t addrlen, int64_t token);

/* One-shot readiness: report RX_EV_READY with aux = the ready sides among
 * `sides` (RX_READ, RX_WRITE or both).  Returns the ready sides inline (> 0)
 * when the descriptor is ready now, else RX_PENDING. */
int64_t rx_watch(rx_loop *loop, int fd, int sides, int64_t token);

/* Cancel the pending operations of fd on the given sides.  Each cancelled
 * operation is reported by the next rx_poll() as RX_EV_DONE with result
 * -ECANCELED and aux = bytes it had moved.  Returns how many were cancelled. */
int rx_cancel(rx_loop *loop, int fd, int sides);

/* Bytes already moved by the operation pending on fd's `side` (RX_READ or
 * RX_WRITE) - what an RX_ALL operation has done so far, e.g. before a caller
 * cancels it on a timeout.  -ENOENT when nothing is pending there. */
int64_t rx_pending_done(const rx_loop *loop, int fd, int side);

/* Cancel the operation pending on fd's `side` (as rx_cancel) and return the
 * bytes it moved in the end: what a caller giving up (a timeout, a close)
 * keeps.  Unlike rx_pending_done() then rx_cancel(), it also counts what a
 * completion backend's kernel call moved after the last rx_poll() but
 * before the cancel took hold.  -ENOENT when nothing is pending there. */
int64_t rx_withdraw(rx_loop *loop, int fd, int side);

/* Cancel everything on fd (as rx_cancel) and drop it from the loop.  Call it
 * before closing a descriptor the loop has seen. */
int rx_forget(rx_loop *loop, int fd);

/* The caller moved data on fd itself (a read(2) of its own after a READY
 * event, say) and found `sides` drained: EAGAIN, or fewer bytes than it
 * asked for.  The next operation there then waits for the backend's report
 * instead of paying for an EAGAIN first.  0 (also for a descriptor the loop
 * has not seen), -EBADF for fd < 0, -EINVAL for sides outside
 * RX_READ | RX_WRITE. */
int rx_drained(rx_loop *loop, int fd, int sides);

/* The loop's read arena, made on the first call (NULL if out of memory);
 * *size gets its length.  RX_ARENA recvs read into it when their
 * descriptor becomes ready, so the caller gets the bytes with the event
 * instead of calling rx_recv again.  The bytes of an RX_EV_DATA event stay
 * valid until the next rx_poll call after the one that returned it: take
 * them before polling again. */
void *rx_arena(rx_loop *loop, size_t *size);

/* ---- introspection ------------------------------------------------------- */

typedef struct rx_stats {
    int64_t pending_ops;     /* operations and watches waiting for readiness */
    int64_t registered_fds;  /* descriptors registered with the backend */
    int64_t known_fds;       /* descriptors the loop keeps state for */
    int64_t timers;          /* timers started and not yet fired/cancelled */
    int64_t queued_events;   /* events waiting to be returned by rx_poll */
    int64_t polls;           /* rx_poll calls so far */
    int64_t syscalls;        /* I/O syscalls the loop made (ops + waits) */
} rx_stats;

int rx_loop_stats(const rx_loop *loop, rx_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* PYCOS_REACTOR_H */
