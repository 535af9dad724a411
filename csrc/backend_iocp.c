/*
 * backend_iocp.c - the Windows backend, on an I/O completion port.
 *
 * A completion backend: the operations are overlapped calls (WSARecv,
 * WSASend, AcceptEx, ConnectEx, WSARecvFrom, WSASendTo on sockets,
 * ReadFile/WriteFile on pipes and files), so loop.c forwards rx_recv & co.
 * here (loop->ops) instead of running its readiness machinery.
 *
 * Descriptors.  The API's `int fd` is the SOCKET or HANDLE value (Windows
 * keeps handle values within 32 bits so that 32- and 64-bit processes can
 * share them).  State is kept per descriptor in a small hash table: the
 * request in flight on each side, whether it is a socket, and whether
 * immediate completions skip the port.
 *
 * Inline completion.  A descriptor is associated with the port the first
 * time an operation sees it, and FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is
 * set on it: an overlapped call that succeeds at once then queues nothing,
 * and its result is returned inline as on the other backends.  Where the
 * mode cannot be set, such a success is reported as a later event (correct,
 * one event slower).
 *
 * Memory.  Each operation in flight is a request the loop allocates (the
 * OVERLAPPED, the address buffers of recvfrom/sendto/accept/connect).  The
 * caller's buffer is given to the kernel directly (no copy): the contract
 * (reactor.h) keeps it valid until the operation's DONE event, and a cancel
 * (rx_cancel, rx_forget, rx_loop_close) does not report before the kernel
 * is done with it: CancelIoEx, then wait until the request has completed
 * (cancelling socket I/O completes at once; the wait is bounded).  The
 * request's completion packet is still queued on the port then, so the
 * request stays allocated (an orphan) until that packet is dequeued.  If the
 * operation finished before the cancel took hold, nothing is lost: a recv
 * that got bytes reports them as its normal result, an RX_ALL one counts
 * them in aux of its -ECANCELED event.
 *
 * Readiness watches.  Windows has no readiness notification for a socket on
 * a completion port apart from the undocumented AFD poll; what it has is
 * used: a watch first asks WSAPoll (the inline answer); a read watch on a
 * connected socket then waits with a zero-byte WSARecv (MSG_PEEK on
 * datagram sockets), which completes when data, end of stream or an error
 * arrives and takes nothing.  RX_LAZY recvs wait the same way, so an idle
 * connection pins no buffer.  A write watch that cannot be answered at once,
 * and watches on listening sockets, pipes and files, give -ENOTSUP.  RX_ARENA
 * is accepted and reports readiness (the "no room in the arena" case of
 * reactor.h); the caller then calls rx_recv.
 *
 * Wakeups: PostQueuedCompletionStatus with a key of its own (loop->wake_fn).
 * Timers are the loop's (timers.c); the port wait gets the budget in whole
 * milliseconds, rounded up.  rx_loop_fd is -ENOTSUP: a port is not a
 * descriptor another program can poll.
 *
 * Compiled to nothing except on Windows.
 */
#ifdef _WIN32
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 256
#define KEY_IO 1
#define KEY_WAKE 2

/* issue(): the kernel will queue a completion for the request */
#define IN_FLIGHT INT64_MIN

#ifndef FILE_SKIP_COMPLETION_PORT_ON_SUCCESS
#define FILE_SKIP_COMPLETION_PORT_ON_SUCCESS 0x1
#endif
#ifndef WSA_FLAG_NO_HANDLE_INHERIT
#define WSA_FLAG_NO_HANDLE_INHERIT 0x80
#endif
#ifndef SIO_UDP_CONNRESET
#define SIO_UDP_CONNRESET _WSAIOW(IOC_VENDOR, 12)
#endif

typedef struct iocp_fd iocp_fd;

typedef struct iocp_req {
    OVERLAPPED ov;               /* first: the port hands back &ov */
    iocp_fd *owner;              /* NULL: orphaned, freed when its packet comes */
    struct iocp_req *prev, *next;   /* every request the kernel may still touch */
    int64_t token;
    char *buf;
    size_t len, done;
    uint8_t kind, flags, side;
    DWORD wflags;
    WSABUF wb;
    INT alen;                    /* recvfrom: the sender's length (in/out) */
    struct sockaddr_storage addr;   /* recvfrom: sender; sendto/connect: peer */
    void *uaddr;                 /* recvfrom: the caller's address buffer */
    uint32_t *uaddrlenp;
    SOCKET acc;                  /* accept: the socket accepted into */
    char accbuf[2 * (sizeof(struct sockaddr_storage) + 16)];
} iocp_req;

