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
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#endif
#ifndef PR_SET_NO_NEW_PRIVS
#define PR_SET_NO_NEW_PRIVS 38
#endif

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

/* What the delegate becomes between fork and exec (shim/proc/identity.py builds it).
 * -1 / NULL / 0 leave that part as shim's own. */
#define MAX_GROUPS 65536
#define MAX_LIMITS 32
#define MAX_CAPS 64
struct identity {
    long uid, gid;              /* -1: unchanged */
    gid_t *groups;              /* with ngroups >= 0: setgroups(ngroups, groups) */
    Py_ssize_t ngroups;         /* -1: unchanged */
    int umask_value;            /* -1: unchanged */
    int no_new_privs;
    int nlimits;
    int limit_res[MAX_LIMITS];
    struct rlimit limits[MAX_LIMITS];
    int nbounding;              /* capabilities dropped from the bounding set */
    int bounding_drop[MAX_CAPS];
    int set_caps;               /* capset(effective, permitted, inheritable) when 1 */
    uint64_t cap_eff, cap_prm, cap_inh;
    int nambient;               /* raised into the ambient set after the uid change */
    int ctty;                   /* >= 0: setsid() and make this (child) fd the controlling tty */
    int ambient[MAX_CAPS];
};

/* The step that failed, reported with its errno (shim/proc/spawn.py names it). */
enum { STEP_EXEC, STEP_SETUP, STEP_CWD, STEP_RLIMIT, STEP_BOUNDING, STEP_GROUPS, STEP_GID,
       STEP_UID, STEP_CAPS, STEP_AMBIENT, STEP_NNP };

static int
set_capabilities(uint64_t eff, uint64_t prm, uint64_t inh)
{
    /* capset(2) directly: libcap is not in the static binary, and the call is 3 lines. */
    struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    data[0].effective = (uint32_t)eff;
    data[1].effective = (uint32_t)(eff >> 32);
    data[0].permitted = (uint32_t)prm;
    data[1].permitted = (uint32_t)(prm >> 32);
    data[0].inheritable = (uint32_t)inh;
    data[1].inheritable = (uint32_t)(inh >> 32);
    return (int)syscall(SYS_capset, &head, data);
}

/* Identity in the order the kernel needs: limits and the bounding set while still
 * privileged; KEEPCAPS so the permitted set survives setuid; groups before gid before
 * uid (after setuid nothing else may be changed); then the capability sets, the
 * ambient raise (which needs each cap in permitted and inheritable), no_new_privs. */
static int
apply_identity(const struct identity *id, int *step)
{
    int keep = id->nambient > 0 && id->uid >= 0;
    if (id->umask_value >= 0)
        umask((mode_t)id->umask_value);
    *step = STEP_RLIMIT;
    for (int i = 0; i < id->nlimits; i++)
        if (setrlimit(id->limit_res[i], &id->limits[i]) != 0)
            return -1;
    *step = STEP_BOUNDING;
    for (int i = 0; i < id->nbounding; i++)
        if (prctl(PR_CAPBSET_DROP, id->bounding_drop[i], 0, 0, 0) != 0 && errno != EINVAL)
            return -1;
    *step = STEP_UID;
    if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
        return -1;
    *step = STEP_GROUPS;
    if (id->ngroups >= 0 && setgroups((size_t)id->ngroups, id->groups) != 0)
        return -1;
    *step = STEP_GID;
    if (id->gid >= 0 && setresgid((gid_t)id->gid, (gid_t)id->gid, (gid_t)id->gid) != 0)
        return -1;
    *step = STEP_UID;
    if (id->uid >= 0 && setresuid((uid_t)id->uid, (uid_t)id->uid, (uid_t)id->uid) != 0)
        return -1;
    *step = STEP_CAPS;
    if (id->set_caps && set_capabilities(id->cap_eff, id->cap_prm, id->cap_inh) != 0)
        return -1;
    *step = STEP_AMBIENT;
    for (int i = 0; i < id->nambient; i++)
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, id->ambient[i], 0, 0) != 0)
            return -1;
    if (keep)
        (void)prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    *step = STEP_NNP;
    if (id->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return 0;
}

