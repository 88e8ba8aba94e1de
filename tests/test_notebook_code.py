"""The lesson's code is written once: each definition in a notebook cell tagged `export:<module>` is,
word for word, the same definition in `lesson5/<module>.py` (d2l's `#@save` idea).

Also: every model class and `fit` is shown in some notebook, and no committed notebook carries
widget state or nbval comments.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# What the lesson writes out: these must appear in a notebook, not only in the package.
MUST_SHOW = {
    "models": {
        "DotProduct",
        "get_emb",
        "EmbeddingDot",
        "sigmoid_range",
        "EmbeddingDotBias",
        "EmbeddingNet",
    },
    "train": {"fit"},
}


def definitions(source: str) -> dict[str, str]:
    """name -> exact source text (decorators included) of each top-level def or class."""
    tree = ast.parse(source)
    lines = source.split("\n")
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out[node.name] = "\n".join(lines[start - 1 : node.end_lineno])
    return out


def exported_cells() -> list[tuple[str, int, str, str]]:
    """(notebook name, cell index, module, source) of every cell tagged export:<module>."""
    cells = []
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            for tag in cell.get("metadata", {}).get("tags", []):
                if tag.startswith("export:"):
                    cells.append((path.name, i, tag.split(":", 1)[1], "".join(cell["source"])))
    return cells


def test_every_exported_definition_is_the_package_code_word_for_word():
    cells = exported_cells()
    assert cells, "no notebook cell is tagged export:<module>"
    for name, index, module, source in cells:
        package = definitions((ROOT / "lesson5" / f"{module}.py").read_text(encoding="utf-8"))
        shown = definitions(source)
        assert shown, f"{name} cell {index} is tagged export:{module} but defines nothing"
        for obj, text in shown.items():
            assert obj in package, (
                f"{name} cell {index} defines {obj}, which lesson5/{module}.py lacks"
            )
            assert text == package[obj], (
                f"{name} cell {index}: {obj} differs from lesson5/{module}.py; copy one onto the other\n"
                f"--- notebook\n{text}\n--- package\n{package[obj]}"
            )


def test_the_lessons_models_and_loop_are_shown_in_a_notebook():
    shown: dict[str, set[str]] = {}
    for _, _, module, source in exported_cells():
        shown.setdefault(module, set()).update(definitions(source))
    for module, names in MUST_SHOW.items():
        missing = names - shown.get(module, set())
        assert not missing, (
            f"not written out in any notebook (tag export:{module}): {sorted(missing)}"
        )


def test_drift_is_caught():
    """The check above is not vacuous: one changed character makes the two differ."""
    package = definitions((ROOT / "lesson5" / "models.py").read_text(encoding="utf-8"))
    changed = definitions(package["DotProduct"].replace("sum(1)", "sum(0)"))
    assert changed["DotProduct"] != package["DotProduct"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_are_clean(path):
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    assert "widgets" not in nb["metadata"], (
        "widget state: opened untrusted it shows a stale progress bar"
    )
    assert "application/vnd.jupyter.widget-view+json" not in text
    for i, cell in enumerate(nb["cells"]):
        src = "".join(cell["source"])
        assert "NBVAL_" not in src, f"cell {i}: nbval markers are cell tags, not comments"
    assert len(text.encode()) < 1_000_000, (
        f"{path.name} is {len(text.encode()):,} bytes; keep it under 1 MB"
    )
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "one cell tagged `parameters` (source, out), as `lesson5 run` expects"
