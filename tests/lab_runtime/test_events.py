import ast
import pickle
from pathlib import Path
from typing import is_typeddict

from lab_runtime import events
from lab_runtime.events import CATALOG, EventKind
from lab_runtime.journal import Journal
from lab_runtime.registry.model_ops import adopt_retrained
from lab_runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("lab_runtime", "drills", "grader")
# Calls that write an event: (kind, payload, ...). `list.append` takes one argument, so it never matches.
WRITERS = {"append", "_event", "Transition"}


def _declared() -> dict[str, EventKind[object]]:
    """Every EventKind constant events.py defines, by constant name."""
    return {name: value for name, value in vars(events).items() if isinstance(value, EventKind)}


def _written(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """The kinds named as the first argument of every write call under `folders` (a string literal, or an
    upper-case constant resolved in events.py), each with where it is written."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call) or len(node.args) < 2:
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if name not in WRITERS:
                    continue
                first, where = node.args[0], f"{path.relative_to(ROOT)}:{node.lineno}"
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    kind = first.value
                elif isinstance(first, ast.Name | ast.Attribute):
                    constant = first.id if isinstance(first, ast.Name) else first.attr
                    if not constant.isupper():
                        continue  # a variable: its type (EventKind) is checked by mypy
                    kind = str(getattr(events, constant, f"<{constant}: not in lab_runtime.events>"))
                else:
                    continue
                found.setdefault(kind, set()).add(where)
    return found


def _action_names() -> set[str]:
    """The `learner.action` names events.py defines (its upper-case plain `str` constants)."""
    return {value for name, value in vars(events).items() if name.isupper() and type(value) is str}


def _actions(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """The `action` of every `LearnerAction(...)` under `folders` (keyword or dict form): an upper-case constant
    resolved in events.py, or a string literal as `<literal ...>`; each with where it is written."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call) or getattr(node.func, "id", None) != "LearnerAction":
                    continue
                values = [k.value for k in node.keywords if k.arg == "action"]
                for arg in node.args:
                    if isinstance(arg, ast.Dict):
                        pairs = zip(arg.keys, arg.values, strict=True)
                        values += [v for k, v in pairs if isinstance(k, ast.Constant) and k.value == "action"]
                for value in values:
                    if isinstance(value, ast.Constant):
                        action = f"<literal {value.value!r}>"
                    elif isinstance(value, ast.Name) and value.id.isupper():
                        action = str(getattr(events, value.id, f"<{value.id}: not in lab_runtime.events>"))
                    else:
                        continue  # a variable holding one of them
                    found.setdefault(action, set()).add(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_kind_written_anywhere_is_in_the_catalog() -> None:
    written = _written((*PRODUCTION, "labs", "tests"))
    assert {kind: sorted(where) for kind, where in written.items() if kind not in CATALOG} == {}


def test_every_kind_in_the_catalog_has_a_writer_in_the_code() -> None:
    assert sorted(set(CATALOG) - set(_written(PRODUCTION))) == []


def test_each_lab_kind_is_written_by_the_lab_session_or_its_scenario() -> None:
    written = _written(PRODUCTION)
    where = {
        kind: sorted({w.split(":")[0] for w in written[kind]}) for kind in ("lab.started", "lab.check", "lab.event")
    }
    assert where == {
        "lab.started": ["lab_runtime/labs/session.py"],
        "lab.check": ["lab_runtime/labs/session.py"],
        "lab.event": ["lab_runtime/labs/scenario.py"],
    }


def test_every_learner_action_names_an_action_of_the_catalog() -> None:
    actions = _actions(PRODUCTION)
    assert {action: sorted(w) for action, w in actions.items() if action not in _action_names()} == {}
    assert {where.split(":")[0] for where in actions["model.retrain"]} == {"lab_runtime/registry/model_ops.py"}


def test_a_retrained_version_not_promoted_is_journaled_as_such(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db", source="cli", learner="ada")
    assert adopt_retrained(Settings(state_dir=tmp_path / "state"), journal, "7", promote=False) is False
    [event] = journal.events()
    assert (event.kind, event.payload) == (
        "learner.action",
        {"action": "model.retrain", "version": "7", "promoted": False},
    )


def test_the_catalog_holds_every_declared_kind_once() -> None:
    declared = _declared()
    assert sorted(CATALOG) == sorted(declared.values())
    assert len({str(kind) for kind in declared.values()}) == len(declared), "two constants share a kind"
    assert all(CATALOG[kind] is kind for kind in declared.values())


def test_every_kind_has_a_one_line_description_and_a_typeddict_payload() -> None:
    for kind in CATALOG.values():
        assert kind.description.strip() and "\n" not in kind.description, kind
        assert is_typeddict(kind.payload), kind


def test_a_kind_is_the_string_the_journal_stores(tmp_path: Path) -> None:
    assert events.LAB_STARTED == "lab.started" and {"lab.started": 1}[events.LAB_STARTED] == 1
    assert CATALOG["learner.action"].payload is events.LearnerAction
    assert set(events.GRADED) <= set(CATALOG)
    copied = pickle.loads(pickle.dumps(events.LEARNER_ACTION))
    assert (copied, copied.payload, copied.description) == (
        "learner.action",
        events.LearnerAction,
        CATALOG[copied].description,
    )
    event = Journal(tmp_path / "j.db", source="t").append(
        events.LAB_STARTED, events.LabStarted(lab="lab-01", workspace="w")
    )
    assert type(event.kind) is str and event.kind == "lab.started"
