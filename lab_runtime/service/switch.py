"""The model switch: whether the model decides, for all requests, none (disabled) or a share (throttled).

The learner's flag file (`.lab/flags.json`, written by `lab feature ...`) is a flagd flag definition holding one
flag, `credit-model`, with the variants `model` and `fallback`: `defaultVariant` `model` (on) or `fallback`
(off), and a `fractional` targeting on the request id for a throttle. The service validates it (a bad file is
refused by field, the last good state stays; a deleted one keeps the last state) and hands only valid definitions
to OpenFeature's flagd provider in its in-process file mode, which decides each request.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lab_runtime.errors import InvalidFlags
from lab_runtime.files.atomic import write_atomic
from lab_runtime.files.watched import WatchedFile
from lab_runtime.files.yamlfile import describe

BUILTIN_FLAGS = Path(__file__).with_name("flags.json")  # the model on
FLAG = "credit-model"
MODEL, FALLBACK = "model", "fallback"
Mode = Literal["on", "off", "throttle"]
_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
PROVIDER_POLL_MS = 100  # how often the flagd provider looks at the definition it is handed
FOLLOW_EVERY = 0.2  # seconds between two looks at the learner's flag file


class Switch(BaseModel):
    """on: the model decides every request; off: none (the fallback does); throttle: a `share` of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "on"
    share: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _share_fits_mode(self) -> Switch:
        expected = {"on": 1.0, "off": 0.0}.get(self.mode)
        if expected is not None and self.share != expected:
            raise ValueError(f"mode {self.mode} has share {expected:g}, not {self.share:g}")
        return self

    def describe(self) -> str:
        if self.mode == "throttle":
            return f"throttled: {self.share:.0%} of requests to the model, the rest to the fallback"
        return "on: the model decides every request" if self.mode == "on" else "off: the fallback decides"


def throttled(share: float) -> Switch:
    """The switch for `share` of requests to the model (0 is off, 1 is on)."""
    if not 0 <= share <= 1:
        raise InvalidFlags(f"a throttle share is between 0 and 1, not {share:g}")
    share = round(share, 2)  # in whole percents, as flagd splits
    if share == 1:
        return Switch(mode="on")
    if share == 0:
        return Switch(mode="off", share=0.0)
    return Switch(mode="throttle", share=share)


def definition(switch: Switch) -> dict[str, Any]:
    """The flagd flag definition of `switch`."""
    flag: dict[str, Any] = {
        "state": "ENABLED",
        "variants": {MODEL: MODEL, FALLBACK: FALLBACK},
        "defaultVariant": FALLBACK if switch.mode == "off" else MODEL,
    }
    if switch.mode == "throttle":
        percent = round(switch.share * 100)  # flagd's fractional weights are whole numbers
        flag["targeting"] = {"fractional": [{"var": "targetingKey"}, [MODEL, percent], [FALLBACK, 100 - percent]]}
    return {"$schema": _SCHEMA, "flags": {FLAG: flag}}


