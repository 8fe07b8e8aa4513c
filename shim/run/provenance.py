"""Which step put each name in the delegate's environment (names only, never a value).

`shim explain` shows it before a run; a run logs it at debug level and puts it in --report.
Steps, in the order the pipeline applies them: the runtime (SHIM_RUNTIME), the SageMaker
contract, env files, --env / --default-env / --prepend-env / --append-env / --unset-env (named
as the user wrote them: flag, variable or config key), hygiene, references.
"""

from shim.errors import ShimError

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Mapping

    from shim.config.options import Config
    from shim.run.secrets import Target

HYGIENE = "hygiene (shim's own credentials, --scrub-credentials, --scrub-env)"


class Trace:
    """{name: [steps]}, filled step by step."""

    def __init__(self):
        self.steps = {}

    def mark(self, name: str, step: str) -> None:
        self.steps.setdefault(name, []).append(step)

    def platform(self, config: "Config", platform_env: "Mapping[str, str]") -> None:
        for name in platform_env:
            source = config.detection.source if config.detection else "platform"
            self.mark(name, "runtime" if name == "SHIM_RUNTIME" else "SageMaker contract")
            if name == "SHIM_RUNTIME":
                self.steps[name][-1] = f"runtime ({source})"

    def configured(self, config: "Config", env: "Mapping[str, str]") -> None:
        """The env section's steps over `env` (the environment before them), in build() order."""
        from shim.run import envlayer

        names = set(env)
        for path in config.env.files:
            try:
                pairs = envlayer.parse_dotenv(envlayer._read_env_file(path), path,
                                              dict.fromkeys(names, ""))
            except ShimError:
                continue  # the build reports it
            for name, _ in pairs:
                names.add(name)
                self.mark(name, f"env file {path}")
        for option, verb in (("env", "set"), ("default_env", "default"),
                             ("prepend_env", "prepend"), ("append_env", "append")):
            for name in config.value(option):
                if option == "default_env" and name in names:
                    continue
                names.add(name)
                self.mark(name, f"{config.source_of(option)} {name} ({verb})")
        for name in config.env.unset:
            names.discard(name)
            self.mark(name, f"{config.source_of('unset_env')} {name} (unset)")

    def scrubbed(self, before: "Mapping[str, str]", after: "Mapping[str, str]") -> None:
        for name in set(before) - set(after):
            self.mark(name, HYGIENE)

    def references(self, targets: "list[Target]") -> None:
        for t in targets:
            if t.kind == "env":
                self.mark(t.dest, f"reference ({t.where})")
            elif t.kind == "env_prefix":
                self.mark(t.dest + "*", f"reference ({t.where})")
            elif t.kind == "env_from":
                self.mark("*", f"reference ({t.where}): every key of the fetched document")


def diff(inherited: "Mapping[str, str]", env: "Mapping[str, str]", steps: "dict[str, list[str]]") -> "dict[str, Any]":
    """Names added, removed and changed against what shim inherited, each with its steps."""
    def row(name: str) -> "dict[str, Any]":
        return {"name": name, "steps": steps.get(name, ["inherited"])}

    added = [row(n) for n in sorted(set(env) - set(inherited))]
    removed = [row(n) for n in sorted(set(inherited) - set(env))]
    changed = [row(n) for n in sorted(set(env) & set(inherited))
               if env[n] != inherited[n] or n in steps]
    wildcard = [{"name": n, "steps": s} for n, s in sorted(steps.items()) if n.endswith("*")]
    return {"added": added, "removed": removed, "changed": changed, "patterns": wildcard}


def lines(found: "dict[str, Any]") -> "list[str]":
    """One debug line per name: `env NAME added by STEP; STEP`."""
    out = []
    for kind in ("added", "removed", "changed", "patterns"):
        for row in found[kind]:
            out.append(f"env {row['name']} {kind if kind != 'patterns' else 'set'} by "
                       + "; ".join(row["steps"]))
    return out


def run_trace(config: "Config", inherited: "Mapping[str, str]", platform_env: "Mapping[str, str]",
              sources_env: "Mapping[str, str]", env: "Mapping[str, str]",
              targets: "list[Target]") -> "dict[str, Any]":
    """The trace of a real run (the pipeline's env at each step)."""
    trace = Trace()
    trace.platform(config, platform_env)
    trace.configured(config, dict(inherited, **platform_env))
    trace.scrubbed(sources_env, env)
    trace.references(targets)
    return diff(inherited, env, trace.steps)
