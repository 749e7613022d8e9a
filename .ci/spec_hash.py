"""Print a short hash of the dependency spec: pyproject's dependency lists + extra pins.

The Makefile keys the virtual environment on this hash, so editing anything else in
pyproject.toml (tool settings, the version) does not rebuild a 6 GB venv.
"""

import hashlib
import json
import sys
import tomllib
from pathlib import Path

project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
spec = {
    "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    "dependencies": project.get("dependencies", []),
    "optional": project.get("optional-dependencies", {}),
    "pins": sys.argv[1:],
}
print(hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12])
