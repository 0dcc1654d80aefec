"""Result bundles on disk: the instructor's key, a cohort's files, and the cohort read from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.bundles import bundle_files, instructor_key, load_cohort, refusal
from grader.results import sign
from lab_runtime.errors import ConfigError, InvalidBundle, LabError
from lab_runtime.settings import Settings
from tests.grader.test_cohort import KEY, bundles, raw, run


def test_a_refusal_names_five_bundles_and_counts_the_rest() -> None:
    assert refusal(["a is not signed"]) == (
        "refused 1 bundle(s): a is not signed. Re-export them, or pass --skip-invalid to report on the rest"
    )
    many = refusal([f"b{i} is not signed" for i in range(7)])
    assert many.startswith("refused 7 bundle(s): b0 is not signed; b1 is not signed; b2")
    assert "b4 is not signed (and 2 more). Re-export them" in many and "b5" not in many


def test_the_key_comes_from_the_option_then_the_variable_then_the_variables_file(
    tmp_path: Path, lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAB_INSTRUCTOR_KEY", raising=False)
    monkeypatch.delenv("LAB_INSTRUCTOR_KEY_FILE", raising=False)
    given, configured = tmp_path / "given.key", tmp_path / "configured.key"
    given.write_text("g" * 16 + "\n")
    configured.write_text("c" * 20)
    both = Settings(instructor_key="k" * 16, instructor_key_file=configured)
    assert instructor_key(both, given) == b"g" * 16
    assert instructor_key(both, None) == b"k" * 16
    assert instructor_key(Settings(instructor_key_file=configured), None) == b"c" * 20
    with pytest.raises(ConfigError, match=r"^no instructor key: set LAB_INSTRUCTOR_KEY_FILE to the key's file"):
        instructor_key(Settings(), None)
    with pytest.raises(ConfigError, match=r"^the instructor key has 5 characters; use at least 16"):
        instructor_key(Settings(instructor_key="short"), None)
    with pytest.raises(ConfigError, match=r"^cannot read the instructor key file .*missing.key: No such file"):
        instructor_key(Settings(), tmp_path / "missing.key")


def test_bundle_files_are_files_as_given_and_a_folders_json_at_any_depth(tmp_path: Path) -> None:
    (tmp_path / "c" / "b").mkdir(parents=True)
    for name in ("c/z.json", "c/b/a.json", "c/notes.txt", "single.dat"):
        (tmp_path / name).write_text("{}")
    assert bundle_files([tmp_path / "c", tmp_path / "single.dat"]) == [
        tmp_path / "c" / "b" / "a.json",
        tmp_path / "c" / "z.json",
        tmp_path / "single.dat",
    ]
    with pytest.raises(LabError, match=r"nope is neither a bundle file nor a directory of them$"):
        bundle_files([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabError, match=r"^no bundle \(\*\.json\) in .*empty; export some with `lab results export`$"):
        bundle_files([tmp_path / "empty"])


def test_a_cohort_skips_bad_bundles_only_when_asked_and_counts_repeats_and_older_formats(tmp_path: Path) -> None:
    for b in bundles():
        (tmp_path / f"{b.learner}.json").write_text(b.model_dump_json(by_alias=True))
    (tmp_path / "unsigned.json").write_text(json.dumps(raw("eve", [run("drift", 1.0, 2.0)])))
    with pytest.raises(InvalidBundle, match=r"^refused 1 bundle\(s\): .*unsigned.json is not signed"):
        load_cohort("c", [tmp_path], KEY.encode(), False, lambda reason: None)
    skipped: list[str] = []
    loaded = load_cohort("c", [tmp_path], KEY.encode(), True, skipped.append)
    assert len(skipped) == 1 and "unsigned.json is not signed" in skipped[0]
    assert loaded.cohort.name == "c" and loaded.cohort.bundles == len(bundles())
    assert (loaded.repeated, loaded.older) == ([], 0)
    (tmp_path / "unsigned.json").unlink()
    (tmp_path / "ada-again.json").write_text(json.dumps(sign(raw("ada", [run("drift", 3.0, 9.0)], 99.0), KEY.encode())))
    first = {k: v for k, v in run("drift", 12.0, 70.0).items() if k not in ("ttm", "mitigated_at", "time_to_recovery")}
    old = sign({**raw("dan", [first]), "format": "mlops-lab-results/1"}, KEY.encode())
    (tmp_path / "dan.json").write_text(json.dumps(old))
    loaded = load_cohort("c", [tmp_path], KEY.encode(), False, skipped.append)
    assert (loaded.repeated, loaded.older, loaded.cohort.bundles) == (["ada"], 1, len(bundles()) + 1)
    with pytest.raises(LabError, match=r"^no valid bundle in "):
        load_cohort("c", [tmp_path / "ada.json"], b"another-key-0123456789", True, skipped.append)
