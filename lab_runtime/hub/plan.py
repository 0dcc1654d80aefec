"""A class hub as data: who is in the class, which engine spawns their servers, the images, each server's limits
and when an idle one is culled. `lab hub up` writes it (plan.json in the hub's folder); the hub's own config
(compose/hub/jupyterhub_config.py) reads it back, and `lab hub k8s-values` turns it into Zero to JupyterHub's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab_runtime.errors import ConfigError

LABEL = "lab.hub"  # on every container, service, volume and network the hub makes: `lab hub down` finds them by it
HUB = "lab-hub"  # the hub's container and its network; learners' servers are lab-hub-<name>
HUB_IMAGE = "lab-hub:latest"
LEARNER_IMAGE = "lab-learner:latest"
FILE = "plan.json"
HUB_FOLDER = "/srv/jupyterhub"  # the hub's folder inside its container (the host's <state dir>/hub)
WORK = "/home/learner/lab"  # the project in a learner's container, on their volume
PORT = 8600  # the hub's default port on the host (the sandbox's own services use 5000, 8000, 8100)
CONSOLE_PORT = 8800
CONSOLE_PREFIX = "/services/console"
# Per learner server, from the lighter sandbox's figures (`make bench-footprint`: about 700 MB and a tenth of a
# core in steady state) plus JupyterLab's ~150 MB and room for `lab` commands and training a model.
MEMORY = "1536M"
CPUS = 1.0
MEMORY_MIN = 768  # MB
# seconds a learner's sandbox services may take to get healthy: 12 sandboxes started at once on 2 cores took MLflow
# past the laptop's 60 s (`make bench-class`)
START_TIMEOUT = 300
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
NAME = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]|[a-z]")
NAME_RULE = "lower-case letters, digits and hyphens, starting with a letter, at most 32 characters (e.g. ada)"


def name_refusal(name: str, where: str) -> str | None:
    """Why `name` (from `where`) cannot be a learner's name on the hub: JupyterHub lower-cases names, and each
    names a container, a volume and a host on the class's network. None when it can."""
    if NAME.fullmatch(name):
        return None
    return f"{where}: {name!r} cannot be a learner's name on the hub: use {NAME_RULE}"


def numbered(count: int) -> tuple[str, ...]:
    """`--learners N`: learner-01 .. learner-N."""
    if not 1 <= count <= 500:
        raise ConfigError(f"--learners {count}: a class is 1 to 500 learners")
    width = max(2, len(str(count)))
    return tuple(f"learner-{i:0{width}d}" for i in range(1, count + 1))


def read_users(path: Path) -> tuple[str, ...]:
    """`--users FILE`: one learner's name a line; blank lines and `#` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"--users {path}: cannot read it ({exc}); give a file with one learner's name a line"
        ) from None
    names: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if refusal := name_refusal(name, f"{path}, line {number}"):
            raise ConfigError(refusal)
        if name in names:
            raise ConfigError(f"{path}, line {number}: {name!r} is there twice; each learner once")
        names.append(name)
    if not names:
        raise ConfigError(f"--users {path}: no learner's name in it; write one name a line")
    return tuple(names)


class HubPlan(BaseModel):
    """What the hub runs. Every field is validated here, so the hub's config trusts it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: Literal["docker", "swarm"] = "docker"
    learners: tuple[str, ...]
    instructor: str = "instructor"
    port: int = Field(PORT, ge=1, le=65535, description="the hub's port on the host's loopback")
    memory: str = Field(MEMORY, description="each learner server's memory limit (Docker's units: 1536M, 2G)")
    cpus: float = Field(CPUS, gt=0, le=64, description="each learner server's share of the cores")
    cull_idle: int = Field(3600, ge=0, description="seconds a server may sit idle before it is stopped (0: never)")
    learner_image: str = Field(LEARNER_IMAGE, min_length=1, description="the image learners' servers run")

    @field_validator("learners")
    @classmethod
    def _learners(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            raise ValueError("a class has at least one learner")
        for name in names:
            if refusal := name_refusal(name, "learners"):
                raise ValueError(refusal)
        if len(set(names)) != len(names):
            raise ValueError("a learner's name is there twice")
        return names

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not re.fullmatch(r"[1-9][0-9]*[KMG]", value):
            raise ValueError(f"--memory {value!r}: a number and K, M or G (e.g. 1536M, 2G)")
        if int(value[:-1]) * UNITS[value[-1]] < MEMORY_MIN * UNITS["M"]:
            raise ValueError(f"--memory {value}: a learner's server needs at least {MEMORY_MIN}M (its sandbox ~650M)")
        return value

    @model_validator(mode="after")
    def _instructor(self) -> HubPlan:
        if refusal := name_refusal(self.instructor, "instructor"):
            raise ValueError(refusal)
        if self.instructor in self.learners:
            raise ValueError(f"{self.instructor!r} is the instructor: it cannot be a learner too")
        return self

    @property
    def network(self) -> str:
        return HUB

    @property
    def console_url(self) -> str:
        """Where each learner's agent reaches the console: the hub's container on the class's network."""
        return f"http://{HUB}:{CONSOLE_PORT}{CONSOLE_PREFIX}"

    @property
    def memory_bytes(self) -> int:
        return int(self.memory[:-1]) * UNITS[self.memory[-1]]

    @staticmethod
    def server(name: str) -> str:
        """A learner's server: its container (docker) or service (swarm)."""
        return f"{HUB}-{name}"

    @staticmethod
    def volume(name: str) -> str:
        """A learner's volume: their project, work and journal, kept across restarts of their server and the hub."""
        return f"{HUB}-{name}-work"

    def server_environment(self, name: str, console_token: str) -> dict[str, str]:
        """A learner's server's environment: who they are, the console their sandbox reports to, and the time its
        services may take to start while a whole class's start at once shares the machine."""
        return {
            "LAB_LEARNER": name,
            "LAB_CONSOLE_URL": self.console_url,
            "LAB_CONSOLE_TOKEN": console_token,
            "LAB_START_TIMEOUT": str(START_TIMEOUT),
        }


def k8s_values(plan: HubPlan, registry: str = "registry.example.org/lab") -> dict[str, Any]:
    """Zero to JupyterHub's values for the same class on Kubernetes (KubeSpawner): the learner image from a
    registry the cluster pulls from, the same limits (requests from the steady-state figures), a volume per learner
    (an empty one is filled from the image's copy of the project at start) and culling. The console and the
    per-learner passwords are the Docker hub's: on Kubernetes, configure an authenticator and the console's service."""
    image = plan.learner_image
    name, tag = image.rsplit(":", 1) if ":" in image.rsplit("/", 1)[-1] else (image, "latest")  # a port is no tag
    repository = f"{registry.rstrip('/')}/{name}"
    return {
        "hub": {"config": {"Authenticator": {"allowed_users": list(plan.learners), "admin_users": [plan.instructor]}}},
        "singleuser": {
            "image": {"name": repository, "tag": tag},
            "cmd": "start-learner",
            "defaultUrl": "/lab",
            "uid": 1000,
            "fsGid": 1000,
            "memory": {"limit": plan.memory, "guarantee": "768M"},
            "cpu": {"limit": plan.cpus, "guarantee": 0.1},
            "storage": {"type": "dynamic", "capacity": "2Gi", "homeMountPath": WORK},
        },
        "cull": {"enabled": plan.cull_idle > 0, "timeout": plan.cull_idle or 3600, "every": 300},
        "prePuller": {"hook": {"enabled": True}, "continuous": {"enabled": True}},
        "scheduling": {"userScheduler": {"enabled": True}},
    }
