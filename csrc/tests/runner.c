/*
 * runner.c - runs the C tests: each test once per backend of rx_backends(),
 * plus, in a build with -DRX_KQUEUE_EMUL, once on "kqueue-emul" (the kqueue
 * backend over the test-only emulation in kqueue_emul.c: the loop finds it
 * by name, rx_backends() does not list it, as it is no part of the
 * product); each run in a forked child with alarm() as its time limit.  The
 * child checks that the test left no descriptor open.  The parent prints one line
 * per run and ends with "N passed, M failed"; the exit status is non-zero
 * if any run failed or none ran.
 *
 *   build/ctest [substring ...]   only runs whose "name[backend]" contains
 *                                 one of the substrings
 *   CTEST_TIMEOUT=seconds         time limit per run (default 10, times 6
 *                                 under valgrind)
 */
#include "tests.h"

/* On Windows the runner is runner_win.c. */
#ifndef _WIN32

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 512
#define SKIP_STATUS 77

typedef struct ct_test {
    const char *name;
    ct_test_fn fn;
    const char *file;
    int line;
} ct_test;

static ct_test registry[MAX_TESTS];
static int n_registered;
static int reason_fd = -1;        /* child: where SKIP writes its reason */

void ct_register(const char *name, ct_test_fn fn, const char *file, int line)
{
    if (n_registered == MAX_TESTS) {
        fprintf(stderr, "runner: too many tests (raise MAX_TESTS)\n");
        abort();
    }
    registry[n_registered++] = (ct_test){name, fn, file, line};
}

void ct_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1);
}

void ct_skip(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
    if (reason_fd >= 0 && write(reason_fd, buf, (size_t)n) < 0) {
        /* the parent then shows no reason */
    }
    _exit(SKIP_STATUS);
}

/* ---- descriptor leak check ----------------------------------------------- */

#define MAX_FDS_LISTED 4096

static int list_fds(int *out, int max)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0, self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd == self) continue;
        if (n < max) out[n++] = fd;
    }
    closedir(d);
    return n;
}

int ct_count_fds(void)
{
    static int tmp[MAX_FDS_LISTED];
    return list_fds(tmp, MAX_FDS_LISTED);
}

static int in_list(const int *l, int n, int fd)
{
    for (int i = 0; i < n; i++)
        if (l[i] == fd) return 1;
    return 0;
}

static void run_child(const ct_test *t, const char *backend, unsigned timeout)
{
    static int before[MAX_FDS_LISTED], after[MAX_FDS_LISTED];
    alarm(timeout);
    int nb = list_fds(before, MAX_FDS_LISTED);
    if (nb < 0) {
        fprintf(stderr, "    runner: cannot list /proc/self/fd: %s\n", strerror(errno));
        _exit(1);
    }
    t->fn(backend);
    int na = list_fds(after, MAX_FDS_LISTED);
    int leaked = 0;
    for (int i = 0; i < na; i++) {
        if (in_list(before, nb, after[i])) continue;
        char path[64], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%d", after[i]);
        ssize_t k = readlink(path, target, sizeof target - 1);
        target[k > 0 ? k : 0] = 0;
        fprintf(stderr, "    descriptor leaked by the test: %d -> %s\n", after[i], target);
        leaked++;
    }
    for (int i = 0; i < nb; i++) {
        if (in_list(after, na, before[i])) continue;
        fprintf(stderr, "    descriptor the test did not open was closed: %d\n", before[i]);
        leaked++;
    }
    if (leaked) _exit(1);
    exit(0);   /* exit, not _exit: LeakSanitizer and valgrind check at exit */
}

/* ---- parent ------------------------------------------------------------- */

static int cmp_test(const void *a, const void *b)
{
    const ct_test *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c) return c;
    return (x->line > y->line) - (x->line < y->line);
}

static int selected(const char *full, int argc, char **argv)
{
    if (argc <= 1) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(full, argv[i])) return 1;
    return 0;
}

static unsigned time_limit(void)
{
    const char *s = getenv("CTEST_TIMEOUT");
    if (s && atoi(s) > 0) return (unsigned)atoi(s);
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) return 60;   /* under valgrind */
    return 10;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    qsort(registry, (size_t)n_registered, sizeof registry[0], cmp_test);
    unsigned timeout = time_limit();

    char backends[256];
#ifdef RX_KQUEUE_EMUL
    snprintf(backends, sizeof backends, "%s,kqueue-emul", rx_backends());
#else
    snprintf(backends, sizeof backends, "%s", rx_backends());
#endif
    const char *names[16];
    int nb = 0;
    for (char *save = NULL, *tok = strtok_r(backends, ",", &save); tok && nb < 16;
         tok = strtok_r(NULL, ",", &save))
        names[nb++] = tok;

    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_registered; i++) {
        for (int b = 0; b < nb; b++) {
            char full[256];
            snprintf(full, sizeof full, "%s[%s]", registry[i].name, names[b]);
            if (!selected(full, argc, argv)) continue;

            int p[2];
            if (pipe2(p, O_CLOEXEC) < 0) {
                perror("runner: pipe2");
                return 2;
            }
            fflush(stdout);
            fflush(stderr);
            int64_t t0 = ct_mono();
            pid_t pid = fork();
            if (pid < 0) {
                perror("runner: fork");
                return 2;
            }
            if (pid == 0) {
                close(p[0]);
                reason_fd = p[1];
                run_child(&registry[i], names[b], timeout);
            }
            close(p[1]);
            char reason[512];
            ssize_t rn, got = 0;
            while ((rn = read(p[0], reason + got, sizeof reason - 1 - (size_t)got)) > 0) got += rn;
            reason[got > 0 ? got : 0] = 0;
            close(p[0]);
            int status;
            while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR) {
                    perror("runner: waitpid");
                    return 2;
                }
            }
            double secs = (double)(ct_mono() - t0) / 1e9;

            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                printf("ok    %s (%.2fs)\n", full, secs);
                passed++;
            } else if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP_STATUS) {
                printf("ok    %s (skipped: %s)\n", full, reason);
                passed++;
                skipped++;
            } else if (WIFEXITED(status)) {
                printf("FAIL  %s (exit status %d)\n", full, WEXITSTATUS(status));
                failed++;
            } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
                printf("FAIL  %s (timeout after %u s)\n", full, timeout);
                failed++;
            } else if (WIFSIGNALED(status)) {
                printf("FAIL  %s (signal %d, %s)\n", full, WTERMSIG(status),
                       strsignal(WTERMSIG(status)));
                failed++;
            } else {
                printf("FAIL  %s (status 0x%x)\n", full, status);
                failed++;
            }
        }
    }
    if (skipped) printf("(%d of the passed runs were skipped)\n", skipped);
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return (failed || passed == 0) ? 1 : 0;
}
#endif /* !_WIN32 */
