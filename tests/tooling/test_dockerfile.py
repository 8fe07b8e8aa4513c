"""`shim dockerfile wrap`: exec and shell form, SHELL, inherited ENTRYPOINT/CMD, base lookup, idempotence."""

import os
import sys

import pytest

from tooling_support import shim_tools, write_layout

TOOLS = "localhost/shim-tools:test"


def wrap(text, *extra, tmp=None):
    return shim_tools("dockerfile", "wrap", "-f", "-", "--tools-image", TOOLS, "--cache-dir", "", *extra,
                      input=text)


def tail(out, n):
    return out.splitlines()[-n:]


def test_exec_form_keeps_cmd():
    out = wrap('FROM debian\nENTRYPOINT ["/app/server", "--x"]\nCMD ["--port", "8080"]\n').stdout
    assert out.splitlines() == ["FROM debian", "# shim dockerfile wrap", f"COPY --from={TOOLS} /shim /shim",
                                'ENTRYPOINT ["/shim", "--", "/app/server", "--x"]', 'CMD ["--port", "8080"]']


def test_shell_form_runs_what_docker_ran_with_the_stages_shell():
    out = wrap("FROM debian\nENTRYPOINT exec app --flag \"$HOME\"\n").stdout
    assert tail(out, 1) == ['ENTRYPOINT ["/shim", "--", "/bin/sh", "-c", "exec app --flag \\"$HOME\\""]']
    out = wrap('FROM debian\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nENTRYPOINT app | tee log\n').stdout
    assert tail(out, 1) == ['ENTRYPOINT ["/shim", "--", "/bin/bash", "-eo", "pipefail", "-c", "app | tee log"]']


def test_continuations_comments_heredocs_and_only_the_final_stage():
    text = ("# syntax=docker/dockerfile:1\nFROM golang AS build\nENTRYPOINT [\"/go/bin/x\"]\nRUN <<EOF\n"
            "ENTRYPOINT [\"not\", \"this\"]\nEOF\nFROM scratch\nCOPY --from=build /x /x\nENTRYPOINT [\"/x\", \\\n"
            "  # a comment inside\n  \"--serve\"]\n")
    out = wrap(text).stdout.splitlines()
    assert out[:8] == text.splitlines()[:8]
    assert out[8:] == ["# shim dockerfile wrap", f"COPY --from={TOOLS} /shim /shim",
                       'ENTRYPOINT ["/shim", "--", "/x", "--serve"]']


def test_entrypoint_inherited_from_an_earlier_stage_and_its_cmd():
    text = 'FROM debian AS base\nENTRYPOINT ["/app"]\nCMD ["run"]\nFROM base\nRUN true\n'
    assert tail(wrap(text).stdout, 5) == [
        "# shim dockerfile wrap", f"COPY --from={TOOLS} /shim /shim", 'ENTRYPOINT ["/shim", "--", "/app"]',
        "# the base image's CMD: a new ENTRYPOINT resets an inherited one", 'CMD ["run"]']


def test_base_image_entrypoint_is_looked_up(tmp_path):
    write_layout(tmp_path / "base", {"amd64": {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx", "-g",
                                                                                                 "daemon off;"]}})
    text = "ARG BASE=reg.example/nginx:1\nFROM ${BASE}\nCOPY site /usr/share/nginx/html\nCMD [\"nginx\"]\n"
    out = wrap(text, "--image-source", f"reg.example/nginx:1=oci:{tmp_path / 'base'}")
    assert out.returncode == 0, out.stderr
    # The stage's own CMD stays; nothing re-added.
    assert tail(out.stdout, 4) == ['CMD ["nginx"]', "# shim dockerfile wrap", f"COPY --from={TOOLS} /shim /shim",
                                   'ENTRYPOINT ["/shim", "--", "/docker-entrypoint.sh"]']


def test_scratch_without_entrypoint_and_options():
    out = wrap('FROM scratch\nCOPY app /app\nCMD ["/app"]\n', "--shim-arg=--grace=5s").stdout
    assert tail(out, 1) == ['ENTRYPOINT ["/shim", "--grace=5s", "--"]']


