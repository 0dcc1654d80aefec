"""The project's requirements from pyproject.toml, one a line, for an image's `pip install -r`: its dependencies,
or with EXTRA, that optional group's (the class hub's `hub` and `learner`).
    usage: python requirements.py PYPROJECT [EXTRA]"""

import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    project = tomllib.load(handle)["project"]
print("\n".join(project["optional-dependencies"][sys.argv[2]] if len(sys.argv) > 2 else project["dependencies"]))