struct iocp_fd {
    int fd;
    uint8_t sock;                /* 1 socket, 2 other handle (pipe, file, ...) */
    uint8_t skip;                /* immediate successes queue no packet */
    uint8_t disk;                /* a file: reads and writes carry an offset */
    int family, type;            /* sockets */
    uint64_t offset;             /* files: where the next read/write goes */
    int32_t rd_err;              /* error an RX_ALL recv met after some data */
    iocp_req *rd, *wr;
};

typedef struct iocp_data {
    HANDLE port;
    iocp_fd **tab;               /* open addressing on fd, linear probing */
    size_t cap, n;
    iocp_req *live;              /* requests in flight or orphaned */
    LPFN_ACCEPTEX acceptex;
    LPFN_CONNECTEX connectex;
    int wsa;
    int closing;                 /* rx_loop_close is tearing the table down */
    OVERLAPPED_ENTRY entries[MAX_ENTRIES];
} iocp_data;

static inline int neg(DWORD e)
{
    return -rx__win_errno(e);
}

/* ---- descriptor table -------------------------------------------------- */

static size_t slot_of(const iocp_data *d, int fd)
{
    uint32_t h = (uint32_t)fd * 2654435761u;
    return (size_t)(h ^ (h >> 16)) & (d->cap - 1);
}

static iocp_fd *find(const iocp_data *d, int fd)
{
    if (!d->cap) return NULL;
    for (size_t i = slot_of(d, fd);; i = (i + 1) & (d->cap - 1)) {
        if (!d->tab[i]) return NULL;
        if (d->tab[i]->fd == fd) return d->tab[i];
    }
}

static int insert(iocp_data *d, iocp_fd *st)
{
    if ((d->n + 1) * 2 > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        iocp_fd **t = calloc(cap, sizeof *t);
        if (!t) return -ENOMEM;
        for (size_t i = 0; i < d->cap; i++) {
            if (!d->tab[i]) continue;
            size_t j = (size_t)((uint32_t)d->tab[i]->fd * 2654435761u);
            j = (j ^ (j >> 16)) & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = d->tab[i];
        }
        free(d->tab);
        d->tab = t;
        d->cap = cap;
    }
    size_t i = slot_of(d, st->fd);
    while (d->tab[i]) i = (i + 1) & (d->cap - 1);
    d->tab[i] = st;
    d->n++;
    return 0;
}

static void remove_entry(iocp_data *d, iocp_fd *st)
{
    size_t i = slot_of(d, st->fd);
    while (d->tab[i] != st) i = (i + 1) & (d->cap - 1);
    d->tab[i] = NULL;
    d->n--;
    /* re-place the rest of the cluster so lookups do not stop at the hole */
    for (size_t j = (i + 1) & (d->cap - 1); d->tab[j]; j = (j + 1) & (d->cap - 1)) {
        iocp_fd *e = d->tab[j];
        d->tab[j] = NULL;
        size_t k = slot_of(d, e->fd);
        while (d->tab[k]) k = (k + 1) & (d->cap - 1);
        d->tab[k] = e;
    }
}

/* State of fd; on first sight find out what it is and associate it with the
 * port. */
static iocp_fd *fd_get(rx_loop *loop, int fd, int *err)
{
    iocp_data *d = loop->bdata;
    if (fd < 0) {
        *err = -EBADF;
        return NULL;
    }
    iocp_fd *st = find(d, fd);
    if (st) return st;

    HANDLE h = (HANDLE)(intptr_t)fd;
    int sock = 0, family = 0, type = 0, disk = 0;
    uint64_t offset = 0;
    WSAPROTOCOL_INFOW pi;
    int pl = sizeof pi;
    loop->syscalls++;
    if (getsockopt((SOCKET)fd, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&pi, &pl) == 0) {
        sock = 1;
        family = pi.iAddressFamily;
        type = pi.iSocketType;
    } else {
        DWORD ft = GetFileType(h);
        if (ft == FILE_TYPE_UNKNOWN && GetLastError() != NO_ERROR) {
            *err = -EBADF;
            return NULL;
        }
        if (ft == FILE_TYPE_DISK) {
            LARGE_INTEGER zero = {0}, pos;
            disk = 1;
            if (SetFilePointerEx(h, zero, &pos, FILE_CURRENT)) offset = (uint64_t)pos.QuadPart;
        }
    }
    loop->syscalls++;
    if (!CreateIoCompletionPort(h, d->port, KEY_IO, 0)) {
        DWORD e = GetLastError();
        /* ERROR_INVALID_PARAMETER: associated already (a port cannot be
         * left; the loop forgot it and sees it again) */
        if (e != ERROR_INVALID_PARAMETER) {
            *err = neg(e);
            return NULL;
        }
    }
    st = calloc(1, sizeof *st);
    if (!st) {
        *err = -ENOMEM;
        return NULL;
    }
    st->fd = fd;
    st->sock = sock ? 1 : 2;
    st->family = family;
    st->type = type;
    st->disk = (uint8_t)disk;
    st->offset = offset;
    st->skip = SetFileCompletionNotificationModes(h, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) ? 1 : 0;
    if (sock && type == SOCK_DGRAM) {
        /* an ICMP port-unreachable must not fail later recvfroms (as on
         * Linux, where an unconnected UDP socket never hears of it) */
        BOOL off = FALSE;
        DWORD got;
        WSAIoctl((SOCKET)fd, SIO_UDP_CONNRESET, &off, sizeof off, NULL, 0, &got, NULL, NULL);
    }
    int rc = insert(d, st);
    if (rc < 0) {
        free(st);
        *err = rc;
        return NULL;
    }
    loop->known_fds++;
    loop->registered_fds++;
    return st;
}