class _Flag(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["ENABLED", "DISABLED"]
    variants: dict[str, str]
    defaultVariant: Literal["model", "fallback"]
    targeting: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _our_variants(self) -> _Flag:
        if self.variants != {MODEL: MODEL, FALLBACK: FALLBACK}:
            raise ValueError(f'variants must be {{"{MODEL}": "{MODEL}", "{FALLBACK}": "{FALLBACK}"}}')
        return self

    def switch(self) -> Switch:
        if self.targeting is None:
            return Switch(mode="on") if self.defaultVariant == MODEL else Switch(mode="off", share=0.0)
        split = self.targeting.get("fractional")
        buckets = split[1:] if isinstance(split, list) and split[:1] == [{"var": "targetingKey"}] else None
        shares = dict(buckets) if buckets and all(isinstance(b, list) and len(b) == 2 for b in buckets) else None
        if shares is None or set(shares) != {MODEL, FALLBACK} or sum(shares.values()) != 100:
            raise ValueError(
                'targeting must be {"fractional": [{"var": "targetingKey"}, ["model", P], ["fallback", 100 - P]]}'
            )
        return throttled(shares[MODEL] / 100)


class _FlagFile(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    flags: dict[str, _Flag]

    @field_validator("flags")
    @classmethod
    def _has_ours(cls, flags: dict[str, _Flag]) -> dict[str, _Flag]:
        if FLAG not in flags:
            raise ValueError(f"no flag {FLAG!r}")
        return flags


def read_switch(path: Path) -> Switch:
    """The switch a flag file sets; a bad file raises InvalidFlags naming the file and the field."""
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise InvalidFlags(f"{path}: cannot read the flag file ({exc.strerror})") from exc
    except ValueError as exc:
        raise InvalidFlags(f"{path}: not valid JSON: {exc}") from exc
    try:
        flag = _FlagFile.model_validate(raw).flags[FLAG]
        if flag.state == "DISABLED":
            return Switch(mode="on")  # a disabled flag evaluates to the caller's default: the model
        return flag.switch()
    except ValidationError as exc:
        raise InvalidFlags(f"{path}: {describe(exc)}") from exc
    except (ValueError, InvalidFlags) as exc:
        raise InvalidFlags(f"{path}: flags.{FLAG}: {exc}") from exc


def write_switch(path: Path, switch: Switch) -> None:
    """Write `switch` as a flag file, whole (a reader never sees it half-written)."""
    write_atomic(path, (json.dumps(definition(switch), indent=2) + "\n").encode())


class ModelSwitch:
    """The service's side: follows the learner's flag file and routes each request through OpenFeature."""

    def __init__(self, flags_path: Path, handed_path: Path, log: logging.Logger) -> None:
        self.handed_path, self.log = handed_path, log
        self.watched = WatchedFile(flags_path, read_switch, BUILTIN_FLAGS, keep_when_missing=True)
        if self.watched.problem:
            log.warning("%s", self.watched.problem)
        handed_path.parent.mkdir(parents=True, exist_ok=True)
        write_switch(handed_path, self.watched.value)
        self._client: Any = None
        self._context: Any = None  # OpenFeature's EvaluationContext, imported with the provider
        self._provider: Any = None
        self._stop: Any = None

    def start(self) -> None:
        """Hand flagd the definition in force and wait until its provider is ready; then follow the file."""
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType
        from openfeature.evaluation_context import EvaluationContext

        logging.getLogger("openfeature").setLevel(logging.CRITICAL)  # it only ever reads what we validated
        provider = FlagdProvider(
            resolver_type=ResolverType.FILE,
            offline_flag_source_path=str(self.handed_path),
            deadline_ms=PROVIDER_POLL_MS,
        )
        domain = f"lab-service-{id(self)}"  # its own: another app in the process has its own provider
        api.set_provider_and_wait(provider, domain=domain)
        self._client, self._provider, self._context = api.get_client(domain), provider, EvaluationContext
        self._stop = self.watched.follow(FOLLOW_EVERY, self._changed)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._provider.shutdown()

    def _changed(self, watched: WatchedFile[Switch]) -> None:
        if watched.problem:
            self.log.warning("%s", watched.problem)
            return
        write_switch(self.handed_path, watched.value)
        self.log.info("model switch: %s (from %s)", watched.value.describe(), watched.source)

    def route(self, request_id: str) -> str:
        """`model` or `fallback` for this request (a throttle's split is stable per request id)."""
        if self._client is None:
            return MODEL
        return str(self._client.get_string_value(FLAG, MODEL, self._context(targeting_key=request_id)))

    def status(self) -> dict[str, Any]:
        reading = self.watched.reading  # one snapshot
        return {
            "mode": reading.value.mode,
            "share": reading.value.share,
            "source": str(reading.source),
            "problem": reading.problem,
        }
