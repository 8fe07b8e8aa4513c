"""The capability registry: what each capability is, what turns it on, what it costs.

One table, read by everything that used to keep its own list (pip's `commands_dict`
idea, STYLE.md): which options keep shim resident (`resident_options`, the pipeline's
exec/supervise decision and `shim explain`), which capabilities run beside the delegate
as services (`service_options`, shim.run.services), the `--help` grouping and its
"most used" section (shim.config.options.render_help), and the README's list of
resident options (tests/unit/test_capabilities.py compares them).  Each entry names the
module that implements it: that module is imported only when the capability is on, so a
start pays only for what is configured (tests/process/test_startup_imports.py).

Pure data, no imports: it is read on every start.
"""


class Capability:
    """One capability.

    name       what --help calls its group
    summary    one line for --help
    options    every option of the group (table names), in --help order
    enabled_by the options whose value turns it on (a subset of `options`)
    resident   why a resident shim is needed when it is on (None: exec mode is fine)
    phase      "start" (before the delegate), "beside" (while it runs) or "after"
    module     the module that implements it, imported only when it is on
    service    True when it runs beside the delegate as a Service (shim/service.py)
    """

    __slots__ = ("name", "summary", "options", "enabled_by", "resident", "phase", "module", "service")

    def __init__(self, name, summary, options, enabled_by=(), resident=None, phase="start",
                 module=None, service=False):
        self.name, self.summary, self.options = name, summary, tuple(options)
        self.enabled_by, self.resident, self.phase = tuple(enabled_by), resident, phase
        self.module, self.service = module, service


