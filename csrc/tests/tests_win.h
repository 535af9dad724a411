/*
 * tests_win.h - what the C tests need on Windows (mingw-w64, run under
 * Wine or on Windows): the Winsock headers through the reactor's own
 * compat_win.h (so the tests see the same errno numbers as the reactor)
 * and a few POSIX names the tests use, mapped onto the C runtime.
 *
 * A descriptor in the tests is what the reactor takes: a SOCKET or HANDLE
 * value as int.  The C runtime's _pipe() descriptors are used only between
 * test threads (never given to the reactor).  Included by tests.h under
 * _WIN32.
 */
#ifndef PYCOS_CTESTS_WIN_H
#define PYCOS_CTESTS_WIN_H

#ifdef _WIN32
#include "compat_win.h"

#include <fcntl.h>
#include <io.h>
#include <stdlib.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef SOCK_CLOEXEC
#define SOCK_CLOEXEC 0
#endif
#define SHUT_RD SD_RECEIVE
#define SHUT_WR SD_SEND
#define SHUT_RDWR SD_BOTH

/* A C runtime pipe, not inherited by child processes (tests hand it to
 * their own threads only); ct_close, ct_write_all and ct_read_all know its
 * descriptors apart from sockets and handles. */
int pipe2(int p[2], int flags);

static inline int setenv(const char *name, const char *value, int overwrite)
{
    (void)overwrite;
    return _putenv_s(name, value) ? -1 : 0;
}

static inline int unsetenv(const char *name)
{
    return _putenv_s(name, "") ? -1 : 0;
}

/* A stream socket pair over IPv4 loopback (Windows has no socketpair);
 * both ends overlapped-capable, blocking, not inherited. */
void ct_win_socketpair(int sv[2]);
/* A Winsock failure of `what`: fail the test with the error's number. */
__attribute__((noreturn)) void ct_win_fail(const char *file, int line, const char *what);
#define CHECK_WSA(call)                                                          \
    do {                                                                         \
        if ((call) != 0) ct_win_fail(__FILE__, __LINE__, #call);                 \
    } while (0)
/* Close a socket, or a C runtime descriptor (test pipes). */
void ct_win_close_any(int fd);
/* An overlapped named pipe pair: rd is read-only, wr write-only, both
 * HANDLEs as int; the read end is overlapped (as asyncfile.pipe() makes
 * it on Windows), the write end when wr_overlapped is set. */
void ct_win_pipe(int *rd, int *wr, int wr_overlapped);
#endif /* _WIN32 */
#endif
