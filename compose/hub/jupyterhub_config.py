# The class hub's JupyterHub config. `lab hub up` writes the class's plan and secrets into the hub's folder
# (mounted at /srv/jupyterhub); everything here follows from them: a server per learner spawned by DockerSpawner
# (or SwarmSpawner) from the learner image, each with its own volume and limits, idle servers culled, and the
# instructor console as a hub service that learners' sandboxes report to.
import asyncio
import hmac
import sys
from pathlib import Path

from dockerspawner import DockerSpawner, SwarmSpawner
from jupyterhub.auth import Authenticator

from lab_runtime.hub import failures
from lab_runtime.hub.plan import CONSOLE_PORT, CONSOLE_PREFIX, FILE, HUB, HUB_FOLDER, LABEL, WORK, HubPlan
from lab_runtime.hub.secrets import HubSecrets

c = get_config()  # noqa: F821
folder = Path(HUB_FOLDER)
plan = HubPlan.model_validate_json((folder / FILE).read_text())
secrets = HubSecrets.read(folder)


class ClassAuthenticator(Authenticator):
    """Each learner and the instructor sign in with their own password (`lab hub passwords`)."""

    async def authenticate(self, handler, data):
        expected = secrets.passwords.get(data.get("username", ""))
        given = data.get("password", "")
        if expected and hmac.compare_digest(expected.encode(), given.encode()):
            return data["username"]
        return None


class _Recorded:
    """A spawner that records why its server failed to start (`lab hub status` and the console show it), and
    clears the record once one starts."""

    async def start(self):
        try:
            started = await super().start()
        except asyncio.CancelledError:  # the hub gave up waiting (its start_timeout)
            failures.record(folder, self.user.name, f"not started within {self.start_timeout}s")
            raise
        except Exception as exc:
            reason = str(getattr(exc, "explanation", None) or exc).strip().splitlines()[0][:400]
            failures.record(folder, self.user.name, f"{type(exc).__name__}: {reason}")
            raise
        failures.clear(folder, self.user.name)
        return started


class LabDockerSpawner(_Recorded, DockerSpawner):
    pass


class LabSwarmSpawner(_Recorded, SwarmSpawner):
    @property
    def mounts(self):
        """The learner's named volume as a volume (SwarmSpawner mounts every source as a bind, a host path)."""
        from docker.types import Mount

        return [
            Mount(target=v["bind"], source=src, type="bind" if src.startswith("/") else "volume", read_only=v["mode"] == "ro")
            for src, v in self.volume_binds.items()
        ]


def _volume(name):
    """The learner's volume, made with the hub's label (`lab hub down --volumes` finds it)."""
    import docker

    client = docker.from_env()
    try:
        client.volumes.get(plan.volume(name))
    except docker.errors.NotFound:
        client.volumes.create(plan.volume(name), labels={LABEL: "1", f"{LABEL}.learner": name})
    finally:
        client.close()


async def _before_spawn(spawner):
    """The learner's environment, labels and volume."""
    name = spawner.user.name
    spawner.environment.update(plan.server_environment(name, secrets.console_tokens.get(name, "")))
    labels = {LABEL: "1", f"{LABEL}.learner": name}
    spawner.extra_create_kwargs = {"labels": labels}
    if plan.engine == "swarm":
        spawner.extra_container_spec = {"labels": labels, "init": True}
    await asyncio.get_running_loop().run_in_executor(None, _volume, name)


c.JupyterHub.bind_url = "http://0.0.0.0:8000"
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = f"http://{HUB}:8081"
c.JupyterHub.db_url = f"sqlite:///{HUB_FOLDER}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{HUB_FOLDER}/cookie_secret"
c.ConfigurableHTTPProxy.pid_file = "/tmp/proxy.pid"  # the container's own, not the shared folder's
c.JupyterHub.authenticator_class = ClassAuthenticator
c.Authenticator.allowed_users = set(plan.learners)
c.Authenticator.admin_users = {plan.instructor}
c.JupyterHub.extra_user_scopes = {"access:services!service=console"}  # learners sign in to the console too
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}  # a start request is answered at once (202)
c.JupyterHub.concurrent_spawn_limit = max(100, len(plan.learners))  # "start all" for the whole class at once
c.JupyterHub.cleanup_servers = False  # a restarted hub finds its learners' servers running

c.JupyterHub.spawner_class = LabSwarmSpawner if plan.engine == "swarm" else LabDockerSpawner
c.DockerSpawner.image = plan.learner_image
c.DockerSpawner.pull_policy = "never"  # images are built here, offline
c.DockerSpawner.network_name = plan.network
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.name_template = HubPlan.server("{raw_username}")  # names are safe as they are
c.DockerSpawner.volumes = {HubPlan.volume("{raw_username}"): WORK}
c.DockerSpawner.remove = True  # a stopped server's container goes; its volume stays
c.DockerSpawner.extra_host_config = {"init": True}  # an init reaps the sandbox's processes, which `lab up` detaches
# the hub reaches a learner's service at its task's address (no virtual IP: this kernel's IPVS may be missing)
c.SwarmSpawner.extra_endpoint_spec = {"mode": "dnsrr"}
c.Spawner.mem_limit = plan.memory
c.Spawner.cpu_limit = plan.cpus
c.Spawner.cmd = ["start-learner"]
c.Spawner.default_url = "/lab"
c.Spawner.pre_spawn_hook = _before_spawn
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 120

c.JupyterHub.services = [
    {
        "name": "console",
        "url": f"http://{HUB}:{CONSOLE_PORT}",
        "command": [
            "lab", "console", "serve", "--host", "0.0.0.0", "--port", str(CONSOLE_PORT),
            "--store", f"{HUB_FOLDER}/console/console.db", "--base-path", CONSOLE_PREFIX,
            "--hub-folder", HUB_FOLDER,
        ],
        "oauth_no_confirm": True,
    },
    {"name": "lab-cli", "api_token": secrets.api_token},
]
c.JupyterHub.load_roles = [
    {
        "name": "lab-cli",
        "scopes": ["admin:users", "admin:servers", "access:servers", "list:users", "read:users"],
        "services": ["lab-cli"],
    },
    {"name": "console", "scopes": ["list:users", "read:users"], "services": ["console"]},
]
if plan.cull_idle:
    c.JupyterHub.services.append(
        {"name": "idle-culler", "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={plan.cull_idle}"]}
    )
    c.JupyterHub.load_roles.append(
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    )
