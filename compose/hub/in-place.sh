#!/bin/sh
# The project at /opt/lab-seed, imported from DIR (a copy, unless DIR is the seed) through a .pth file instead of
# the app image's installed copy: the labs' and drills' files are where lab_runtime looks for them.
#   usage: in-place.sh DIR
set -eu
dir="$1"
[ "$dir" = /opt/lab-seed ] || cp -a /opt/lab-seed/. "$dir"
site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
rm -rf "$site/lab_runtime" "$site/drills" "$site/grader"
echo "$dir" > "$site/lab-project.pth"
python -c 'import lab_runtime, sysconfig; lab_runtime.write_site_defaults(sysconfig.get_paths()["purelib"])'
python -m compileall -q -j 0 "$dir"
