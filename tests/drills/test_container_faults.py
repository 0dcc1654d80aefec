"""Container faults ask the backend for its container control; a runtime without one refuses them by name."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drills.faults.base import FaultContext
from drills.spec import FaultSpec
from lab_runtime.backends.compose import ComposeBackend
from lab_runtime.backends.local import LocalBackend
from lab_runtime.errors import FaultInjectionFailed
from lab_runtime.journal import Journal
from lab_runtime.settings import Settings


@contextlib.contextmanager
def context(tmp_path: Path, runtime: str) -> Iterator[FaultContext]:
    settings = Settings(_env_file=None, state_dir=tmp_path / "state", runtime=runtime)  # type: ignore[call-arg]
    backend = LocalBackend(settings) if runtime == "local" else ComposeBackend(settings)
    settings.ensure_dirs()
    journal = Journal(settings.journal_path, source="drill")
    try:
        yield FaultContext(settings, backend, journal, random.Random(1), "run-1", "run-1-0", 0.0)
    finally:
        journal.close()


STEPS: dict[str, Callable[[Any, FaultContext], object]] = {
    "plan": lambda fault, ctx: fault.plan(ctx),
    "inject": lambda fault, ctx: fault.inject(ctx, {}),
    "revert": lambda fault, ctx: fault.revert(ctx, {}),
}


@pytest.mark.parametrize(
    ("type_", "step"),
    [
        ("network_latency", "inject"),
        ("network_latency", "revert"),
        ("container_limits", "plan"),
        ("container_limits", "inject"),
        ("container_limits", "revert"),
    ],
)
def test_the_local_runtime_refuses_a_container_fault_by_name(tmp_path: Path, type_: str, step: str) -> None:
    with context(tmp_path, "local") as ctx:
        assert ctx.backend.container_control is None
        with pytest.raises(FaultInjectionFailed) as refused:
            STEPS[step](FaultSpec(type=type_).build(), ctx)
    assert str(refused.value) == f"the {type_} fault acts on containers: it needs `lab up --runtime compose`"


def test_the_compose_runtime_declares_its_container_control(tmp_path: Path) -> None:
    with context(tmp_path, "compose") as ctx:  # no Docker engine is asked: the declaration is static
        assert ctx.backend.container_control is ctx.backend