/* ---- requests ----------------------------------------------------------- */

static iocp_req *req_new(rx_loop *loop, iocp_fd *st, int side, int kind, int64_t token)
{
    iocp_data *d = loop->bdata;
    iocp_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->owner = st;
    r->side = (uint8_t)side;
    r->kind = (uint8_t)kind;
    r->token = token;
    r->acc = INVALID_SOCKET;
    r->next = d->live;
    if (d->live) d->live->prev = r;
    d->live = r;
    return r;
}

static void req_free(rx_loop *loop, iocp_req *r)
{
    iocp_data *d = loop->bdata;
    if (r->prev) r->prev->next = r->next;
    else d->live = r->next;
    if (r->next) r->next->prev = r->prev;
    if (r->acc != INVALID_SOCKET) closesocket(r->acc);
    free(r);
}

static HANDLE handle_of(const iocp_fd *st)
{
    return (HANDLE)(intptr_t)st->fd;
}

/* Result of a call that returned at once: success -> n bytes (or, without
 * skip mode, a packet is queued anyway), else the error. */
static int64_t started(const iocp_fd *st, BOOL ok, DWORD n, DWORD e)
{
    if (ok) return st->skip ? (int64_t)n : IN_FLIGHT;
    if (e == ERROR_IO_PENDING) return IN_FLIGHT;   /* = WSA_IO_PENDING */
    return neg(e);
}

static int load_ext(iocp_data *d, SOCKET s)
{
    DWORD got;
    if (!d->acceptex) {
        GUID g = WSAID_ACCEPTEX;
        if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &g, sizeof g, &d->acceptex,
                     sizeof d->acceptex, &got, NULL, NULL) != 0)
            return neg(WSAGetLastError());
    }
    if (!d->connectex) {
        GUID g = WSAID_CONNECTEX;
        if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &g, sizeof g, &d->connectex,
                     sizeof d->connectex, &got, NULL, NULL) != 0)
            return neg(WSAGetLastError());
    }
    return 0;
}

static SOCKET new_socket(int family, int type, int proto)
{
    SOCKET s = WSASocketW(family, type, proto, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET && WSAGetLastError() == WSAEINVAL) {
        /* older systems do not know WSA_FLAG_NO_HANDLE_INHERIT */
        s = WSASocketW(family, type, proto, NULL, 0, WSA_FLAG_OVERLAPPED);
        if (s != INVALID_SOCKET) SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    }
    return s;
}

/* Start (or continue) the request's kernel call.  Returns IN_FLIGHT, or the
 * result of a call that completed at once (bytes, 0, or -errno). */
