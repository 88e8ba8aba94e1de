"""The doors in: Colab's install cell (it pip-installs the wheel built from this checkout), `lesson5
run` from that install, and the doctor; the fresh venv sees this one's packages except lesson5 (one
.pth line), so nothing is downloaded."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPO = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def first_code_cell(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def test_every_notebook_starts_with_the_same_guarded_install_cell():
    cells = {first_code_cell(p) for p in NOTEBOOKS}
    assert len(NOTEBOOKS) == 7 and len(cells) == 1, "the install cells differ"
    (cell,) = cells
    assert 'if importlib.util.find_spec("lesson5") is None:' in cell
    assert f'"git+{REPO}"' in cell


def test_the_readme_opens_every_notebook_in_colab_and_shows_the_clone_line():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"git clone {REPO}" in readme
    colab = re.escape(REPO.replace("github.com", "colab.research.google.com/github"))
    links = re.findall(rf"{colab}/blob/main/(\S+?)\)", readme)
    assert links == [f"notebooks/{p.name}" for p in NOTEBOOKS]
    assert len(readme.splitlines()) <= 150


def run(cmd: list[str], env: dict, cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd[:4]} exited {done.returncode}:\n{done}"
    return done.stdout


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict:
    """A venv without lesson5, the wheel built from this checkout, and an environment to run in."""
    tmp = tmp_path_factory.mktemp("fresh")
    src = tmp / "src"  # a copy, so that building leaves nothing in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("lesson5", "notebooks"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LESSON5_", "JUPYTER"))
    }
    # nbconvert's templates are data files of this environment, outside its site-packages.
    env.update(JUPYTER_PATH=str(Path(sys.prefix, "share", "jupyter")), HOME=str(tmp / "home"))
    env.update(LESSON5_DATA="synthetic", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    wheels = tmp / "wheels"
    args = ["wheel", "-q", "--no-deps", "--no-build-isolation", str(src), "-w", str(wheels)]
    run([sys.executable, "-m", "pip", *args], env, tmp)
    (wheel,) = wheels.glob("lesson5-*.whl")
    # This environment's packages, lesson5 left out, seen by the new venv through one .pth line.
    deps = tmp / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not re.match(r"(__editable__[._]+)?lesson5", entry.name):
            (deps / entry.name).symlink_to(entry)
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env, tmp)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = run([str(python), "-c", purelib], env, tmp)
    Path(site.strip(), "deps.pth").write_text(f"{deps}\n")
    return {"python": python, "venv": venv, "wheel": wheel, "env": env, "tmp": tmp}


def test_the_install_cell_installs_lesson5_then_lesson5_runs_in_an_empty_folder(fresh):
    python, env = fresh["python"], dict(fresh["env"], LESSON5_INSTALL_FROM=str(fresh["wheel"]))
    check = [str(python), "-c", "import importlib.util; print(importlib.util.find_spec('lesson5'))"]
    assert run(check, env, fresh["tmp"]).strip() == "None"
    # The cell, then the import in the same process, as the notebook's next cell does.
    cell = first_code_cell(NOTEBOOKS[0]) + "\nimport lesson5\nprint(lesson5.__file__)"
    where = run([str(python), "-c", cell], env, fresh["tmp"])
    assert where.startswith(str(fresh["venv"])), where
    empty = fresh["tmp"] / "empty"
    empty.mkdir()
    lesson5 = str(fresh["venv"] / "bin" / "lesson5")
    cmd = [lesson5, "run", "--only", "00", "--data", "synthetic", "--out", "OUT"]
    printed = run(cmd, fresh["env"], empty)
    assert "1 of 1 notebooks ran" in printed, printed
    assert (empty / "OUT" / NOTEBOOKS[0].name).is_file()
    # Without the notebooks the message names the fix.
    cmd = [lesson5, "run", "--notebooks", str(empty), "--out", "x"]
    done = subprocess.run(cmd, env=fresh["env"], cwd=empty, capture_output=True, text=True)
    assert done.returncode == 1 and "pass --notebooks DIR" in done.stdout


def test_the_doctor_passes_here_and_fails_on_a_wrong_zip(tmp_path):
    env = dict(os.environ, LESSON5_DATA=str(tmp_path))
    doctor = [sys.executable, "-m", "lesson5", "doctor"]
    lines = run(doctor, env, Path.cwd()).splitlines()
    assert lines[0].startswith("OK   python") and lines[-1] == "all required checks OK"
    assert all(line[:4] in ("OK  ", "--  ") for line in lines[:-1]), lines
    (tmp_path / "ml-latest-small.zip").write_bytes(b"not the release")
    done = subprocess.run(doctor, env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "FAIL data" in done.stdout and "delete it" in done.stdout
