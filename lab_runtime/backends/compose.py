"""The compose runtime: the sandbox as a Docker Compose stack (compose/compose.yaml), faults through the docker SDK.

Compose (v2 `docker compose` or v1 `docker-compose`, whichever is installed) creates and removes the stack; the
docker SDK does what drills need: kill, pause, restart, resource limits and `tc netem` in a running container.
Health is judged from the host exactly as the local runtime judges it (health URLs on the published loopback
ports, heartbeat files in the shared state dir), so a paused container is unhealthy at once, not after a
healthcheck interval.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from lab_runtime.backends.base import ContainerControl, require_healthy
from lab_runtime.backends.engine import OFFLINE_BASE, base_image, engine, host_pins
from lab_runtime.backends.services import (
    AGENT,
    PORT_SETTINGS,
    SERVICES,
    ServiceStatus,
    answers,
    port_free,
    sandbox_specs,
    settings_env,
)
from lab_runtime.backends.supervisor import Supervisor
from lab_runtime.errors import ConfigError, FaultInjectionFailed, PortInUse, RuntimeNotReady, ServiceStartFailed
from lab_runtime.settings import RUNTIME_FILE, Settings

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
PROFILES = {"observability": ("prometheus", "grafana"), "load": ("locust",), "scale": ("postgres",)}
SECRETS = ("LAB_ADMIN_TOKEN", "GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD")


def project_name(root: Path) -> str:
    """One Compose project per state dir, so two sandboxes (e.g. two test runs) never share containers."""
    return "lab-" + hashlib.sha1(str(root).encode()).hexdigest()[:8]


@functools.cache
def compose_command(configured: str | None = None) -> tuple[str, ...]:
    """`docker compose` (v2) if the plugin answers, else `docker-compose` (v1); or the one configured."""
    if configured:
        command = tuple(configured.split())
        if not shutil.which(command[0]):
            raise RuntimeNotReady(f"LAB_COMPOSE_COMMAND is {configured!r}, but {command[0]} is not installed")
        return command
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise RuntimeNotReady(
        "neither `docker compose` nor `docker-compose` is installed: install one (Debian: apt-get install "
        "docker-compose) or use the local runtime (lab up --runtime local)"
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _build_error(build: subprocess.CompletedProcess[str]) -> str:
    """The line that says why a build failed (not compose's closing "failed to build"), with the fix for a base image
    that cannot be pulled."""
    lines = [ln for ln in (build.stdout + build.stderr).splitlines() if "failed to build" not in ln]
    reason = _last_line("\n".join(lines))
    if "registry" in reason or "pull" in reason or "no such host" in reason:
        reason += f" (no registry? build a base image offline with compose/base-image/build.sh: {OFFLINE_BASE})"
    return reason


class ComposeBackend:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        specs = sandbox_specs(settings)
        self.specs = {s.name: s for s in specs if s.name in SERVICES}  # the containers' host-side health checks
        # The console agent runs on the host, as every `lab` command does: it reads the shared journal and runs
        # the console's orders as `lab` commands.
        self.host_specs = [s for s in specs if s.name not in SERVICES]
        self.supervisor = Supervisor(settings.run_dir, settings.logs_dir)
        self.project = project_name(settings.root)
        self._client: Any = None

    # --- engine and compose plumbing ---

    @property
    def docker(self) -> Any:
        if self._client is None:
            self._client = engine("or use the local runtime (`lab down --force`, then `lab up --runtime local`)")
        return self._client

    @property
    def _profiles_path(self) -> Path:
        return self.settings.run_dir / "compose.profiles"

    def profiles(self) -> list[str]:
        """The profiles the stack was started with (`lab up --runtime compose --profile P`)."""
        try:
            return [p for p in self._profiles_path.read_text().split() if p in PROFILES]
        except OSError:
            return []

    def _secrets(self) -> dict[str, str]:
        """Generated once per state dir (mode 0600): the admin token, Grafana's and PostgreSQL's passwords."""
        path = self.settings.run_dir / "compose.secrets"
        values: dict[str, str] = {}
        with contextlib.suppress(OSError):
            values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        from lab_runtime.service.admin import admin_token

        values["LAB_ADMIN_TOKEN"] = admin_token(self.settings)
        missing = [k for k in SECRETS if not values.get(k)]
        if missing:
            values.update({k: secrets.token_urlsafe(18) for k in missing})
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write("".join(f"{k}={v}\n" for k, v in values.items()))
        return values

    @functools.cached_property
    def _env(self) -> dict[str, str]:
        """The environment of every compose command: the settings, the secrets, the image choices (read once)."""
        env = {**os.environ, **settings_env(self.settings), **self._secrets()}
        env.setdefault("LAB_UID", str(os.getuid()))
        env.setdefault("LAB_GID", str(os.getgid()))
        env.setdefault("LAB_BASE_IMAGE", base_image(self.docker))
        env.setdefault("LAB_IMAGE", "lab-app:latest")
        env.setdefault("LAB_PIP_CONSTRAINTS", host_pins())
        return env

    def compose(
        self, *args: str, check: bool = True, profiles: Sequence[str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run one compose command on this project (with the profiles it was started with, unless given); output
        captured (it goes into error messages)."""
        files = ["-f", str(COMPOSE_FILE)]
        profiles = self.profiles() if profiles is None else profiles
        env = dict(self._env)
        if "scale" in profiles:  # MLflow's store on PostgreSQL (compose.yaml's default is SQLite in its volume)
            files += ["-f", str(COMPOSE_DIR / "compose.scale.yaml")]
            env["LAB_MLFLOW_STORE"] = f"postgresql+psycopg2://lab:{env['POSTGRES_PASSWORD']}@postgres:5432/mlflow"
        argv = [*compose_command(self.settings.compose_command), *files, "-p", self.project]
        for profile in profiles:
            argv += ["--profile", profile]
        command = " ".join([*compose_command(self.settings.compose_command), *args])
        try:
            result = subprocess.run(
                [*argv, *args], capture_output=True, text=True, env=env, check=False, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise ServiceStartFailed(f"`{command}` did not finish within {timeout:.0f}s; see `lab status`") from None
        if check and result.returncode != 0:
            raise RuntimeNotReady(f"`{command}` failed: {_last_line(result.stderr)}")
        return result

    def _write_env_file(self) -> None:
        """Every container sees exactly the host's settings (the in-network hosts and ports are set in compose.yaml)."""
        lines = [f"{k}={v}" for k, v in settings_env(self.settings).items() if "\n" not in v]
        path = self.settings.run_dir / "compose.env"  # may hold LAB_ADMIN_TOKEN: readable by its owner only
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")

    def _containers(self) -> dict[str, Any]:
        """This project's containers by service name. While compose re-creates one, the old and the new both exist
        for a moment: the running one, else the newest, stands for the service."""
        found = self.docker.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={self.project}"}, ignore_removed=True
        )
        found.sort(key=lambda c: (c.attrs["State"].get("Status") == "running", c.attrs.get("Created", "")))
        return {c.labels.get("com.docker.compose.service", c.name): c for c in found}

    def _container(self, service: str) -> Any:
        optional = [n for names in PROFILES.values() for n in names]
        if service not in self.specs and service not in optional:
            raise RuntimeNotReady(f"unknown service {service!r}; services are {[*self.specs, *optional]}")
        container = self._containers().get(service)
        if container is None:
            raise RuntimeNotReady(f"{service} has no container; start the sandbox with `lab up --runtime compose`")
        return container

    @contextlib.contextmanager
    def _engine_errors(self, service: str, action: str) -> Iterator[None]:
        """A refusal of the engine (a removed container, a paused one, a bad update) as one line."""
        import docker.errors

        try:
            yield
        except docker.errors.DockerException as exc:
            reason = getattr(exc, "explanation", None) or str(exc)
            raise RuntimeNotReady(
                f"could not {action} {service}: {_last_line(str(reason))}; see its logs with `lab logs {service}`"
            ) from None

    # --- the Backend interface ---

    def up(self, profiles: Sequence[str] = ()) -> list[str]:
        self.settings.ensure_dirs()
        unknown = sorted(set(profiles) - set(PROFILES))
        if unknown:
            raise ConfigError(f"unknown compose profile(s) {unknown}; profiles are {list(PROFILES)}")
        before = {s.name for s in self.status() if s.running}  # the engine answers (or one line says it does not)
        active = sorted(set(profiles) | set(self.profiles()))
        published = {"mlflow": self.settings.mlflow_port, "model-service": self.settings.service_port}
        published["monitor"] = self.settings.monitor_port
        if "observability" in active:
            published |= {"prometheus": self.settings.prometheus_port, "grafana": self.settings.grafana_port}
        for name, port in published.items():
            if name not in before and not port_free(port):
                raise PortInUse.taken(port, name, PORT_SETTINGS[name])
        (self.settings.root / RUNTIME_FILE).write_text("compose")  # from here on, `lab down` finds the stack
        self._write_env_file()
        self._pull_missing(active)
        self._profiles_path.write_text(" ".join(active))
        build = self.compose("build", check=False, timeout=1800)
        if build.returncode != 0:
            log = self.settings.logs_dir / "compose-build.log"
            log.write_text(build.stdout + build.stderr)
            raise ServiceStartFailed(
                f"building the sandbox's images from {self._env['LAB_BASE_IMAGE']} failed: {_build_error(build)}; "
                f"the whole build is in {log}"
            )
        extra = [n for p in self.profiles() for n in PROFILES[p] if n != "locust"]  # locust runs once and exits
        # Locust's load test runs when its profile is asked for, not again at every later `lab up` of the stack.
        services = [] if "load" in profiles else [*self.specs, *extra]
        # compose waits for each level's healthchecks itself; it gets the start timeout per level, and a margin
        started = self.compose(
            "up",
            "-d",
            "--no-build",
            "--remove-orphans",
            *services,
            check=False,
            timeout=3 * self.settings.start_timeout + 60,
        )
        self._wait_healthy([*self.specs, *extra], started)
        self.supervisor.start(self.host_specs, self.settings.start_timeout)
        return [s.name for s in self.status() if s.running and s.name not in before]

    def _pull_missing(self, profiles: Sequence[str]) -> None:
        """Images the profiles take from a registry (Grafana, PostgreSQL): present, pulled, or one line on how to
        bring them to a machine without a registry."""
        import docker.errors

        config = yaml.safe_load(self.compose("config", profiles=profiles).stdout)["services"]
        for name in [n for p in profiles for n in PROFILES[p]]:
            service = config.get(name, {})
            image = service.get("image")
            if not image or "build" in service:
                continue
            try:
                self.docker.images.get(image)
            except docker.errors.ImageNotFound:
                try:
                    self.docker.images.pull(image)
                except docker.errors.APIError as exc:
                    raise ServiceStartFailed(
                        f"{name}: image {image} is not on this machine and cannot be pulled ({_last_line(str(exc))}); "
                        f"on a machine with a registry run `docker pull {image} && docker save {image} -o {name}.tar`, "
                        f"then `docker load -i {name}.tar` here (or set LAB_{name.upper()}_IMAGE)"
                    ) from None

    def _wait_healthy(self, names: list[str], started: subprocess.CompletedProcess[str] | None = None) -> None:
        """Until every named service is healthy. On failure, one line names the first service that has a container
        but is not healthy (the cause; services that depend on it have no container yet) and its logs."""
        deadline = time.monotonic() + self.settings.start_timeout
        while True:
            containers = self._containers()
            rows = {s.name: s for s in self.status()}
            waiting = [n for n in names if not rows.get(n) or not rows[n].healthy]
            if not waiting:
                return
            gave_up = started is not None and started.returncode != 0
            if gave_up or time.monotonic() > deadline:
                created = [n for n in waiting if n in containers]
                name = next((n for n in created if rows[n].running), created[0] if created else waiting[0])
                state = "exited" if name in containers and not rows[name].running else "never got healthy"
                raise ServiceStartFailed(
                    f"{name} {state} within {self.settings.start_timeout:.0f}s; see its logs with `lab logs {name}`"
                )
            time.sleep(0.25)

    def down(self, volumes: bool = False) -> list[str]:
        running = [s.name for s in self.status() if s.running]
        self.supervisor.stop([AGENT])  # whether or not the settings still name a console
        args = ["down", "--remove-orphans", "--timeout", "5"]
        if volumes:
            args.append("--volumes")
        self.compose(*args, profiles=list(PROFILES))  # every profile: none of its containers is left behind
        self._profiles_path.unlink(missing_ok=True)
        (self.settings.root / RUNTIME_FILE).unlink(missing_ok=True)
        return running

    def clear_unreadable(self) -> list[str]:
        """For `lab down --force` with no engine answering: forget the compose sandbox, so `lab up` may start the
        local one. (Its containers, if the engine comes back, stay until `lab up --runtime compose` and `lab down`.)"""
        try:
            self.docker  # noqa: B018 - the engine answers: nothing to forget
        except RuntimeNotReady:
            (self.settings.root / RUNTIME_FILE).unlink(missing_ok=True)
            return ["the compose runtime record (no Docker engine answers)"]
        return []

    def status(self) -> list[ServiceStatus]:
        """Each service's state; the host-side health checks run at once (a paused service costs one timeout)."""
        containers = self._containers()
        names = [*self.specs, *[n for n in containers if n not in self.specs]]

        def one(name: str) -> ServiceStatus:
            c = containers.get(name)
            state = c.attrs["State"] if c is not None else {}
            running = state.get("Status") in ("running", "paused")
            if name in self.specs:
                healthy = running and not state.get("Paused") and answers(self.specs[name])
            else:
                healthy = running and state.get("Health", {}).get("Status", "healthy") == "healthy"
            port = self.specs[name].port if name in self.specs else None
            started = _started_at(state.get("StartedAt")) if running else None
            uptime = time.time() - started if started else None
            return ServiceStatus(name, running, healthy, state.get("Pid") or None, port, uptime, f"lab logs {name}")

        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            return list(pool.map(one, names)) + self.supervisor.status(self.host_specs)

    def logs(self, service: str, lines: int = 40) -> str:
        return str(self._container(service).logs(tail=lines).decode(errors="replace"))

    def log_location(self, service: str) -> str:
        return f"docker logs {self._container(service).name}"

    def require(self, *services: str) -> None:
        require_healthy(self.status(), services)

    def kill(self, service: str) -> None:
        container = self._container(service)
        if container.status not in ("running", "paused"):
            raise RuntimeNotReady(f"{service} is not running; start the sandbox with `lab up --runtime compose`")
        with self._engine_errors(service, "kill"):
            container.kill()

    def pause(self, service: str) -> None:
        with self._engine_errors(service, "pause"):
            self._container(service).pause()

    def resume(self, service: str) -> None:
        container = self._container(service)
        with self._engine_errors(service, "resume"):
            container.reload()
            if container.status == "paused":
                container.unpause()

    def restart(self, service: str) -> None:
        """Re-create the container from the compose file: whatever was done to the old one (a pause, cut limits,
        a netem qdisc) is gone with it."""
        self.resume(service)
        self.compose("up", "-d", "--no-deps", "--no-build", "--force-recreate", "--timeout", "5", service)
        self._wait_healthy([service])

    def ensure_running(self, service: str) -> bool:
        container = self._containers().get(service)
        if container is None:  # never created, or removed: compose creates it
            self._container(service)  # an unknown name is refused first
            self.compose("up", "-d", "--no-deps", "--no-build", service)
        elif container.status == "running":
            return False
        else:
            with self._engine_errors(service, "start"):
                container.unpause() if container.status == "paused" else container.start()
        self._wait_healthy([service])
        return True

    # --- container control (ContainerControl: the compose runtime only) ---

    @property
    def container_control(self) -> ContainerControl:
        return self

    def container_id(self, service: str) -> str:
        return str(self._container(service).id)

    def limits(self, service: str) -> dict[str, int]:
        """The container's memory limit (bytes) and CPU quota (µs per 100 ms); 0 means none."""
        host = self._container(service).attrs["HostConfig"]
        return {"memory": int(host.get("Memory") or 0), "cpu_quota": int(host.get("CpuQuota") or 0)}

    def limit(self, service: str, memory_mb: int | None = None, cpus: float | None = None) -> None:
        """Cut the memory limit and CPU quota of a running container (docker update)."""
        update: dict[str, int] = {}
        if memory_mb is not None:
            update["mem_limit"] = update["memswap_limit"] = memory_mb * 2**20
        if cpus is not None:
            update["cpu_period"], update["cpu_quota"] = 100_000, int(cpus * 100_000)
        with self._engine_errors(service, "limit"):
            self._container(service).update(**update)

    def unlimit(self, service: str, previous: dict[str, int], memory: bool = True, cpu: bool = True) -> None:
        """Put back the limits `limits` returned, those named. "No CPU quota" is -1; the engine cannot remove a
        memory limit (it refuses -1 and 0), so "no memory limit" becomes the host's whole memory."""
        import psutil

        update: dict[str, int] = {}
        if memory:
            update["mem_limit"] = update["memswap_limit"] = previous.get("memory") or psutil.virtual_memory().total
        if cpu:
            update["cpu_period"], update["cpu_quota"] = 100_000, previous.get("cpu_quota") or -1
        with self._engine_errors(service, "restore the limits of"):
            self._container(service).update(**update)

    def delay(self, service: str, delay_ms: int, jitter_ms: int = 0) -> None:
        """Delay every packet leaving the container by `delay_ms` (tc netem on eth0; needs NET_ADMIN)."""
        netem = ["netem", "delay", f"{delay_ms}ms", *([f"{jitter_ms}ms"] if jitter_ms else [])]
        self._tc(service, "replace", "dev", "eth0", "root", *netem)

    def undelay(self, service: str) -> bool:
        """Remove the netem qdisc; False when there was none (a re-created container has a clean network)."""
        try:
            self._tc(service, "del", "dev", "eth0", "root")
        except FaultInjectionFailed as exc:
            if "handle of zero" in str(exc):  # tc's word for "no root qdisc here"
                return False
            raise
        return True

    def _tc(self, service: str, *args: str) -> None:
        with self._engine_errors(service, "run tc in"):
            code, output = self._container(service).exec_run(["tc", "qdisc", *args], user="root")
        if code != 0 and b"qdisc kind is unknown" in output:
            raise FaultInjectionFailed(
                "this Docker host's kernel has no netem (CONFIG_NET_SCH_NETEM, module sch_netem), so a network delay "
                "cannot be injected; run network-latency drills on a host whose kernel has it (`modprobe sch_netem`)"
            )
        if code != 0:
            raise FaultInjectionFailed(
                f"`tc qdisc {' '.join(args)}` failed in {service}: {_last_line(output.decode(errors='replace'))} "
                "(the container needs NET_ADMIN and iproute2)"
            )


def _started_at(value: str | None) -> float | None:
    if not value or value.startswith("0001"):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value[:26].rstrip("Z") + "+00:00").timestamp()
    return None
