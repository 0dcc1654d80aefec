"""One settings object for the whole sandbox: `LAB_*` environment variables, then `.env`, then defaults.

The sandbox lives in its home: the project folder (`.env` and the state dir `.lab/` are read there), found from
`LAB_HOME` or by walking up from the current folder, so `lab` means the same sandbox from any folder below it.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lab_runtime.errors import ConfigError

HOST = "127.0.0.1"  # every sandbox service binds to loopback only (in compose: published on loopback only)
RUNTIME_FILE = "runtime"  # in the state dir: the runtime `lab up` started, so later commands use the same one
HOME_VARIABLE = "LAB_HOME"
LEARNER_MAX = 64  # characters in a learner's name


class Settings(BaseSettings):
    """Ports, paths and knobs of the sandbox. Every field is `LAB_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="LAB_", env_file=".env", extra="ignore")

    state_dir: Path = Field(Path(".lab"), description="databases, artifacts, logs and pid files")
    runtime: Literal["local", "compose"] = "local"
    compose_command: str | None = Field(None, description="`docker compose` or `docker-compose`; default: found")
    # where the services listen and where they find each other: loopback, or in containers the service names
    bind_host: str = HOST
    mlflow_host: str = HOST
    service_host: str = HOST
    monitor_host: str = HOST
    mlflow_port: int = Field(5000, ge=1, le=65535)
    service_port: int = Field(8000, ge=1, le=65535)
    model_name: str = "credit-risk"
    seed: int = 42
    learner: str = Field("learner", description="name recorded with every journal event")
    poll_interval: float = Field(
        0.5, gt=0, description="seconds between registry polls while no MLflow webhook is subscribed"
    )
    registry_webhooks: bool = Field(
        True, description="MLflow's webhooks wake the model service and the registry watcher on alias moves"
    )
    pushed_poll_interval: float = Field(
        10.0, gt=0, description="seconds between registry polls while a webhook is subscribed (the safety net)"
    )
    watcher_host: str = HOST  # the name MLflow reaches the registry watcher's webhook receiver by
    start_timeout: float = Field(60.0, gt=0, description="seconds a service may take to get healthy")
    log_queue_size: int = Field(10_000, ge=1, description="prediction-log queue bound; overflow is dropped")
    max_batch: int = Field(1000, ge=1, description="most records in one /predict call")
    prediction_retention: float = Field(3600.0, gt=0, description="seconds of prediction log kept")
    # upstream pipeline (the production traffic)
    pipeline_rate: float = Field(20.0, gt=0, le=1000, description="requests per second sent to the service")
    label_delay: float = Field(10.0, ge=0, description="seconds before a request's ground-truth label is posted")
    label_share: float = Field(0.5, ge=0, le=1, description="share of requests that ever get a label")
    # monitor
    monitor_port: int = Field(8100, ge=1, le=65535)
    prometheus_port: int = Field(9090, ge=1, le=65535, description="compose, profile observability")
    grafana_port: int = Field(3000, ge=1, le=65535, description="compose, profile observability")
    monitor_interval: float = Field(5.0, gt=0, description="seconds between monitor evaluations")
    monitor_window: float = Field(60.0, gt=0, description="seconds of traffic each drift evaluation reads")
    monitor_min_rows: int = Field(200, ge=10, description="fewer rows than this: no drift verdict")
    monitor_max_rows: int = Field(5000, ge=10, description="newest rows an evaluation reads at most")
    quality_window: float = Field(120.0, gt=0, description="seconds of labelled predictions for accuracy and F1")
    min_labels: int = Field(100, ge=1, description="fewer labelled rows than this: no quality verdict")
    drift_alpha: float = Field(0.0001, gt=0, lt=1, description="family-wise false-alarm rate per evaluation")
    change_threshold: float = Field(
        14.0, gt=0, description="log-likelihood ratio a sequential change chart must reach (false alarms: ~e^-h a row)"
    )
    quality_threshold: float = Field(
        10.0, gt=0, description="log-likelihood ratio the quality chart (the serving version's mistakes) must reach"
    )
    reference_rows: int = Field(5000, ge=100, description="rows in the monitor's reference set")
    report_interval: float = Field(
        0.0,
        ge=0,
        description="seconds between Evidently reports rendered unasked (each costs ~4 s of a core in a process of "
        "its own); 0: only when `lab monitor report` asks",
    )
    alert_webhook: str | None = Field(None, description="URL that receives firing and resolved alerts as JSON")
    # drills
    admin_token: str | None = Field(
        None, description="token of the service's admin (fault) endpoints; default: made once in <state>/admin.token"
    )
    drill_probe_interval: float = Field(2.0, gt=0, description="seconds between a running drill's probes")
    drill_recent_window: float = Field(
        5.0, gt=0, le=60, description="seconds of the service's latest requests a running drill judges a fix by"
    )
    time_scale: float = Field(
        1.0,
        gt=0,
        le=10,
        description="multiplies every clock of the sandbox (`scaled`): the monitor's windows and interval, rules' "
        "`for`, the label delay, drills' holds, limits, delays and settle waits, canary analysis intervals; not "
        "samples and polls (the drills' recent window, probe, poll and report intervals)",
    )
    # the instructor console (`lab console`): set both and `lab up` starts the agent that joins it
    console_url: str | None = Field(None, description="the instructor console this sandbox reports to")
    console_token: str | None = Field(None, description="this learner's console token (`lab console token NAME`)")
    # grading
    instructor_key: str | None = Field(None, description="the key result bundles are signed and verified with")
    instructor_key_file: Path | None = Field(None, description="a file holding that key (one line)")

    @field_validator("learner")
    @classmethod
    def _a_printable_name(cls, name: str) -> str:
        if refusal := learner_refusal(name, "LAB_LEARNER"):
            raise ValueError(refusal)
        return name

    @field_validator("console_url")
    @classmethod
    def _a_web_address(cls, url: str | None) -> str | None:
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"LAB_CONSOLE_URL {url!r} is not a web address: http://HOST:PORT (or https://)")
        return url or None

    @model_validator(mode="after")
    def _console_whole(self) -> Settings:
        if bool(self.console_url) != bool(self.console_token):
            have, lack = ("URL", "TOKEN") if self.console_url else ("TOKEN", "URL")
            raise ValueError(
                f"LAB_CONSOLE_{have} is set but LAB_CONSOLE_{lack} is not: set both to join the instructor console "
                "(the token comes from `lab console token NAME`), or neither"
            )
        return self

    def scaled(self, seconds: float) -> float:
        """A duration on the sandbox's clock (a setting, a rule's `for`, a drill's hold), times its time scale."""
        return seconds * self.time_scale

    @cached_property
    def root(self) -> Path:
        return self.state_dir.resolve()

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.mlflow_host}:{self.mlflow_port}"

    @property
    def service_url(self) -> str:
        return f"http://{self.service_host}:{self.service_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.monitor_host}:{self.monitor_port}"

    @property
    def journal_path(self) -> Path:
        return self.root / "journal.db"

    @property
    def prediction_log_path(self) -> Path:
        return self.root / "predictions.db"

    @property
    def mlflow_db_path(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    @property
    def console_agent_heartbeat(self) -> Path:
        return self.run_dir / "console-agent.heartbeat"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def workspace_dir(self) -> Path:
        return self.root / "workspace"

    @property
    def pipeline_db_path(self) -> Path:
        return self.root / "pipeline.db"

    @property
    def pipeline_status_path(self) -> Path:
        """Written by the pipeline every second: its heartbeat and its traffic counters."""
        return self.run_dir / "pipeline.status.json"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def rules_dir(self) -> Path:
        """Alert rules added by the learner (`lab monitor add-rules`), loaded after the built-in ones."""
        return self.root / "rules"

    @property
    def policy_path(self) -> Path:
        """The learner's output policy; while it does not exist the built-in one is in force."""
        return self.root / "policy.yaml"

    @property
    def flags_path(self) -> Path:
        """The model switch's flag file (flagd format), written by `lab feature ...`; absent: the model on."""
        return self.root / "flags.json"

    @property
    def handed_flags_path(self) -> Path:
        """The last valid flag definition, which the service hands to its flagd provider."""
        return self.run_dir / "flagd.json"

    @property
    def load_dir(self) -> Path:
        return self.root / "load"

    @property
    def admin_token_path(self) -> Path:
        return self.root / "admin.token"

    @property
    def webhook_key_path(self) -> Path:
        """The key MLflow encrypts webhook secrets with in its store: the same across restarts, or none decrypts."""
        return self.root / "webhook.key"

    @property
    def drills_db_path(self) -> Path:
        """Drill runs and the durable table of active faults (what `lab reset` reverts)."""
        return self.root / "drills.db"

    @property
    def xapi_outbox_path(self) -> Path:
        """xAPI statements queued for a Learning Record Store until it took them (`lab results xapi --lrs`)."""
        return self.root / "xapi-outbox.db"

    def ensure_dirs(self) -> None:
        dirs = (self.root, self.artifacts_dir, self.logs_dir, self.run_dir, self.workspace_dir, self.reports_dir)
        for d in (*dirs, self.rules_dir, self.load_dir):
            d.mkdir(parents=True, exist_ok=True)


def learner_refusal(name: str, source: str) -> str | None:
    """Why `name`, given as `source` (`LAB_LEARNER`, `--learner`), cannot be a learner's name (it is journaled,
    signed into bundles, shown on leaderboards); None when it can."""
    if any("\ud800" <= c <= "\udfff" for c in name):  # how Python holds bytes of the environment that are not UTF-8
        problem = "is not valid UTF-8"
    elif not name:
        problem = "is empty"
    elif len(name) > LEARNER_MAX:
        problem = f"has {len(name)} characters"
    elif not name.isprintable():
        problem = "holds a control character"
    else:
        return None
    return (
        f"{source} {problem}: a learner's name is 1 to {LEARNER_MAX} printable characters "
        f"(letters, digits, spaces, punctuation), e.g. {source}=ada"
    )


def settings_problem(exc: ValidationError) -> str:
    """A settings validation failure in one line, each problem naming its `LAB_*` variable."""
    problems = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        variable = f"LAB_{str(error['loc'][0]).upper()}" if error["loc"] else "settings"
        problems.append(message if message.startswith((variable, "LAB_")) else f"{variable}: {message}")
    return "; ".join(problems)


def is_project(folder: Path) -> bool:
    """Whether `folder` is a clone of this project (the folder `make lab-01` runs in)."""
    return (folder / "labs").is_dir() and (folder / "lab_runtime" / "__init__.py").is_file()


def installed_project() -> Path | None:
    """The project folder this package was installed from (an editable install), if any."""
    folder = Path(__file__).resolve().parents[1]
    return folder if is_project(folder) else None


def find_home(cwd: Path | None = None) -> Path | None:
    """The sandbox's home: `LAB_HOME`, else the nearest project folder at or above `cwd`; None when neither."""
    if named := os.environ.get(HOME_VARIABLE):
        home = Path(named).expanduser()
        if not home.is_dir():
            raise ConfigError(f"{HOME_VARIABLE}={named} is not a folder: set it to the project folder, or unset it")
        return home.resolve()
    here = (cwd or Path.cwd()).resolve()
    return next((folder for folder in (here, *here.parents) if is_project(folder)), None)


def home() -> Path:
    """The sandbox's home, or a ConfigError saying how to name one. An absolute `LAB_STATE_DIR` needs no home."""
    found = find_home()
    if found is not None:
        return found
    if Path(os.environ.get("LAB_STATE_DIR", ".lab")).is_absolute():
        return Path.cwd()
    project = installed_project()
    hint = f"`cd {project}` (or any folder below it)" if project else "`cd` into the project folder"
    raise ConfigError(
        f"no lab sandbox here: {Path.cwd()} is not inside the project folder. {hint}, "
        f"or set {HOME_VARIABLE} to the project folder"
    )


def load_settings() -> Settings:
    """Read the settings afresh (the environment may have changed, e.g. in tests), from the sandbox's home.

    Unless `LAB_RUNTIME` says otherwise, the runtime is the one `lab up` recorded in the state dir.
    """
    base = home()
    try:
        settings = Settings(_env_file=base / ".env")  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(f"{settings_problem(exc)} (set in the environment or in {base / '.env'})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{base / '.env'} is not UTF-8 text (byte {exc.start + 1}): save it as UTF-8") from None
    if not settings.state_dir.is_absolute():
        settings = settings.model_copy(update={"state_dir": base / settings.state_dir})
    if "LAB_RUNTIME" not in os.environ and (recorded := recorded_runtime(settings)) is not None:
        settings = settings.model_copy(update={"runtime": recorded})
    return settings


def recorded_runtime(settings: Settings) -> str | None:
    """The runtime a running sandbox was started on, as `lab up` recorded it (compose records itself)."""
    try:
        recorded = (settings.root / RUNTIME_FILE).read_text().strip()
    except OSError:
        return None
    return recorded if recorded in ("local", "compose") else None