static int64_t issue(rx_loop *loop, iocp_fd *st, iocp_req *r)
{
    iocp_data *d = loop->bdata;
    SOCKET s = (SOCKET)st->fd;
    DWORD n = 0;
    BOOL ok;
    memset(&r->ov, 0, sizeof r->ov);
    loop->syscalls++;
    switch (r->kind) {
    case OP_RECV:
    case OP_WATCH: {
        size_t want = r->kind == OP_WATCH ? 0 : r->len - r->done;
        DWORD chunk = want > 0x7fffffff ? 0x7fffffff : (DWORD)want;
        if (st->sock == 1) {
            r->wb.buf = r->kind == OP_WATCH ? NULL : r->buf + r->done;
            r->wb.len = chunk;
            r->wflags = (r->kind == OP_WATCH && st->type == SOCK_DGRAM) ? MSG_PEEK : 0;
            ok = WSARecv(s, &r->wb, 1, &n, &r->wflags, &r->ov, NULL) == 0;
            return started(st, ok, n, ok ? 0 : (DWORD)WSAGetLastError());
        }
        if (st->disk) {
            r->ov.Offset = (DWORD)st->offset;
            r->ov.OffsetHigh = (DWORD)(st->offset >> 32);
        }
        ok = ReadFile(handle_of(st), r->buf + r->done, chunk, &n, &r->ov);
        DWORD e = ok ? 0 : GetLastError();
        if (!ok && (e == ERROR_HANDLE_EOF || e == ERROR_BROKEN_PIPE)) return 0;  /* end */
        return started(st, ok, n, e);
    }
    case OP_SEND: {
        size_t want = r->len - r->done;
        DWORD chunk = want > 0x7fffffff ? 0x7fffffff : (DWORD)want;
        if (st->sock == 1) {
            r->wb.buf = r->buf + r->done;
            r->wb.len = chunk;
            ok = WSASend(s, &r->wb, 1, &n, 0, &r->ov, NULL) == 0;
            return started(st, ok, n, ok ? 0 : (DWORD)WSAGetLastError());
        }
        if (st->disk) {
            r->ov.Offset = (DWORD)st->offset;
            r->ov.OffsetHigh = (DWORD)(st->offset >> 32);
        }
        ok = WriteFile(handle_of(st), r->buf + r->done, chunk, &n, &r->ov);
        return started(st, ok, n, ok ? 0 : GetLastError());
    }
    case OP_RECVFROM:
        r->wb.buf = r->buf;
        r->wb.len = r->len > 0x7fffffff ? 0x7fffffff : (ULONG)r->len;
        r->wflags = 0;
        r->alen = (INT)sizeof r->addr;
        ok = WSARecvFrom(s, &r->wb, 1, &n, &r->wflags, (struct sockaddr *)&r->addr, &r->alen,
                         &r->ov, NULL) == 0;
        return started(st, ok, n, ok ? 0 : (DWORD)WSAGetLastError());
    case OP_SENDTO:
        r->wb.buf = r->buf;
        r->wb.len = r->len > 0x7fffffff ? 0x7fffffff : (ULONG)r->len;
        ok = WSASendTo(s, &r->wb, 1, &n, 0, (struct sockaddr *)&r->addr, r->alen, &r->ov,
                       NULL) == 0;
        return started(st, ok, n, ok ? 0 : (DWORD)WSAGetLastError());
    case OP_ACCEPT: {
        if (r->acc == INVALID_SOCKET) {
            r->acc = new_socket(st->family, SOCK_STREAM, 0);
            if (r->acc == INVALID_SOCKET) return neg(WSAGetLastError());
        }
        DWORD alen = (DWORD)sizeof(struct sockaddr_storage) + 16;
        ok = d->acceptex(s, r->acc, r->accbuf, 0, alen, alen, &n, &r->ov);
        return started(st, ok, 0, ok ? 0 : (DWORD)WSAGetLastError());
    }
    case OP_CONNECT:
        ok = d->connectex(s, (struct sockaddr *)&r->addr, r->alen, NULL, 0, NULL, &r->ov);
        return started(st, ok, 0, ok ? 0 : (DWORD)WSAGetLastError());
    }
    return -EINVAL;
}

/* The finished kernel call's result: bytes, or -errno. */
static int64_t outcome(iocp_fd *st, iocp_req *r)
{
    DWORD n = 0, fl = 0;
    if (st->sock == 1) {
        if (WSAGetOverlappedResult((SOCKET)st->fd, &r->ov, &n, FALSE, &fl)) return (int64_t)n;
        DWORD e = (DWORD)WSAGetLastError();
        if (e == WSAEMSGSIZE && r->kind == OP_RECVFROM) return (int64_t)r->len;
        return neg(e);
    }
    if (GetOverlappedResult(handle_of(st), &r->ov, &n, FALSE)) return (int64_t)n;
    DWORD e = GetLastError();
    if (r->side == RX_READ && (e == ERROR_HANDLE_EOF || e == ERROR_BROKEN_PIPE)) return 0;
    return neg(e);
}

/* One kernel call of r finished with chunk result c.  Returns the
 * operation's result when it is done, else IN_FLIGHT (a next call is
 * running).  `final` (a cancel) forbids starting another call. */
