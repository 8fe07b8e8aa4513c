"""One option of `shim run`: its flag(s), variable, config key, kind, default and help."""

# -- kinds: each has one converter in shim.config.kinds ---------------------------
STR, PATH, BOOL, DURATION, ENUM, LIST, MAP, JSON, SIGNAL_MAP, EXIT_MAP, COMMAND_MAP = (
    "str", "path", "bool", "duration", "enum", "list", "map", "json", "signal_map", "exit_map",
    "command_map",
)
INT, SIZE = "int", "size"  # a whole number >= 0; a byte count (64k, 1M, or plain bytes)
TEMPLATE_LIST = "template_list"  # SRC=DST strings or template objects (table/templates.py)
# Kinds given as KEY<sep>VALUE on the command line and as an object in a file.
MAP_KINDS = (MAP, SIGNAL_MAP, EXIT_MAP)
# Kinds that may be repeated on the command line.
REPEATABLE = (LIST, TEMPLATE_LIST) + MAP_KINDS


class HelpRequested(Exception):
    """-h/--help (or --help-all: `full`) was given: the caller prints its help and exits 0."""

    def __init__(self, full=False):
        super().__init__()
        self.full = full


class Option:
    """One option.  `key` is its config-file path ("supervise.grace"; None: not in files)."""

    __slots__ = ("name", "flags", "env", "key", "kind", "default", "help",
                 "choices", "sep", "metavar", "flag_value", "schema", "zero_is_none", "minimum")

    def __init__(self, name, flags, key, kind, default, help, choices=None,
                 sep="=", metavar=None, flag_value=None, schema=None, zero_is_none=False, env=None,
                 minimum=None):
        self.name = name
        self.flags = flags
        self.env = env or "SHIM_" + name.upper()
        self.key = key
        self.kind = kind
        self.default = default
        self.help = help
        self.choices = choices
        self.sep = sep  # map kinds: the separator of `--flag KEY<sep>VALUE`
        self.metavar = metavar or name.upper()
        self.flag_value = flag_value  # extra flags that set a fixed value
        self.schema = schema  # JSON Schema of the value in a file, when the kind's is too loose
        self.zero_is_none = zero_is_none  # durations: 0 means "no timeout"
        # The documented floor of a number/duration/size (an interval of 0 would spin):
        # a value below it is a usage error (exit 125), never silently raised.
        self.minimum = minimum

    @property
    def section(self) -> str:
        """The config section this option belongs to ("" for top-level options)."""
        return self.key.split(".", 1)[0] if self.key and "." in self.key else ""

    @property
    def attr(self) -> str:
        """Its attribute on the section's settings object (the key's last part)."""
        if self.key is None:
            return self.name
        return self.key.split(".", 1)[1] if "." in self.key else self.key
