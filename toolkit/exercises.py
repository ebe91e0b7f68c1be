"""Checks for the notebooks' exercises: they tell a student whether an answer is right.

Each exercise in ``notebooks/`` has a cell where the student writes an
answer, a check cell that calls :func:`check` on it, and a folded solution
cell that runs the same check on the solution (the tests run every notebook
and require each solution to pass its check).
"""
from __future__ import annotations

import dataclasses
import math

__all__ = ["check", "Result"]


@dataclasses.dataclass(frozen=True)
class Result:
    """The verdict on one answer: ``right`` and a message for the student."""

    right: bool | None       # None: no answer yet
    message: str

    def __repr__(self) -> str:
        mark = {True: "right", False: "not yet", None: "no answer yet"}[self.right]
        return f"{mark}: {self.message}"

    def __bool__(self) -> bool:
        return bool(self.right)


def check(answer, expected=None, *, ok=None, rel: float = 0.05, hint: str = "") -> Result:
    """Is ``answer`` right?

    Parameters
    ----------
    answer : object
        The student's answer; ``None`` means not answered yet.
    expected : object, optional
        The right answer: numbers match within ``rel``, anything else exactly
        (strings ignoring case and surrounding blanks).
    ok : callable, optional
        Instead of ``expected``: a test of the answer (``ok(answer) -> bool``),
        for questions with many right answers; it may raise ``ValueError`` or
        ``TypeError`` for an answer that cannot be read.
    rel : float
        Relative tolerance for numbers.
    hint : str
        Shown when the answer is not right.

    Returns
    -------
    Result
        Prints as ``"right: ..."``, ``"not yet: ..."`` or ``"no answer yet: ..."``.
    """
    if (expected is None) == (ok is None):
        raise TypeError("check: give exactly one of expected= and ok=")
    if answer is None:
        return Result(None, "replace None with your answer and run the cell again")
    try:
        if ok is not None:
            right = bool(ok(answer))
        elif isinstance(expected, bool) or isinstance(answer, bool):
            # True, not 1.0: a yes-or-no question wants a yes or a no (numpy's bool too)
            right = type(answer).__name__ in ("bool", "bool_") and bool(answer) == expected
        elif isinstance(expected, (int, float)) and not isinstance(answer, str):
            right = math.isclose(float(answer), float(expected), rel_tol=rel, abs_tol=1e-12)
        elif isinstance(expected, str) and isinstance(answer, str):
            right = answer.strip().lower() == expected.strip().lower()
        else:
            right = answer == expected
    except (TypeError, ValueError) as err:
        return Result(False, f"{answer!r} cannot be read: {err}")
    if right:
        return Result(True, f"{answer!r}")
    return Result(False, f"{answer!r}" + (f"; hint: {hint}" if hint else ""))
