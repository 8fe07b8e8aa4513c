"""The secrets tier: real servers on loopback (see servers.py, fixtures.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fixtures import bao, ca, moto, names, workdir  # noqa: E402,F401
