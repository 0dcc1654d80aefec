"""Ralph's LRS server (`ralph.api:app` under uvicorn) with its filesystem backend appending to its statements file.

Run by Ralph's own interpreter (`.venv-lrs/bin/python tests/grader/ralph_server.py HOST PORT`), with RALPH_*
variables for its settings. Ralph 5.1's filesystem LRS backend writes with the data backend's default operation
(`index`), which refuses a file that exists: it takes the first POST and answers 500 to every later one. Appending
is what an LRS store does; everything else (validation, authentication, duplicate ids, queries) is Ralph's own.
"""

import sys

import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

FSLRSBackend.default_operation_type = BaseOperationType.APPEND

if __name__ == "__main__":
    uvicorn.run("ralph.api:app", host=sys.argv[1], port=int(sys.argv[2]), log_level="warning")
