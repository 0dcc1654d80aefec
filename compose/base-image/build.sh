#!/usr/bin/env bash
# Builds a Debian bookworm base image with Python 3.11 without any container registry:
# debootstrap a root filesystem from Debian's packages, trust the host's CA bundle, `docker import` it.
# Equivalent, for compose/Dockerfile, to python:3.11-slim (python, venv, pip through the host's trust store).
#   usage: compose/base-image/build.sh [IMAGE]   (default lab-base:bookworm; MIRROR=http://deb.debian.org/debian)
set -euo pipefail
IMAGE="${1:-lab-base:bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

if docker image inspect "$IMAGE" >/dev/null 2>&1 && [ -z "${FORCE:-}" ]; then
  echo "base image $IMAGE exists (FORCE=1 to rebuild)"; exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
[ -r "$CA_BUNDLE" ] || { echo "no CA bundle at $CA_BUNDLE: set CA_BUNDLE to the host's trust store" >&2; exit 1; }

ROOTFS="$(mktemp -d /var/tmp/lab-base.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase \
  --include=python3,python3-venv,ca-certificates,iproute2,procps \
  bookworm "$ROOTFS" "$MIRROR"

# The host's trust store, so HTTPS to the package registries works from inside (e.g. through a TLS proxy).
cp "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
ln -sf /usr/bin/python3 "$ROOTFS/usr/local/bin/python"
echo "deb $MIRROR bookworm main" > "$ROOTFS/etc/apt/sources.list"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/* "$ROOTFS"/dev/*

tar -C "$ROOTFS" --numeric-owner -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' \
  - "$IMAGE"
docker image ls "$IMAGE"
