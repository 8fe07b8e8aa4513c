"""One source for each figure (issue 17): a measured figure quoted in README.md, docs/*.md or a
code comment's stated reason has the same value everywhere it is quoted, and every quote
cites the `scripts/bench` mode that measured it, e.g. "(scripts/bench loop)".

FIGURES names each figure once: the bench mode that prints it and, per document location, a
regex whose group `v` is the value.  Patterns anchor on the few words next to the number
(a table row's label, "for this module"), so rewording elsewhere in a paragraph does not
break them; a pattern that stops matching fails the test with the figure's name, so a quote
can not silently drift out of the check either.  The citation is looked for in the
paragraph holding the figure and the one before it (a table's or code block's caption).

Changing one copy of a figure means re-running its bench mode and updating every location
listed here; the test names the locations that disagree.
"""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

NUM = r"[\d][\d,]*(?:\.\d+)?"


def v(unit):
    """The value group: a number and its unit."""
    return rf"(?P<v>{NUM} {unit})"


RATIO = rf"(?P<v>{NUM})"  # a ratio's number (its "x" / "×" differs between a table and prose)

ARCH, FREEZE, README = "docs/architecture.md", "docs/freeze.md", "README.md"
HTTP, SIGV4, AWSAPI, VAULT = ("shim/net/http.py", "shim/sources/aws/sigv4.py",
                              "shim/sources/aws/api.py", "shim/sources/vault.py")
TOOLS = "docs/tools-image.md"

# The loop figures' code block in freeze.md: a section title line, then one line per loop.
PINGPONG = r"fd ping-pong[^\n]*\n"
WAKEUP = r"wake-up: write in another thread[^\n]*\n"
ALT_BULLET = {name: rf"\*\*{name}\*\*[^*]*?" for name in
              ("HTTP client", r"SigV4 \+ credential chain", "XML by regex", "Vault client",
               "GCP Secret Manager client", "Azure Key Vault client")}
HTTP_B, SIG_B, XML_B, VAULT_B, GCP_B, AZURE_B = ALT_BULLET.values()
GCP, AZURE = "shim/sources/gcp.py", "shim/sources/azure.py"

# README's Figures table: the shim row, up to the figure.
SHIM_ROW = r"\| \*\*shim \(static, default, with TLS\)\*\* \|[^\n]*?"

