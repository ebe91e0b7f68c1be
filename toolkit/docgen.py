"""The README's parameter table, written from :data:`toolkit.scenario.PARAMETERS`.

``python -m toolkit.docgen`` rewrites the table between the README's
``<!-- parameters: begin -->`` and ``<!-- parameters: end -->`` markers;
``python -m toolkit.docgen --check`` only says whether it is up to date (exit
status 1 if not). Scenario's numpydoc Parameters section comes from the same
table (:func:`toolkit.scenario.parameters_section`), and the docs site shows the
README's table, so the three cannot disagree.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from .policies import POLICIES
from .scenario import PARAMETERS

BEGIN = ("<!-- parameters: begin (python -m toolkit.docgen writes this table from "
         "toolkit/scenario.py) -->")
END = "<!-- parameters: end -->"
README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


#: The form of each text parameter's value, for the range column.
TEXT_FORMS = {"phases": "`workload:rate:duration, ...`", "data_ranges": "`start:size, ...`"}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def parameter_table() -> str:
    """The Markdown table of every Scenario parameter: name, default, unit, range, meaning."""
    rows = ["| parameter | default | unit | range | meaning |", "|---|---|---|---|---|"]
    for spec in PARAMETERS:
        values = spec.range_words() or ", ".join(spec.choices) or {
            "bool": "True, False", "path": "a file", "text": TEXT_FORMS.get(spec.name, ""),
            "policy": ", ".join(("none", *POLICIES)) + " (+ `:option=value,...`)"}[spec.kind]
        cells = (f"`{spec.name}`", spec.default_words, spec.display_units, values, spec.doc)
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"


def with_table(text: str, where: str = "README.md") -> str:
    """``text`` with the part between the markers replaced by :func:`parameter_table`.

    Raises
    ------
    ValueError
        ``text`` lacks either marker, or has them in the wrong order.
    """
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{where}: expected the markers {BEGIN!r} and then {END!r} "
                         "around the parameter table")
    return text[:start + len(BEGIN)] + "\n" + parameter_table() + text[end:]


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check``, check) the README's parameter table; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m toolkit.docgen", description=__doc__
                                     .splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that the table is up to date (exit 1 if not)")
    parser.add_argument("--readme", type=pathlib.Path, default=README, help="the README")
    args = parser.parse_args(argv)
    try:
        text = args.readme.read_text(encoding="utf-8")
        new = with_table(text, str(args.readme))
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if new == text:
        print(f"{args.readme}: the parameter table is up to date")
        return 0
    if args.check:
        print(f"{args.readme}: the parameter table is out of date: run python -m "
              "toolkit.docgen", file=sys.stderr)
        return 1
    tmp = args.readme.with_name(args.readme.name + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(args.readme)          # atomic: never a half-written README
    print(f"wrote the parameter table into {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
