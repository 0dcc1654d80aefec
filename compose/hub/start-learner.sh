#!/bin/sh
# A learner's server: the sandbox starts in the background (its log in .lab/logs/hub-up.log), JupyterLab at once.
# The hub passes JupyterLab's arguments; LAB_LEARNER and the console's URL and token come in the environment.
set -e
cd "$LAB_HOME"
[ -f pyproject.toml ] || cp -a /opt/lab-seed/. .
mkdir -p .lab/logs
(lab up > .lab/logs/hub-up.log 2>&1 || echo "lab up failed: see above" >> .lab/logs/hub-up.log) &
exec jupyterhub-singleuser "$@"