# name -> (bench mode, [(file, pattern), ...])
FIGURES = {
    # scripts/bench loop: the same run in architecture.md's table and freeze.md's code block.
    "loop import, shim.loop": ("loop", [
        (ARCH, rf"\| `shim\.loop` \(epoll\) \| \*\*{v('ms')}\*\*"),
        (FREEZE, rf"\n\s+shim\.loop\s+{v('ms')} CPU"),
        (FREEZE, rf"against {v('ms')} for shim\.loop"),
    ]),
    "loop import, asyncio": ("loop", [
        (ARCH, rf"\| asyncio \(default selector loop\) \| {v('ms')}"),
        (FREEZE, rf"\n\s+asyncio\s+{v('ms')} CPU"),
    ]),
    "loop import, asyncio+uvloop": ("loop", [
        (ARCH, rf"\| asyncio \+ uvloop \| {v('ms')}"),
        (FREEZE, rf"\n\s+asyncio\+uvloop\s+{v('ms')} CPU"),
        (FREEZE, rf"\({v('ms')} of CPU for asyncio\+uvloop"),
    ]),
    "loop fd ping-pong, epoll": ("loop", [
        (ARCH, rf"\| `shim\.loop` \(epoll\) \|[^|\n]*\| \*\*{v('µs')}\*\*"),
        (FREEZE, rf"{PINGPONG}\s+epoll\s+{v('µs')}"),
    ]),
    "loop fd ping-pong, asyncio": ("loop", [
        (ARCH, rf"\| asyncio \(default selector loop\) \|[^|\n]*\| {v('µs')}"),
        (FREEZE, rf"{PINGPONG}(?:[^\n]*\n)\s+asyncio\s+{v('µs')}"),
    ]),
    "loop fd ping-pong, uvloop": ("loop", [
        (ARCH, rf"\| asyncio \+ uvloop \|[^|\n]*\| {v('µs')}"),
        (FREEZE, rf"{PINGPONG}(?:[^\n]*\n){{2}}\s+uvloop\s+{v('µs')}"),
    ]),
    "loop fd ping-pong, uvloop / epoll": ("loop", [
        (FREEZE, rf"{PINGPONG}(?:[^\n]*\n){{2}}\s+uvloop\s+{NUM} µs\s+x epoll\s+{RATIO}"),
        (FREEZE, rf"no faster than the\s+epoll loop \({RATIO}×\)"),
    ]),
    "loop wake-up, epoll": ("loop", [
        (ARCH, rf"\| `shim\.loop` \(epoll\) \|[^|\n]*\|[^|\n]*\| \*\*{v('µs')}\*\*"),
        (FREEZE, rf"{WAKEUP}\s+epoll\s+{v('µs')}"),
    ]),
    "loop wake-up, asyncio": ("loop", [
        (ARCH, rf"\| asyncio \(default selector loop\) \|[^|\n]*\|[^|\n]*\| {v('µs')}"),
        (FREEZE, rf"{WAKEUP}(?:[^\n]*\n)\s+asyncio\s+{v('µs')}"),
    ]),
    "loop wake-up, uvloop": ("loop", [
        (ARCH, rf"\| asyncio \+ uvloop \|[^|\n]*\|[^|\n]*\| {v('µs')}"),
        (FREEZE, rf"{WAKEUP}(?:[^\n]*\n){{2}}\s+uvloop\s+{v('µs')}"),
    ]),
    "loop wake-up, uvloop / epoll": ("loop", [
        (FREEZE, rf"{WAKEUP}(?:[^\n]*\n){{2}}\s+uvloop\s+{NUM} µs\s+x epoll\s+{RATIO}"),
        (FREEZE, rf"wake-up is {RATIO}× slower"),
    ]),

    # scripts/bench alternatives: architecture.md's one line per hand-written piece and the
    # reason stated in that piece's own docstring (and README for SigV4).
    "import, shim.net.http": ("alternatives", [
        (ARCH, rf"{HTTP_B}ours {v('ms')}"),
        (HTTP, rf"{v('ms')} for this module"),
    ]),
    "binary, shim.net.http": ("alternatives", [
        (ARCH, rf"{HTTP_B}ours {NUM} ms import, {v('KiB')}"),
        (HTTP, rf"against {v('KiB')} and\s+{NUM} ms for this module"),
    ]),
    "import, requests": ("alternatives", [
        (ARCH, rf"{HTTP_B}requests {v('ms')}"),
        (HTTP, rf"{v('ms')} of imports, against"),
    ]),
    "binary, requests": ("alternatives", [
        (ARCH, rf"{HTTP_B}requests {NUM} ms, {v('MiB')}"),
        (HTTP, rf"adds\s+{v('MiB')} of bytecode"),
    ]),
    "import, urllib.request": ("alternatives", [
        (ARCH, rf"{HTTP_B}`urllib\.request` {v('ms')}"),
        (HTTP, rf"urllib\.request\s+\({v('ms')}\)"),
    ]),
    "import, sigv4 + credentials": ("alternatives", [
        (ARCH, rf"{SIG_B}ours {v('ms')}"),
        (SIGV4, rf"against {v('ms')} and {NUM} KiB for this module"),
    ]),
    "binary, sigv4 + credentials": ("alternatives", [
        (ARCH, rf"{SIG_B}ours {NUM} ms,\s+{v('KiB')}"),
        (SIGV4, rf"and {v('KiB')} for this module"),
    ]),
    "import, botocore": ("alternatives", [
        (ARCH, rf"{SIG_B}botocore \([^)]*\) {v('ms')}"),
        (SIGV4, rf"{v('ms')} of CPU and"),
        (README, rf"botocore costs {v('ms')} of\s+imports"),
    ]),
    "binary, botocore": ("alternatives", [
        (ARCH, rf"{SIG_B}botocore \([^)]*\) {NUM} ms, {v('MiB')}"),
        (SIGV4, rf"of CPU and {v('MiB')} of bytecode"),
        (README, rf"imports and {v('MiB')} in the binary"),
    ]),
    "installed, botocore": ("alternatives", [
        (ARCH, rf"{SIG_B}{v('MiB')} installed"),
        (SIGV4, rf"\({v('MiB')} installed"),
        (README, rf"in the binary, {v('MiB')} installed"),
    ]),
    "import, re (XML by regex)": ("alternatives", [
        (ARCH, rf"{XML_B}needs only `re`, {v('ms')}"),
        (AWSAPI, rf"against {v('ms')} and {NUM} KiB for `re`"),
    ]),
    "binary, re (XML by regex)": ("alternatives", [
        (ARCH, rf"{XML_B}needs only `re`, {NUM} ms\s+and {v('KiB')}"),
        (AWSAPI, rf"ms and {v('KiB')} for `re`"),
    ]),
    "import, xml.etree.ElementTree": ("alternatives", [
        (ARCH, rf"{XML_B}`xml\.etree\.ElementTree`\s+{v('ms')}"),
        (AWSAPI, rf"ElementTree would add {v('ms')}"),
    ]),
    "binary, xml.etree.ElementTree": ("alternatives", [
        (ARCH, rf"{XML_B}`xml\.etree\.ElementTree`\s+{NUM} ms, {v('KiB')}"),
        (AWSAPI, rf"ElementTree would add {NUM} ms of imports and {v('KiB')}"),
    ]),
    "import, defusedxml": ("alternatives", [
        (ARCH, rf"{XML_B}defusedxml {v('ms')}"),
        (AWSAPI, rf"defusedxml {v('ms')}"),
    ]),
    "binary, defusedxml": ("alternatives", [
        (ARCH, rf"{XML_B}defusedxml {NUM} ms, {v('KiB')}"),
        (AWSAPI, rf"defusedxml {NUM} ms and {v('KiB')}"),
    ]),
    "import, shim.sources.vault": ("alternatives", [
        (ARCH, rf"{VAULT_B}ours {v('ms')}"),
        (VAULT, rf"against {v('ms')} and {NUM} KiB for this module"),
    ]),
    "binary, shim.sources.vault": ("alternatives", [
        (ARCH, rf"{VAULT_B}ours {NUM} ms, {v('KiB')}"),
        (VAULT, rf"ms and {v('KiB')} for this module"),
    ]),
    "import, hvac": ("alternatives", [
        (ARCH, rf"{VAULT_B}hvac {v('ms')}"),
        (VAULT, rf"requests, {v('ms')} of imports"),
    ]),
    "binary, hvac": ("alternatives", [
        (ARCH, rf"{VAULT_B}hvac {NUM} ms, {v('MiB')}"),
        (VAULT, rf"and {v('MiB')} of bytecode"),
    ]),
    "import, shim.sources.gcp": ("alternatives", [
        (ARCH, rf"{GCP_B}ours {v('ms')}"),
        (GCP, rf"against {v('ms')} and {NUM} KiB for this module"),
    ]),
    "binary, shim.sources.gcp": ("alternatives", [
        (ARCH, rf"{GCP_B}ours {NUM} ms, {v('KiB')}"),
        (GCP, rf"ms and {v('KiB')} for this module"),
    ]),
    "import, google-cloud-secret-manager": ("alternatives", [
        (ARCH, rf"{GCP_B}google-cloud-secret-manager {v('ms')}"),
        (GCP, rf"google-cloud-secret-manager imports in {v('ms')}"),
    ]),
    "binary, google-cloud-secret-manager": ("alternatives", [
        (ARCH, rf"{GCP_B}google-cloud-secret-manager {NUM} ms, {v('MiB')}"),
        (GCP, rf"adds {v('MiB')} of bytecode"),
    ]),
    "import, shim.sources.azure": ("alternatives", [
        (ARCH, rf"{AZURE_B}ours {v('ms')}"),
        (AZURE, rf"against {v('ms')} and {NUM} KiB for this module"),
    ]),
    "binary, shim.sources.azure": ("alternatives", [
        (ARCH, rf"{AZURE_B}ours {NUM} ms, {v('KiB')}"),
        (AZURE, rf"ms and {v('KiB')} for this module"),
    ]),
    "import, azure-identity + azure-keyvault-secrets": ("alternatives", [
        (ARCH, rf"{AZURE_B}azure-keyvault-secrets {v('ms')}"),
        (AZURE, rf"azure-keyvault-secrets import in {v('ms')}"),
    ]),
    "binary, azure-identity + azure-keyvault-secrets": ("alternatives", [
        (ARCH, rf"{AZURE_B}azure-keyvault-secrets {NUM} ms,\s+{v('MiB')}"),
        (AZURE, rf"add\s+{v('MiB')} of bytecode"),
    ]),

    # README's Figures section: one run of startup/size/memory/signal.
    "start-up CPU, shim": ("startup", [
        (README, rf"\| \*\*shim \(static, default, with TLS\)\*\* \| \*\*{v('ms')}\*\*"),
    ]),
    "start-up CPU, shim --supervise": ("startup", [
        (README, rf"{SHIM_ROW}`--supervise` {v('ms')}"),
    ]),
    "start-up CPU, tini-static": ("startup", [
        (README, rf"\| tini-static -s \| {v('ms')}"),
    ]),
    "RSS, shim --supervise": ("memory", [
        (README, rf"{SHIM_ROW}\(0 in exec mode\) \| \*\*{v('MiB')}\*\*"),
    ]),
    "size, amd64": ("size", [
        (README, rf"{SHIM_ROW}\*\*{v('MiB')}\*\* amd64"),
    ]),
    "size, arm64": ("size", [
        (README, rf"{SHIM_ROW}\*\*{v('MiB')}\*\* arm64"),
    ]),
    "SIGTERM latency as PID 1, shim": ("signal", [
        (README, rf"\(scripts/bench signal\): shim {v('ms')}"),
    ]),
    # README's secrets paragraph: a real OpenBao over TLS.
    "first byte, 1 Vault secret": ("secrets", [
        (README, rf"delegate's first byte[^()]*?{v('ms')} with 1,"),
    ]),
    "first byte, 50 Vault secrets": ("secrets", [
        (README, rf"delegate's first byte[^()]*?{v('ms')} with 50\b"),
    ]),
    "shim install into a fresh directory": ("install", [
        (README, rf"`shim install`[^:]*: {v('ms')}"),
        (TOOLS, rf"`scripts/bench install`[^:]*: {v('ms')}"),
    ]),
}