/* The child's side: async-signal-safe calls only, then execve.  On failure the
 * (step, errno) pair is written to `report` (close-on-exec) and the child exits 127. */
static void
child_exec(const char *path, char **argv, char **envp, const sigset_t *mask,
           const sigset_t *ignored, int new_group, int tty_fd, const int *fds, int report,
           const char *cwd, const struct identity *id)
{
    int err[2];
    int step = STEP_SETUP;
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
    /* The start directory is passed explicitly: the resident shim itself moves to "/". */
    /* Capture on a pseudo-terminal (shim/streams/tty.py): the delegate leads a new session
     * whose controlling terminal is the pty slave (already dup'ed to 0-2), so the kernel
     * sends it SIGWINCH on a resize and Ctrl-C/Ctrl-Z as a real terminal would; the pty's
     * foreground group is the delegate's.  Not with new_group: setsid() needs a non-leader. */
    if (id->ctty >= 0 && (setsid() < 0 || ioctl(id->ctty, TIOCSCTTY, 0) != 0))
        goto fail;
    step = STEP_CWD;
    if (cwd != NULL && chdir(cwd) != 0)
        goto fail;
    if (apply_identity(id, &step) != 0)
        goto fail;
    step = STEP_SETUP;
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
    step = STEP_EXEC;
    execve(path, argv, envp);
fail:
    err[0] = step;
    err[1] = errno;
    while (write(report, err, sizeof err) < 0 && errno == EINTR)
        ;
    _exit(127);
}

static int
int_list(PyObject *seq, int *out, int max, const char *what)
{
    PyObject *fast;
    Py_ssize_t n;
    if (seq == NULL || seq == Py_None)
        return 0;
    fast = PySequence_Fast(seq, what);
    if (fast == NULL)
        return -1;
    n = PySequence_Fast_GET_SIZE(fast);
    if (n > max) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "%s: too many items", what);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
        if (v < 0 || v > 63) {
            Py_DECREF(fast);
            PyErr_Format(PyExc_ValueError, "%s: %ld out of range", what, v);
            return -1;
        }
        out[i] = (int)v;
    }
    Py_DECREF(fast);
    return (int)n;
}

/* identity: None, or a dict with any of uid, gid, groups, umask, no_new_privs,
 * rlimits [(resource, soft, hard)], bounding_drop [cap], caps (eff, prm, inh), ambient [cap].
 * Fills *id (groups allocated with PyMem_Malloc); 0 or -1 with an exception. */
static int
parse_identity(PyObject *spec, struct identity *id)
{
    PyObject *v;
    memset(id, 0, sizeof *id);
    id->uid = id->gid = -1;
    id->ngroups = -1;
    id->umask_value = -1;
    id->ctty = -1;
    if (spec == NULL || spec == Py_None)
        return 0;
    if (!PyDict_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "identity must be a dict or None");
        return -1;
    }
