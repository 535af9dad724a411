/*
 * runner_win.c - the C test runner on Windows (and under Wine), the
 * counterpart of runner.c, which needs fork() and alarm().  Each run is a
 * child process: the runner starts its own executable again with
 * "--one <index> <backend>" and waits for it with a time limit
 * (TerminateProcess when it is over).  The child lists the process's open
 * handles before and after the test (after a warm-up that loads Winsock's
 * providers), so a test that leaks a socket, pipe or port fails, as the
 * descriptor check of runner.c does.  Output and exit status as runner.c:
 * one line per run, then "N passed, M failed".
 *
 *   ctest.exe [substring ...]   only runs whose "name[backend]" contains one
 *   CTEST_TIMEOUT=seconds       time limit per run (default 10; 30 under Wine)
 */
#ifdef _WIN32
#include "tests.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* the child's stdout is a pipe to the runner: the reason goes there */
void ct_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
    _exit(SKIP_STATUS);
}

/* The open handles of this process, by probing the handle values up to
 * MAX_PROBED (GetProcessHandleCount says 0 under Wine; Windows and Wine
 * hand out the lowest free values, so a test's handles are small numbers).
 * Returns how many, their values in out. */
#define MAX_PROBED 0x1000
#define MAX_LISTED (MAX_PROBED / 4)

static int list_handles(uintptr_t *out, int max)
{
    int n = 0;
    DWORD flags;
    for (uintptr_t h = 4; h < MAX_PROBED; h += 4)
        if (GetHandleInformation((HANDLE)h, &flags) && n < max) out[n++] = h;
    return n;
}

int ct_count_fds(void)
{
    static uintptr_t tmp[MAX_LISTED];
    return list_handles(tmp, MAX_LISTED);
}

/* What kind of object handle h is ("Event", "File", "Semaphore"...), for
 * the leak report: NtQueryObject's ObjectTypeInformation (ntdll, looked up
 * at run time). */
typedef LONG(NTAPI *query_object_fn)(HANDLE, int, void *, ULONG, ULONG *);

static void handle_kind(uintptr_t h, char *out, size_t size)
{
    static query_object_fn query;
    snprintf(out, size, "?");
    if (!query) {
        HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
        if (!ntdll) return;
        query = (query_object_fn)(void (*)(void))GetProcAddress(ntdll, "NtQueryObject");
        if (!query) return;
    }
    /* OBJECT_TYPE_INFORMATION starts with the type's UNICODE_STRING name */
    union {
        struct {
            USHORT len, max;
            WCHAR *buf;
        } name;
        char raw[1024];
    } info;
    ULONG got = 0;
    if (query((HANDLE)h, 2 /* ObjectTypeInformation */, &info, sizeof info, &got) != 0) return;
    size_t n = info.name.len / sizeof(WCHAR), i;
    for (i = 0; i < n && i + 1 < size; i++)
        out[i] = info.name.buf[i] < 128 ? (char)info.name.buf[i] : '?';
    out[i] = 0;
}

static int in_list(const uintptr_t *l, int n, uintptr_t h)
{
    for (int i = 0; i < n; i++)
        if (l[i] == h) return 1;
    return 0;
}

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

static void *idle_thread(void *arg)
{
    return arg;
}

/* Load what the first socket, loop, pipe and thread load (Winsock
 * providers, the completion machinery, winpthreads' own events), so the
 * list before a test does not miss handles that stay for the process's
 * life. */
static void warm_up(const char *backend)
{
    pthread_t th;
    if (pthread_create(&th, NULL, idle_thread, NULL) == 0) pthread_join(th, NULL);
    rx_loop *loop = rx_loop_new(backend, NULL);
    int sv[2], p[2];
    ct_win_socketpair(sv);
    char c = 'x', d;
    if (loop) {
        CHECK_EQ(rx_send(loop, sv[0], &c, 1, 0, 1), 1);
        CHECK_EQ(rx_recv(loop, sv[1], &d, 1, 0, 2), 1);
        CHECK_EQ(rx_forget(loop, sv[0]), 0);
        CHECK_EQ(rx_forget(loop, sv[1]), 0);
        rx_loop_close(loop);
    }
    ct_close(sv[0]);
    ct_close(sv[1]);
    ct_win_pipe(&p[0], &p[1], 1);
    ct_close(p[0]);
    ct_close(p[1]);
}

static int on_wine(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    return ntdll && GetProcAddress(ntdll, "wine_get_version");
}

/* Wine's own: one Event handle that Wine's ntdll creates, at most once per
 * process, in a rare race between a thread blocked in
 * GetQueuedCompletionStatusEx and another posting to the port (about one
 * process in ten for wakeup_from_thread's 300 rounds).  Reproduced without
 * pycos's code: a thread that PostQueuedCompletionStatus()es while the main
 * thread waits, nothing else (see docs/reactor.md); the reactor itself
 * never creates an Event.  So under Wine one new Event is not counted as a
 * leak -- any other handle, or a second Event, still is. */
static int wine_event(uintptr_t h, int *allowed)
{
    char kind[64];
    handle_kind(h, kind, sizeof kind);
    if (*allowed > 0 && strcmp(kind, "Event") == 0 && on_wine()) {
        (*allowed)--;
        return 1;
    }
    return 0;
}