CITE = re.compile(r"scripts/bench((?:[ \t]+[a-z][a-z-]*)+)")
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def read_repo(path):
    return (REPO / path).read_text(encoding="utf-8")


def normalize(value):
    """'1,224 kB' -> (1224.0, 'kB'): equal figures compare equal however they are grouped."""
    number, _, unit = value.partition(" ")
    return float(number.replace(",", "")), unit


def cited_modes(text, pos):
    """The bench modes cited in the paragraph holding `pos` and the paragraph before it."""
    breaks = [m.end() for m in PARAGRAPH_BREAK.finditer(text, 0, pos)]
    start = breaks[-2] if len(breaks) >= 2 else 0
    end_match = PARAGRAPH_BREAK.search(text, pos)
    block = " ".join(text[start:end_match.start() if end_match else len(text)].split())
    return {mode for m in CITE.finditer(block) for mode in m.group(1).split()}


def check(figures, read):
    """Problems found: a location whose pattern does not match exactly once, a quote without
    a citation of its bench mode, and figures whose copies disagree."""
    problems = []
    texts = {}
    for name, (mode, locations) in figures.items():
        values = []
        for path, pattern in locations:
            text = texts.setdefault(path, read(path))
            found = list(re.finditer(pattern, text))
            if len(found) != 1:
                problems.append(f"{name}: {path}: the pattern matches {len(found)} times, not once "
                                f"(reworded? update FIGURES in {Path(__file__).name}): {pattern}")
                continue
            match = found[0]
            values.append((path, match.group("v")))
            if mode not in cited_modes(text, match.start("v")):
                problems.append(f"{name}: {path}: {match.group('v')} does not cite "
                                f"`scripts/bench {mode}` in its paragraph or the one before")
        if len({normalize(value) for _, value in values}) > 1:
            problems.append(f"{name}: the documents disagree: "
                            + ", ".join(f"{path} says {value}" for path, value in values)
                            + f"; run scripts/bench {mode} and make every copy the measured value")
    return problems


