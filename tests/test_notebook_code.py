"""Each definition in a cell tagged `export:<module>` is word for word the one in lesson5/<module>.py;
the committed notebooks are a student's page (no widgets, guards, harness words, machine paths)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# What the lesson writes out: these must appear in a notebook, not only in the package.
MODELS = "DotProduct get_emb EmbeddingDot sigmoid_range EmbeddingDotBias EmbeddingNet"
MUST_SHOW = {"models": set(MODELS.split()), "train": {"basic_fit"}}
# What a student's page never holds: switches on where the data came from, the harness's words.
GUARD = re.compile(r"\breal\b\s*=|\blesson16\b|release_2016|\bif old\b|\bsource\b\s*=")
HARNESS = re.compile(
    r"\b(CI|README|nbval|NBVAL|papermill|pytest|bookkeeping)\b|tests/|lesson5 run|lesson5\.tools"
)
MACHINE_PATH = re.compile(r"(?<![\w~.])/(home|root|work|tmp|Users|var|opt|mnt)/|[A-Z]:\\\\Users")


def definitions(source: str) -> dict[str, str]:
    """name -> exact source text (decorators included) of each top-level def or class."""
    lines = source.split("\n")
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out[node.name] = "\n".join(lines[start - 1 : node.end_lineno])
    return out


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def exported_cells() -> list[tuple[str, int, str, str]]:
    """(notebook name, cell index, module, source) of every cell tagged export:<module>."""
    return [
        (path.name, i, tag.split(":", 1)[1], "".join(cell["source"]))
        for path in NOTEBOOKS
        for i, cell in enumerate(_cells(path))
        for tag in cell.get("metadata", {}).get("tags", [])
        if tag.startswith("export:")
    ]


def _package(module: str) -> dict[str, str]:
    return definitions((ROOT / "lesson5" / f"{module}.py").read_text(encoding="utf-8"))


def test_every_exported_definition_is_the_package_code_word_for_word():
    shown = {}  # at the end: not empty, since the lesson's models must be among it
    for name, index, module, source in exported_cells():
        package, cell = _package(module), definitions(source)
        assert cell, f"{name} cell {index} is tagged export:{module} but defines nothing"
        for obj, text in cell.items():
            assert obj in package, f"{name} cell {index} defines {obj}; {module}.py lacks it"
            assert text == package[obj], (
                f"{name} cell {index}: {obj} differs from lesson5/{module}.py; copy one onto the other\n"
                f"--- notebook\n{text}\n--- package\n{package[obj]}"
            )
        shown.setdefault(module, set()).update(cell)
    # The lesson's models and loop are shown in a notebook, not only in the package.
    for module, names in MUST_SHOW.items():
        missing = names - shown.get(module, set())
        assert not missing, f"in no notebook (tag export:{module}): {sorted(missing)}"
    # Not vacuous: one changed character makes the two differ.
    changed = definitions(_package("models")["DotProduct"].replace("sum(1)", "sum(0)"))
    assert changed["DotProduct"] != _package("models")["DotProduct"]


def _asserts(cell: dict) -> int:
    return len(re.findall(r"^\s*assert\b", "".join(cell["source"]), re.M))


def _only_asserts(cell: dict) -> bool:
    lines = [ln for ln in "".join(cell["source"]).splitlines() if ln.strip()]
    ok = ("assert", "#", ")", "]")
    return all(ln.strip().startswith(ok) or ln.startswith(" ") for ln in lines)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_are_clean_and_end_with_a_summary_and_a_questionnaire(path):
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    assert "widgets" not in nb["metadata"], "widget state: untrusted, a stale progress bar shows"
    assert "application/vnd.jupyter.widget-view+json" not in text
    for i, cell in enumerate(nb["cells"]):
        src = "".join(cell["source"])
        tags = cell.get("metadata", {}).get("tags", [])
        assert "parameters" not in tags, f"cell {i}: a notebook takes no parameters"
        assert not GUARD.search(src), f"cell {i}: a data-source guard: {GUARD.search(src)[0]!r}"
        assert not HARNESS.search(src), f"cell {i}: a harness word: {HARNESS.search(src)[0]!r}"
        for o in cell.get("outputs", []):
            texts = {k: v for k, v in o.get("data", {}).items() if k.startswith("text")}
            found = MACHINE_PATH.search(json.dumps(o | {"data": texts}))
            assert not found, f"cell {i}: a machine path in an output: {found[0]!r}"
        if cell["cell_type"] == "code":
            long = [ln for ln in src.splitlines() if len(ln) > 90]
            assert not long, f"cell {i}: lines over 90 characters: {long[0]!r}"
    # nbval compares some portable output of every notebook
    tagged = [c for c in nb["cells"] if "nbval-check-output" in c["metadata"].get("tags", [])]
    assert tagged, f"{path.name}: no cell is tagged nbval-check-output"
    assert all(c["outputs"] for c in tagged), "a tagged cell with no output compares nothing"
    md = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    heads = [m.lstrip().split("\n", 1)[0] for m in md]
    assert "## Summary" in heads and "## Questionnaire" in heads, path.name
    after = "".join(md[heads.index("## Questionnaire") :])
    assert "<details>" in after, "the questionnaire's answers sit in a collapsed <details> block"


def test_the_notebooks_teach_and_the_checks_live_in_tests():
    cells = [c for p in NOTEBOOKS for c in _cells(p)]
    code = [c for c in cells if c["cell_type"] == "code"]
    only_assert = [c for c in code if _asserts(c) and not c.get("outputs") and _only_asserts(c)]
    assert len(cells) <= 240, f"{len(cells)} cells in the notebooks (at most 240)"
    assert sum(map(_asserts, code)) <= 40, "at most 40 asserts: the few that are the lesson"
    assert len(only_assert) <= 12, f"{len(only_assert)} code cells only assert (at most 12)"
    size = sum(p.stat().st_size for p in NOTEBOOKS)
    assert size <= 1_600_000, f"the notebooks weigh {size:,} bytes (at most 1.6 MB)"
