/*
 * backend_poll.c - the portable backend, on poll(2)/ppoll.
 *
 * Level-triggered: a descriptor is in the pollfd array only while it has an
 * operation waiting, with exactly the events that operation needs, so an
 * idle descriptor costs nothing per wait.  Slot 0 is the wakeup descriptor.
 * Each descriptor's place in the array is kept in its state (bidx) so
 * adding, changing and removing are O(1) (removal moves the last entry into
 * the hole).  A wait scans the array: O(descriptors waiting).  There is no
 * single pollable descriptor for the whole loop, so rx_loop_fd is -ENOTSUP.
 * Not on Windows (the IOCP backend there): this file compiles to nothing.
 */
#include "internal.h"

#ifndef _WIN32

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

typedef struct poll_data {
    struct pollfd *pfds;
    int n, cap;
} poll_data;

static int pl_init(rx_loop *loop)
{
    poll_data *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    d->cap = 64;
    d->pfds = malloc((size_t)d->cap * sizeof *d->pfds);
    if (!d->pfds) {
        free(d);
        return -ENOMEM;
    }
    d->pfds[0].fd = loop->wake_rfd;
    d->pfds[0].events = POLLIN;
    d->pfds[0].revents = 0;
    d->n = 1;
    loop->bdata = d;
    return 0;
}

static void pl_close(rx_loop *loop)
{
    poll_data *d = loop->bdata;
    if (!d) return;
    free(d->pfds);
    free(d);
    loop->bdata = NULL;
}

static void pl_remove(rx_loop *loop, rx_fd *st)
{
    poll_data *d = loop->bdata;
    int i = st->bidx;
    if (i <= 0 || i >= d->n) return;
    d->n--;
    if (i != d->n) {
        d->pfds[i] = d->pfds[d->n];
        loop->fds[d->pfds[i].fd].bidx = i;
    }
    st->bidx = -1;
    st->registered = 0;
}

static int pl_update(rx_loop *loop, int fd, rx_fd *st, int want)
{
    poll_data *d = loop->bdata;
    short events = (short)(((want & RX_READ) ? POLLIN : 0) | ((want & RX_WRITE) ? POLLOUT : 0));
    if (!want) {
        pl_remove(loop, st);
        return 0;
    }
    if (st->bidx <= 0) {
        if (d->n == d->cap) {
            int cap = d->cap * 2;
            struct pollfd *p = realloc(d->pfds, (size_t)cap * sizeof *p);
            if (!p) return -ENOMEM;
            d->pfds = p;
            d->cap = cap;
        }
        st->bidx = d->n++;
        d->pfds[st->bidx].fd = fd;
        st->registered = 1;
    }
    d->pfds[st->bidx].events = events;
    d->pfds[st->bidx].revents = 0;
    return 0;
}

static void pl_forget(rx_loop *loop, int fd, rx_fd *st)
{
    (void)fd;
    pl_remove(loop, st);
}

static int pl_wait(rx_loop *loop, int64_t timeout_ns)
{
    poll_data *d = loop->bdata;
    int n;
    if (timeout_ns < 0) {
        n = poll(d->pfds, (nfds_t)d->n, -1);
    } else {
#ifdef __APPLE__
        /* no ppoll: milliseconds, rounded up (a timer is never early) */
        int64_t ms = (timeout_ns + 999999) / 1000000;
        n = poll(d->pfds, (nfds_t)d->n, ms > INT_MAX ? INT_MAX : (int)ms);
#else
        struct timespec ts;
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        n = ppoll(d->pfds, (nfds_t)d->n, &ts, NULL);
#endif
    }
    if (n < 0) return -errno;
    if (n == 0) return 0;
    int seen = 0;
    /* Walk backwards: handling a descriptor may remove it, which moves the
     * last entry into its place - an entry already visited. */
    for (int i = d->n - 1; i >= 0 && seen < n; i--) {
        if (i >= d->n) continue;
        short re = d->pfds[i].revents;
        if (!re) continue;
        seen++;
        d->pfds[i].revents = 0;
        int fd = d->pfds[i].fd;
        if (i == 0) {
            rx__woken(loop);
            continue;
        }
        int sides = 0;
        if (re & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) sides |= RX_READ;
        if (re & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) sides |= RX_WRITE;
        if (re & (POLLHUP | POLLERR | POLLNVAL)) sides |= RX__HUP;
        rx__ready(loop, fd, sides);
    }
    return n;
}

const struct rx_backend rx__backend_poll = {
    "poll", pl_init, pl_close, pl_update, pl_forget, pl_wait, NULL,
};

#endif /* !_WIN32 */
