"""`shim dockerfile wrap`: put shim in front of a Dockerfile's final stage.

    shim dockerfile wrap -f Dockerfile --tools-image REGISTRY/shim-tools@sha256:… [--in-place]

The final stage gets `COPY --from=TOOLS /shim /shim` and
`ENTRYPOINT ["/shim", options…, "--", original ENTRYPOINT…]`:

* exec form `ENTRYPOINT ["a", "b"]` -> `["/shim", "--", "a", "b"]`;
* shell form `ENTRYPOINT a b` is what Docker runs as `SHELL + ["a b"]`
  (default `/bin/sh -c`), so that is what goes after `--`;
* no ENTRYPOINT in the stage: the inherited one — from an earlier stage of the
  same file, or the base image's, looked up like `shim k8s inject` does.
  Setting ENTRYPOINT resets a CMD inherited from the base image (Docker's
  rule), so an inherited CMD is written out again when the stage has none;
* CMD stays as it is.  Running twice changes nothing.

Parsing covers what the final stage's ENTRYPOINT/CMD/FROM need: parser
directives (escape), line continuations, comments, heredocs, global ARG
defaults in FROM.
"""

import json
import re
import sys
from dataclasses import dataclass

from shim.errors import ShimError

from . import yamlio

MARK = "# shim dockerfile wrap"
_HEREDOC = re.compile(r"<<-?[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}?")


@dataclass
class Instruction:
    first: int  # index of its first line
    last: int  # index of its last line (inclusive)
    keyword: str
    value: str


def _escape_char(lines):
    for line in lines:
        m = re.match(r"^#\s*escape\s*=\s*(\S)\s*$", line, re.I)
        if m:
            return m.group(1)
        if not re.match(r"^#\s*\w+\s*=", line):
            break
    return "\\"


def parse(text):
    """The Dockerfile's instructions, with the line range each one spans."""
    lines = text.splitlines()
    esc = _escape_char(lines)
    out, i = [], 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first, parts = i, []
        while True:
            line = lines[i]
            if line.rstrip().endswith(esc):
                parts.append(line.rstrip()[:-1])
                i += 1
                while i < len(lines) and lines[i].strip().startswith("#"):
                    i += 1  # comments inside a continuation are dropped by Docker too
                if i >= len(lines):
                    break
                continue
            parts.append(line)
            break
        joined = " ".join(p.strip() for p in parts)
        keyword, _, value = joined.partition(" ")
        heredoc = _HEREDOC.search(value) if keyword.upper() in ("RUN", "COPY", "ADD") else None
        if heredoc:  # skip the here-document's body
            while i + 1 < len(lines) and lines[i + 1].strip() != heredoc.group(1):
                i += 1
            i += 1
        out.append(Instruction(first, i, keyword.upper(), value.strip()))
        i += 1
    return out


def _words(value, shell, what):
    """(argv, exec form?) of a CMD/ENTRYPOINT value, as Docker runs it."""
    if value.startswith("["):
        try:
            words = json.loads(value)
            if isinstance(words, list) and all(isinstance(w, str) for w in words):
                return words, True
        except ValueError:
            pass  # Docker treats an invalid JSON array as shell form
    return [*shell, value], False


class Stage:
    def __init__(self, instructions, global_args):
        self.instructions = instructions
        head = instructions[0].value.split()
        words = [w for w in head if not w.startswith("--")]
        self.base = _substitute(words[0], global_args) if words else ""
        self.name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else ""

    def last(self, keyword):
        found = [ins for ins in self.instructions if ins.keyword == keyword]
        return found[-1] if found else None

    def shell(self):
        ins = self.last("SHELL")
        return json.loads(ins.value) if ins else ["/bin/sh", "-c"]


def _substitute(text, args):
    def repl(m):
        value = args.get(m.group(1))
        if value is None:
            value = m.group(2)
        if value is None:
            raise ShimError("wrap", f"FROM {text}", f"${m.group(1)} has no default value",
                            "give the ARG a default, or add an ENTRYPOINT to the final stage")
        return value
    return _VAR.sub(repl, text)


