"""Issue 21: under CI=true every property test draws the same examples on every run (a new
random draw must never block a landing); `dev` and `explore` draw at random.  Real pytest
processes over a probe test, with the repository's own conftest."""

import os
import subprocess
import sys

from support import REPO

PROBE = '''
import os
from hypothesis import given, settings, strategies as st

@settings(max_examples=30)
@given(st.text(max_size=20))
def test_draws(text):
    with open(os.environ["DRAWN"], "a") as f:
        f.write(repr(text) + "\\n")
'''


def _draws(tmp_path, run, **env):
    (tmp_path / "tests").mkdir(exist_ok=True)
    probe = tmp_path / "tests" / "test_probe.py"
    probe.write_text(PROBE)
    # The repository's own root conftest, so the profiles under test are the real ones.
    (tmp_path / "tests" / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tmp_path / "tests" / "support.py").write_text((REPO / "tests" / "support.py").read_text())
    drawn = tmp_path / f"drawn-{run}"
    full = {k: v for k, v in os.environ.items() if k not in ("CI", "SHIM_HYPOTHESIS_PROFILE")}
    full.update(env, DRAWN=str(drawn), PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(probe)], cwd=tmp_path, env=full, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return drawn.read_text()


def test_ci_draws_the_same_examples_every_run(tmp_path):
    first = _draws(tmp_path, 1, CI="true")
    second = _draws(tmp_path, 2, CI="true")
    assert first == second and first.count("\n") >= 10


def test_the_profiles():
    from hypothesis import settings

    ci, dev, explore = (settings.get_profile(n) for n in ("ci", "dev", "explore"))
    assert ci.derandomize and ci.database is None
    assert not dev.derandomize and not explore.derandomize
