"""House rules a linter does not check, in `lesson5/` outside `tools/`: docstrings everywhere, a first
line of at most 100 characters, a "Notebook NN." pointer (third line) naming notebooks that mention it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSON = sorted(
    p for p in (ROOT / "lesson5").rglob("*.py") if "tools" not in p.relative_to(ROOT).parts
)
POINTER = re.compile(r"Notebooks? (\d\d)((-| and |, )\d\d)*\.")
FIRST_LINE_MAX = 100


def _notebooks() -> dict[str, str]:
    return {
        p.name[:2]: "\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"])
        for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    }


def named(pointer: str) -> list[str]:
    """The notebooks a pointer names: 'Notebooks 03-05.' -> ['03', '04', '05']."""
    nums = re.findall(r"\d\d", pointer)
    if "-" in pointer:
        return [f"{n:02d}" for n in range(int(nums[0]), int(nums[-1]) + 1)]
    return nums


def problems(source: str, name: str, notebooks: dict[str, str]) -> list[str]:
    """What breaks the rules in one module's source (called `name`), one line per definition."""
    tree = ast.parse(source)
    checks = [("module", name, tree, True)]
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            checks.append((f"{node.name} (line {node.lineno})", node.name, node, True))
            for sub in node.body if isinstance(node, ast.ClassDef) else ():
                if isinstance(sub, ast.FunctionDef) and not sub.name.startswith("_"):
                    what = f"{node.name}.{sub.name} (line {sub.lineno})"
                    checks.append((what, sub.name, sub, False))
    out = []
    for what, word, node, required in checks:
        doc = ast.get_docstring(node, clean=True)
        if not doc:
            out += [f"{what}: no docstring"] if required else []
            continue
        lines = doc.splitlines()
        if len(lines[0]) > FIRST_LINE_MAX:
            out.append(f"{what}: first line has {len(lines[0])} characters, over {FIRST_LINE_MAX}")
        third = lines[2].strip() if len(lines) > 2 else ""
        if re.match(r"Notebooks? \d", third) and not POINTER.fullmatch(third):
            out.append(f'{what}: write the pointer as "Notebook NN." on its own line')
        elif POINTER.fullmatch(third):
            for nb in named(third):
                if not re.search(rf"\b{re.escape(word)}\b", notebooks.get(nb, "")):
                    out.append(f"{what}: says {third!r}, but notebook {nb} never mentions {word}")
    return out


@pytest.mark.parametrize("path", LESSON, ids=lambda p: str(p.relative_to(ROOT / "lesson5")))
def test_docstrings_start_short_and_their_pointers_are_true(path):
    name = "lesson5" if path.stem == "__init__" else path.stem
    found = problems(path.read_text(encoding="utf-8"), name, _notebooks())
    assert not found, f"{path.relative_to(ROOT)}:\n" + "\n".join(found)


def test_the_rules_catch_a_false_pointer_a_bad_pointer_and_a_missing_docstring():
    good = (
        '"""Mod.\n\nNotebook 01.\n"""\n\n'
        'class F:\n    """Do it.\n\n    Notebooks 01-02.\n    """\n\n'
        '    def go(self):\n        """Go.\n\n        Notebook 02.\n        """\n'
    )
    notebooks = {"01": "from mod import F", "02": "F().go()"}
    assert problems(good, "mod", notebooks) == []
    assert problems(good, "mod", {"01": "from mod import F", "02": "F()"}) == [
        "F.go (line 12): says 'Notebook 02.', but notebook 02 never mentions go"
    ]
    assert problems(good.replace("Notebook 02.", "Notebook 2."), "mod", notebooks) == [
        'F.go (line 12): write the pointer as "Notebook NN." on its own line'
    ]
    undocumented = good.replace('"""Do it.\n\n    Notebooks 01-02.\n    """', "x = 1")
    assert problems(undocumented, "mod", notebooks) == ["F (line 6): no docstring"]


def test_no_module_declares_all():
    """`__all__` nowhere: a module's public names are the ones without a leading underscore."""
    paths = (ROOT / "lesson5").rglob("*.py")
    assert not [p for p in paths if re.search(r"^__all__\s*=", p.read_text(), re.M)]
