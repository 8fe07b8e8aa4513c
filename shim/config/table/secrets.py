"""Section `secrets`: references fetched before the delegate starts, and where they go.

In a config file the section is either a list of items (the short form) or an object with
these keys, `items` holding the list.  An item is
`{"ref": REF, "env"|"env_prefix"|"file"|"dir"|"env_from": ..., "mode", "owner",
"optional", "default"}` (checked by shim.run.secrets.plan).
"""

from shim.config.option import BOOL, DURATION, ENUM, JSON, LIST, MAP, PATH, STR, Option

SECTION = "secrets"

_STR = {"type": "string", "minLength": 1}
ITEM_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["ref"],
    "properties": {
        "ref": dict(_STR, description="ref+SCHEME://... or an AWS secret/parameter ARN"),
        "env": dict(_STR, description="one variable"),
        "env_prefix": {"type": "string", "description": "every key as PREFIX+KEY"},
        "file": dict(_STR, description="one file"),
        "dir": dict(_STR, description="a Kubernetes Secret-volume directory"),
        "env_from": {"const": True, "description": "variables from dotenv text or a JSON object"},
        "mode": {"anyOf": [{"type": "string", "pattern": "^0?[0-7]{3,4}$"},
                           {"type": "integer", "minimum": 0, "maximum": 4095}],
                 "description": "file mode, octal string (\"0440\"); default 0400"},
        "owner": {"type": "string", "pattern": "^[0-9]+(:[0-9]+)?$",
                  "description": "UID[:GID] of files; default shim's own user"},
        "optional": {"type": "boolean", "description": "a failure leaves the target out"},
        "default": {"type": "string", "description": "value when an optional item fails"},
    },
    "oneOf": [{"required": [k]} for k in ("env", "env_prefix", "file", "dir", "env_from")],
}

OPTIONS = (
    Option("secret", ["--secret"], "secrets.env", MAP, {},
           "set variable NAME to the value of REF (ref+vault://..., ref+awssecrets://..., "
           "an AWS ARN...); repeatable", metavar="NAME=REF"),
    Option("secret_env_prefix", ["--secret-env-prefix"], "secrets.env_prefix", MAP, {},
           "every key of REF (a JSON object, a Vault secret, an SSM path) as PREFIX+KEY, the key "
           "upper-cased with other characters as _; repeatable", metavar="PREFIX=REF"),
    Option("secret_file", ["--secret-file"], "secrets.files", MAP, {},
           "write the value of REF to PATH (atomically, mode 0400); repeatable",
           metavar="PATH=REF"),
    Option("secret_dir", ["--secret-dir"], "secrets.dirs", MAP, {},
           "write every key of REF as DIR/KEY in Kubernetes Secret-volume shape (..data); "
           "repeatable", metavar="DIR=REF"),
    Option("env_from", ["--env-from"], "secrets.env_from", LIST, [],
           "extra variables from REF: dotenv text or a JSON object of strings; repeatable",
           metavar="REF"),
    Option("secret_items", ["--secret-items"], "secrets.items", JSON, None,
           "the config section's item list as JSON (or @FILE): [{\"ref\", \"env\"|\"env_prefix\"|"
           "\"file\"|\"dir\"|\"env_from\", \"mode\", \"owner\", \"optional\", \"default\"}]",
           metavar="JSON", schema={"type": "array", "items": ITEM_SCHEMA}),
    Option("env_refs", ["--env-refs"], "secrets.env_refs", ENUM, "ref",
           "resolve variables whose value is or holds a reference in place: ref (ref+ URIs, "
           "also inside a longer value), all (also bare AWS secret/parameter ARNs and "
           "gcp:secretmanager: names, as secrets-init does) or off",
           choices=("ref", "all", "off"), flag_value={"--no-env-refs": "off"}),
    Option("fetch_deadline", ["--fetch-deadline"], "secrets.deadline", DURATION, 60.0,
           "give up fetching after this long (exit 117; at least 100ms)", minimum=0.1),
    Option("vault_token_file", ["--vault-token-file"], "secrets.vault_token_file", PATH, None,
           "read the Vault token from PATH (shim's own: never passed to the delegate)",
           metavar="PATH"),
    Option("scrub_credentials", ["--scrub-credentials"], "secrets.scrub_credentials", BOOL, False,
           "remove VAULT_TOKEN, AWS_* credentials and their token-file variables from the "
           "delegate's environment"),
    Option("scrub_env", ["--scrub-env"], "secrets.scrub_env", LIST, [],
           "remove NAME from the delegate's environment after fetching; repeatable",
           metavar="NAME"),
    Option("refresh", ["--refresh"], "secrets.refresh", DURATION, None,
           "re-fetch every target (variables, files, directories, templates) this often while "
           "the delegate runs (at least 1s); --on-change says what a change does",
           minimum=1.0),
    Option("refresh_signal", ["--refresh-signal"], "secrets.refresh_signal", STR, "HUP",
           "signal the delegate gets when a refresh changed a file or directory",
           metavar="SIGNAL"),
    Option("on_change", ["--on-change"], "secrets.on_change", STR, None,
           "what a --refresh that changed a value does: signal[:SIG] (default for files and "
           "templates: the --refresh-signal), restart (stop the delegate, start it again with "
           "the new values: how changed variables take effect), exec:CMD (run CMD as a hook), "
           "none", metavar="ACTION",
           schema={"type": "string",
                   "pattern": "^(none|restart|signal(:[A-Za-z0-9+-]+)?|exec:.+)$"}),
)
