"""Dockerfile instructions as BuildKit reads them: the `dockerfile` package, or a port of its parser.

`parse(text)` returns BuildKit's instruction list (keyword, flags, value words,
JSON form or not, first and last line, heredocs).  The `dockerfile` package
(PyPI) wraps BuildKit's own Go parser and is used whenever it imports.  PyPI
has that wheel for x86_64 Linux only, so the tooling image's arm64 variant (and
any machine without the wheel) uses the port below: BuildKit's
frontend/dockerfile/parser Parse loop — parser directives, the escape token,
line continuations, comment and empty lines inside them, heredocs (which words
open one, chomping, the terminator line), splitCommand's builder flags and
parseMaybeJSON.  tests/fuzz/test_tooling.py checks the port against the package
on random Dockerfiles, so the two stay equal.
"""

import json
import re
from collections import namedtuple

from shim.errors import ShimError

# The same fields as dockerfile.Command (heredocs: (name, file descriptor, content) each).
Command = namedtuple("Command", "cmd sub_cmd json original start_line end_line flags value heredocs")
Heredoc = namedtuple("Heredoc", "name file_descriptor content")


class ParseError(ValueError):
    """What BuildKit refuses (the package raises dockerfile.GoParseError for the same inputs)."""


def parse(text, name="Dockerfile"):
    """BuildKit's instructions of `text`; a ShimError naming `name` for what BuildKit refuses."""
    if "\x00" in text:  # the package hands the text over as a C string: it would read up to the NUL only
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ShimError("parse", f"{name}:{line}", "a NUL byte in the Dockerfile", "save it as plain text")
    try:
        import dockerfile
    except ImportError:
        dockerfile = None
    try:
        if dockerfile is not None:
            return from_package(dockerfile.parse_string(text))
        return port(text)
    except (ParseError, ValueError) as err:  # dockerfile.GoParseError is a ValueError
        raise ShimError("parse", name, " ".join(str(err).split()) or "not a Dockerfile",
                        "fix the Dockerfile (BuildKit refuses it too)") from None


def from_package(commands):
    """The package's commands as Command tuples (it gives None for an empty keyword or line)."""
    return tuple(Command(c.cmd or "", c.sub_cmd, c.json, c.original or "", c.start_line, c.end_line,
                         tuple(c.flags), tuple("" if v is None else v for v in c.value),
                         tuple(Heredoc(h.name, h.file_descriptor, h.content) for h in c.heredocs))
                 for c in commands)


# -- the port ------------------------------------------------------------------------------

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$", re.S)
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
HEREDOC_COMMANDS = ("run", "copy", "add")
JSON_COMMANDS = ("cmd", "entrypoint", "run", "shell")  # parseMaybeJSON
JSON_LIST_COMMANDS = ("add", "copy", "volume")  # parseMaybeJSONToList
STRING_COMMANDS = ("maintainer", "stopsignal", "user", "workdir")  # parseString
KNOWN_COMMANDS = (*JSON_COMMANDS, *JSON_LIST_COMMANDS, *STRING_COMMANDS, "arg", "env", "expose", "from",
                  "healthcheck", "label", "onbuild")
# Go's unicode.IsSpace (Unicode White_Space; Python's isspace() also takes \x1c-\x1f, Go does not).
_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"


