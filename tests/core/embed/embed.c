/*
 * embed.c - a host program that embeds Python and drives a pycos scheduler
 * from its own poll() loop (tests/core/test_embed.py builds and runs it).
 *
 *   embed SCRIPT
 *
 * SCRIPT is Python run in __main__; it must define
 *   sched      a pycos.Pycos(embedded=True)
 *   finished() True when the host may stop
 *   report()   a str the host prints at the end
 *
 * The host owns the loop: it waits on sched.fileno() with poll(2) for at
 * most sched.next_deadline() seconds, then calls sched.run_once(0).  On a
 * reactor backend without a pollable descriptor (fileno() raises OSError)
 * it lets run_once() do the waiting instead.  It prints "mode fd" or
 * "mode run_once", the number of rounds and the report.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

static PyObject *g;     /* __main__ globals */

static void die(const char *what)
{
    fprintf(stderr, "embed: %s\n", what);
    if (PyErr_Occurred())
        PyErr_Print();
    exit(2);
}

static PyObject *call(const char *name, const char *fmt, ...)
{
    PyObject *sched = PyDict_GetItemString(g, "sched");    /* borrowed */
    if (sched == NULL)
        die("script did not define sched");
    PyObject *meth = PyObject_GetAttrString(sched, name);
    if (meth == NULL)
        die(name);
    PyObject *args;
    va_list ap;
    va_start(ap, fmt);
    args = Py_VaBuildValue(fmt, ap);
    va_end(ap);
    PyObject *res = PyObject_CallObject(meth, args);
    Py_DECREF(meth);
    Py_DECREF(args);
    return res;
}

static int finished(void)
{
    PyObject *fn = PyDict_GetItemString(g, "finished");
    if (fn == NULL)
        die("script did not define finished()");
    PyObject *r = PyObject_CallObject(fn, NULL);
    if (r == NULL)
        die("finished() failed");
    int done = PyObject_IsTrue(r);
    Py_DECREF(r);
    return done;
}

/* seconds until run_once is due (-1.0: no deadline) */
static double deadline(void)
{
    PyObject *r = call("next_deadline", "()");
    if (r == NULL)
        die("next_deadline() failed");
    double d = (r == Py_None) ? -1.0 : PyFloat_AsDouble(r);
    Py_DECREF(r);
    return d;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: embed SCRIPT\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    Py_InitializeEx(0);             /* no signal handlers: the host owns them */
    g = PyModule_GetDict(PyImport_AddModule("__main__"));
    if (PyRun_SimpleFileEx(f, argv[1], 1) != 0)
        die("script failed");

    int fd = -1;
    PyObject *r = call("fileno", "()");
    if (r != NULL) {
        fd = (int)PyLong_AsLong(r);
        Py_DECREF(r);
    } else if (PyErr_ExceptionMatches(PyExc_OSError)) {
        PyErr_Clear();
    } else {
        die("fileno() failed");
    }
    printf("mode %s\n", fd >= 0 ? "fd" : "run_once");

    long rounds = 0;
    while (!finished()) {
        double d = deadline();
        if (fd >= 0) {
            int ms = d < 0 ? -1 : (int)(d * 1000.0 + 0.999);
            struct pollfd p = { .fd = fd, .events = POLLIN };
            Py_BEGIN_ALLOW_THREADS
            poll(&p, 1, ms);
            Py_END_ALLOW_THREADS
            r = call("run_once", "(i)", 0);
        } else {
            if (d < 0)
                r = call("run_once", "(O)", Py_None);
            else
                r = call("run_once", "(d)", d);
        }
        if (r == NULL)
            die("run_once() failed");
        Py_DECREF(r);
        rounds++;
    }
    PyObject *rep = PyDict_GetItemString(g, "report");
    PyObject *s = rep ? PyObject_CallObject(rep, NULL) : NULL;
    if (s == NULL || !PyUnicode_Check(s))
        die("report() failed");
    printf("rounds %ld\n%s\n", rounds, PyUnicode_AsUTF8(s));
    Py_DECREF(s);
    r = call("finish", "()");
    if (r == NULL)
        die("finish() failed");
    Py_DECREF(r);
    fflush(stdout);
    return Py_FinalizeEx() < 0 ? 3 : 0;
}
