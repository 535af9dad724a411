/*
 * backend_epoll.c - the Linux backend.
 *
 * Descriptors are registered edge-triggered for both directions the first
 * time an operation has to wait, and stay registered until rx_forget: the
 * loop core keeps "may be ready" hints, so an edge is never lost and no
 * epoll_ctl is needed to re-arm after each operation.  Waits with a
 * timeout use epoll_pwait2 (nanoseconds) where the kernel has it, else
 * epoll_wait with the timeout rounded up to whole milliseconds, so a timer
 * is never reported before its deadline.
 */
#ifdef __linux__
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256

typedef struct epoll_data_s {
    int epfd;
    int no_pwait2;
    struct epoll_event events[MAX_EVENTS];
} epoll_data_s;

static int ep_init(rx_loop *loop)
{
    epoll_data_s *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (d->epfd < 0) {
        int rc = -errno;
        free(d);
        return rc;
    }
    struct epoll_event ev = {0};
    ev.events = EPOLLIN;
    ev.data.fd = loop->wake_rfd;
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, loop->wake_rfd, &ev) < 0) {
        int rc = -errno;
        close(d->epfd);
        free(d);
        return rc;
    }
    loop->bdata = d;
    return 0;
}

static void ep_close(rx_loop *loop)
{
    epoll_data_s *d = loop->bdata;
    if (!d) return;
    close(d->epfd);
    free(d);
    loop->bdata = NULL;
}

static int ep_update(rx_loop *loop, int fd, rx_fd *st, int want)
{
    if (!want || st->registered) return 0;
    epoll_data_s *d = loop->bdata;
    struct epoll_event ev = {0};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    loop->syscalls++;
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        if (errno != EEXIST) return -errno;
        /* registered through a duplicate we did not see: take it over */
        if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) return -errno;
    }
    st->registered = 1;
    return 0;
}

static void ep_forget(rx_loop *loop, int fd, rx_fd *st)
{
    epoll_data_s *d = loop->bdata;
    struct epoll_event ev = {0};
    loop->syscalls++;
    /* EBADF/ENOENT: already closed, and the kernel dropped it by itself */
    (void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, &ev);
    st->registered = 0;
}

static int ep_wait(rx_loop *loop, int64_t timeout_ns)
{
    epoll_data_s *d = loop->bdata;
    int n = -1;
#ifdef SYS_epoll_pwait2
    if (timeout_ns > 0 && !d->no_pwait2) {
        struct timespec ts;
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        n = (int)syscall(SYS_epoll_pwait2, d->epfd, d->events, MAX_EVENTS, &ts, NULL, 0);
        if (n < 0 && errno == ENOSYS) d->no_pwait2 = 1;
    }
    if (n < 0 && (timeout_ns <= 0 || d->no_pwait2))
#endif
    {
        int ms;
        if (timeout_ns < 0)
            ms = -1;
        else if (timeout_ns > (int64_t)INT32_MAX * 1000000)
            ms = INT32_MAX;
        else
            ms = (int)((timeout_ns + 999999) / 1000000);
        n = epoll_wait(d->epfd, d->events, MAX_EVENTS, ms);
    }
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) {
        int fd = d->events[i].data.fd;
        uint32_t e = d->events[i].events;
        if (fd == loop->wake_rfd) {
            rx__woken(loop);
            continue;
        }
        int sides = 0;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) sides |= RX_READ;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) sides |= RX_WRITE;
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) sides |= RX__HUP;
        rx__ready(loop, fd, sides);
    }
    return n;
}

static int ep_fd(const rx_loop *loop)
{
    const epoll_data_s *d = loop->bdata;
    return d->epfd;
}

const struct rx_backend rx__backend_epoll = {
    "epoll", ep_init, ep_close, ep_update, ep_forget, ep_wait, ep_fd,
};
#endif /* __linux__ */
