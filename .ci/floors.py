"""Print pip constraints pinning every requirement pyproject.toml declares to its floor (`>=X` -> `==X`)."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

project = tomllib.loads(Path(__file__).parents[1].joinpath("pyproject.toml").read_text())["project"]
for text in project["dependencies"] + sum(project["optional-dependencies"].values(), []):
    req = Requirement(text)
    floors = [s.version for s in req.specifier if s.operator in (">=", "==")]
    if floors and req.name != "lesson5":
        print(f"{req.name}=={floors[0]}")
