/*
 * helpers_win.c - the Windows versions of the test helpers that touch
 * descriptors (helpers.c has the POSIX ones and the portable rest): a
 * "socketpair" over loopback TCP, loopback listeners, fill/drain with
 * FIONBIO, WSAPoll, overlapped named pipes, and error names for the
 * Winsock errno numbers of compat_win.h.
 */
#ifdef _WIN32
#include "tests.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *ct_errname(int64_t v)
{
    static const struct { int e; const char *n; } names[] = {
        {EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {EINTR, "EINTR"}, {EIO, "EIO"},
        {EBADF, "EBADF"}, {EAGAIN, "EAGAIN"}, {ENOMEM, "ENOMEM"}, {EACCES, "EACCES"},
        {EFAULT, "EFAULT"}, {EBUSY, "EBUSY"}, {EINVAL, "EINVAL"}, {EMFILE, "EMFILE"},
        {ENOSPC, "ENOSPC"}, {EPIPE, "EPIPE"}, {ENOTSUP, "ENOTSUP"}, {ECANCELED, "ECANCELED"},
        {EWOULDBLOCK, "EWOULDBLOCK"}, {EINPROGRESS, "EINPROGRESS"}, {EALREADY, "EALREADY"},
        {ENOTSOCK, "ENOTSOCK"}, {EMSGSIZE, "EMSGSIZE"}, {EOPNOTSUPP, "EOPNOTSUPP"},
        {EAFNOSUPPORT, "EAFNOSUPPORT"}, {EADDRINUSE, "EADDRINUSE"},
        {EADDRNOTAVAIL, "EADDRNOTAVAIL"}, {ENETDOWN, "ENETDOWN"}, {ENETUNREACH, "ENETUNREACH"},
        {ECONNABORTED, "ECONNABORTED"}, {ECONNRESET, "ECONNRESET"}, {ENOBUFS, "ENOBUFS"},
        {EISCONN, "EISCONN"}, {ENOTCONN, "ENOTCONN"}, {ETIMEDOUT, "ETIMEDOUT"},
        {ECONNREFUSED, "ECONNREFUSED"}, {EHOSTUNREACH, "EHOSTUNREACH"},
    };
    static char buf[4][48];
    static int k;
    char *b = buf[k++ & 3];
    if (v == RX_PENDING) return "RX_PENDING";
    for (size_t i = 0; v < 0 && i < sizeof names / sizeof names[0]; i++) {
        if (-v == names[i].e) {
            snprintf(b, sizeof buf[0], "-%s", names[i].n);
            return b;
        }
    }
    snprintf(b, sizeof buf[0], "%lld", (long long)v);
    return b;
}

int64_t ct_mono(void)
{
    return rx__win_mono_now();
}

void ct_win_fail(const char *file, int line, const char *what)
{
    ct_fail(file, line, "%s failed: Winsock/Windows error %d / %lu", what, WSAGetLastError(),
            (unsigned long)GetLastError());
}

/* ---- C runtime pipes of the tests --------------------------------------- */

#define MAX_CRT 64
static int crt_fds[MAX_CRT];
static int n_crt;

static int is_crt(int fd)
{
    for (int i = 0; i < n_crt; i++)
        if (crt_fds[i] == fd) return 1;
    return 0;
}

int pipe2(int p[2], int flags)
{
    (void)flags;
    if (n_crt + 2 > MAX_CRT) {
        errno = EMFILE;
        return -1;
    }
    if (_pipe(p, 65536, _O_BINARY | _O_NOINHERIT) < 0) return -1;
    crt_fds[n_crt++] = p[0];
    crt_fds[n_crt++] = p[1];
    return 0;
}

static int is_socket(int fd)
{
    int type, len = sizeof type;
    return getsockopt((SOCKET)fd, SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0;
}

void ct_win_close_any(int fd)
{
    if (is_crt(fd)) {
        for (int i = 0; i < n_crt; i++)
            if (crt_fds[i] == fd) crt_fds[i] = crt_fds[--n_crt];
        if (_close(fd) < 0) ct_fail(__FILE__, __LINE__, "_close(%d): %s", fd, strerror(errno));
        return;
    }
    if (is_socket(fd)) {
        if (closesocket((SOCKET)fd) != 0) ct_win_fail(__FILE__, __LINE__, "closesocket");
        return;
    }
    if (!CloseHandle((HANDLE)(intptr_t)fd)) ct_win_fail(__FILE__, __LINE__, "CloseHandle");
}

void ct_close(int fd)
{
    ct_win_close_any(fd);
}

/* ---- sockets ------------------------------------------------------------- */

static socklen_t loopback(int family, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        return sizeof *a;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof *a;
}

static int new_sock(int family, int type)
{
    SOCKET s = WSASocketW(family, type, 0, NULL, 0, WSA_FLAG_OVERLAPPED);
    if (s == INVALID_SOCKET) return -1;
    SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    return (int)s;
}

static int bound(int family, int type, struct sockaddr_storage *addr, socklen_t *len)
{
    int fd = new_sock(family, type);
    if (fd < 0) {
        if (family == AF_INET6) return -1;
        ct_win_fail(__FILE__, __LINE__, "socket");
    }
    struct sockaddr_storage ss;
    socklen_t sl = loopback(family, &ss);
    if (bind((SOCKET)fd, (struct sockaddr *)&ss, sl) != 0) {
        if (family == AF_INET6) {
            closesocket((SOCKET)fd);
            return -1;   /* no ::1 here */
        }
        ct_win_fail(__FILE__, __LINE__, "bind");
    }
    *len = sizeof *addr;
    CHECK_WSA(getsockname((SOCKET)fd, (struct sockaddr *)addr, len));
    return fd;
}

int ct_listener(int family, int type, struct sockaddr_storage *addr, socklen_t *len)
{
    int fd = bound(family, type, addr, len);
    if (fd >= 0 && type == SOCK_STREAM) CHECK_WSA(listen((SOCKET)fd, 128));
    return fd;
}

int ct_refusing(int family, struct sockaddr_storage *addr, socklen_t *len)
{
    return bound(family, SOCK_STREAM, addr, len);
}

int ct_tcp_pair(int family, int sv[2])
{
    struct sockaddr_storage addr;
    socklen_t len;
    int l = ct_listener(family, SOCK_STREAM, &addr, &len);
    if (l < 0) return -1;
    int c = new_sock(family, SOCK_STREAM);
    if (c < 0) ct_win_fail(__FILE__, __LINE__, "socket");
    CHECK_WSA(connect((SOCKET)c, (struct sockaddr *)&addr, len));
    SOCKET s = accept((SOCKET)l, NULL, NULL);
    if (s == INVALID_SOCKET) ct_win_fail(__FILE__, __LINE__, "accept");
    SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    ct_close(l);
    sv[0] = c;
    sv[1] = (int)s;
    return 0;
}

void ct_win_socketpair(int sv[2])
{
    if (ct_tcp_pair(AF_INET, sv) < 0) ct_fail(__FILE__, __LINE__, "no IPv4 loopback");
}

void ct_socketpair(int sv[2])
{
    ct_win_socketpair(sv);
}

static void set_nbio(int fd, u_long on)
{
    CHECK_WSA(ioctlsocket((SOCKET)fd, FIONBIO, &on));
}

size_t ct_fill(int fd)
{
    static char junk[65536];
    size_t total = 0;
    set_nbio(fd, 1);
    for (;;) {
        int n = send((SOCKET)fd, junk, sizeof junk, 0);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n < 0 && WSAGetLastError() == WSAEWOULDBLOCK) {
            n = send((SOCKET)fd, junk, 1, 0);
            if (n == 1) {
                total++;
                continue;
            }
            set_nbio(fd, 0);
            return total;
        }
        ct_win_fail(__FILE__, __LINE__, "ct_fill: send");
    }
}

size_t ct_drain(int fd)
{
    static char junk[65536];
    size_t total = 0;
    set_nbio(fd, 1);
    for (;;) {
        int n = recv((SOCKET)fd, junk, sizeof junk, 0);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n == 0 || WSAGetLastError() == WSAEWOULDBLOCK) {
            set_nbio(fd, 0);
            return total;
        }
        ct_win_fail(__FILE__, __LINE__, "ct_drain: recv");
    }
}

