/*
 * timers.c - the loop's timers: a binary min-heap ordered by (deadline,
 * sequence number), so timers with equal deadlines fire in the order they
 * were started, plus a slot table that maps a timer id to its place in the
 * heap, so cancelling is O(log n) and a stale id (fired, cancelled, or from
 * a reused slot) is recognised by its generation and refused.
 *
 * A timer id is (generation << 32) | (slot + 1): always positive, never 0.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#define NO_SLOT UINT32_MAX

int rx__timers_init(rx_loop *loop)
{
    loop->heap = NULL;
    loop->heap_n = loop->heap_cap = 0;
    loop->slots = NULL;
    loop->slots_cap = 0;
    loop->free_slot = NO_SLOT;
    loop->timer_seq = 0;
    return 0;
}

void rx__timers_free(rx_loop *loop)
{
    free(loop->heap);
    free(loop->slots);
    loop->heap = NULL;
    loop->slots = NULL;
    loop->heap_n = loop->heap_cap = 0;
    loop->slots_cap = 0;
}

static int before(const rx_timer *a, const rx_timer *b)
{
    if (a->deadline != b->deadline) return a->deadline < b->deadline;
    return a->seq < b->seq;
}

static void place(rx_loop *loop, size_t i, rx_timer t)
{
    loop->heap[i] = t;
    loop->slots[t.slot].heap_idx = (int32_t)i;
}

static void sift_up(rx_loop *loop, size_t i)
{
    rx_timer t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&t, &loop->heap[parent])) break;
        place(loop, i, loop->heap[parent]);
        i = parent;
    }
    place(loop, i, t);
}

static void sift_down(rx_loop *loop, size_t i)
{
    rx_timer t = loop->heap[i];
    size_t n = loop->heap_n;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && before(&loop->heap[child + 1], &loop->heap[child])) child++;
        if (!before(&loop->heap[child], &t)) break;
        place(loop, i, loop->heap[child]);
        i = child;
    }
    place(loop, i, t);
}

static int grow_slots(rx_loop *loop)
{
    uint32_t cap = loop->slots_cap ? loop->slots_cap * 2 : 64;
    if (cap > (uint32_t)INT32_MAX) return -ENOMEM;
    rx_timer_slot *s = realloc(loop->slots, (size_t)cap * sizeof *s);
    if (!s) return -ENOMEM;
    for (uint32_t i = loop->slots_cap; i < cap; i++) {
        s[i].gen = 1;
        s[i].heap_idx = -1;
        s[i].next_free = (i + 1 < cap) ? i + 1 : loop->free_slot;
    }
    loop->free_slot = loop->slots_cap;
    loop->slots = s;
    loop->slots_cap = cap;
    return 0;
}

int64_t rx_timer_start(rx_loop *loop, int64_t deadline_ns, int64_t token)
{
    if (loop->free_slot == NO_SLOT) {
        int rc = grow_slots(loop);
        if (rc < 0) return rc;
    }
    if (loop->heap_n == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        rx_timer *h = realloc(loop->heap, cap * sizeof *h);
        if (!h) return -ENOMEM;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    uint32_t slot = loop->free_slot;
    loop->free_slot = loop->slots[slot].next_free;
    rx_timer t = {deadline_ns, loop->timer_seq++, token, slot};
    loop->heap_n++;
    place(loop, loop->heap_n - 1, t);
    sift_up(loop, loop->heap_n - 1);
    return ((int64_t)loop->slots[slot].gen << 32) | (int64_t)(slot + 1);
}

int64_t rx_timer_after(rx_loop *loop, double delay_s, int64_t token)
{
    if (isnan(delay_s)) return -EINVAL;
    int64_t now = rx_now(loop);
    int64_t deadline;
    if (delay_s <= 0) {
        deadline = now;
    } else if (delay_s >= 9.2e9) {      /* beyond int64 nanoseconds */
        deadline = RX_NEVER;
    } else {
        /* round up so a timer never fires before the delay has passed */
        double ns = ceil(delay_s * 1e9);
        deadline = rx__sat_add(now, (int64_t)ns);
    }
    return rx_timer_start(loop, deadline, token);
}

static void release_slot(rx_loop *loop, uint32_t slot)
{
    rx_timer_slot *s = &loop->slots[slot];
    s->heap_idx = -1;
    s->gen = (s->gen >= 0x7fffffffu) ? 1 : s->gen + 1;
    s->next_free = loop->free_slot;
    loop->free_slot = slot;
}

static void remove_at(rx_loop *loop, size_t i)
{
    uint32_t slot = loop->heap[i].slot;
    loop->heap_n--;
    if (i != loop->heap_n) {
        place(loop, i, loop->heap[loop->heap_n]);
        if (i > 0 && before(&loop->heap[i], &loop->heap[(i - 1) / 2]))
            sift_up(loop, i);
        else
            sift_down(loop, i);
    }
    release_slot(loop, slot);
}

int rx_timer_cancel(rx_loop *loop, int64_t timer_id)
{
    if (timer_id <= 0) return -ENOENT;
    uint32_t slot = (uint32_t)(timer_id & 0xffffffff) - 1;
    uint32_t gen = (uint32_t)(timer_id >> 32);
    if (slot >= loop->slots_cap) return -ENOENT;
    rx_timer_slot *s = &loop->slots[slot];
    if (s->gen != gen || s->heap_idx < 0) return -ENOENT;
    remove_at(loop, (size_t)s->heap_idx);
    return 0;
}

int64_t rx_next_deadline(const rx_loop *loop)
{
    return loop->heap_n ? loop->heap[0].deadline : RX_NEVER;
}

void rx__timers_expire(rx_loop *loop, int64_t now)
{
    while (loop->heap_n && loop->heap[0].deadline <= now) {
        /* RX_NEVER timers never fire, even on a clock set to the far end */
        if (loop->heap[0].deadline == RX_NEVER) break;
        int64_t token = loop->heap[0].token;
        if (rx__push(loop, token, RX_EV_TIMER, 0, 0) < 0) break; /* retried next poll */
        remove_at(loop, 0);
    }
}