#define GET(name) ((v = PyDict_GetItemString(spec, name)) != NULL && v != Py_None)
    if (GET("uid") && ((id->uid = PyLong_AsLong(v)) < 0 || id->uid > 0xFFFFFFFEL))
        goto range;
    if (GET("gid") && ((id->gid = PyLong_AsLong(v)) < 0 || id->gid > 0xFFFFFFFEL))
        goto range;
    if (GET("umask") && ((id->umask_value = (int)PyLong_AsLong(v)) < 0 || id->umask_value > 0777))
        goto range;
    if (GET("no_new_privs"))
        id->no_new_privs = PyObject_IsTrue(v);
    if (GET("ctty") && ((id->ctty = (int)PyLong_AsLong(v)) < 0 || id->ctty > 2))
        goto range;
    if (GET("groups")) {
        PyObject *fast = PySequence_Fast(v, "groups");
        if (fast == NULL)
            return -1;
        id->ngroups = PySequence_Fast_GET_SIZE(fast);
        if (id->ngroups > MAX_GROUPS) {
            Py_DECREF(fast);
            goto range;
        }
        id->groups = PyMem_Malloc(sizeof(gid_t) * (size_t)(id->ngroups + 1));
        if (id->groups == NULL) {
            Py_DECREF(fast);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < id->ngroups; i++) {
            long g = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
            if (g < 0 || g > 0xFFFFFFFEL) {
                Py_DECREF(fast);
                goto range;
            }
            id->groups[i] = (gid_t)g;
        }
        Py_DECREF(fast);
    }
    if (GET("rlimits")) {
        PyObject *fast = PySequence_Fast(v, "rlimits");
        if (fast == NULL)
            return -1;
        if (PySequence_Fast_GET_SIZE(fast) > MAX_LIMITS) {
            Py_DECREF(fast);
            goto range;
        }
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++) {
            int res;
            unsigned long long soft, hard;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "iKK:rlimit", &res, &soft,
                                  &hard)) {
                Py_DECREF(fast);
                return -1;
            }
            id->limit_res[i] = res;
            id->limits[i].rlim_cur = (rlim_t)soft;
            id->limits[i].rlim_max = (rlim_t)hard;
            id->nlimits = (int)i + 1;
        }
        Py_DECREF(fast);
    }
    if ((id->nbounding = int_list(PyDict_GetItemString(spec, "bounding_drop"), id->bounding_drop,
                                  MAX_CAPS, "bounding_drop")) < 0)
        return -1;
    if ((id->nambient = int_list(PyDict_GetItemString(spec, "ambient"), id->ambient, MAX_CAPS,
                                 "ambient")) < 0)
        return -1;
    if (GET("caps")) {
        unsigned long long e, p, i;
        if (!PyArg_ParseTuple(v, "KKK:caps", &e, &p, &i))
            return -1;
        id->set_caps = 1;
        id->cap_eff = e;
        id->cap_prm = p;
        id->cap_inh = i;
    }
#undef GET
    if (PyErr_Occurred())
        return -1;
    return 0;
range:
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "identity: a value is out of range");
    return -1;
}

/* spawn(path, argv, env, mask, ignored, new_group, tty_fd, (fd0, fd1, fd2), cwd=None,
 *       identity=None) -> pid
 * fdN = -1 inherits shim's own descriptor N.  A failure in the child raises OSError with
 * the child's errno and, as its filename, the step that failed ("exec", "cwd", "uid", ...)
 * after the child has been reaped. */
static const char *const STEP_NAMES[] = {"exec", "setup", "cwd", "rlimit", "bounding", "groups",
                                         "gid", "uid", "caps", "ambient", "no_new_privs"};