/* one blocking transfer on a handle that may be overlapped */
static DWORD handle_io(int fd, void *buf, DWORD len, int wr)
{
    HANDLE h = (HANDLE)(intptr_t)fd;
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD n = 0;
    BOOL ok = wr ? WriteFile(h, buf, len, &n, &ov) : ReadFile(h, buf, len, &n, &ov);
    if (!ok && GetLastError() == ERROR_IO_PENDING) ok = GetOverlappedResult(h, &ov, &n, TRUE);
    DWORD e = GetLastError();
    CloseHandle(ov.hEvent);
    if (!ok && !wr && (e == ERROR_BROKEN_PIPE || e == ERROR_HANDLE_EOF)) return 0;
    if (!ok) ct_fail(__FILE__, __LINE__, "%s: Windows error %lu", wr ? "WriteFile" : "ReadFile",
                     (unsigned long)e);
    return n;
}

void ct_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    int crt = is_crt(fd), sock = !crt && is_socket(fd);
    while (len) {
        int chunk = len > 65536 ? 65536 : (int)len;
        int n;
        if (crt) n = _write(fd, p, (unsigned)chunk);
        else if (sock) n = send((SOCKET)fd, p, chunk, 0);
        else n = (int)handle_io(fd, (void *)p, (DWORD)chunk, 1);
        if (n <= 0) ct_fail(__FILE__, __LINE__, "ct_write_all: error %d", WSAGetLastError());
        p += n;
        len -= (size_t)n;
    }
}

void ct_read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    int crt = is_crt(fd), sock = !crt && is_socket(fd);
    while (len) {
        int chunk = len > 65536 ? 65536 : (int)len;
        int n;
        if (crt) n = _read(fd, p, (unsigned)chunk);
        else if (sock) n = recv((SOCKET)fd, p, chunk, 0);
        else n = (int)handle_io(fd, p, (DWORD)chunk, 0);
        if (n < 0) ct_fail(__FILE__, __LINE__, "ct_read_all: error %d", WSAGetLastError());
        if (n == 0) ct_fail(__FILE__, __LINE__, "ct_read_all: early end of stream");
        p += n;
        len -= (size_t)n;
    }
}

int ct_poll1(int fd, short events, int ms)
{
    WSAPOLLFD p;
    p.fd = (SOCKET)fd;
    p.events = (SHORT)(((events & POLLIN) ? POLLRDNORM : 0) | ((events & POLLOUT) ? POLLWRNORM : 0));
    p.revents = 0;
    if (WSAPoll(&p, 1, ms) < 0) ct_win_fail(__FILE__, __LINE__, "WSAPoll");
    int r = 0;
    if (p.revents & (POLLRDNORM | POLLHUP | POLLERR)) r |= POLLIN;
    if (p.revents & (POLLWRNORM | POLLERR)) r |= POLLOUT;
    if (p.revents & POLLHUP) r |= POLLHUP;
    if (p.revents & POLLERR) r |= POLLERR;
    return r;
}

/* ---- pipes --------------------------------------------------------------- */

void ct_win_pipe(int *rd, int *wr, int wr_overlapped)
{
    static LONG counter;
    wchar_t name[96];
    swprintf(name, sizeof name / sizeof name[0], L"\\\\.\\pipe\\pycos-ctest-%lu-%ld",
             (unsigned long)GetCurrentProcessId(), (long)InterlockedIncrement(&counter));
    HANDLE r = CreateNamedPipeW(name, PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED |
                                FILE_FLAG_FIRST_PIPE_INSTANCE,
                                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 65536, 65536,
                                0, NULL);
    if (r == INVALID_HANDLE_VALUE) ct_win_fail(__FILE__, __LINE__, "CreateNamedPipeW");
    HANDLE w = CreateFileW(name, GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                           wr_overlapped ? FILE_FLAG_OVERLAPPED : 0, NULL);
    if (w == INVALID_HANDLE_VALUE) ct_win_fail(__FILE__, __LINE__, "CreateFileW(pipe)");
    *rd = (int)(intptr_t)r;
    *wr = (int)(intptr_t)w;
}
#endif /* _WIN32 */