CAPABILITIES = (
    Capability("command", "what to run, and where the settings come from",
               ("config", "profile", "log_level", "entrypoint", "image_entrypoint", "commands"),
               module="shim.run.delegate"),
    Capability("supervision", "PID 1: signals, reaping, exit codes, timeouts",
               ("mode", "signal_group", "rewrite", "grace", "timeout", "stop_delay", "exit_remap",
                "subreaper"),
               enabled_by=("timeout", "exit_remap", "rewrite", "signal_group", "stop_delay"),
               resident="forwarding, rewriting or delaying signals and timing the delegate",
               phase="beside", module="shim.proc.supervise"),
    Capability("identity", "user account, permissions, capabilities and limits of the delegate",
               ("user", "groups", "own", "umask", "no_new_privileges", "cap_keep", "cap_drop", "rlimit",
                "hooks_as_user"),
               enabled_by=("user", "groups", "own", "umask", "no_new_privileges", "cap_keep", "cap_drop",
                           "rlimit"),
               module="shim.run.identity"),
    Capability("environment", "the delegate's environment: files, sets, defaults, lists",
               ("env", "default_env", "prepend_env", "append_env", "unset_env", "env_file"),
               enabled_by=("env", "default_env", "prepend_env", "append_env", "unset_env", "env_file"),
               module="shim.run.envlayer"),
    Capability("secrets", "fetch secrets into variables and files (Vault, AWS, GCP, Azure, HTTP, files)",
               ("secret", "secret_env_prefix", "secret_file", "secret_dir", "env_from", "secret_items",
                "env_refs", "fetch_deadline", "vault_token_file", "scrub_credentials", "scrub_env"),
               enabled_by=("secret", "secret_env_prefix", "secret_file", "secret_dir", "env_from",
                           "secret_items"),
               module="shim.run.secrets"),
    Capability("refresh", "re-fetch secrets while the delegate runs, and act on a change",
               ("refresh", "refresh_signal", "on_change"),
               enabled_by=("refresh",), resident="re-fetching secrets while the delegate runs",
               phase="beside", module="shim.run.refresh"),
    Capability("templates", "config files rendered from templates with references and variables",
               ("template",), enabled_by=("template",), module="shim.run.templates"),
    Capability("waiting", "start only once files exist and dependencies answer",
               ("wait_file", "wait_for", "wait_timeout", "poll_interval"),
               enabled_by=("wait_file", "wait_for"), module="shim.run.waiter"),
    Capability("steps", "Tekton-style steps: post files, cancel files, continue on error",
               ("post_file", "cancel_file", "on_error"),
               enabled_by=("post_file", "cancel_file"),
               resident="writing the post file or watching the cancel file after the delegate starts",
               phase="after", module="shim.run.results"),
    Capability("hooks", "executables run before and after the delegate",
               ("pre_hooks", "post_hooks", "hook_timeout", "hook_failure"),
               enabled_by=("post_hooks",), resident="running post-hooks after the delegate",
               phase="after", module="shim.run.hooks"),
    Capability("results", "the result record and Kubernetes' termination message",
               ("result_file", "termination_path", "results_dir"),
               enabled_by=("result_file", "termination_path"),
               resident="writing the result record after the delegate", phase="after",
               module="shim.run.results"),
    Capability("platform", "runtime detection and the SageMaker contract, both ways",
               ("runtime", "hyperparameters_env", "hyperparameters_file", "hyperparameters_dir",
                "hyperparameters_from", "hyperparameters", "sagemaker_layout", "sagemaker_root",
                "sagemaker_channels", "sagemaker_hosts", "sagemaker_current_host",
                "sagemaker_network_interface", "sagemaker_job_name"),
               module="shim.platform.sagemaker"),
    Capability("capture", "tee and mask the delegate's output",
               ("stdout_path", "stderr_path", "mask_env", "mask_secrets", "mask_delay", "flush_timeout"),
               enabled_by=("stdout_path", "stderr_path", "mask_env"),
               resident="capturing the delegate's output", phase="beside",
               module="shim.streams.capture", service=True),
    Capability("log sinks", "ship output lines as JSON records to files, sockets and HTTP",
               ("log_sink", "log_label", "max_line", "log_overflow", "log_block_limit", "log_buffer"),
               enabled_by=("log_sink",), resident="shipping output to log sinks", phase="beside",
               module="shim.streams.sinks", service=True),
    Capability("statsd", "a StatsD relay for the delegate's metrics, and shim's own",
               ("statsd_gateway", "statsd_listen", "statsd_tag", "statsd_tag_style", "statsd_mtu",
                "statsd_flush"),
               enabled_by=("statsd_gateway",), resident="relaying metrics", phase="beside",
               module="shim.telemetry.statsd", service=True),
    Capability("heartbeat", "liveness probes and status posts while the delegate runs",
               ("heartbeat", "heartbeat_interval", "heartbeat_failures", "status_url"),
               enabled_by=("heartbeat", "status_url"), resident="sending heartbeats", phase="beside",
               module="shim.telemetry.heartbeat", service=True),
    Capability("relay", "the delegate's stdin/stdout/stderr over TCP or Unix sockets",
               ("stdin_from", "stdout_to", "stderr_to", "relay_timeout"),
               enabled_by=("stdin_from", "stdout_to", "stderr_to"), resident="relaying stdio",
               phase="beside", module="shim.telemetry.relay", service=True),
    Capability("report", "a JSON run report to a file or an HTTP endpoint",
               ("report",), enabled_by=("report",), resident="writing the run report",
               phase="after", module="shim.telemetry.report", service=True),
    Capability("debugging", "pause before the delegate or after a failure (Tekton breakpoints)",
               ("breakpoint_on_failure", "breakpoint_before", "debug_dir"),
               enabled_by=("breakpoint_on_failure", "breakpoint_before"),
               resident="pausing after a failure", phase="after", module="shim.run.breakpoint"),
)

# The options a newcomer needs first: --help shows these, `--help-all` everything.
MOST_USED = ("config", "env_file", "env", "secret", "secret_file", "timeout", "grace", "rewrite",
             "wait_file", "user", "log_level")

# Options whose capability keeps shim resident only for some of its enabling options:
# breakpoint_before pauses before the delegate, then shim may still exec it.
_NOT_RESIDENT = frozenset({"breakpoint_before"})


def resident_options() -> "tuple[str, ...]":
    """Every option that, when set, rules out exec mode (in registry order)."""
    return tuple(name for cap in CAPABILITIES if cap.resident for name in cap.enabled_by
                 if name not in _NOT_RESIDENT)


def service_options() -> "tuple[str, ...]":
    """The options that turn on a service beside the delegate (shim.run.services)."""
    return tuple(name for cap in CAPABILITIES if cap.service for name in cap.enabled_by)


def owner(option: str) -> "Capability":
    """The capability an option belongs to."""
    for cap in CAPABILITIES:
        if option in cap.options:
            return cap
    raise KeyError(option)
