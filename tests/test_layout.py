"""The house shows its architecture: few loose modules in lab_runtime/, every part named in docs/ARCHITECTURE.md,
and code that speaks of itself, not of the issues it came from."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "lab_runtime"
MAP = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
RUNTIME_MAP = MAP[MAP.index("├── lab_runtime/") : MAP.index("├── grader/")]  # lab_runtime/'s block of the map


def test_lab_runtime_keeps_at_most_eight_loose_modules() -> None:
    loose = sorted(p.name for p in RUNTIME.glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= 8, f"{len(loose)} loose modules in lab_runtime/: {loose}; put the new one in its part"


def test_the_folder_map_names_every_part_and_loose_module_of_lab_runtime() -> None:
    parts = [p.name + "/" for p in RUNTIME.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
    loose = [p.name for p in RUNTIME.glob("*.py")]
    missing = [name for name in parts + loose if not re.search(rf"── {re.escape(name)}\s", RUNTIME_MAP)]
    assert not missing, f"docs/ARCHITECTURE.md's folder map does not name {missing}"


def test_no_module_speaks_of_issues() -> None:
    sources = [p for part in ("lab_runtime", "drills", "grader", "labs") for p in (ROOT / part).rglob("*.py")]
    said = [f"{p.relative_to(ROOT)}:{n}" for p in sources for n, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(r"\bissue \d+|\(issue|issues? #\d+", line, re.IGNORECASE)]  # fmt: skip
    assert not said, f"code that speaks of issues, not of itself: {said}"