static int run_child(int index, const char *backend)
{
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    static uintptr_t before[MAX_LISTED], after[MAX_LISTED];
    warm_up(backend);
    DWORD total0 = 0, total1 = 0;
    GetProcessHandleCount(GetCurrentProcess(), &total0);
    int nb = list_handles(before, MAX_LISTED);
    registry[index].fn(backend);
    int na = list_handles(after, MAX_LISTED);
    GetProcessHandleCount(GetCurrentProcess(), &total1);
    int leaked = 0, wine_events = 1;
    for (int i = 0; i < na; i++) {
        if (in_list(before, nb, after[i])) continue;
        if (wine_event(after[i], &wine_events)) continue;
        char kind[64];
        handle_kind(after[i], kind, sizeof kind);
        fprintf(stderr, "    handle leaked by the test: 0x%llx (%s)\n",
                (unsigned long long)after[i], kind);
        leaked++;
    }
    for (int i = 0; i < nb; i++) {
        if (in_list(after, na, before[i])) continue;
        fprintf(stderr, "    handle the test did not open was closed: 0x%llx\n",
                (unsigned long long)before[i]);
        leaked++;
    }
    /* Windows: beyond the probed values */
    if (!leaked && total1 > total0 + (wine_events == 0)) {
        fprintf(stderr, "    the test left %lu handle(s) open\n", (unsigned long)(total1 - total0));
        leaked++;
    }
    return leaked ? 1 : 0;
}

static unsigned time_limit(void)
{
    const char *s = getenv("CTEST_TIMEOUT");
    if (s && atoi(s) > 0) return (unsigned)atoi(s);
    return on_wine() ? 30 : 10;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    WSADATA wd;
    if (WSAStartup(MAKEWORD(2, 2), &wd) != 0) {
        fprintf(stderr, "runner: WSAStartup failed\n");
        return 2;
    }
    qsort(registry, (size_t)n_registered, sizeof registry[0], cmp_test);
    if (argc == 4 && strcmp(argv[1], "--one") == 0) {
        int i = atoi(argv[2]);
        if (i < 0 || i >= n_registered) return 2;
        return run_child(i, argv[3]);
    }
    unsigned timeout = time_limit();
    wchar_t exe[MAX_PATH];
    if (!GetModuleFileNameW(NULL, exe, MAX_PATH)) {
        fprintf(stderr, "runner: GetModuleFileNameW failed\n");
        return 2;
    }

    char backends[256];
    snprintf(backends, sizeof backends, "%s", rx_backends());
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

            SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
            HANDLE rd, wr;
            if (!CreatePipe(&rd, &wr, &sa, 65536)) {
                fprintf(stderr, "runner: CreatePipe failed\n");
                return 2;
            }
            SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
            wchar_t cmd[MAX_PATH + 64];
            swprintf(cmd, sizeof cmd / sizeof cmd[0], L"\"%ls\" --one %d %hs", exe, i, names[b]);
            STARTUPINFOW si;
            memset(&si, 0, sizeof si);
            si.cb = sizeof si;
            si.dwFlags = STARTF_USESTDHANDLES;
            si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
            si.hStdOutput = wr;
            si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
            PROCESS_INFORMATION pi;
            int64_t t0 = ct_mono();
            if (!CreateProcessW(exe, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
                fprintf(stderr, "runner: CreateProcessW failed: %lu\n",
                        (unsigned long)GetLastError());
                return 2;
            }
            CloseHandle(wr);
            DWORD w = WaitForSingleObject(pi.hProcess, timeout * 1000);
            int timed_out = w != WAIT_OBJECT_0;
            if (timed_out) {
                TerminateProcess(pi.hProcess, 124);
                WaitForSingleObject(pi.hProcess, INFINITE);
            }
            DWORD status = 1;
            GetExitCodeProcess(pi.hProcess, &status);
            CloseHandle(pi.hProcess);
            CloseHandle(pi.hThread);
            char reason[512];
            DWORD got = 0, n;
            while (got < sizeof reason - 1 &&
                   ReadFile(rd, reason + got, (DWORD)(sizeof reason - 1 - got), &n, NULL) && n)
                got += n;
            reason[got] = 0;
            CloseHandle(rd);
            double secs = (double)(ct_mono() - t0) / 1e9;

            if (timed_out) {
                printf("FAIL  %s (timeout after %u s)\n", full, timeout);
                failed++;
            } else if (status == 0) {
                printf("ok    %s (%.2fs)\n", full, secs);
                passed++;
            } else if (status == SKIP_STATUS) {
                printf("ok    %s (skipped: %s)\n", full, reason);
                passed++;
                skipped++;
            } else {
                printf("FAIL  %s (exit status %lu)\n", full, (unsigned long)status);
                failed++;
            }
        }
    }
    if (skipped) printf("(%d of the passed runs were skipped)\n", skipped);
    printf("%d passed, %d failed\n", passed, failed);
    WSACleanup();
    return (failed || passed == 0) ? 1 : 0;
}
#endif /* _WIN32 */
