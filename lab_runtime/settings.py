"""One settings object for the whole sandbox: `LAB_*` environment variables, then `.env`, then defaults."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

HOST = "127.0.0.1"  # every sandbox service binds to loopback only


class Settings(BaseSettings):
    """Ports, paths and knobs of the sandbox. Every field is `LAB_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="LAB_", env_file=".env", extra="ignore")

    state_dir: Path = Field(Path(".lab"), description="databases, artifacts, logs and pid files")
    runtime: Literal["local", "compose"] = "local"
    mlflow_port: int = Field(5000, ge=1, le=65535)
    service_port: int = Field(8000, ge=1, le=65535)
    model_name: str = "credit-risk"
    seed: int = 42
    learner: str = Field("learner", description="name recorded with every journal event")
    poll_interval: float = Field(0.5, gt=0, description="seconds between registry polls")
    start_timeout: float = Field(60.0, gt=0, description="seconds a service may take to get healthy")
    log_queue_size: int = Field(10_000, ge=1, description="prediction-log queue bound; overflow is dropped")
    max_batch: int = Field(1000, ge=1, description="most records in one /predict call")

    @cached_property
    def root(self) -> Path:
        return self.state_dir.resolve()

    @property
    def mlflow_url(self) -> str:
        return f"http://{HOST}:{self.mlflow_port}"

    @property
    def service_url(self) -> str:
        return f"http://{HOST}:{self.service_port}"

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
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def workspace_dir(self) -> Path:
        return self.root / "workspace"

    def ensure_dirs(self) -> None:
        for d in (self.root, self.artifacts_dir, self.logs_dir, self.run_dir, self.workspace_dir):
            d.mkdir(parents=True, exist_ok=True)


def load_settings() -> Settings:
    """Read the settings afresh (the environment may have changed, e.g. in tests)."""
    return Settings()