static int64_t advance(rx_loop *loop, iocp_fd *st, iocp_req *r, int64_t c, int final)
{
    for (;;) {
        switch (r->kind) {
        case OP_RECV:
            if (c < 0) {
                if (!r->done) return c;
                st->rd_err = (int32_t)c;   /* the next recv reports it */
                return (int64_t)r->done;
            }
            if (st->disk) st->offset += (uint64_t)c;
            if (c == 0) return (int64_t)r->done;   /* end of stream */
            r->done += (size_t)c;
            if (!(r->flags & RX_ALL) || r->done == r->len) return (int64_t)r->done;
            if (final) return -ECANCELED;
            break;
        case OP_SEND:
            if (c < 0) return c;
            if (st->disk) st->offset += (uint64_t)c;
            r->done += (size_t)c;
            if (r->done == r->len || !(r->flags & RX_ALL)) return (int64_t)r->done;
            if (final) return -ECANCELED;
            break;
        case OP_RECVFROM:
            if (c == -EMSGSIZE) c = (int64_t)r->len;   /* truncated, as on Linux */
            if (c >= 0) {
                uint32_t cap = *r->uaddrlenp, al = (uint32_t)r->alen;
                memcpy(r->uaddr, &r->addr, al < cap ? al : cap);
                *r->uaddrlenp = al;
            }
            return c;
        case OP_SENDTO:
        case OP_WATCH:
            return c;
        case OP_CONNECT:
            if (c == 0)
                setsockopt((SOCKET)st->fd, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0);
            return c;
        case OP_ACCEPT:
            if (c >= 0) {
                SOCKET ls = (SOCKET)st->fd, a = r->acc;
                setsockopt(a, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (char *)&ls, sizeof ls);
                r->acc = INVALID_SOCKET;
                /* state kept under this number belongs to a handle closed
                 * without rx_forget */
                iocp_data *d = loop->bdata;
                if (!d->closing && find(d, (int)a)) rx_forget(loop, (int)a);
                return (int64_t)(intptr_t)a;
            }
            if (final || (c != -ECONNRESET && c != -ECONNABORTED)) return c;
            closesocket(r->acc);   /* the peer gave up first: wait for the next */
            r->acc = INVALID_SOCKET;
            break;
        default:
            return -EINVAL;
        }
        c = issue(loop, st, r);
        if (c == IN_FLIGHT) return IN_FLIGHT;
    }
}

/* ---- submitting ---------------------------------------------------------- */

static int64_t submit(rx_loop *loop, iocp_fd *st, iocp_req *r)
{
    iocp_req **slot = r->side == RX_READ ? &st->rd : &st->wr;
    int64_t c = issue(loop, st, r);
    if (c != IN_FLIGHT) {
        c = advance(loop, st, r, c, 0);
        if (c != IN_FLIGHT) {
            req_free(loop, r);
            return c;
        }
    }
    *slot = r;
    loop->pending_ops++;
    return RX_PENDING;
}

#define BEGIN(side, kind_)                                          \
    int err_;                                                       \
    iocp_fd *st = fd_get(loop, fd, &err_);                          \
    if (!st) return err_;                                           \
    if ((side == RX_READ ? st->rd : st->wr) != NULL) return -EBUSY;

#define NEW_REQ(side, kind_)                                        \
    iocp_req *r = req_new(loop, st, side, kind_, token);            \
    if (!r) return -ENOMEM

static int64_t io_recv(rx_loop *loop, int fd, void *buf, size_t len, int flags, int64_t token)
{
    BEGIN(RX_READ, OP_RECV);
    if (st->rd_err) {
        int64_t e = st->rd_err;
        st->rd_err = 0;
        return e;
    }
    if (flags & RX_LAZY) {
        if (st->sock != 1) return -ENOTSUP;
        /* wait for data with a zero-byte recv; with data there, read now */
        NEW_REQ(RX_READ, OP_WATCH);
        int64_t c = issue(loop, st, r);
        if (c == IN_FLIGHT) {
            r->flags = (uint8_t)flags;
            st->rd = r;
            loop->pending_ops++;
            return RX_PENDING;
        }
        req_free(loop, r);
        if (c < 0) return c;
        flags = 0;
    }
    NEW_REQ(RX_READ, OP_RECV);
    r->buf = buf;
    r->len = len;
    r->flags = (uint8_t)flags;
    return submit(loop, st, r);
}

static int64_t io_send(rx_loop *loop, int fd, const void *buf, size_t len, int flags,
                       int64_t token)
{
    BEGIN(RX_WRITE, OP_SEND);
    NEW_REQ(RX_WRITE, OP_SEND);
    r->buf = (char *)buf;
    r->len = len;
    r->flags = (uint8_t)flags;
    return submit(loop, st, r);
}

