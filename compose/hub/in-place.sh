#!/bin/sh
# The project at /opt/lab-seed, imported from DIR (a copy, unless DIR is the seed) through a .pth file, with the
# `lab` command: the labs' and drills' files are where lab_runtime looks for them.
#   usage: in-place.sh DIR
set -eu
dir="$1"
[ "$dir" = /opt/lab-seed ] || cp -a /opt/lab-seed/. "$dir"
site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$dir" > "$site/lab-project.pth"
printf '#!/opt/venv/bin/python\nfrom lab_runtime.cli import main\n\nmain()\n' > /opt/venv/bin/lab
chmod 0755 /opt/venv/bin/lab
python -c 'import lab_runtime, sysconfig; lab_runtime.write_site_defaults(sysconfig.get_paths()["purelib"])'
python -m compileall -q -j 0 "$dir"
