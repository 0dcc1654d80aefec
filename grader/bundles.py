"""Result bundles on disk: the instructor's key they are signed with, a cohort's bundle files, and the cohort read
from them (every signature checked; each learner's latest export). `refusal` is pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.cohort import Cohort, cohort, latest_per_learner
from grader.results import FORMAT, Bundle, read_bundle
from lab_runtime.errors import ConfigError, InvalidBundle, LabError
from lab_runtime.settings import Settings

MIN_KEY = 16  # characters an instructor key has at least


def instructor_key(settings: Settings, key_file: Path | None) -> bytes:
    """The signing key: `key_file`, else LAB_INSTRUCTOR_KEY, else LAB_INSTRUCTOR_KEY_FILE."""
    path = key_file or settings.instructor_key_file
    if key_file is None and settings.instructor_key:
        return checked_key(settings.instructor_key)
    if path is None:
        raise ConfigError(
            "no instructor key: set LAB_INSTRUCTOR_KEY_FILE to the key's file (or LAB_INSTRUCTOR_KEY to the key), "
            "or pass --key-file FILE (an instructor makes one with `lab results keygen --out FILE`)"
        )
    return read_key(Path(path))


def read_key(path: Path) -> bytes:
    """The key in the file `path` (one line)."""
    try:
        return checked_key(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the instructor key file {path}: {exc.strerror}") from None


def checked_key(text: str) -> bytes:
    key = text.strip().encode()
    if len(key) < MIN_KEY:
        raise ConfigError(
            f"the instructor key has {len(key)} characters; use at least {MIN_KEY} (`lab results keygen`)"
        )
    return key


def bundle_files(paths: list[Path]) -> list[Path]:
    """The bundle files `paths` name: files as given, directories' `*.json` at any depth, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(path.rglob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise LabError(f"{path} is neither a bundle file nor a directory of them")
    if not files:
        raise LabError(f"no bundle (*.json) in {', '.join(map(str, paths))}; export some with `lab results export`")
    return files


def refusal(refused: list[str]) -> str:
    """Pure: the refusal of a cohort with bundles that failed to verify (`refused`: why each did), naming five."""
    more = f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
    return (
        f"refused {len(refused)} bundle(s): {'; '.join(refused[:5])}{more}. Re-export them, or pass "
        "--skip-invalid to report on the rest"
    )


@dataclass(frozen=True)
class LoadedCohort:
    cohort: Cohort
    bundles: list[Bundle]  # the latest export of each learner
    repeated: list[str]  # learners with several bundles: the latest export of each counts
    older: int  # bundles of an earlier format: TTR is the verified span's start, and no TTM


def load_cohort(
    name: str, paths: list[Path], key: bytes, skip_invalid: bool, skipped: Callable[[str], None]
) -> LoadedCohort:
    """The cohort `name` of the bundles in `paths`, each verified under `key`. Any bundle that fails refuses the lot
    (InvalidBundle), unless `skip_invalid`: then `skipped` is told why each was left out."""
    bundles: list[Bundle] = []
    refused: list[str] = []
    for path in bundle_files(paths):
        try:
            bundles.append(read_bundle(path, key))
        except InvalidBundle as exc:
            refused.append(str(exc))
    if refused and not skip_invalid:
        raise InvalidBundle(refusal(refused))
    for reason in refused:
        skipped(reason)
    if not bundles:
        raise LabError(f"no valid bundle in {', '.join(map(str, paths))}")
    latest, repeated = latest_per_learner(bundles)
    return LoadedCohort(cohort(name, latest), latest, repeated, sum(b.format != FORMAT for b in latest))
