"""The Docker engine as the compose runtime and the class hub use it: a client (or one line saying none answers),
the base image their images are built on, and the host's versions the images must match."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from lab_runtime.errors import RuntimeNotReady

OFFLINE_BASE = "lab-base:bookworm"  # what compose/base-image/build.sh builds
PINNED = ("mlflow", "scikit-learn", "numpy", "pandas", "scipy", "cloudpickle", "skops", "evidently")  # as on the host


def engine(otherwise: str) -> Any:
    """A client of the Docker engine, or RuntimeNotReady naming where none answers, how to start one, and
    `otherwise`: what else the caller can do."""
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise RuntimeNotReady(
            f"no Docker engine answers at {where} ({type(exc).__name__}): start it (`sudo systemctl start docker`, "
            f"or `dockerd &`), {otherwise}"
        ) from None
    return client


def base_image(client: Any) -> str:
    """The image the app image is built on: LAB_BASE_IMAGE; else python:3.11-slim where it is present or
    pullable, the offline base where only that one is built."""
    if os.environ.get("LAB_BASE_IMAGE"):
        return os.environ["LAB_BASE_IMAGE"]
    images = {tag for image in client.images.list() for tag in image.tags}
    return OFFLINE_BASE if OFFLINE_BASE in images and "python:3.11-slim" not in images else "python:3.11-slim"


def host_pins() -> str:
    """`name==version` of the host's model-critical packages, for the image's pip constraints."""
    import importlib.metadata

    pins = []
    for name in PINNED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            pins.append(f"{name}=={importlib.metadata.version(name)}")
    return " ".join(pins)
