"""MLflow's tracking server and model registry in one process: `python -m lab_runtime.registry.server`.

`mlflow server` migrates the store, then spawns `uvicorn` as a child to serve `mlflow.server.fastapi_app:app`:
two interpreters with MLflow imported, about 500 MB. This does the same in one. It sets the variables `mlflow
server` hands its worker (the store, the artifact proxy's destination and default root), migrates the store
with MLflow's own `initialize_backend_stores`, then runs that app in uvicorn in this process, with webhook
delivery set up for the sandbox's listeners (`delivery_environment`).
"""

from __future__ import annotations

import argparse
import base64
import os
import uuid

from lab_runtime.files.secret import secret_file
from lab_runtime.settings import HOST, Settings, load_settings


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab_runtime.registry.server", description=__doc__)
    parser.add_argument("--backend-store-uri", required=True, help="e.g. sqlite:////path/mlflow.db")
    parser.add_argument("--artifacts-destination", required=True, help="where proxied artifacts are stored")
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    return parser.parse_args(argv)


def delivery_environment(settings: Settings) -> dict[str, str]:
    """MLflow's webhook delivery to the sandbox's own listeners (`registry.webhooks`): plain http to private
    addresses allowed; a new subscription seen within a second; a listener that hangs (a paused service) holds a
    delivery thread 2 s, not 30 s three times (the slow poll catches what is missed); and the key MLflow encrypts
    the listeners' secrets with in its store, kept in the state dir so a restarted MLflow can still read them."""
    return {
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        "MLFLOW_WEBHOOK_REQUEST_TIMEOUT": "2",
        "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": secret_file(
            settings.webhook_key_path, lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()
        ),
    }


def server_environment(store: str, artifacts: str) -> dict[str, str]:
    """The variables `mlflow server --serve-artifacts` sets for its uvicorn worker."""
    from mlflow.environment_variables import _MLFLOW_IN_JOB_EXECUTOR, _MLFLOW_SERVER_BOOT_ID, _MLFLOW_SGI_NAME
    from mlflow.server.constants import (
        ARTIFACT_ROOT_ENV_VAR,
        ARTIFACTS_DESTINATION_ENV_VAR,
        BACKEND_STORE_URI_ENV_VAR,
        REGISTRY_STORE_URI_ENV_VAR,
        SERVE_ARTIFACTS_ENV_VAR,
    )
    from mlflow.utils.server_cli_utils import resolve_default_artifact_root

    return {
        BACKEND_STORE_URI_ENV_VAR: store,
        REGISTRY_STORE_URI_ENV_VAR: store,
        ARTIFACT_ROOT_ENV_VAR: resolve_default_artifact_root(True, "", store),
        SERVE_ARTIFACTS_ENV_VAR: "true",
        ARTIFACTS_DESTINATION_ENV_VAR: artifacts,
        _MLFLOW_SERVER_BOOT_ID.name: uuid.uuid4().hex,
        _MLFLOW_IN_JOB_EXECUTOR.name: "false",
        _MLFLOW_SGI_NAME.name: "uvicorn",
    }


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for key, value in delivery_environment(load_settings()).items():
        os.environ.setdefault(key, value)
    environment = server_environment(args.backend_store_uri, args.artifacts_destination)
    os.environ.update(environment)

    import uvicorn
    from mlflow.server import _UVICORN_LOG_CONFIG
    from mlflow.server.constants import ARTIFACT_ROOT_ENV_VAR
    from mlflow.server.handlers import initialize_backend_stores

    initialize_backend_stores(args.backend_store_uri, args.backend_store_uri, environment[ARTIFACT_ROOT_ENV_VAR])
    uvicorn.run(
        "mlflow.server.fastapi_app:app",
        host=args.host,
        port=args.port,
        log_config=str(_UVICORN_LOG_CONFIG),
        access_log=False,  # the service's and watcher's polls would be most of the log, and of its CPU
    )


if __name__ == "__main__":
    main()