def split_lines(text):
    """bufio scanLines as BuildKit uses it: split after each \\n, endings kept."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    return lines + [parts[-1]] if parts[-1] else lines


def _trim_newline(line):
    return line.rstrip("\r\n")


def _is_comment(line):
    return _trim_newline(line).lstrip(_SPACE).startswith("#")


class _Directives:
    def __init__(self):
        self.done, self.seen = False, set()
        self.set_escape("\\")

    def set_escape(self, token):
        if token not in ("`", "\\"):
            raise ParseError(f"invalid escape token '{token}' does not match ` or \\")
        self.escape = token
        e = re.escape(token)
        self.continuation = re.compile(rf"([^{e}]){e}[ \t]*$|^{e}[ \t]*$")

    def possible(self, line):
        if self.done:
            return
        m = _DIRECTIVE.match(line)
        if not m or m.group(1).lower() not in ("escape", "syntax"):
            self.done = True
            return
        key = m.group(1).lower()
        if key in self.seen:
            raise ParseError(f"only one {key} parser directive can be used")
        self.seen.add(key)
        if key == "escape":
            self.set_escape(m.group(2))


def _process(directives, line, strip_left):
    line = _trim_newline(line)
    if strip_left:
        line = line.lstrip(_SPACE)
    directives.possible(line)
    return "" if line.startswith("#") else line


def _trim_continuation(directives, line):
    if directives.continuation.search(line):
        return directives.continuation.sub(r"\1", line, count=1), False
    return line, True


def port(text):
    """BuildKit's parser.Parse over `text` (see the module docstring for what it covers)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines, directives, out = split_lines(text), _Directives(), []
    i = 0
    while i < len(lines):
        line = _process(directives, lines[i], True)
        i += 1
        start = i
        line, end_of_line = _trim_continuation(directives, line)
        if end_of_line and line == "":
            continue
        while not end_of_line and i < len(lines):
            raw = lines[i]
            part = _process(directives, raw, False)
            i += 1
            if _is_comment(raw) or not _trim_newline(raw).lstrip(_SPACE):
                continue  # comment and empty lines inside a continuation are dropped
            part, end_of_line = _trim_continuation(directives, part)
            line += part
        command = _command(line)
        heredocs = []
        if _reads_heredocs(command):
            for name, fd, chomp in _heredocs_of(line):
                content, terminated = "", False
                while i < len(lines):
                    raw = lines[i]
                    i += 1
                    candidate = _trim_newline(raw)
                    if (candidate.lstrip("\t") if chomp else candidate) == name:
                        terminated = True
                        break
                    content += raw
                if not terminated:
                    raise ParseError("unterminated heredoc")
                heredocs.append(Heredoc(name, fd, content))
        if command.cmd.upper() == "ONBUILD":
            heredocs = []  # the body lines are read, but BuildKit attaches them to no ONBUILD node
        # BuildKit's Original: the line, then each body and its terminator as named (chomped tabs gone).
        original = line + "\n" + "".join(h.content + h.name + "\n" for h in heredocs) if heredocs else line
        out.append(command._replace(original=original, start_line=start, end_line=i, heredocs=tuple(heredocs)))
    if not out:
        raise ParseError("file with no instructions")
    return tuple(out)


def _reads_heredocs(command):
    """canContainHeredoc: RUN, COPY and ADD in shell form (also behind ONBUILD)."""
    cmd = command.sub_cmd if command.cmd.upper() == "ONBUILD" and command.sub_cmd else command.cmd
    return cmd.lower() in HEREDOC_COMMANDS and not command.json


def _command(line):
    """splitCommand, then the keyword's argument parser (the forms wrap needs; others as one value)."""
    head = _WHITESPACE.split(line.strip(_SPACE), 1)
    cmd, flags, rest = head[0], (), ""
    if len(head) == 2:
        rest, flags = _builder_flags(head[1])
        rest = rest.strip(_SPACE)
    keyword = cmd.lower()
    sub_cmd, is_json, value = None, False, ()
    if keyword == "onbuild":
        inner = _command(rest) if rest else None
        sub_cmd = inner.cmd if inner else None
        value = inner.value if inner else ()
        is_json = inner.json if inner else False
    elif keyword in JSON_COMMANDS or keyword in JSON_LIST_COMMANDS:
        words = _json_words(rest)
        if words is not None:
            is_json, value = True, words
        elif keyword in JSON_LIST_COMMANDS:
            value = tuple(rest.split()) if rest else ()
        else:
            value = (rest,) if rest else ()
    elif keyword in ("from", "expose"):
        value = tuple(_WHITESPACE.split(rest)) if rest else ()
    elif keyword == "arg":
        value = tuple(split_words(rest)) if rest else ()
    elif keyword in STRING_COMMANDS:
        value = (rest,) if rest else ()
    else:  # ENV, LABEL, HEALTHCHECK and unknown words: wrap reads none of them
        value = ("",) if keyword not in KNOWN_COMMANDS else (rest,) if rest else ()
    return Command(cmd, sub_cmd, is_json, line, 0, 0, tuple(flags), value, ())


