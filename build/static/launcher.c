/* shim's static launcher: CPython embedded in one static executable.
 *
 * The executable is this launcher, statically linked against Debian's
 * libpython3.11.a and glibc's libc.a, with a zip of the shim's .pyc files (and
 * the stdlib modules it imports) appended.  CPython's zipimport reads zips with
 * data prepended, so sys.path is just the executable itself: nothing is
 * extracted, no temporary directory is needed and no extra process is made.
 * The binary must stay readable (mode 0555 or 0755): it reads its own archive,
 * through /proc/self/exe when /proc is mounted (else through its path).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim_native.c"

#ifndef SHIM_ENTRY
#define SHIM_ENTRY L"from shim.cli import main; raise SystemExit(main())"
#endif

static void
die(const char *what, PyStatus status)
{
    fprintf(stderr, "shim: start %s: %s; the binary is damaged, rebuild it with scripts/build\n",
            what, status.err_msg ? status.err_msg : "failed");
    exit(status.exitcode ? status.exitcode : 119);
}

/* The path of this executable (sys.executable); *proc is set when /proc works. */
static int
self_path(const char *argv0, char *out, size_t size, int *proc)
{
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    *proc = n > 0;
    if (n > 0) {
        out[n] = '\0';
        return 0;
    }
    /* No /proc: fall back to argv[0], searched in PATH like the shell did. */
    if (strchr(argv0, '/') != NULL) {
        if (strlen(argv0) >= size)
            return -1;
        strcpy(out, argv0);
        return 0;
    }
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        if (len + 1 + strlen(argv0) < size) {
            snprintf(out, size, "%.*s/%s", (int)len, len ? path : ".", argv0);
            if (access(out, X_OK) == 0)
                return 0;
        }
        if (end == NULL)
            break;
        path = end + 1;
    }
    return -1;
}

static void
set_string(PyConfig *config, wchar_t **field, const wchar_t *value)
{
    PyStatus status = PyConfig_SetString(config, field, value);
    if (PyStatus_Exception(status))
        die("configuration", status);
}

/* Block every catchable signal before anything else: as PID 1 a signal that
 * arrives while CPython starts (~9 ms) would otherwise be dropped by the kernel
 * (PID 1 has no default actions).  The runtime collects it with sigtimedwait
 * and restores shim_initial_mask (shim_native.c) in every child, as tini does. */
static void
block_signals(void)
{
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    sigset_t all;
    sigfillset(&all);
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(&all, faults[i]);
    if (sigprocmask(SIG_BLOCK, &all, &shim_initial_mask) == 0)
        shim_initial_mask_known = 1;
}

int
main(int argc, char **argv)
{
    PyStatus status;
    PyPreConfig preconfig;
    PyConfig config;
    char exe[PATH_MAX];
    wchar_t *wexe;
    int proc, fd;

    block_signals();
    /* UTF-8 mode and no setlocale(): behaviour does not depend on LANG/LC_*,
     * the static libc never looks for locale files, and nothing is written to
     * the environment (no C-locale coercion). */
    PyPreConfig_InitIsolatedConfig(&preconfig);
    preconfig.utf8_mode = 1;
    preconfig.configure_locale = 0;
    status = Py_PreInitialize(&preconfig);
    if (PyStatus_Exception(status))
        die("preinitialization", status);

    if (self_path(argc > 0 ? argv[0] : "shim", exe, sizeof exe, &proc) != 0) {
        fprintf(stderr, "shim: start shim: cannot find my own executable; "
                        "mount /proc or run me by path\n");
        return 119;
    }
    /* The archive is read from /proc/self/exe when possible: that is always the
     * running file, even after an upgrade replaced or deleted it on disk. */
    const char *archive = proc ? "/proc/self/exe" : exe;
    fd = open(archive, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "shim: start %s: cannot read my own file (%s); it must be readable, "
                        "not execute-only: chmod 0555 (or 0755) it\n", exe, strerror(errno));
        return 119;
    }
    close(fd);
    wexe = Py_DecodeLocale(exe, NULL);
    wchar_t *warchive = Py_DecodeLocale(archive, NULL);
    if (wexe == NULL || warchive == NULL) {
        fprintf(stderr, "shim: start %s: cannot decode the path; rename it\n", exe);
        return 119;
    }

    if (PyImport_AppendInittab("_shim_native", PyInit__shim_native) != 0) {
        fprintf(stderr, "shim: start shim: cannot register _shim_native\n");
        return 119;
    }

    /* Isolated: no PYTHON* variables, no user site, no cwd on sys.path. */
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.write_bytecode = 0;
    config.install_signal_handlers = 0;
    config.pathconfig_warnings = 0;
    config.parse_argv = 0;
    config.buffered_stdio = 1;
    config.use_hash_seed = 0;
    status = PyConfig_SetBytesArgv(&config, argc, argv);
    if (PyStatus_Exception(status))
        die("arguments", status);

    /* The archive appended to this executable is the whole of sys.path; the
     * prefixes are set so that CPython does not search the file system. */
    set_string(&config, &config.executable, wexe);
    set_string(&config, &config.program_name, wexe);
    set_string(&config, &config.prefix, L"/");
    set_string(&config, &config.exec_prefix, L"/");
    set_string(&config, &config.base_prefix, L"/");
    set_string(&config, &config.base_exec_prefix, L"/");
    set_string(&config, &config.base_executable, wexe);
    config.module_search_paths_set = 1;
    status = PyWideStringList_Append(&config.module_search_paths, warchive);
    if (PyStatus_Exception(status))
        die("sys.path", status);
    set_string(&config, &config.run_command, SHIM_ENTRY);

    status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    PyMem_RawFree(wexe);
    PyMem_RawFree(warchive);
    if (PyStatus_Exception(status))
        die("the interpreter", status);
    /* Tell shim it runs frozen (the PyInstaller convention it already checks). */
    if (PySys_SetObject("frozen", Py_True) != 0) {
        fprintf(stderr, "shim: start shim: cannot set sys.frozen\n");
        return 119;
    }
    return Py_RunMain();
}
