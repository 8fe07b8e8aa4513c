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

Parsing is BuildKit's own (shimtools.buildkit: the `dockerfile` package, which
wraps BuildKit's parser, or a port of it checked against the package): heredocs,
parser directives, continuations and comments mean what they mean to
`docker build`.  Only the lines of the final stage's ENTRYPOINT change; every
other byte stays, CRLF line endings included.
"""

import json
import re
import sys

from shim.errors import ShimError

from . import buildkit, yamlio

MARK = "# shim dockerfile wrap"
_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}?")
_PLAIN = re.compile(r"^[^\s\x00-\x1f\x7f]+\Z")  # one word with no blank or control character
FLAGS_WITH_VALUE = ("--platform",)  # FROM --platform linux/arm64 IMAGE: the flag takes the next word


def _where(name, command):
    return f"{name}:{command.start_line}"


def _words(command, shell):
    """(argv, exec form?) of a CMD/ENTRYPOINT as Docker runs it: JSON words, or SHELL + the line."""
    if command.json:
        return list(command.value), True
    return ([*shell, command.value[0]] if command.value else []), False


class Stage:
    def __init__(self, commands, global_args, name):
        self.commands, self.file = commands, name
        head = commands[0]
        words, flags = list(head.value), list(head.flags)
        for flag in flags:  # newer BuildKit reads `--platform VALUE`; the package leaves VALUE among the words
            if flag in FLAGS_WITH_VALUE and words:
                words.pop(0)
        if not words:
            raise ShimError("wrap", _where(name, head), "FROM names no image", "write FROM IMAGE [AS NAME]")
        self.base = _substitute(words[0], global_args)
        self.name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else ""

    def last(self, keyword):
        found = [c for c in self.commands if c.cmd.upper() == keyword]
        return found[-1] if found else None

    def shell(self):
        command = self.last("SHELL")
        if command is None:
            return ["/bin/sh", "-c"]
        if not command.json or not command.value:
            raise ShimError("wrap", _where(self.file, command), "SHELL must be a non-empty JSON array of strings "
                            "(docker build refuses other forms)", 'write e.g. SHELL ["/bin/bash", "-c"]')
        return list(command.value)


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


def _arg_default(word):
    name, eq, default = word.partition("=")
    if not eq:
        return name, None
    try:
        default = "".join(buildkit.split_words(default, raw=False))
    except buildkit.ParseError:
        pass
    return name, default


def stages(commands, name="Dockerfile"):
    global_args, result, current = {}, [], None
    for command in commands:
        keyword = command.cmd.upper()
        if keyword == "FROM":
            current = [command]
            result.append(current)
        elif current is not None:
            current.append(command)
        elif keyword == "ARG":
            for word in command.value:
                arg, default = _arg_default(word)
                global_args[arg] = default
    if not result:
        raise ShimError("wrap", name, "no FROM instruction", "give a Dockerfile")
    defaults = {k: v for k, v in global_args.items() if v is not None}
    return [Stage(s, defaults, name) for s in result]


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
        entry, base_cmd = _words(entry_ins, stage.shell())[0], []  # resets inherited CMD
    cmd = _words(cmd_ins, stage.shell())[0] if cmd_ins is not None else base_cmd
    return entry, cmd


def _exec(words):
    return json.dumps(words, ensure_ascii=False)


def _wrapped(final, shim_path):
    entry = final.last("ENTRYPOINT")
    return bool(entry and entry.json and entry.value and entry.value[0] == shim_path and any(
        c.cmd.upper() == "COPY" and any(f.startswith("--from=") for f in c.flags) and c.value
        and c.value[-1] == shim_path for c in final.commands))


def _check_word(flag, value):
    if not _PLAIN.match(value):
        raise ShimError("parse", flag, f"{json.dumps(value)} must be one word without blanks or control "
                        "characters (it is written into a COPY line)", "pass the image reference or path as is")


def wrap(text, tools_image, shim_path="/shim", shim_args=(), lookup=None, name="Dockerfile"):
    """(new text, changed?) with the final stage's ENTRYPOINT behind shim."""
    if not tools_image:
        raise ShimError("parse", "--tools-image", "missing", "name the tools image (REGISTRY/shim-tools@sha256:…)")
    _check_word("--tools-image", tools_image)
    _check_word("--shim-path", shim_path)
    commands = buildkit.parse(text, name)
    stage_list = stages(commands, name)
    final = stage_list[-1]
    if _wrapped(final, shim_path):
        return text, False
    entry_ins, cmd_ins = final.last("ENTRYPOINT"), final.last("CMD")
    if entry_ins is not None:
        original, extra_cmd = _words(entry_ins, final.shell())[0], None
    else:
        try:
            original, base_cmd = inherited(stage_list, len(stage_list) - 1, lookup)
        except RecursionError:  # one level per stage that names the previous one
            raise ShimError("wrap", name, "too many stages inherit the ENTRYPOINT from one another",
                            "write the ENTRYPOINT into the final stage") from None
        extra_cmd = base_cmd if cmd_ins is None and base_cmd else None
    block = [MARK,
             f"COPY --from={tools_image} /shim {shim_path}",
             f"ENTRYPOINT {_exec([shim_path, *shim_args, '--', *original])}"]
    if extra_cmd:
        block += ["# the base image's CMD: a new ENTRYPOINT resets an inherited one", f"CMD {_exec(extra_cmd)}"]
    lines = buildkit.split_lines(text)  # as BuildKit counts them: after each \n only, endings kept
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"  # a CRLF file stays CRLF
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += newline
    block = [line + newline for line in block]
    if entry_ins is not None:
        lines[entry_ins.start_line - 1:entry_ins.end_line] = block
    else:
        lines += block
    new = "".join(lines)
    # Read back as BuildKit will: a file ending inside a continuation (`RUN x \`) would swallow the block.
    if not _wrapped(stages(buildkit.parse(new, name), name)[-1], shim_path):
        last = commands[-1]
        raise ShimError("wrap", f"{name}:{last.start_line}", "the last instruction runs on to the end of the file "
                        "(a line continuation with nothing after it), so lines added after it would join it",
                        "end that instruction, then wrap again")
    return new, True


def wrap_command(args, lookup):
    path = args.file
    name = "<stdin>" if path == yamlio.STDIN else path
    if args.in_place and path == yamlio.STDIN:
        raise ShimError("parse", "--in-place", "cannot rewrite stdin", "name the file with -f FILE")
    text = yamlio.read_text(path, keep_newlines=True)
    new, changed = wrap(text, args.tools_image, args.shim_path, tuple(args.shim_arg), lookup, name)
    if args.in_place:
        if changed:
            yamlio.write_atomic(path, new)
        return 0
    sys.stdout.write(new)
    sys.stdout.flush()
    return 0