def _json_words(rest):
    """parseJSON: the words of a JSON array of strings; None when it is not JSON (shell form)."""
    rest = rest.lstrip(_SPACE)
    if not rest.startswith("["):
        return None
    try:  # Go's json.Decoder: the first JSON value counts, whatever follows it on the line
        doc, _ = json.JSONDecoder(parse_constant=_no_constant).raw_decode(rest)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, list):
        return None
    if not all(isinstance(w, str) for w in doc):
        raise ParseError("when using JSON array syntax, arrays must be comprised of strings only")
    return tuple(doc)


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")  # Python reads NaN and Infinity; Go does not


def _builder_flags(text):
    """extractBuilderFlags: leading `--flag` words (quotes and escapes undone); (rest of line, flags).

    Go's loop reads bytes as runes (`rune(line[pos])`): so does this one, over the UTF-8 bytes
    as Latin-1 characters, and the rest of the line is cut at the same byte.
    """
    line = text.encode("utf-8", "surrogatepass").decode("latin-1")

    def rest(pos):
        return line[pos:].encode("latin-1").decode("utf-8", "surrogatepass")

    words, word, phase, quote, blank_ok, pos = [], "", "spaces", "", False, 0
    while pos <= len(line):
        ch = line[pos] if pos < len(line) else ""
        if phase == "spaces":
            if pos == len(line):
                break
            if ch in _SPACE:
                pos += 1
                continue
            if ch != "-" or pos + 1 == len(line) or line[pos + 1] != "-":
                return rest(pos), words
            phase = "word"
        if pos == len(line):
            if word != "--" and (blank_ok or word):
                words.append(word)
            break
        if phase == "word":
            if ch in _SPACE:
                phase = "spaces"
                if word == "--":
                    return rest(pos), words
                if blank_ok or word:
                    words.append(word)
                word, blank_ok = "", False
            elif ch in "'\"":
                quote, blank_ok, phase = ch, True, "quote"
            elif ch == "\\":
                if pos + 1 < len(line):
                    pos += 1
                    word += line[pos]
            else:
                word += ch
        else:  # in a quote
            if ch == quote:
                phase = "word"
            elif ch == "\\":
                if pos + 1 == len(line):
                    phase = "word"
                else:
                    pos += 1
                    word += line[pos]
            else:
                word += ch
        pos += 1
    return "", words


def split_words(text, raw=True, escape="\\"):
    """shell.Lex.ProcessWords without variables: words split at unquoted blanks.

    raw=True keeps quotes and escapes as written (RawQuotes + RawEscapes); raw=False
    removes them.  An unterminated quote is an error, as in BuildKit's lexer.
    """
    words, word, in_word, i = [], "", False, 0
    while i < len(text):
        ch = text[i]
        if ch in _SPACE:
            if in_word:
                words.append(word)
                word, in_word = "", False
            i += 1
            continue
        in_word = True
        if ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ParseError("unexpected end of statement while looking for matching single-quote")
            word += text[i:end + 1] if raw else text[i + 1:end]
            i = end + 1
        elif ch == '"':
            j, body = i + 1, ""
            while j < len(text) and text[j] != '"':
                if text[j] == escape and j + 1 < len(text):
                    body += text[j:j + 2] if raw or text[j + 1] not in '"$`\\\n' else text[j + 1]
                    j += 2
                    continue
                body += text[j]
                j += 1
            if j >= len(text):
                raise ParseError("unexpected end of statement while looking for matching double-quote")
            word += f'"{body}"' if raw else body
            i = j + 1
        elif ch == escape:
            if i + 1 < len(text):
                word += text[i:i + 2] if raw else text[i + 1]
                i += 2
            else:
                word += ch if raw else ""
                i += 1
        elif ch == "$" and text[i + 1:i + 2] == "{":
            end = text.find("}", i + 2)
            end = len(text) - 1 if end < 0 else end
            word += text[i:end + 1]
            i = end + 1
        else:
            word += ch
            i += 1
    if in_word:
        words.append(word)
    return words


def _heredocs_of(line):
    """heredocsFromLine: (name, fd, chomp) of each word that opens a heredoc."""
    try:
        words = split_words(line)
    except ParseError:
        return []  # BuildKit ignores the lexer's error here: no heredocs
    found = []
    for word in words:
        m = _HEREDOC.match(word)
        if not m or not m.group(3):
            continue
        try:
            names = split_words(m.group(3), raw=False)
        except ParseError as err:
            raise ParseError(str(err)) from None
        if len(names) != 1:
            continue
        found.append((names[0], int(m.group(1) or 0), m.group(2) == "-"))
    return found
