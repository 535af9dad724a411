/*
 * compat_win.h - the few things the reactor needs to build on Windows
 * (mingw-w64 or MSVC), kept in one place: the Windows headers, errno
 * numbers for socket errors, a monotonic clock and the translation of
 * Windows error codes into the negative errno values reactor.h promises.
 *
 * Errno numbers.  The Windows C runtime's <errno.h> gives ECONNRESET & co.
 * values (108, ...) that nothing else on Windows uses; CPython's errno
 * module on Windows replaces them by the Winsock numbers (ECONNRESET is
 * WSAECONNRESET, 10054), and OSError picks ConnectionResetError from those.
 * The reactor follows CPython, so -result is an errno the Python side
 * understands as is.  Numbers CPython keeps from the C runtime (EINVAL,
 * EBADF, ENOMEM, EPIPE, ECANCELED, EAGAIN, ENOTSUP, ...) stay as they are.
 *
 * Only included on Windows (internal.h includes it under _WIN32).
 */
#ifndef PYCOS_COMPAT_WIN_H
#define PYCOS_COMPAT_WIN_H

#ifdef _WIN32

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#if !defined(_WIN32_WINNT) || _WIN32_WINNT < 0x0600
#undef _WIN32_WINNT
#define _WIN32_WINNT 0x0600   /* Vista: CancelIoEx, GetQueuedCompletionStatusEx */
#endif

#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>

#include <errno.h>
#include <stdint.h>

/* Socket errno names: the Winsock numbers, as in CPython's errno module. */
#undef EWOULDBLOCK
#define EWOULDBLOCK WSAEWOULDBLOCK
#undef EINPROGRESS
#define EINPROGRESS WSAEINPROGRESS
#undef EALREADY
#define EALREADY WSAEALREADY
#undef ENOTSOCK
#define ENOTSOCK WSAENOTSOCK
#undef EDESTADDRREQ
#define EDESTADDRREQ WSAEDESTADDRREQ
#undef EMSGSIZE
#define EMSGSIZE WSAEMSGSIZE
#undef EPROTOTYPE
#define EPROTOTYPE WSAEPROTOTYPE
#undef ENOPROTOOPT
#define ENOPROTOOPT WSAENOPROTOOPT
#undef EPROTONOSUPPORT
#define EPROTONOSUPPORT WSAEPROTONOSUPPORT
#undef EOPNOTSUPP
#define EOPNOTSUPP WSAEOPNOTSUPP
#undef EAFNOSUPPORT
#define EAFNOSUPPORT WSAEAFNOSUPPORT
#undef EADDRINUSE
#define EADDRINUSE WSAEADDRINUSE
#undef EADDRNOTAVAIL
#define EADDRNOTAVAIL WSAEADDRNOTAVAIL
#undef ENETDOWN
#define ENETDOWN WSAENETDOWN
#undef ENETUNREACH
#define ENETUNREACH WSAENETUNREACH
#undef ENETRESET
#define ENETRESET WSAENETRESET
#undef ECONNABORTED
#define ECONNABORTED WSAECONNABORTED
#undef ECONNRESET
#define ECONNRESET WSAECONNRESET
#undef ENOBUFS
#define ENOBUFS WSAENOBUFS
#undef EISCONN
#define EISCONN WSAEISCONN
#undef ENOTCONN
#define ENOTCONN WSAENOTCONN
#undef ETIMEDOUT
#define ETIMEDOUT WSAETIMEDOUT
#undef ECONNREFUSED
#define ECONNREFUSED WSAECONNREFUSED
#undef ELOOP
#define ELOOP WSAELOOP
#undef EHOSTUNREACH
#define EHOSTUNREACH WSAEHOSTUNREACH

/* Monotonic nanoseconds from the performance counter. */
static inline int64_t rx__win_mono_now(void)
{
    static LONGLONG freq;   /* fixed at boot; racing first calls store the same value */
    LARGE_INTEGER c;
    if (!freq) {
        LARGE_INTEGER f;
        QueryPerformanceFrequency(&f);
        freq = f.QuadPart;
    }
    QueryPerformanceCounter(&c);
    LONGLONG s = c.QuadPart / freq, r = c.QuadPart % freq;
    return (int64_t)s * 1000000000 + (int64_t)(r * 1000000000 / freq);
}

/* A Windows or Winsock error code as a positive errno. */
static inline int rx__win_errno(DWORD e)
{
    switch (e) {
    case 0: return 0;
    case ERROR_OPERATION_ABORTED: return ECANCELED;   /* = WSA_OPERATION_ABORTED */
    case ERROR_NETNAME_DELETED:
    case WSAECONNRESET: return ECONNRESET;
    case ERROR_CONNECTION_REFUSED:
    case WSAECONNREFUSED: return ECONNREFUSED;
    case ERROR_CONNECTION_ABORTED:
    case WSAECONNABORTED: return ECONNABORTED;
    case ERROR_NETWORK_UNREACHABLE:
    case WSAENETUNREACH: return ENETUNREACH;
    case ERROR_HOST_UNREACHABLE:
    case WSAEHOSTUNREACH: return EHOSTUNREACH;
    case ERROR_SEM_TIMEOUT:
    case WSAETIMEDOUT: return ETIMEDOUT;
    case WSAENOTCONN: return ENOTCONN;
    case WSAESHUTDOWN:
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
    case ERROR_PIPE_NOT_CONNECTED: return EPIPE;
    case WSAENOTSOCK: return ENOTSOCK;
    case WSAEMSGSIZE: return EMSGSIZE;
    case WSAEADDRINUSE: return EADDRINUSE;
    case WSAEADDRNOTAVAIL: return EADDRNOTAVAIL;
    case WSAEAFNOSUPPORT: return EAFNOSUPPORT;
    case WSAEISCONN: return EISCONN;
    case WSAENETDOWN: return ENETDOWN;
    case WSAENETRESET: return ENETRESET;
    case WSAENOBUFS: return ENOBUFS;
    case WSAEOPNOTSUPP: return EOPNOTSUPP;
    case WSAEWOULDBLOCK: return EAGAIN;
    case WSAEINTR: return EINTR;
    case WSAEACCES:
    case ERROR_ACCESS_DENIED: return EACCES;
    case WSAEFAULT:
    case ERROR_NOACCESS: return EFAULT;
    case WSAEINVAL:
    case ERROR_INVALID_PARAMETER: return EINVAL;
    case WSAEMFILE:
    case ERROR_TOO_MANY_OPEN_FILES: return EMFILE;
    case ERROR_INVALID_HANDLE: return EBADF;   /* = WSA_INVALID_HANDLE */
    case WSAEBADF: return EBADF;
    case ERROR_NOT_ENOUGH_MEMORY:   /* = WSA_NOT_ENOUGH_MEMORY */
    case ERROR_OUTOFMEMORY: return ENOMEM;
    case ERROR_NOT_SUPPORTED:
    case ERROR_INVALID_FUNCTION: return ENOTSUP;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL: return ENOSPC;
    default: return EIO;
    }
}

#endif /* _WIN32 */
#endif /* PYCOS_COMPAT_WIN_H */
