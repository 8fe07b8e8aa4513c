"""Section `env`: the delegate's environment (set, default, prepend, append, unset, files)."""

from shim.config.option import LIST, MAP, Option

SECTION = "env"

OPTIONS = (
    Option("env", ["--env", "-e"], "env.set", MAP, {},
           "set NAME=VALUE in the delegate's environment; repeatable", metavar="NAME=VALUE"),
    Option("default_env", ["--default-env"], "env.default", MAP, {},
           "set NAME=VALUE only if NAME is unset; repeatable", metavar="NAME=VALUE"),
    Option("prepend_env", ["--prepend-env"], "env.prepend", MAP, {},
           "prepend VALUE to the ':'-list NAME (PATH-like); repeatable", metavar="NAME=VALUE"),
    Option("append_env", ["--append-env"], "env.append", MAP, {},
           "append VALUE to the ':'-list NAME; repeatable", metavar="NAME=VALUE"),
    Option("unset_env", ["--unset-env"], "env.unset", LIST, [],
           "remove NAME from the delegate's environment; repeatable", metavar="NAME"),
    Option("env_file", ["--env-file"], "env.files", LIST, [],
           "read NAME=VALUE lines (dotenv syntax); repeatable", metavar="PATH"),
)
