/* _shim_native: the few Linux calls shim needs that the stdlib lacks.
 *
 * Built into the static launcher as a builtin module (no ctypes, no dlopen), and
 * as an extension module for source installs (pyproject.toml, ext-modules).
 * shim/proc/native.py wraps it.
 *
 * spawn() is here so that nothing runs between fork and exec but a fixed list of
 * async-signal-safe calls: Python must not run in a forked child once any thread
 * exists (secret fetches and sinks use threads), and glibc's posix_spawn leaves
 * its internal signals 32/33 at SIG_IGN in the child (measured), which exec keeps.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* The signal mask the process was started with; launcher.c fills it before it
 * blocks every catchable signal, first thing in main(). */
#ifdef SHIM_EXTENSION_BUILD
static sigset_t shim_initial_mask;
static int shim_initial_mask_known;
#else
sigset_t shim_initial_mask;
int shim_initial_mask_known;
#endif

static PyObject *
native_initial_sigmask(PyObject *self, PyObject *unused)
{
    PyObject *result;
    if (!shim_initial_mask_known)
        Py_RETURN_NONE;
    result = PyList_New(0);
    if (result == NULL)
        return NULL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigismember(&shim_initial_mask, sig) == 1) {
            PyObject *num = PyLong_FromLong(sig);
            if (num == NULL || PyList_Append(result, num) != 0) {
                Py_XDECREF(num);
                Py_DECREF(result);
                return NULL;
            }
            Py_DECREF(num);
        }
    }
    return result;
}

