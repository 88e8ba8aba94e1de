"""House rules a linter does not check: the lesson wing's docstrings name the notebook that teaches them.

Every public module-level function and class of the lesson (everything in `lesson5/` outside
`lesson5/tools/`) has a docstring that starts with one short line, then a blank line, then
"Notebook NN." (or "Notebooks NN and MM." / "Notebooks NN-MM.") on a line of its own. The
machinery in `lesson5/tools/` is not taught, so it is held only to the linter.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSON = sorted(
    p for p in (ROOT / "lesson5").rglob("*.py") if "tools" not in p.relative_to(ROOT).parts
)
NOTEBOOK_LINE = re.compile(r"Notebooks? \d\d((-| and |, )\d\d)*\.")
FIRST_LINE_MAX = 100


def problems(source: str) -> list[str]:
    """What breaks the rule in one module's source, one line per definition."""
    out = []
    module_doc = ast.get_docstring(ast.parse(source), clean=True)
    checks = [("module", module_doc)]
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            checks.append(
                (f"{node.name} (line {node.lineno})", ast.get_docstring(node, clean=True))
            )
    for what, doc in checks:
        if not doc:
            out.append(f"{what}: no docstring")
            continue
        lines = doc.splitlines()
        if len(lines[0]) > FIRST_LINE_MAX:
            out.append(
                f"{what}: first line has {len(lines[0])} characters (at most {FIRST_LINE_MAX})"
            )
        if len(lines) < 3 or lines[1].strip() or not NOTEBOOK_LINE.fullmatch(lines[2].strip()):
            out.append(
                f'{what}: the first line must be followed by a blank line and "Notebook NN."'
            )
    return out


@pytest.mark.parametrize("path", LESSON, ids=lambda p: str(p.relative_to(ROOT / "lesson5")))
def test_docstrings_name_their_notebook(path):
    found = problems(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}:\n" + "\n".join(found)


def test_the_rule_catches_a_docstring_without_its_notebook():
    good = '"""Mod.\n\nNotebook 01.\n"""\n\ndef f():\n    """Do it.\n\n    Notebooks 03 and 04.\n    """\n'
    assert problems(good) == []
    assert problems(good.replace("Notebooks 03 and 04.", "See notebook 3.")) == [
        'f (line 6): the first line must be followed by a blank line and "Notebook NN."'
    ]
    assert problems(good.replace('"""Do it.\n\n    Notebooks 03 and 04.\n    """', "pass")) == [
        "f (line 6): no docstring"
    ]


def test_no_module_declares_all():
    """`__all__` nowhere: a module's public names are the ones without a leading underscore."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "lesson5").rglob("*.py")
        if re.search(r"^__all__\s*=", p.read_text(encoding="utf-8"), flags=re.M)
    ]
    assert not offenders
