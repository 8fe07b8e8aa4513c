/* _shim_native: the few Linux calls shim needs that the stdlib lacks.
 *
 * Built into the static launcher as a builtin module (no ctypes, no dlopen);
 * shim/native.py prefers it, then ctypes, then a polling/no-op fallback.
 */
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>

/* The signal mask the process was started with; launcher.c fills it before it
 * blocks every catchable signal, first thing in main(). */
sigset_t shim_initial_mask;
int shim_initial_mask_known;

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
native_set_child_subreaper(PyObject *self, PyObject *unused)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
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

static PyMethodDef native_methods[] = {
    {"initial_sigmask", native_initial_sigmask, METH_NOARGS,
     "signals blocked when the process started (None if unknown)"},
    {"set_child_subreaper", native_set_child_subreaper, METH_NOARGS,
     "prctl(PR_SET_CHILD_SUBREAPER, 1)"},
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