static PyObject *
native_set_child_subreaper(PyObject *self, PyObject *args)
{
    int on = 1;
    if (!PyArg_ParseTuple(args, "|i:set_child_subreaper", &on))
        return NULL;
    if (prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *
native_inotify_init1(PyObject *self, PyObject *args)
{
    int flags = 0, fd;
    if (!PyArg_ParseTuple(args, "|i:inotify_init1", &flags))
        return NULL;
    fd = inotify_init1(flags);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

static PyObject *
native_inotify_add_watch(PyObject *self, PyObject *args)
{
    int fd, wd;
    const char *path;
    unsigned int mask;
    if (!PyArg_ParseTuple(args, "iyI:inotify_add_watch", &fd, &path, &mask))
        return NULL;
    wd = inotify_add_watch(fd, path, mask);
    if (wd < 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
    return PyLong_FromLong(wd);
}

static PyObject *
native_set_name(PyObject *self, PyObject *args)
{
    char name[16];
    const char *value;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "y#:set_name", &value, &len))
        return NULL;
    /* The kernel keeps 15 bytes and a NUL; truncate like prctl(1) does. */
    memset(name, 0, sizeof name);
    memcpy(name, value, len < 15 ? (size_t)len : 15);
    if (prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* -- signals as a file descriptor ------------------------------------------------ */

static int
fill_sigset(PyObject *seq, sigset_t *set)
{
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of signal numbers");
    if (fast == NULL)
        return -1;
    sigemptyset(set);
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++) {
        long sig = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
        if (sig == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
        if (sig < 1 || sig >= NSIG || sigaddset(set, (int)sig) != 0) {
            Py_DECREF(fast);
            PyErr_Format(PyExc_ValueError, "signal number %ld out of range", sig);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

static PyObject *
native_signalfd(PyObject *self, PyObject *args)
{
    PyObject *sigs;
    sigset_t set;
    int fd;
    if (!PyArg_ParseTuple(args, "O:signalfd", &sigs) || fill_sigset(sigs, &set) != 0)
        return NULL;
    fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

/* Every queued signal as (signo, code, sender pid); [] when none is queued. */
static PyObject *
native_read_signals(PyObject *self, PyObject *args)
{
    int fd;
    struct signalfd_siginfo info[16];
    PyObject *result;
    if (!PyArg_ParseTuple(args, "i:read_signals", &fd))
        return NULL;
    result = PyList_New(0);
    if (result == NULL)
        return NULL;
    for (;;) {
        ssize_t n;
        Py_BEGIN_ALLOW_THREADS
        n = read(fd, info, sizeof info);
        Py_END_ALLOW_THREADS
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            Py_DECREF(result);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        for (ssize_t i = 0; i < n / (ssize_t)sizeof info[0]; i++) {
            PyObject *item = Py_BuildValue("(iik)", (int)info[i].ssi_signo, (int)info[i].ssi_code,
                                           (unsigned long)info[i].ssi_pid);
            if (item == NULL || PyList_Append(result, item) != 0) {
                Py_XDECREF(item);
                Py_DECREF(result);
                return NULL;
            }
            Py_DECREF(item);
        }
        if ((size_t)n < sizeof info)
            break;
    }
    return result;
}

/* -- spawn ------------------------------------------------------------------------- */

static char **
to_cstrings(PyObject *seq, const char *what)
{
    PyObject *fast = PySequence_Fast(seq, what);
    Py_ssize_t n;
    char **out;
    if (fast == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(fast);
    out = PyMem_Calloc((size_t)n + 1, sizeof(char *));
    if (out == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        char *data;
        Py_ssize_t len;
        if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(fast, i), &data, &len) != 0)
            goto fail;
        if ((Py_ssize_t)strlen(data) != len) {
            PyErr_Format(PyExc_ValueError, "%s: embedded NUL byte", what);
            goto fail;
        }
        out[i] = PyMem_Malloc((size_t)len + 1);
        if (out[i] == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        memcpy(out[i], data, (size_t)len + 1);
    }
    Py_DECREF(fast);
    return out;
fail:
    for (Py_ssize_t i = 0; i < n; i++)
        PyMem_Free(out[i]);
    PyMem_Free(out);
    Py_DECREF(fast);
    return NULL;
}

static void
free_cstrings(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p != NULL; p++)
        PyMem_Free(*p);
    PyMem_Free(v);
}

/* The child's side: async-signal-safe calls only, then execve.  On failure the
 * errno is written to `report` (close-on-exec) and the child exits 127. */
static void
child_exec(const char *path, char **argv, char **envp, const sigset_t *mask,
           const sigset_t *ignored, int new_group, int tty_fd, const int *fds, int report)
{
    int err;
    struct sigaction act;
    if (new_group && setpgid(0, 0) != 0)
        goto fail;
    /* tini's isolate_child: the child's group becomes the terminal's foreground, so the
     * terminal's Ctrl-C reaches it once (not also through shim).  SIGTTOU is blocked
     * here (shim's mask), so tcsetpgrp from a background group does not stop us. */
    if (new_group && tty_fd >= 0)
        (void)tcsetpgrp(tty_fd, getpid());
    for (int i = 0; i < 3; i++) {
        if (fds[i] >= 0 && fds[i] != i) {
            if (dup2(fds[i], i) < 0)
                goto fail;
        } else if (fds[i] == i) {
            int flags = fcntl(i, F_GETFD);
            if (flags >= 0)
                (void)fcntl(i, F_SETFD, flags & ~FD_CLOEXEC);
        }
    }
    /* Exactly the dispositions shim inherited: SIG_IGN where it was ignored, else default. */
    memset(&act, 0, sizeof act);
    sigemptyset(&act.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        act.sa_handler = sigismember(ignored, sig) == 1 ? SIG_IGN : SIG_DFL;
        (void)sigaction(sig, &act, NULL);
    }
    if (sigprocmask(SIG_SETMASK, mask, NULL) != 0)
        goto fail;
    execve(path, argv, envp);
fail:
    err = errno;
    while (write(report, &err, sizeof err) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* spawn(path, argv, env, mask, ignored, new_group, tty_fd, (fd0, fd1, fd2)) -> pid
 * fdN = -1 inherits shim's own descriptor N.  An exec failure raises OSError with the
 * child's errno after the child has been reaped. */
static PyObject *
native_spawn(PyObject *self, PyObject *args)
{
    PyObject *path_obj, *argv_obj, *env_obj, *mask_obj, *ign_obj;
    int new_group, tty_fd, fds[3], pipefd[2], child_errno = 0;
    char **argv = NULL, **envp = NULL;
    sigset_t mask, ignored;
    pid_t pid;
    ssize_t n;
    if (!PyArg_ParseTuple(args, "O&OOOOpi(iii):spawn", PyUnicode_FSConverter, &path_obj, &argv_obj,
                          &env_obj, &mask_obj, &ign_obj, &new_group, &tty_fd,
                          &fds[0], &fds[1], &fds[2]))
        return NULL;
    if ((Py_ssize_t)strlen(PyBytes_AS_STRING(path_obj)) != PyBytes_GET_SIZE(path_obj)) {
        Py_DECREF(path_obj);
        return PyErr_Format(PyExc_ValueError, "path: embedded NUL byte");
    }
    if (fill_sigset(mask_obj, &mask) != 0 || fill_sigset(ign_obj, &ignored) != 0 ||
        (argv = to_cstrings(argv_obj, "argv")) == NULL ||
        (envp = to_cstrings(env_obj, "env")) == NULL) {
        free_cstrings(argv);
        Py_DECREF(path_obj);
        return NULL;
    }
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        free_cstrings(argv);
        free_cstrings(envp);
        Py_DECREF(path_obj);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        child_exec(PyBytes_AS_STRING(path_obj), argv, envp, &mask, &ignored, new_group, tty_fd,
                   fds, pipefd[1]);
    }
    close(pipefd[1]);
    free_cstrings(argv);
    free_cstrings(envp);
    Py_DECREF(path_obj);
    if (pid < 0) {
        int err = errno;
        close(pipefd[0]);
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_BEGIN_ALLOW_THREADS
    do {
        n = read(pipefd[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    Py_END_ALLOW_THREADS
    if (n == (ssize_t)sizeof child_errno) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        errno = child_errno;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(pid);
}

static PyMethodDef native_methods[] = {
    {"signalfd", native_signalfd, METH_VARARGS,
     "signalfd(signals) -> fd (non-blocking, close-on-exec); the signals must be blocked"},
    {"read_signals", native_read_signals, METH_VARARGS,
     "read_signals(fd) -> [(signo, code, pid)] of every queued signal"},
    {"spawn", native_spawn, METH_VARARGS,
     "spawn(path, argv, env, mask, ignored, new_group, tty_fd, (fd0, fd1, fd2)) -> pid"},
    {"initial_sigmask", native_initial_sigmask, METH_NOARGS,
     "signals blocked when the process started (None if unknown)"},
    {"set_child_subreaper", native_set_child_subreaper, METH_VARARGS,
     "set_child_subreaper(on=1): prctl(PR_SET_CHILD_SUBREAPER, on)"},
    {"inotify_init1", native_inotify_init1, METH_VARARGS,
     "inotify_init1(flags) -> fd"},
    {"inotify_add_watch", native_inotify_add_watch, METH_VARARGS,
     "inotify_add_watch(fd, path: bytes, mask) -> wd"},
    {"set_name", native_set_name, METH_VARARGS,
     "prctl(PR_SET_NAME, name[:15])"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_shim_native",
    "Linux calls for shim that the stdlib lacks.", -1, native_methods,
};

PyMODINIT_FUNC
PyInit__shim_native(void)
{
    return PyModule_Create(&native_module);
}
