"""pyproject.toml is the single source of dependencies; everything else must agree with it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
CI = (ROOT / ".ci" / "run").read_text()


def environment_yml() -> tuple[list[str], list[str]]:
    """(conda dependencies, pip dependencies) of environment.yml, read without a YAML library:
    the items of `dependencies:` up to the next top-level key, pip's the ones indented deeper."""
    text = re.split(r"^dependencies:.*\n", (ROOT / "environment.yml").read_text(), flags=re.M)[1]
    block = re.split(r"^\w", text, maxsplit=1, flags=re.M)[0]
    conda = re.findall(r"^ {0,2}- (.+?)\s*$", block, re.M)
    return [c for c in conda if c != "pip:"], re.findall(r"^ {3,}- (.+?)\s*$", block, re.M)


def test_environment_yml_and_the_makefile_install_this_package_with_every_extra():
    conda, pip = environment_yml()
    extras = set(PROJECT["optional-dependencies"])
    match = [re.fullmatch(r"-e \.\[(.*)\]", p) for p in pip]
    assert len(pip) == 1 and match[0], f"the pip section must only install the package: {pip}"
    assert set(match[0].group(1).split(",")) == extras
    names = {re.split(r"[=<>! ]", c)[0] for c in conda}
    assert names == {"python", "pip"}, f"dependencies belong in pyproject.toml: {conda}"
    version = next(c for c in conda if c.startswith("python")).split("=", 1)[1]
    assert SpecifierSet(PROJECT["requires-python"]).contains(version + ".0"), version
    makefile = (ROOT / "Makefile").read_text()
    assert set(re.search(r"pip install -e '\.\[(.*)\]'", makefile).group(1).split(",")) == extras


def test_readme_test_command_is_what_ci_runs_with_a_torch_the_range_admits():
    torch_req = next(Requirement(r) for r in PROJECT["dependencies"] if r.startswith("torch"))
    pinned = re.search(r"torch==([\d.]+)", CI).group(1)
    assert torch_req.specifier.contains(pinned), (str(torch_req), pinned)
    assert "make test" in (ROOT / "README.md").read_text()
    # CI runs ruff, then the README's command itself (not a look-alike), then the notebooks again
    # as a newcomer.
    order = re.search(r"^make lint$.*^LESSON5_DATA=\S+ make test$", CI, re.M | re.S)
    assert order, "ruff (make lint), then the README's `make test`, is missing from .ci/run"
    assert re.search(
        r'^HOME="\$newcomer" ATEN_CPU_CAPABILITY=default .* -m pytest .*notebooks$', CI, re.M
    ), "the second notebook pass (a newcomer's home, torch's baseline kernels) is missing"
    assert "export CI=true" in CI
    # The declared floors are tested: a venv at the lowest allowed versions runs the unit tests.
    assert "floors.py" in CI
    assert re.search(r"^.*\.venv-floors/bin/python -m pytest .*tests$", CI, re.M)


def _readme_layout() -> set[str]:
    """The .py paths CONTRIBUTING.md's layout block names (folders by indentation)."""
    readme = (ROOT / "CONTRIBUTING.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    stack: list[tuple[int, str]] = []
    paths = set()
    for line in block.splitlines():
        if not line.strip():
            continue
        indent, name = len(line) - len(line.lstrip()), line.split()[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if name.endswith("/"):
            stack.append((indent, name))
        elif name.endswith(".py"):
            paths.add("".join(folder for _, folder in stack) + name)
    return paths


def test_readme_layout_matches_the_tree():
    tree = {str(p.relative_to(ROOT)) for p in (ROOT / "lesson5").rglob("*.py")}
    tree -= {p for p in tree if p.endswith(("__init__.py", "__main__.py"))}
    shown = _readme_layout()
    only = f"CONTRIBUTING.md: {sorted(shown - tree)}; lesson5/: {sorted(tree - shown)}"
    assert shown == tree, only