def bench_modes():
    source = read_repo("scripts/bench")
    match = re.search(r"^FIGURES = \(([^)]*)\)", source, re.M)
    return set(re.findall(r'"([a-z-]+)"', match.group(1))) | {"all"}


def test_every_figure_has_one_value_and_cites_its_bench_mode():
    problems = check(FIGURES, read_repo)
    assert not problems, "\n".join(problems)


def test_figures_name_modes_that_scripts_bench_has():
    assert {mode for mode, _ in FIGURES.values()} <= bench_modes()


def test_docs_cite_only_modes_that_scripts_bench_has():
    modes = bench_modes()
    paths = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
    unknown = [f"{path}: scripts/bench {word}" for path in paths
               for m in CITE.finditer(read_repo(path)) for word in m.group(1).split()[:1]
               if word not in modes]
    assert not unknown, "\n".join(unknown)


# The check itself can fail: each copy of each quoted-more-than-once figure changed alone (in
# memory; the files are not touched) must be reported as a disagreement naming that file.
SHARED = [(name, i) for name, (_, locations) in FIGURES.items() if len(locations) > 1
          for i in range(len(locations))]


@pytest.mark.parametrize(("name", "index"), SHARED, ids=[f"{n}[{i}]" for n, i in SHARED])
def test_changing_one_copy_is_caught(name, index):
    mode, locations = FIGURES[name]
    path, pattern = locations[index]
    text = read_repo(path)
    match = next(re.finditer(pattern, text))
    number, unit = normalize(match.group("v"))
    changed = f"{number + 1:g}" + (f" {unit}" if unit else "")
    edited = text[:match.start("v")] + changed + text[match.end("v"):]
    problems = check({name: (mode, locations)}, lambda p: edited if p == path else read_repo(p))
    assert any("disagree" in p and f"{path} says {changed}" in p for p in problems), problems


def test_a_quote_without_its_citation_is_caught():
    name = "import, botocore"
    mode, locations = FIGURES[name]
    text = read_repo(README).replace("scripts/bench alternatives", "a benchmark")
    problems = check({name: (mode, locations)}, lambda p: text if p == README else read_repo(p))
    assert any("does not cite" in p and README in p for p in problems), problems


def test_a_quote_reworded_out_of_reach_is_caught():
    name = "loop import, asyncio"
    mode, locations = FIGURES[name]
    text = read_repo(ARCH).replace("| asyncio (default selector loop) |", "| asyncio |")
    problems = check({name: (mode, locations)}, lambda p: text if p == ARCH else read_repo(p))
    assert any("matches 0 times" in p for p in problems), problems
