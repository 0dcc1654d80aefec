"""The class hub on this machine's Docker engine (or its single-node swarm): its images built from the offline
base, its network, the hub's container, every learner's server started before class, their states, and all of it
removed. The hub's folder (<state dir>/hub, mounted into the hub's container) holds the plan, the secrets, the
hub's database, the console's store and the records of failed starts."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from lab_runtime.backends.engine import base_image, engine, host_pins
from lab_runtime.errors import HubError
from lab_runtime.hub import failures
from lab_runtime.hub.api import HubApi
from lab_runtime.hub.plan import FILE, HUB, HUB_FOLDER, HUB_IMAGE, LABEL, LEARNER_IMAGE, HubPlan
from lab_runtime.hub.secrets import HubSecrets
from lab_runtime.hub.status import LearnerState, learner_state

PROJECT = Path(__file__).resolve().parents[2]
DEPS_IMAGE = "lab-app-deps:latest"  # compose/Dockerfile's `deps` stage: what the hub's images build on
HUB_DOCKERFILE = "compose/hub/Dockerfile"  # its targets: learner, hub
SOCKET = "/var/run/docker.sock"


class Hub:
    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self._client: Any = None
        self._api: HubApi | None = None

    @property
    def docker(self) -> Any:
        if self._client is None:
            self._client = engine("then `lab hub up` again: the hub's servers are containers")
        return self._client

    # --- what is on disk ---

    def plan(self) -> HubPlan:
        path = self.folder / FILE
        if not path.exists():
            raise HubError(f"no class hub here ({path} is missing): start one with `lab hub up --learners N`")
        return HubPlan.model_validate_json(path.read_text())

    def secrets(self) -> HubSecrets:
        return HubSecrets.read(self.folder)

    def api(self) -> HubApi:
        """The hub's API (one client, made once the plan and secrets are written)."""
        if self._api is None:
            self._api = HubApi(f"http://127.0.0.1:{self.plan().port}", self.secrets().api_token)
        return self._api

    # --- up ---

    def build(self, say: Callable[[str], None]) -> None:
        """The learner and hub images on the app image's dependencies, from the offline base where no registry
        answers (cached layers: seconds when nothing changed, and a change of the code rebuilds no dependencies).
        The whole output goes to build.log in the hub's folder."""
        base = base_image(self.docker)
        log = self.folder / "build.log"
        steps = (
            (DEPS_IMAGE, "compose/Dockerfile", "deps", {"BASE_IMAGE": base, "PIP_CONSTRAINTS": host_pins()}),
            (LEARNER_IMAGE, HUB_DOCKERFILE, "learner", {"LAB_IMAGE": DEPS_IMAGE}),
            (HUB_IMAGE, HUB_DOCKERFILE, "hub", {"LAB_IMAGE": DEPS_IMAGE}),
        )
        with log.open("w") as out:
            for tag, dockerfile, target, args in steps:
                say(f"building {tag}")
                for chunk in self.docker.api.build(
                    path=str(PROJECT),
                    dockerfile=dockerfile,
                    target=target,
                    tag=tag,
                    buildargs=args,
                    rm=True,
                    decode=True,
                ):
                    out.write(chunk.get("stream", ""))
                    if "error" in chunk:
                        out.write(chunk["error"])
                        raise HubError(
                            f"building {tag} on {base} failed: {chunk['error'].strip()}; the whole build is in {log} "
                            "(no registry? build the offline base first: make base-image)"
                        )

    def up(self, plan: HubPlan, issue: Callable[[str | None], str], say: Callable[[str], None]) -> HubSecrets:
        """Write the plan and secrets, build, start the hub (again: its learners' servers keep running)."""
        self.docker  # noqa: B018 - no engine: one line, before anything is written
        if plan.engine == "swarm" and not self._swarm():
            raise HubError(
                "this engine is not in a swarm: `docker swarm init` (a single node is enough), or drop --swarm"
            )
        (self.folder / "console").mkdir(parents=True, exist_ok=True)
        (self.folder / FILE).write_text(plan.model_dump_json(indent=1))
        secrets = self.secrets().completed(plan, issue)
        secrets.write(self.folder)
        self.build(say)
        with self._engine_errors(plan):
            self._network(plan)
            self._remove(self._hub_container())
            say(f"starting the hub on http://127.0.0.1:{plan.port}")
            self.docker.containers.run(
                HUB_IMAGE,
                name=HUB,
                detach=True,
                network=plan.network,
                ports={"8000/tcp": ("127.0.0.1", plan.port)},
                volumes={str(self.folder): {"bind": HUB_FOLDER, "mode": "rw"}, SOCKET: {"bind": SOCKET, "mode": "rw"}},
                # as the one who runs `lab hub`, so the files it writes in their folder stay theirs
                user=f"{os.getuid()}:{os.getgid()}",
                group_add=[os.stat(SOCKET).st_gid] if os.path.exists(SOCKET) else [],
                labels={LABEL: "1"},
                environment={"MLFLOW_DISABLE_TELEMETRY": "true", "HOME": "/tmp"},
            )
        self._wait_hub(plan)
        return secrets

    @contextlib.contextmanager
    def _engine_errors(self, plan: HubPlan) -> Iterator[None]:
        """The engine's refusals as one line (a port taken is the usual one)."""
        import docker.errors

        try:
            yield
        except docker.errors.APIError as exc:
            said = str(exc.explanation or exc).strip().splitlines()[0]
            hint = f"; choose another port with --port (now {plan.port})" if "port" in said.lower() else ""
            raise HubError(f"the Docker engine refused: {said}{hint}") from None

    def _network(self, plan: HubPlan) -> None:
        driver = "overlay" if plan.engine == "swarm" else "bridge"
        found = self.docker.networks.list(names=[plan.network])
        if found and found[0].attrs.get("Driver") != driver:
            kind = found[0].attrs.get("Driver")
            raise HubError(f"a {kind} network {plan.network} is left from another hub: `lab hub down` first")
        if not found:
            self.docker.networks.create(plan.network, driver=driver, attachable=True, labels={LABEL: "1"})

    def _hub_container(self) -> Any:
        found = self.docker.containers.list(all=True, filters={"name": f"^{HUB}$"})
        return found[0] if found else None

    def _wait_hub(self, plan: HubPlan, timeout: float = 90.0) -> None:
        api = self.api()
        deadline = time.monotonic() + timeout
        while not api.answers():
            container = self._hub_container()
            if container is None or container.status in ("exited", "dead"):
                lines = container.logs(tail=15).decode(errors="replace").splitlines() if container else []
                last = next((ln.strip() for ln in reversed(lines) if ln.strip()), "no output")
                raise HubError(f"the hub's container stopped at start ({last[:300]}); all of it: `docker logs {HUB}`")
            if time.monotonic() > deadline:
                raise HubError(f"the hub did not answer on port {plan.port} within {timeout:.0f}s: `docker logs {HUB}`")
            time.sleep(0.5)

    def start_all(self, names: Iterable[str] | None = None) -> None:
        """Ask the hub for every learner's server (those already running or starting are left as they are)."""
        plan = self.plan()
        api = self.api()
        for name in names or plan.learners:
            api.start(name)

    def wait_ready(self, timeout: float, say: Callable[[str], None] | None = None) -> list[LearnerState]:
        """Each learner's state once every server is running with a healthy sandbox or has failed, or at
        `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.status()
            waiting = [s for s in states if not s.ready and s.server in ("starting", "running")]
            if not waiting or time.monotonic() > deadline:
                return states
            if say:
                say(f"{len(states) - len(waiting)} of {len(states)} learners' servers settled")
            time.sleep(2)

    # --- status ---

    def status(self) -> list[LearnerState]:
        plan = self.plan()
        api = self.api()
        found = []
        for name in plan.learners:
            user = api.user(name)
            server = (user or {}).get("servers", {}).get("")
            sandbox = api.sandbox(name) if server and server.get("ready") else None
            found.append(learner_state(name, user, sandbox, failures.read(self.folder, name)))
        return found

    # --- down ---

    def down(self, volumes: bool = False) -> list[str]:
        """Remove the hub, every learner's server, the network (and with `volumes`, the learners' volumes: their
        work and journals). What was removed, by kind and name."""
        removed: list[str] = []
        for service in self.docker.services.list(filters={"label": LABEL}) if self._swarm() else []:
            removed.append(f"service {service.name}")
            service.remove()
        for container in self.docker.containers.list(all=True, filters={"label": LABEL}):
            removed.append(f"container {container.name}")
            self._remove(container)
        self._gone(lambda: self.docker.containers.list(all=True, filters={"label": LABEL}))
        for network in self.docker.networks.list(filters={"label": LABEL}):
            removed.append(f"network {network.name}")
            network.remove()
        if volumes:
            for volume in self.docker.volumes.list(filters={"label": LABEL}):
                removed.append(f"volume {volume.name}")
                volume.remove(force=True)
        return removed

    def _swarm(self) -> bool:
        return bool(self.docker.info().get("Swarm", {}).get("LocalNodeState") == "active")

    @staticmethod
    def _remove(container: Any) -> None:
        import docker.errors

        if container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)

    @staticmethod
    def _gone(listing: Callable[[], list[Any]], timeout: float = 60.0) -> None:
        """Wait for a swarm's tasks' containers to go after their services were removed."""
        deadline = time.monotonic() + timeout
        while listing() and time.monotonic() < deadline:
            time.sleep(0.5)
        if left := listing():
            raise HubError(f"containers still there after {timeout:.0f}s: {', '.join(c.name for c in left)}")
