"""Round-trip YAML/JSON documents: read with comments and key order kept, write back.

ruamel.yaml does the round trip (PyYAML drops comments and reorders nothing but
loses them); JSON input is YAML too, so one loader serves both.  Errors name the
file, line and column, as one line.
"""

import io
import os
import sys

from shim.errors import ShimError

STDIN = "-"


def _yaml():
    try:
        from ruamel.yaml import YAML
    except ImportError:
        raise ShimError("load", "ruamel.yaml", "not installed (the tooling needs it to keep comments and key order)",
                        "pip install 'shim[tools]'") from None

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold long command lines
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def read_text(path, keep_newlines=False):
    """The file's text; line endings become \\n (as text mode reads them), or stay as they are with
    keep_newlines (a CRLF Dockerfile is written back CRLF)."""
    try:
        if path == STDIN:
            text = sys.stdin.buffer.read().decode("utf-8")
        else:
            with open(path, encoding="utf-8", newline="") as fh:
                text = fh.read()
        return text if keep_newlines else text.replace("\r\n", "\n").replace("\r", "\n")
    except OSError as err:
        raise ShimError("read", "<stdin>" if path == STDIN else path, (err.strerror or str(err)).lower(),
                        "check the path and its permissions") from None
    except UnicodeDecodeError as err:
        raise ShimError("read", "<stdin>" if path == STDIN else path, f"not UTF-8 text ({err.reason})",
                        "save it as UTF-8") from None


def load_all(text, name):
    """Every document of a YAML/JSON stream, as round-trip nodes (None for empty ones)."""
    yaml = _yaml()
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return list(yaml.load_all(text))
    except RecursionError:
        raise too_deep(name) from None
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        cause = " ".join(str(err.problem or err.context or "invalid YAML").split())
        raise ShimError("parse", where, f"invalid YAML: {cause}", "fix the document at that line and column") from None
    except YAMLError as err:
        raise ShimError("parse", name, f"invalid YAML: {' '.join(str(err).split())}",
                        "fix the document") from None
    except (TypeError, ValueError, OverflowError, AttributeError, KeyError, IndexError):
        # ruamel's constructors raise these for valid syntax that makes no value: a mapping or list
        # as a mapping key (`? [a]`), an impossible date (2026-13-45), a huge float exponent.
        raise ShimError("parse", name, "invalid YAML: a node that makes no value (a list or mapping used as "
                        "a key, an impossible date or number)", "fix the document") from None


def dump_all(docs, name="the output"):
    """The documents as one YAML stream (`---` between documents)."""
    out = io.StringIO()
    try:
        _yaml().dump_all(docs, out)
    except RecursionError:
        raise too_deep(name) from None
    return out.getvalue()


def too_deep(name):
    """ruamel.yaml and json recurse per level: a document nested hundreds deep is no manifest."""
    return ShimError("parse", name, "nested too deeply to be a Kubernetes manifest",
                     "check what generated it (a manifest nests a few dozen levels at most)")


def line_of(node, key=None):
    """1-based line of a mapping (or of one of its keys) in the source, or 0 if unknown."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return 0
    try:
        if key is not None:
            return lc.key(key)[0] + 1
        return lc.line + 1
    except (KeyError, TypeError, AttributeError):
        return 0


def write_atomic(path, text):
    """Replace `path` with `text` in one rename (the runtime's atomic writer), keeping its mode."""
    from shim.util.fsutil import atomic_write

    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = 0o644
    atomic_write(path, text.encode("utf-8"), mode=mode)
