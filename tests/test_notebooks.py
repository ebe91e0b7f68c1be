"""Every notebook runs top to bottom, is committed without outputs, and has at least
three exercises, each with a check and a folded solution that passes it."""
import json
import os
import pathlib
import time

import nbformat
import pytest
from nbclient import NotebookClient

import toolkit.exercises as ex

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def _tagged(nb, tag):
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


def _text(cell):
    return "".join(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []) if o.get("name") != "stderr")


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_have_checks_and_folded_solutions(path):
    nb = nbformat.read(path, as_version=4)
    answers, checks, solutions = (_tagged(nb, t) for t in ("exercise", "check", "solution"))
    assert len(answers) >= 3 and len(answers) == len(checks) == len(solutions), path.name
    for n, (a, c, s) in enumerate(zip(answers, checks, solutions), start=1):
        assert a.source.startswith(f"answer_{n} = None"), a.source     # not the answer itself
        assert f"check_{n}(answer_{n})" in c.source and f"check_{n}(answer_{n})" in s.source
        assert f"answer_{n} =" in s.source
        for cell in (c, s):                     # folded in JupyterLab
            assert cell.metadata.get("jupyter", {}).get("source_hidden") is True


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_every_solution_passes_its_check(path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel imports this checkout's toolkit, not another installed copy
    root = str(path.parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root,
                                                                   os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    # after each solution, the same check on a wrong answer (-1 is wrong for every one)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if "solution" in cell.get("metadata", {}).get("tags", []):
            n = len([c for c in cells if "solution" in c.metadata.get("tags", [])])
            wrong = nbformat.v4.new_code_cell(f"print(repr(check_{n}(-1)))")
            wrong.metadata["tags"] = ["wrong"]
            cells.append(wrong)
    nb.cells = cells
    start = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    took = time.perf_counter() - start
    print(f"{path.name}: {took:.1f} s")
    for cell in _tagged(nb, "check"):          # the student's None: told to answer
        assert _text(cell).startswith("no answer yet:"), (path.name, _text(cell))
    for cell in _tagged(nb, "solution"):
        assert "right:" in _text(cell) and "not yet" not in _text(cell), (path.name, cell.source)
    for cell in _tagged(nb, "wrong"):           # and a check can say no
        assert _text(cell).startswith("not yet:"), (path.name, cell.source, _text(cell))


def test_the_check_tells_right_from_wrong():
    assert ex.check(None, 3).right is None
    assert ex.check(3.04, 3.0, rel=0.02) and not ex.check(3.2, 3.0, rel=0.02)
    assert ex.check(" Link ", "link") and not ex.check("estimate", "link")
    assert ex.check(True, True) and not ex.check(1.0, True) and not ex.check(False, True)
    assert ex.check(5, ok=lambda a: a > 3) and not ex.check(2, ok=lambda a: a > 3)
    wrong = ex.check("x", 3.0, hint="a number")
    assert repr(wrong).startswith("not yet") and not wrong
    bad = ex.check("fast", ok=lambda a: float(a) > 1)
    assert not bad and "cannot be read" in repr(bad)
    with pytest.raises(TypeError, match="exactly one"):
        ex.check(1)
