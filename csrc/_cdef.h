/*
 * _cdef.h - the declarations of reactor.h in the subset of C that cffi's
 * parser reads (build_reactor.py passes this file to ffibuilder.cdef()).
 *
 * Keep it in step with reactor.h: tests/test_packaging.py fails when a
 * public rx_ function or RX_ constant of reactor.h is missing here or its
 * prototype differs.  No #include, no #ifdef, no extern "C" here; constants
 * are all written "..." so that their values come from the real header
 * when the extension is compiled, never from a copy.
 */

typedef struct rx_loop rx_loop;

typedef struct rx_event {
    int64_t token;
    int64_t kind;
    int64_t aux;
    int64_t result;
} rx_event;

typedef struct rx_stats {
    int64_t pending_ops;
    int64_t registered_fds;
    int64_t known_fds;
    int64_t timers;
    int64_t queued_events;
    int64_t polls;
    int64_t syscalls;
} rx_stats;

#define RX_EV_DONE ...
#define RX_EV_TIMER ...
#define RX_EV_READY ...
#define RX_EV_WAKEUP ...
#define RX_EV_DATA ...

#define RX_READ ...
#define RX_WRITE ...

#define RX_ALL ...
#define RX_LAZY ...
#define RX_ARENA ...

#define RX_PENDING ...
#define RX_NEVER ...

/* loop */
rx_loop *rx_loop_new(const char *backend, int *err);
void rx_loop_close(rx_loop *loop);
const char *rx_loop_backend(const rx_loop *loop);
const char *rx_backends(void);
int rx_loop_fd(const rx_loop *loop);
int rx_poll(rx_loop *loop, int64_t timeout_ns, rx_event *events, int max);
int rx_wakeup(rx_loop *loop);

/* clock and timers */
int64_t rx_now(const rx_loop *loop);
int rx_clock_manual(rx_loop *loop, int64_t start_ns);
int rx_clock_is_manual(const rx_loop *loop);
int rx_clock_set(rx_loop *loop, int64_t now_ns);
int rx_clock_advance(rx_loop *loop, int64_t delta_ns);
int64_t rx_timer_start(rx_loop *loop, int64_t deadline_ns, int64_t token);
int64_t rx_timer_after(rx_loop *loop, double delay_s, int64_t token);
int rx_timer_cancel(rx_loop *loop, int64_t timer_id);
int64_t rx_next_deadline(const rx_loop *loop);

/* completion-style operations */
int64_t rx_recv(rx_loop *loop, int fd, void *buf, size_t len, int flags, int64_t token);
int rx_take_error(rx_loop *loop, int fd);
int64_t rx_send(rx_loop *loop, int fd, const void *buf, size_t len, int flags, int64_t token);
int64_t rx_accept(rx_loop *loop, int fd, int64_t token);
int64_t rx_connect(rx_loop *loop, int fd, const void *addr, uint32_t addrlen, int64_t token);
int64_t rx_recvfrom(rx_loop *loop, int fd, void *buf, size_t len, void *addr,
                    uint32_t *addrlen, int64_t token);
int64_t rx_sendto(rx_loop *loop, int fd, const void *buf, size_t len, const void *addr,
                  uint32_t addrlen, int64_t token);
int64_t rx_watch(rx_loop *loop, int fd, int sides, int64_t token);
int rx_cancel(rx_loop *loop, int fd, int sides);
int64_t rx_pending_done(const rx_loop *loop, int fd, int side);
int64_t rx_withdraw(rx_loop *loop, int fd, int side);
int rx_forget(rx_loop *loop, int fd);
int rx_drained(rx_loop *loop, int fd, int sides);
void *rx_arena(rx_loop *loop, size_t *size);

/* introspection */
int rx_loop_stats(const rx_loop *loop, rx_stats *out);
