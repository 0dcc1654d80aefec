"""The `lab` command starts light: importing it (what every `lab ...` pays before its command runs) loads neither
pandas, numpy, scikit-learn nor mlflow; a command that needs one imports it itself."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "numpy", "sklearn", "mlflow")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    probe = f"import sys, lab_runtime.cli; print(sorted(m for m in {HEAVY} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded
