"""Section `debug`: Tekton-style breakpoints (pause before the delegate, or after it failed)."""

from shim.config.option import BOOL, PATH, Option

SECTION = "debug"

OPTIONS = (
    Option("breakpoint_on_failure", ["--breakpoint-on-failure"], "debug.breakpoint_on_failure",
           BOOL, False,
           "when the delegate fails, write DEBUG_DIR/failed and stay until DEBUG_DIR/resume "
           "exists; then exit with the delegate's code"),
    Option("breakpoint_before", ["--breakpoint-before"], "debug.breakpoint_before", BOOL, False,
           "before the delegate starts, wait until DEBUG_DIR/resume exists"),
    Option("debug_dir", ["--debug-dir"], "debug.dir", PATH, None,
           "the breakpoints' directory (failed, resume); must be writable", metavar="DIR"),
)