def stages(instructions):
    global_args, result, current = {}, [], None
    for ins in instructions:
        if ins.keyword == "FROM":
            current = [ins]
            result.append(current)
        elif current is not None:
            current.append(ins)
        elif ins.keyword == "ARG":
            name, _, default = ins.value.partition("=")
            global_args[name.strip()] = default.strip().strip("\"'") if default else None
    if not result:
        raise ShimError("wrap", "Dockerfile", "no FROM instruction", "give a Dockerfile")
    return [Stage(s, {k: v for k, v in global_args.items() if v is not None}) for s in result]


def inherited(stage_list, index, lookup):
    """(ENTRYPOINT, CMD) stage `index` starts with: from an earlier stage or the base image."""
    stage = stage_list[index]
    for j in range(index - 1, -1, -1):
        if stage_list[j].name and stage_list[j].name == stage.base.lower():
            return effective(stage_list, j, lookup)
    if stage.base == "scratch":
        return [], []
    if lookup is None:
        raise ShimError("wrap", f"FROM {stage.base}", "the final stage has no ENTRYPOINT and lookup is off",
                        "add an ENTRYPOINT to the final stage")
    info = lookup.lookup(stage.base)
    conf = info.same_everywhere()
    if conf is None:
        raise ShimError("wrap", f"FROM {stage.base}", "the base image's ENTRYPOINT/CMD differ per platform",
                        "write the ENTRYPOINT into the final stage")
    return list(conf.get("Entrypoint") or []), list(conf.get("Cmd") or [])


def effective(stage_list, index, lookup):
    stage = stage_list[index]
    entry_ins, cmd_ins = stage.last("ENTRYPOINT"), stage.last("CMD")
    if entry_ins is None:
        entry, base_cmd = inherited(stage_list, index, lookup)
    else:
        entry, base_cmd = _words(entry_ins.value, stage.shell(), "ENTRYPOINT")[0], []  # resets inherited CMD
    cmd = _words(cmd_ins.value, stage.shell(), "CMD")[0] if cmd_ins is not None else base_cmd
    return entry, cmd


def _exec(words):
    return json.dumps(words)


def wrap(text, tools_image, shim_path="/shim", shim_args=(), lookup=None):
    """(new text, changed?) with the final stage's ENTRYPOINT behind shim."""
    if not tools_image:
        raise ShimError("parse", "--tools-image", "missing", "name the tools image (REGISTRY/shim-tools@sha256:…)")
    lines = text.splitlines()
    instructions = parse(text)
    stage_list = stages(instructions)
    final = stage_list[-1]
    entry_ins, cmd_ins = final.last("ENTRYPOINT"), final.last("CMD")
    if entry_ins is not None:
        words, exec_form = _words(entry_ins.value, final.shell(), "ENTRYPOINT")
        if exec_form and words and words[0] == shim_path and any(
                i.keyword == "COPY" and "--from=" in i.value and i.value.split()[-1] == shim_path
                for i in final.instructions):
            return text, False
        original, extra_cmd = words, None
    else:
        original, base_cmd = inherited(stage_list, len(stage_list) - 1, lookup)
        extra_cmd = base_cmd if cmd_ins is None and base_cmd else None
    block = [MARK,
             f"COPY --from={tools_image} /shim {shim_path}",
             f"ENTRYPOINT {_exec([shim_path, *shim_args, '--', *original])}"]
    if extra_cmd:
        block += ["# the base image's CMD: a new ENTRYPOINT resets an inherited one", f"CMD {_exec(extra_cmd)}"]
    if entry_ins is not None:
        lines[entry_ins.first:entry_ins.last + 1] = block
    else:
        lines += block
    return "\n".join(lines) + "\n", True


def wrap_command(args, lookup):
    path = args.file
    name = "<stdin>" if path == yamlio.STDIN else path
    if args.in_place and path == yamlio.STDIN:
        raise ShimError("parse", "--in-place", "cannot rewrite stdin", "name the file with -f FILE")
    text = yamlio.read_text(path)
    try:
        new, changed = wrap(text, args.tools_image, args.shim_path, tuple(args.shim_arg), lookup)
    except ShimError as err:
        if err.obj == "Dockerfile":
            err.obj = name
        raise
    if args.in_place:
        if changed:
            yamlio.write_atomic(path, new)
        return 0
    sys.stdout.write(new)
    sys.stdout.flush()
    return 0
