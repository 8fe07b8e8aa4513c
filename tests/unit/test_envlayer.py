"""The environment layer: order of operations, expansion, dotenv, freezer cleanup."""

import pytest

from shim.config import options
from shim.errors import ShimError
from shim.run import envlayer


def conf(*argv):
    return options.resolve(list(argv) + ["--", "x"], {})


def test_operations_in_order(tmp_path):
    f = tmp_path / "a.env"
    f.write_text("FROM_FILE=1\nexport QUOTED='a b'\nD=${FROM_FILE}-x # comment\n")
    env = envlayer.build({"PATH": "/bin", "KEEP": "k", "GONE": "g", "DEF": "old"},
                         conf("--env-file", str(f), "-e", "SET=${KEEP}/${MISSING}/$$HOME",
                              "--default-env", "DEF=new", "--default-env", "NEWDEF=n",
                              "--prepend-env", "PATH=/opt/bin", "--append-env", "PATH=/x",
                              "--append-env", "EMPTY=/y", "--unset-env", "GONE"))
    assert env == {"PATH": "/opt/bin:/bin:/x", "KEEP": "k", "DEF": "old", "NEWDEF": "n",
                   "FROM_FILE": "1", "QUOTED": "a b", "D": "1-x", "SET": "k//$HOME",
                   "EMPTY": "/y"}


def test_expansion_never_runs_commands():
    assert envlayer.expand("$(id) `id` ${A:-$(x)}", {}) == "$(id) `id` $(x)"
    assert envlayer.expand("${A:-d} ${B-d} ${C:-d}", {"B": "", "C": ""}) == "d  d"
    with pytest.raises(ShimError):
        envlayer.expand("${A", {})
    with pytest.raises(ShimError):
        envlayer.expand("${1A}", {})


def test_dotenv_syntax():
    text = 'A=1\n\n# c\nB="x\\ny"\nC=\'$A\'\nD="$A ${A}"\nE="multi\nline"\nF=  spaced value  \n'
    assert dict(envlayer.parse_dotenv(text, "t")) == {
        "A": "1", "B": "x\ny", "C": "$A", "D": "$A 1", "E": "multi\nline", "F": "spaced value"}


@pytest.mark.parametrize("text", ["NOEQUALS", "1A=x", 'A="open', "A='x' trailing", "=v"])
def test_dotenv_errors_name_file_and_line(text):
    with pytest.raises(ShimError) as info:
        envlayer.parse_dotenv("OK=1\n" + text, "my.env")
    assert "my.env line 2" in info.value.message()


def test_missing_env_file(tmp_path):
    with pytest.raises(ShimError) as info:
        envlayer.build({}, conf("--env-file", str(tmp_path / "none.env")))
    assert "read env file" in info.value.message()


def test_inherited_drops_freezer_variables_only_when_frozen():
    raw = {"_PYI_ARCHIVE_FILE": "x", "_MEIPASS2": "y", "STATICX_BUNDLE_DIR": "z",
           "NUITKA_ONEFILE_PARENT": "1", "LD_LIBRARY_PATH": "/tmp/_MEI", "LD_LIBRARY_PATH_ORIG": "/usr/l",
           "HOME": "/root"}
    assert envlayer.inherited(raw, frozen=False) == raw
    assert envlayer.inherited(raw, frozen=True) == {"LD_LIBRARY_PATH": "/usr/l", "HOME": "/root"}
