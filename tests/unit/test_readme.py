"""The README tells the truth: every option is in its table, CI runs its test command."""

from pathlib import Path

from shim.config import options

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_every_flag_and_variable_is_documented():
    for opt in options.OPTIONS:
        assert f"`{opt.env}`" in README, opt.env
        assert opt.flags[0] in README, opt.flags[0]
        if opt.key:
            assert f"`{opt.key}`" in README, opt.key


def test_every_options_table_row_says_what_help_says():
    rows = {line.split(" | ")[1].strip("` "): line for line in README.splitlines()
            if line.startswith("| `-") and " | `SHIM_" in line}
    for opt in options.OPTIONS:
        # A table cell cannot hold "|": the README writes "/" there.
        assert opt.help.replace("|", "/") in rows[opt.env], (opt.env, opt.help)


def test_every_exit_code_is_documented():
    from shim import errors

    for name in dir(errors):
        if name.startswith("EXIT_"):
            assert f"| {getattr(errors, name)} |" in README, name
        if name.startswith("REASON_") and name != "REASON_CODES":
            assert f"`{getattr(errors, name)}`" in README, name


def test_ci_runs_the_readme_test_command():
    assert "    scripts/test " in README
    assert "scripts/test" in (REPO / ".ci" / "run").read_text()