static int64_t io_accept(rx_loop *loop, int fd, int64_t token)
{
    BEGIN(RX_READ, OP_ACCEPT);
    if (st->sock != 1) return -ENOTSOCK;
    int rc = load_ext(loop->bdata, (SOCKET)fd);
    if (rc < 0) return rc;
    NEW_REQ(RX_READ, OP_ACCEPT);
    return submit(loop, st, r);
}

static int64_t io_connect(rx_loop *loop, int fd, const void *addr, uint32_t addrlen,
                          int64_t token)
{
    BEGIN(RX_WRITE, OP_CONNECT);
    if (!addr || addrlen < sizeof(struct sockaddr) || addrlen > sizeof(struct sockaddr_storage))
        return -EINVAL;
    if (st->sock != 1) return -ENOTSOCK;
    int rc = load_ext(loop->bdata, (SOCKET)fd);
    if (rc < 0) return rc;
    /* ConnectEx wants a bound socket */
    struct sockaddr_storage me;
    int ml = sizeof me;
    if (getsockname((SOCKET)fd, (struct sockaddr *)&me, &ml) != 0) {
        memset(&me, 0, sizeof me);
        me.ss_family = ((const struct sockaddr *)addr)->sa_family;
        ml = me.ss_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
                                      : (int)sizeof(struct sockaddr_in);
        if (bind((SOCKET)fd, (struct sockaddr *)&me, ml) != 0) return neg(WSAGetLastError());
    }
    NEW_REQ(RX_WRITE, OP_CONNECT);
    memcpy(&r->addr, addr, addrlen);
    r->alen = (INT)addrlen;
    return submit(loop, st, r);
}

static int64_t io_recvfrom(rx_loop *loop, int fd, void *buf, size_t len, void *addr,
                           uint32_t *addrlen, int64_t token)
{
    BEGIN(RX_READ, OP_RECVFROM);
    if (!addr || !addrlen) return -EINVAL;
    if (st->sock != 1) return -ENOTSOCK;
    NEW_REQ(RX_READ, OP_RECVFROM);
    r->buf = buf;
    r->len = len;
    r->uaddr = addr;
    r->uaddrlenp = addrlen;
    return submit(loop, st, r);
}

static int64_t io_sendto(rx_loop *loop, int fd, const void *buf, size_t len, const void *addr,
                         uint32_t addrlen, int64_t token)
{
    BEGIN(RX_WRITE, OP_SENDTO);
    if (st->sock != 1) return -ENOTSOCK;
    if (addrlen > sizeof(struct sockaddr_storage) || (addrlen && !addr)) return -EINVAL;
    NEW_REQ(RX_WRITE, OP_SENDTO);
    r->buf = (char *)buf;
    r->len = len;
    if (addrlen) memcpy(&r->addr, addr, addrlen);
    r->alen = (INT)addrlen;
    return submit(loop, st, r);
}

static int64_t io_watch(rx_loop *loop, int fd, int sides, int64_t token)
{
    int err;
    iocp_fd *st = fd_get(loop, fd, &err);
    if (!st) return err;
    if (((sides & RX_READ) && st->rd) || ((sides & RX_WRITE) && st->wr)) return -EBUSY;
    if (st->sock != 1) return -ENOTSUP;
    WSAPOLLFD p;
    p.fd = (SOCKET)fd;
    p.events = (SHORT)(((sides & RX_READ) ? POLLRDNORM : 0) | ((sides & RX_WRITE) ? POLLWRNORM : 0));
    p.revents = 0;
    loop->syscalls++;
    if (WSAPoll(&p, 1, 0) < 0) return neg(WSAGetLastError());
    if (p.revents & POLLNVAL) return -EBADF;
    int ready = 0;
    if (p.revents & (POLLRDNORM | POLLHUP | POLLERR)) ready |= RX_READ;
    if (p.revents & (POLLWRNORM | POLLHUP | POLLERR)) ready |= RX_WRITE;
    ready &= sides;
    if (ready) return ready;
    if (sides & RX_WRITE) return -ENOTSUP;   /* no writability report on a port */
    NEW_REQ(RX_READ, OP_WATCH);
    int64_t c = issue(loop, st, r);
    if (c != IN_FLIGHT) {
        req_free(loop, r);
        /* done at once: data, end of stream, or an error a read would
         * report: readable.  Not connected (a listener): no way to wait. */
        if (c == -ENOTCONN || c == -EINVAL) return -ENOTSUP;
        return RX_READ;
    }
    st->rd = r;
    loop->pending_ops++;
    return RX_PENDING;
}