static PyObject *
native_spawn(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"path", "argv", "env", "mask", "ignored", "new_group", "tty_fd",
                             "fds", "cwd", "identity", NULL};
    PyObject *path_obj, *argv_obj, *env_obj, *mask_obj, *ign_obj, *cwd_obj = Py_None;
    PyObject *cwd_bytes = NULL, *id_obj = Py_None;
    int new_group, tty_fd, fds[3], pipefd[2], report[2] = {0, 0};
    char **argv = NULL, **envp = NULL;
    const char *cwd = NULL;
    struct identity id;
    sigset_t mask, ignored;
    pid_t pid;
    ssize_t n;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&OOOOpi(iii)|OO:spawn", kwlist,
                                     PyUnicode_FSConverter, &path_obj, &argv_obj, &env_obj,
                                     &mask_obj, &ign_obj, &new_group, &tty_fd, &fds[0], &fds[1],
                                     &fds[2], &cwd_obj, &id_obj))
        return NULL;
    if ((Py_ssize_t)strlen(PyBytes_AS_STRING(path_obj)) != PyBytes_GET_SIZE(path_obj)) {
        Py_DECREF(path_obj);
        return PyErr_Format(PyExc_ValueError, "path: embedded NUL byte");
    }
    if (cwd_obj != Py_None) {
        if (!PyUnicode_FSConverter(cwd_obj, &cwd_bytes)) {
            Py_DECREF(path_obj);
            return NULL;
        }
        cwd = PyBytes_AS_STRING(cwd_bytes);
        if ((Py_ssize_t)strlen(cwd) != PyBytes_GET_SIZE(cwd_bytes)) {
            Py_DECREF(path_obj);
            Py_DECREF(cwd_bytes);
            return PyErr_Format(PyExc_ValueError, "cwd: embedded NUL byte");
        }
    }
    if (parse_identity(id_obj, &id) != 0 ||
        fill_sigset(mask_obj, &mask) != 0 || fill_sigset(ign_obj, &ignored) != 0 ||
        (argv = to_cstrings(argv_obj, "argv")) == NULL ||
        (envp = to_cstrings(env_obj, "env")) == NULL) {
        free_cstrings(argv);
        PyMem_Free(id.groups);
        Py_XDECREF(cwd_bytes);
        Py_DECREF(path_obj);
        return NULL;
    }
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        free_cstrings(argv);
        free_cstrings(envp);
        PyMem_Free(id.groups);
        Py_XDECREF(cwd_bytes);
        Py_DECREF(path_obj);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        child_exec(PyBytes_AS_STRING(path_obj), argv, envp, &mask, &ignored, new_group, tty_fd,
                   fds, pipefd[1], cwd, &id);
    }
    close(pipefd[1]);
    free_cstrings(argv);
    free_cstrings(envp);
    PyMem_Free(id.groups);
    Py_XDECREF(cwd_bytes);
    Py_DECREF(path_obj);
    if (pid < 0) {
        int err = errno;
        close(pipefd[0]);
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_BEGIN_ALLOW_THREADS
    do {
        n = read(pipefd[0], report, sizeof report);
    } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    Py_END_ALLOW_THREADS
    if (n == (ssize_t)sizeof report) {
        int status;
        PyObject *exc;
        const char *step = report[0] >= 0 && report[0] <= STEP_NNP ? STEP_NAMES[report[0]] : "setup";
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        exc = PyObject_CallFunction(PyExc_OSError, "iss", report[1], strerror(report[1]), step);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    return PyLong_FromLong(pid);
}

/* become(identity): exec mode — take on the identity in this process before execve.
 * OSError with the failed step as its filename, like spawn. */
static PyObject *
native_become(PyObject *self, PyObject *arg)
{
    struct identity id;
    int step = STEP_SETUP, rc;
    if (parse_identity(arg, &id) != 0)
        return NULL;
    rc = apply_identity(&id, &step);
    PyMem_Free(id.groups);
    if (rc != 0) {
        int err = errno;
        PyObject *exc = PyObject_CallFunction(PyExc_OSError, "iss", err, strerror(err),
                                              STEP_NAMES[step]);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef native_methods[] = {
    {"become", native_become, METH_O,
     "become(identity): apply an identity dict to this process (exec mode)"},
    {"signalfd", native_signalfd, METH_VARARGS,
     "signalfd(signals) -> fd (non-blocking, close-on-exec); the signals must be blocked"},
    {"read_signals", native_read_signals, METH_VARARGS,
     "read_signals(fd) -> [(signo, code, pid)] of every queued signal"},
    {"spawn", (PyCFunction)(void (*)(void))native_spawn, METH_VARARGS | METH_KEYWORDS,
     "spawn(path, argv, env, mask, ignored, new_group, tty_fd, (fd0, fd1, fd2), cwd=None, "
     "identity=None) -> pid"},
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
