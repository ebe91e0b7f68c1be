"""The README's examples run as written.

Every fenced ``python`` or ``sh`` block of README.md carries a marker on the line
before it: ``<!-- run -->`` (executed here), ``<!-- run: slow -->`` (executed in
the slow lane: it takes more than a few seconds) or ``<!-- norun: why -->``. A
fenced block marked ``<!-- output -->`` shows what the last run block before it
prints (standard output and error, as a terminal shows them), and must equal it
line by line; only the durations a line reports as measured ("about 2 s", "took
8 ms") may differ. The blocks run in a scratch directory where ``datasets/`` and
``tests/`` are the checkout's, so the README's relative paths hold, and
``python`` is this interpreter.

``python -m tests.test_readme --write`` reruns the blocks that show their output and
writes what they print into README.md (after a change of the CLI's wording, say); review
the diff before committing it.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = re.compile(r"^<!--\s*(run|run:\s*slow|norun:.+?|output)\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
# what a line reports as measured on this machine: its number may differ
MEASURED = re.compile(r"\b(about|took) [0-9][0-9.,]* (ms|s|min)\b")


@dataclasses.dataclass
class Block:
    line: int          # the fence's line number in README.md (1-based)
    lang: str
    marker: str        # "run", "run: slow", "norun: ...", "output" or ""
    text: str
    n_lines: int = 0   # lines between the fences
    output: "Block | None" = None


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text``, with their markers; output blocks attached to the
    run block they show."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        marker = MARKER.match(lines[i - 1].strip()) if i else None
        blocks.append(Block(i + 1, fence[1], re.sub(r"\s+", " ", marker[1]) if marker else "",
                            "\n".join(lines[i + 1:end]) + "\n", end - i - 1))
        i = end + 1
    last_run = None
    for block in blocks:
        if block.marker.startswith("run"):
            last_run = block
        elif block.marker == "output":
            assert last_run is not None and last_run.output is None, \
                f"README.md:{block.line}: an output block needs a run block of its own before it"
            last_run.output = block
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
RUNNABLE = [b for b in BLOCKS if b.marker.startswith("run")]


def _param(block: Block):
    marks = [pytest.mark.slow] if block.marker == "run: slow" else []
    return pytest.param(block, marks=marks, id=f"line{block.line}-{block.lang}")


def _normalised(text: str) -> list[str]:
    lines = [MEASURED.sub(lambda m: f"{m[1]} <measured> {m[2]}", line.rstrip())
             for line in text.strip("\n").splitlines()]
    return lines


def _scratch(tmp_path: pathlib.Path) -> dict:
    for name in ("datasets", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    path = os.pathsep.join([str(pathlib.Path(sys.executable).parent), os.environ["PATH"]])
    return {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "PATH": path,
            "CI": "1"}


def run_block(block: Block, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    """Run one README block in ``cwd`` as the README's reader would."""
    env = _scratch(cwd)
    if block.lang == "python":
        command = [sys.executable, "-c", block.text]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.text]
    # the terminal shows both streams (the CLI's estimate line is on stderr)
    return subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)


def write_outputs(path: pathlib.Path = README) -> list[int]:
    """Rewrite every output block of ``path`` with what its run block prints now; the
    line numbers of the blocks that changed."""
    text = path.read_text(encoding="utf-8")
    lines, changed = text.splitlines(keepends=True), []
    shown = [b for b in readme_blocks(text) if b.marker.startswith("run") and b.output]
    for block in reversed(shown):          # from the bottom: earlier line numbers hold
        with tempfile.TemporaryDirectory() as tmp:
            done = run_block(block, pathlib.Path(tmp))
        if done.returncode != 0:
            raise RuntimeError(f"{path.name}:{block.line} failed:\n{done.stdout[-3000:]}")
        new = done.stdout.strip("\n") + "\n"
        first = block.output.line        # the output's fence line (1-based): text follows
        count = block.output.n_lines     # an empty block (a new example) has none
        if "".join(lines[first:first + count]) != new:
            lines[first:first + count] = new.splitlines(keepends=True)
            changed.append(block.output.line)
    path.write_text("".join(lines), encoding="utf-8")
    return sorted(changed)


def test_every_example_is_marked():
    assert RUNNABLE, "README.md has no runnable examples"
    unmarked = [b.line for b in BLOCKS if b.lang in ("python", "sh") and not b.marker]
    assert not unmarked, f"README.md blocks without a run / norun marker at lines {unmarked}"
    wrong = [b.line for b in BLOCKS if b.marker.startswith("run") and b.lang not in
             ("python", "sh")]
    assert not wrong, f"README.md run markers on blocks that are not python or sh: {wrong}"


def test_the_marker_parser_attaches_outputs():
    text = ("<!-- run -->\n```python\nprint(1)\n```\nsome prose\n<!-- output -->\n```\n1\n```\n"
            "<!-- norun: needs QEMU -->\n```sh\nqemu\n```\n```\nplain\n```\n")
    run, shown, norun, plain = readme_blocks(text)
    assert run.marker == "run" and run.output is shown
    assert shown.text == "1\n" and shown.line == 7
    assert norun.marker == "norun: needs QEMU" and norun.output is None
    assert plain.marker == "" and plain.lang == ""
    with pytest.raises(AssertionError, match="README.md:2: an output block"):
        readme_blocks("<!-- output -->\n```\n1\n```\n")


def test_write_outputs_rewrites_only_what_changed(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- run -->\n```python\nprint('a'); print('b')\n```\n"
                      "<!-- output -->\n```\nold\n```\n<!-- run -->\n```sh\necho c\n```\n"
                      "<!-- output -->\n```\nc\n```\nend\n")
    assert write_outputs(readme) == [7]
    assert readme.read_text().splitlines()[6:10] == ["```", "a", "b", "```"]
    assert readme.read_text().endswith("```\nc\n```\nend\n")
    assert write_outputs(readme) == []


def test_measured_durations_are_the_only_slack():
    shown = _normalised("sweep: 4 points: about 2 s (one sample run took 8 ms)\n  lost  186\n")
    assert shown == _normalised("sweep: 4 points: about 9 s (one sample run took 31 ms)\n"
                                "  lost  186")
    assert shown != _normalised("sweep: 5 points: about 2 s (one sample run took 8 ms)\n"
                                "  lost  186")
    assert shown != _normalised("sweep: 4 points: about 2 s (one sample run took 8 ms)\n"
                                "  lost  187")


@pytest.mark.parametrize("block", [_param(b) for b in RUNNABLE])
def test_readme_example_runs_as_written(block, tmp_path):
    done = run_block(block, tmp_path)
    assert done.returncode == 0, (f"README.md:{block.line} failed (exit {done.returncode}):\n"
                                  f"{done.stdout[-3000:]}")
    if block.output is not None:
        assert _normalised(done.stdout) == _normalised(block.output.text), (
            f"README.md:{block.output.line} shows other output than README.md:{block.line} "
            f"prints:\n{done.stdout}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.test_readme --write")
    print("rewrote the outputs at README.md lines", write_outputs() or "(none changed)")