/* ---- completion and cancel ----------------------------------------------- */

static void finish(rx_loop *loop, iocp_fd *st, iocp_req *r, int64_t res)
{
    if (r->side == RX_READ) st->rd = NULL;
    else st->wr = NULL;
    loop->pending_ops--;
    if (r->kind == OP_WATCH) {
        /* The zero-byte recv of a stream socket failed (a reset): the next
         * recv reports it, as it would on Linux.  It may not hear of it
         * again: Wine reads a connection reset before the call as a clean
         * end of stream. */
        if (res < 0 && st->sock == 1 && st->type == SOCK_STREAM) st->rd_err = (int32_t)res;
        rx__push(loop, r->token, RX_EV_READY, RX_READ, 0);
    }
    else
        rx__push(loop, r->token, RX_EV_DONE, (int64_t)r->done, res);
    req_free(loop, r);
}

/* Cancel r's kernel call and wait until the kernel is done with it.
 * Returns 1 when it finished before the cancel took hold, else 0. */
static int stop_kernel(iocp_fd *st, iocp_req *r)
{
    CancelIoEx(handle_of(st), &r->ov);
    int64_t end = rx__win_mono_now() + 2000000000LL;
    for (int i = 0; !HasOverlappedIoCompleted(&r->ov); i++) {
        if (rx__win_mono_now() > end) return -1;   /* never: keep it, leaked */
        Sleep(i < 20 ? 0 : 1);
    }
    return r->ov.Internal == 0;   /* STATUS_SUCCESS */
}

/* Cancel the request on one side: report it (-ECANCELED, or its real result
 * when it completed first) and leave the request to its packet. */
static int cancel_side(rx_loop *loop, iocp_fd *st, iocp_req *r, int report)
{
    int done_first = stop_kernel(st, r);
    int cancelled = 1;
    int64_t res = -ECANCELED;
    if (done_first == 1) {
        res = advance(loop, st, r, outcome(st, r), 1);
        if (res != -ECANCELED) cancelled = 0;
    }
    if (r->side == RX_READ) st->rd = NULL;
    else st->wr = NULL;
    loop->pending_ops--;
    if (!report && r->kind == OP_ACCEPT && res >= 0)
        closesocket((SOCKET)res);   /* accepted as the loop closed: nobody to take it */
    if (report) {
        if (r->kind == OP_WATCH && res != -ECANCELED)
            rx__push(loop, r->token, RX_EV_READY, RX_READ, 0);
        else
            rx__push(loop, r->token, RX_EV_DONE, (int64_t)r->done, res);
    }
    /* the call was pending, so its packet is queued or will be: the
     * request stays allocated (and linked, for rx_loop_close) until then.
     * done_first < 0: the kernel did not let go within the bound; it
     * stays all the same and is freed if it ever completes. */
    r->owner = NULL;
    return cancelled;
}

static int io_cancel(rx_loop *loop, int fd, int sides)
{
    iocp_data *d = loop->bdata;
    if (fd < 0) return 0;
    iocp_fd *st = find(d, fd);
    if (!st) return 0;
    int n = 0;
    if ((sides & RX_READ) && st->rd) n += cancel_side(loop, st, st->rd, 1);
    if ((sides & RX_WRITE) && st->wr) n += cancel_side(loop, st, st->wr, 1);
    return n;
}

static int io_forget(rx_loop *loop, int fd)
{
    iocp_data *d = loop->bdata;
    if (fd < 0) return 0;
    iocp_fd *st = find(d, fd);
    if (!st) return 0;
    int n = io_cancel(loop, fd, RX_READ | RX_WRITE);
    remove_entry(d, st);
    free(st);
    loop->known_fds--;
    loop->registered_fds--;
    return n;
}

static int64_t io_pending_done(const rx_loop *loop, int fd, int side)
{
    const iocp_fd *st = fd < 0 ? NULL : find(loop->bdata, fd);
    if (!st) return -ENOENT;
    const iocp_req *r = side == RX_READ ? st->rd : st->wr;
    if (!r) return -ENOENT;
    return r->kind == OP_CONNECT ? 0 : (int64_t)r->done;
}

/* The kernel call in flight may have moved bytes since the last poll: the
 * cancel waits for it and advance() counts them into r->done.  The request
 * is not freed before its packet is dequeued (a later rx_poll). */
static int64_t io_withdraw(rx_loop *loop, int fd, int side)
{
    iocp_fd *st = fd < 0 ? NULL : find(loop->bdata, fd);
    if (!st) return -ENOENT;
    iocp_req *r = side == RX_READ ? st->rd : st->wr;
    if (!r) return -ENOENT;
    cancel_side(loop, st, r, 1);
    return r->kind == OP_CONNECT ? 0 : (int64_t)r->done;
}

