"""Top-level options: config file, profile, logging, where the delegate comes from."""

from shim.config.option import COMMAND_MAP, ENUM, JSON, PATH, STR, Option

SECTION = ""

OPTIONS = (
    Option("config", ["--config"], None, PATH, None,
           "JSON config file (not itself a config key)", metavar="PATH"),
    Option("profile", ["--profile"], "profile", STR, None,
           "apply profiles.NAME of the config file over the file's values", metavar="NAME"),
    Option("log_level", ["--log-level"], "log_level", ENUM, "warn",
           "how much shim says on stderr", choices=("error", "warn", "info", "debug")),
    Option("entrypoint", ["--entrypoint"], "entrypoint", STR, None,
           "delegate command line when none follows '--' (shell-word split, never run by a shell)",
           metavar="CMDLINE"),
    Option("image_entrypoint", ["--image-entrypoint"], "image_entrypoint", JSON, None,
           "the image's recorded ENTRYPOINT/CMD as JSON (or @FILE), optionally per platform",
           metavar="JSON"),
    Option("commands", ["--commands"], "commands", COMMAND_MAP, {},
           "delegate per first word, as SageMaker starts images (IMAGE train, IMAGE serve): "
           '{"train": [...], "serve": [...]}, JSON or @FILE', metavar="JSON"),
)
