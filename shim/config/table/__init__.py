"""The option table, one module per config section.

Each module names its SECTION (the config-file key; "" for top-level options)
and its OPTIONS.  A new capability adds a module here and one line below; the
flags, SHIM_* variables, config keys, JSON Schema and --help all follow.
"""

from shim.config.table import (
                               debug,
                               env,
                               general,
                               heartbeat,
                               hooks,
                               identity,
                               logs,
                               metrics,
                               platform,
                               relay,
                               report,
                               results,
                               secrets,
                               steps,
                               supervise,
                               templates,
)

# Order is the order of --help and of the README's table.
MODULES = (general, supervise, identity, env, secrets, templates, steps, hooks, results,
           platform, logs, metrics, heartbeat, relay, report, debug)

# Sections a later version of shim will read.  A config that uses one is refused
# ("not supported by this version") rather than silently ignored.
UNSUPPORTED_SECTIONS = ()