def test_idempotent_and_in_place(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text('FROM debian\nENTRYPOINT ["/app"]\n')
    os.chmod(path, 0o640)
    for _ in range(2):
        proc = shim_tools("dockerfile", "wrap", "-f", path, "--tools-image", TOOLS, "--in-place")
        assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    assert path.read_text().count("COPY --from=") == 1 and oct(path.stat().st_mode & 0o777) == "0o640"
    assert os.listdir(tmp_path) == ["Dockerfile"]


@pytest.mark.parametrize("text, cause", [
    ("RUN true\n", "no FROM instruction"),
    ("ARG BASE\nFROM ${BASE}\n", "$BASE has no default value"),
])
def test_bad_dockerfiles_are_one_line_errors(text, cause):
    proc = wrap(text)
    assert proc.returncode == 125 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert cause in proc.stderr


def test_unknown_base_image_names_the_image():
    proc = wrap("FROM localhost/nope-not-here:1\n")
    assert proc.returncode == 125 and "localhost/nope-not-here:1" in proc.stderr and proc.stderr.count("\n") == 1


# -- BuildKit's reading of heredocs, line endings and forms (issue 16 C14, D17) ---------------

HEREDOCS = {
    # `<<EOF` inside a quoted string opens no heredoc: the rest of the file is still read.
    "quoted": ('FROM debian\nRUN echo "<<EOF in a string"\nENTRYPOINT ["/app"]\n', 2),
    # ENTRYPOINT lines inside heredoc bodies are file content, not instructions.
    "bodies": ('FROM debian\nCOPY <<A <<B /etc/\nENTRYPOINT ["fake"]\nA\nENTRYPOINT ["fake2"]\nB\n'
               'ENTRYPOINT ["/app"]\n', 6),
    "chomp-and-fd": ('FROM debian\nRUN cat <<-E 2<<"F G"\n\tENTRYPOINT ["no"]\n\tE\nx\nF G\nENTRYPOINT ["/app"]\n', 6),
    "single-quoted": ("FROM debian\nRUN echo '<<E' <<G\nG\nENTRYPOINT [\"/app\"]\n", 3),
    "exec-form-run": ('FROM debian\nRUN ["echo", "<<E"]\nENTRYPOINT ["/app"]\n', 2),
}


def test_an_entrypoint_in_a_second_heredoc_body_is_not_the_stages():
    text = 'FROM debian\nENTRYPOINT ["/app"]\nCOPY <<A <<B /etc/\na\nA\nENTRYPOINT ["fake"]\nB\n'
    proc = wrap(text)
    assert proc.returncode == 0, proc.stderr
    lines = text.splitlines()
    assert proc.stdout.splitlines() == [lines[0], "# shim dockerfile wrap", f"COPY --from={TOOLS} /shim /shim",
                                        'ENTRYPOINT ["/shim", "--", "/app"]', *lines[2:]]


@pytest.mark.parametrize("case", sorted(HEREDOCS))
def test_heredocs_are_read_as_buildkit_reads_them(case):
    text, kept = HEREDOCS[case]
    proc = wrap(text)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == text.splitlines()[:kept] + [
        "# shim dockerfile wrap", f"COPY --from={TOOLS} /shim /shim", 'ENTRYPOINT ["/shim", "--", "/app"]']


def test_crlf_files_keep_crlf(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_bytes(b'FROM debian\r\nENTRYPOINT ["/app", \\\r\n  "x"]\r\nCMD ["serve"]\r\n')
    proc = shim_tools("dockerfile", "wrap", "-f", path, "--tools-image", TOOLS, "--in-place")
    assert proc.returncode == 0, proc.stderr
    assert path.read_bytes() == (b"FROM debian\r\n# shim dockerfile wrap\r\n" + f"COPY --from={TOOLS} /shim /shim\r\n"
                                 .encode() + b'ENTRYPOINT ["/shim", "--", "/app", "x"]\r\nCMD ["serve"]\r\n')


@pytest.mark.parametrize("text, cause", [
    ("FROM debian\nSHELL /bin/bash -c\nENTRYPOINT app\n", "<stdin>:2: SHELL must be a non-empty JSON array"),
    ("FROM debian\nSHELL []\nENTRYPOINT app\n", "SHELL must be a non-empty JSON array"),
    ('FROM debian\nENTRYPOINT [1, true]\n', "arrays must be comprised of strings only"),
    ('FROM debian\nCMD [{"a": 1}]\n', "arrays must be comprised of strings only"),
    ("FROM debian\nRUN <<EOF\necho\n", "unterminated heredoc"),
    ("", "no instructions"),
    ("# escape=x\nFROM debian\n", "invalid escape token"),
    ("FROM --platform=linux/amd64\n", "FROM names no image"),
    ("FROM scratch\nRUN make \\\n", "<stdin>:2: the last instruction runs on to the end of the file"),
    ("FROM scratch AS s0\n" + "".join(f"FROM s{i} AS s{i + 1}\n" for i in range(3000)),
     "too many stages inherit the ENTRYPOINT"),
])
def test_what_buildkit_refuses_is_a_one_line_error(text, cause):
    proc = wrap(text)
    assert proc.returncode == 125 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("shim: ") and cause in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("flag", ["--tools-image", "--shim-path"])
def test_words_written_into_the_copy_line_are_one_word(flag):
    extra = [flag, "x\nRUN evil"] if flag == "--shim-path" else []
    proc = shim_tools("dockerfile", "wrap", "-f", "-", "--tools-image", "x\nRUN evil" if flag == "--tools-image"
                      else TOOLS, *extra, input='FROM debian\nENTRYPOINT ["/app"]\n')
    assert proc.returncode == 125 and proc.stdout == "" and flag in proc.stderr and proc.stderr.count("\n") == 1


def test_from_platform_with_a_separate_value(tmp_path):
    write_layout(tmp_path / "base", {"arm64": {"Entrypoint": ["/entry"]}}, single=True)
    out = wrap("FROM --platform linux/arm64 reg.example/base:1\n", "--image-source",
               f"reg.example/base:1=oci:{tmp_path / 'base'}")
    assert out.returncode == 0, out.stderr
    assert tail(out.stdout, 1) == ['ENTRYPOINT ["/shim", "--", "/entry"]']


@pytest.mark.parametrize("case", sorted(HEREDOCS))
def test_the_port_of_buildkits_parser_wraps_the_same(case, monkeypatch):
    """Where the dockerfile package cannot load (arm64), shimtools.buildkit's port gives the same result."""
    from shimtools.dockerfile import wrap as wrap_text

    text = HEREDOCS[case][0]
    with_package = wrap_text(text, TOOLS)
    monkeypatch.setitem(sys.modules, "dockerfile", None)  # `import dockerfile` now raises ImportError
    assert wrap_text(text, TOOLS) == with_package
