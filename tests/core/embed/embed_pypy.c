/*
 * embed_pypy.c - the host program of embed.c, for PyPy.
 *
 *   embed_pypy SCRIPT
 *
 * PyPy has no Py_Initialize(); a C program embeds it through libpypy-c's
 * own entry points (rpython_startup_code, pypy_setup_home,
 * pypy_execute_source_ptr; PyPy ships no header for them, so they are
 * declared here).  The bootstrap source below runs SCRIPT (the same script
 * as for embed.c) and fills a table of C function pointers with cffi
 * callbacks into it; the host then runs the same poll() loop as embed.c:
 * wait on sched.fileno() for at most sched.next_deadline() seconds, call
 * sched.run_once(0); or let run_once() wait when there is no descriptor.
 *
 * The environment variable EMBED_SYSPATH (os.pathsep-separated) is put in
 * front of sys.path, and EMBED_LIBPYPY names the libpypy-c to set the home
 * from.  The output is the same as embed.c's.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

extern void rpython_startup_code(void);
extern int pypy_setup_home(char *home, int verbose);
extern int pypy_execute_source_ptr(char *source, void *ptr);
extern void pypy_init_threads(void);

struct host_api {
    int (*fileno)(void);                 /* -1: no pollable descriptor, -2: error */
    double (*next_deadline)(void);       /* -1.0: none, -2.0: error */
    int (*run_once)(double timeout);     /* timeout < 0: None; 0 ok, -1 error */
    int (*finished)(void);               /* 1 / 0, -1 error */
    int (*report)(char *buf, int size);  /* bytes written, -1 error */
    int (*finish)(void);                 /* 0 ok, -1 error */
};

static const char bootstrap[] =
    "import os, sys, traceback\n"
    "for _p in reversed([p for p in os.environ.get('EMBED_SYSPATH', '').split(os.pathsep) if p]):\n"
    "    sys.path.insert(0, _p)\n"
    "import cffi\n"
    "ffi = cffi.FFI()\n"
    "ffi.cdef('''struct host_api { int (*fileno)(void); double (*next_deadline)(void);\n"
    "    int (*run_once)(double); int (*finished)(void); int (*report)(char *, int);\n"
    "    int (*finish)(void); };''')\n"
    "api = ffi.cast('struct host_api *', c_argument)\n"
    "ns = {'__name__': '__embedded__'}\n"
    "_path = os.environ['EMBED_SCRIPT']\n"
    "with open(_path) as _f:\n"
    "    exec(compile(_f.read(), _path, 'exec'), ns)\n"
    "def _fail():\n"
    "    traceback.print_exc()\n"
    "    sys.stderr.flush()\n"
    "@ffi.callback('int(void)', onerror=lambda *a: _fail())\n"
    "def fileno():\n"
    "    try:\n"
    "        return ns['sched'].fileno()\n"
    "    except OSError:\n"
    "        return -1\n"
    "@ffi.callback('double(void)', error=-2.0, onerror=lambda *a: _fail())\n"
    "def next_deadline():\n"
    "    d = ns['sched'].next_deadline()\n"
    "    return -1.0 if d is None else d\n"
    "@ffi.callback('int(double)', error=-1, onerror=lambda *a: _fail())\n"
    "def run_once(timeout):\n"
    "    ns['sched'].run_once(None if timeout < 0 else timeout)\n"
    "    return 0\n"
    "@ffi.callback('int(void)', error=-1, onerror=lambda *a: _fail())\n"
    "def finished():\n"
    "    return 1 if ns['finished']() else 0\n"
    "@ffi.callback('int(char *, int)', error=-1, onerror=lambda *a: _fail())\n"
    "def report(buf, size):\n"
    "    data = ns['report']().encode()[:size - 1] + b'\\0'\n"
    "    ffi.memmove(buf, data, len(data))\n"
    "    return len(data) - 1\n"
    "@ffi.callback('int(void)', error=-1, onerror=lambda *a: _fail())\n"
    "def finish():\n"
    "    ns['sched'].finish()\n"
    "    return 0\n"
    "api.fileno, api.next_deadline, api.run_once = fileno, next_deadline, run_once\n"
    "api.finished, api.report, api.finish = finished, report, finish\n"
    "# the callbacks must outlive this source: keep them somewhere permanent\n"
    "sys._pycos_embed_keep = (ffi, ns, fileno, next_deadline, run_once, finished, report, finish)\n";

static void die(const char *what)
{
    fprintf(stderr, "embed_pypy: %s\n", what);
    exit(2);
}

int main(int argc, char **argv)
{
    static char report[4096];
    struct host_api api = {0};
    const char *lib = getenv("EMBED_LIBPYPY");

    if (argc != 2 || lib == NULL) {
        fprintf(stderr, "usage: EMBED_LIBPYPY=/path/libpypy-c.so embed_pypy SCRIPT\n");
        return 2;
    }
    if (setenv("EMBED_SCRIPT", argv[1], 1) != 0)
        die("setenv");
    rpython_startup_code();
    if (pypy_setup_home((char *)lib, 1) != 0)
        die("pypy_setup_home failed");
    pypy_init_threads();
    if (pypy_execute_source_ptr((char *)bootstrap, &api) != 0 || api.finish == NULL)
        die("bootstrap failed");

    int fd = api.fileno();
    if (fd < -1)
        die("fileno() failed");
    printf("mode %s\n", fd >= 0 ? "fd" : "run_once");

    long rounds = 0;
    for (;;) {
        int done = api.finished();
        if (done < 0)
            die("finished() failed");
        if (done)
            break;
        double d = api.next_deadline();
        if (d < -1.5)
            die("next_deadline() failed");
        int rc;
        if (fd >= 0) {
            /* no Python frame is active here: PyPy has released the GIL, so
               a thread of the script can post work meanwhile */
            int ms = d < 0 ? -1 : (int)(d * 1000.0 + 0.999);
            struct pollfd p = { .fd = fd, .events = POLLIN };
            poll(&p, 1, ms);
            rc = api.run_once(0.0);
        } else {
            rc = api.run_once(d);
        }
        if (rc != 0)
            die("run_once() failed");
        rounds++;
    }
    if (api.report(report, (int)sizeof report) < 0)
        die("report() failed");
    printf("rounds %ld\n%s\n", rounds, report);
    if (api.finish() != 0)
        die("finish() failed");
    fflush(stdout);
    return 0;
}