static int io_take_error(rx_loop *loop, int fd)
{
    iocp_fd *st = fd < 0 ? NULL : find(loop->bdata, fd);
    if (!st) return 0;
    int e = st->rd_err;
    st->rd_err = 0;
    return e;
}

static int io_drained(rx_loop *loop, int fd, int sides)
{
    (void)loop, (void)fd, (void)sides;   /* no hints to clear: the kernel waits */
    return 0;
}

static const struct rx_ops iocp_ops = {
    io_recv, io_send, io_accept, io_connect, io_recvfrom, io_sendto, io_watch,
    io_cancel, io_pending_done, io_withdraw, io_forget, io_take_error, io_drained,
};

/* ---- the backend --------------------------------------------------------- */

static int wake(rx_loop *loop)
{
    iocp_data *d = loop->bdata;
    if (!PostQueuedCompletionStatus(d->port, 0, KEY_WAKE, NULL)) return neg(GetLastError());
    return 0;
}

static int io_init(rx_loop *loop)
{
    iocp_data *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    WSADATA wd;
    int rc = WSAStartup(MAKEWORD(2, 2), &wd);
    if (rc != 0) {
        free(d);
        return neg((DWORD)rc);
    }
    d->wsa = 1;
    d->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!d->port) {
        rc = neg(GetLastError());
        WSACleanup();
        free(d);
        return rc;
    }
    loop->bdata = d;
    loop->wake_fn = wake;
    loop->ops = &iocp_ops;
    return 0;
}

static void io_close(rx_loop *loop)
{
    iocp_data *d = loop->bdata;
    if (!d) return;
    /* the caller may free its buffers once the loop is closed: stop every
     * kernel call first */
    d->closing = 1;
    for (size_t i = 0; i < d->cap; i++) {
        iocp_fd *st = d->tab[i];
        if (!st) continue;
        if (st->rd) cancel_side(loop, st, st->rd, 0);
        if (st->wr) cancel_side(loop, st, st->wr, 0);
        free(st);
    }
    free(d->tab);
    for (iocp_req *r = d->live, *next; r; r = next) {
        next = r->next;
        if (HasOverlappedIoCompleted(&r->ov)) req_free(loop, r);
        /* else the kernel still holds it: leaked rather than freed under it */
    }
    CloseHandle(d->port);
    if (d->wsa) WSACleanup();
    free(d);
    loop->bdata = NULL;
}

static int io_update(rx_loop *loop, int fd, rx_fd *st, int want)
{
    (void)loop, (void)fd, (void)st, (void)want;
    return 0;   /* not called: the operations are the backend's own */
}

static void io_forget_fd(rx_loop *loop, int fd, rx_fd *st)
{
    (void)loop, (void)fd, (void)st;
}

static int io_wait(rx_loop *loop, int64_t timeout_ns)
{
    iocp_data *d = loop->bdata;
    DWORD ms;
    if (timeout_ns < 0)
        ms = INFINITE;
    else if (timeout_ns >= (int64_t)0x7ffffffe * 1000000)
        ms = 0x7ffffffe;
    else
        ms = (DWORD)((timeout_ns + 999999) / 1000000);
    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(d->port, d->entries, MAX_ENTRIES, &n, ms, FALSE)) {
        DWORD e = GetLastError();
        if (e == WAIT_TIMEOUT) return 0;
        return neg(e);
    }
    for (ULONG i = 0; i < n; i++) {
        OVERLAPPED_ENTRY *e = &d->entries[i];
        if (e->lpCompletionKey == KEY_WAKE) {
            rx__woken(loop);
            continue;
        }
        if (!e->lpOverlapped) continue;
        iocp_req *r = (iocp_req *)e->lpOverlapped;
        iocp_fd *st = r->owner;
        if (!st) {   /* an orphan's last packet: the kernel is done with it */
            req_free(loop, r);
            continue;
        }
        int64_t res = advance(loop, st, r, outcome(st, r), 0);
        if (res == IN_FLIGHT) continue;
        finish(loop, st, r, res);   /* a watch (or RX_LAZY recv): READY */
    }
    return (int)n;
}

static int io_fd(const rx_loop *loop)
{
    (void)loop;
    return -ENOTSUP;
}

const struct rx_backend rx__backend_iocp = {
    "iocp", io_init, io_close, io_update, io_forget_fd, io_wait, io_fd,
};

#endif /* _WIN32 */
