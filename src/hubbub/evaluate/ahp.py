"""The Analytic Hierarchy Process: criterion weights from pairwise judgements.

A judgement ``a: {b: 3}`` reads "a is 3 times as important as b" on Saaty's scale
(1/9 … 9). The nxn matrix holds every judgement and its reciprocal; the weights are
its principal eigenvector, normalised to sum 1. How far the judgements contradict
each other is the consistency ratio

    CI = (λmax - n) / (n - 1),   CR = CI / RI(n)

with Saaty's random index RI. CR ≥ 0.1 means the judgements are too inconsistent to
use; the error then names the judgement that disagrees most with what the others
imply (the largest |ln(a_ij · w_j / w_i)|), which is the one to revisit first.

When several deviations tie, no single judgement is to blame and all the tied ones are
named. With three criteria this is always so: the eigenvector spreads the triad's
inconsistency a_12·a_23/a_13 evenly, every |ln(a_ij · w_j / w_i)| is a third of its log,
and changing any one of the three judgements can make the triad consistent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

RANDOM_INDEX: dict[int, float] = {
    1: 0.0,
    2: 0.0,
    3: 0.58,
    4: 0.90,
    5: 1.12,
    6: 1.24,
    7: 1.32,
    8: 1.41,
    9: 1.45,
    10: 1.49,
}
"""Saaty's random consistency index by matrix size."""
MAX_CR = 0.1
TIE_RTOL = 1e-6
"""Deviations this close (relative) are equal: eigenvector noise is ~1e-15."""
SCALE_MIN, SCALE_MAX = 1 / 9, 9.0


class AHPError(ValueError):
    """The judgements cannot be turned into weights."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """``a`` vs ``b`` = ``given`` as written; ``implied`` is w_a/w_b from the weights."""

    a: str
    b: str
    given: float
    implied: float

    def __str__(self) -> str:
        return f"'{self.a} vs {self.b} = {format_judgement(self.given)}'"


class InconsistentJudgements(AHPError):
    """CR ≥ the limit; ``judgements`` are the ones most at odds with the rest.

    One judgement when it stands out; all of them, in the order of the criteria, when
    their deviations tie (always so with three criteria), as none is more to blame.
    """

    def __init__(self, cr: float, judgements: Sequence[Judgement]) -> None:
        if not judgements:
            raise ValueError("InconsistentJudgements needs at least one judgement")
        self.cr = cr
        self.judgements = tuple(judgements)
        head = f"inconsistent judgements (CR {cr:.3f} >= {MAX_CR}): "
        if len(self.judgements) == 1:
            (j,) = self.judgements
            super().__init__(
                f"{head}{j} disagrees most with the others, "
                f"which imply about {format_judgement(j.implied)}; revise that judgement"
            )
            return
        *first, last = self.judgements
        names = ", ".join(map(str, first)) + f" and {last}"
        implied = ", ".join(format_judgement(j.implied) for j in self.judgements)
        super().__init__(
            f"{head}{names} are equally far from what the weights imply "
            f"(about {implied}); revising any one of them can restore consistency"
        )

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The named judgements as (a, b) pairs, as written."""
        return tuple((j.a, j.b) for j in self.judgements)


@dataclass(frozen=True, slots=True)
class Priorities:
    """Weights of ``names`` (same order) and the consistency of the judgements."""

    names: tuple[str, ...]
    weights: tuple[float, ...]
    lambda_max: float
    ci: float
    cr: float

    def weight(self, name: str) -> float:
        return self.weights[self.names.index(name)]


def parse_judgement(value: object) -> float:
    """A judgement from YAML: a number or a fraction such as ``"1/3"``, in [1/9, 9]."""
    if isinstance(value, bool):
        raise AHPError(f"expected a number from 1/9 to 9, got {value!r}")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float: off the scale anyway
            number = math.inf
    elif isinstance(value, str):
        try:
            number = float(Fraction(value.strip()))
        except OverflowError:
            number = math.inf
        except (ValueError, ZeroDivisionError):
            raise AHPError(f"expected a number or a fraction like 1/3, got {value!r}") from None
    else:
        raise AHPError(f"expected a number from 1/9 to 9, got {value!r}")
    if not (math.isfinite(number) and SCALE_MIN - 1e-9 <= number <= SCALE_MAX + 1e-9):
        raise AHPError(f"judgement {value!r} is outside Saaty's scale 1/9 … 9")
    return number


def format_judgement(value: float) -> str:
    """``3``, ``1/3`` or ``2.50``: how a person would write it."""
    if value >= 1:
        return f"{value:.2f}" if abs(value - round(value)) > 1e-9 else str(round(value))
    inverse = 1 / value
    if abs(inverse - round(inverse)) < 0.05:
        return f"1/{round(inverse)}"
    return f"{value:.2f}"


def pairwise_matrix(
    names: Sequence[str], judgements: Mapping[str, Mapping[str, object]]
) -> np.ndarray:
    """The reciprocal matrix from judgements given once per pair, in either direction.

    Raises:
        AHPError: an unknown name, a self-comparison, a pair given twice or missing.
    """
    index = {name: i for i, name in enumerate(names)}
    if len(index) != len(names):
        raise AHPError("criteria names must be unique")
    n = len(names)
    matrix = np.ones((n, n))
    given: dict[frozenset[str], str] = {}
    for row, columns in judgements.items():
        if row not in index:
            raise AHPError(f"unknown criterion {row!r} (expected one of {', '.join(names)})")
        if not isinstance(columns, Mapping):
            raise AHPError(f"judgements of {row!r} must be a mapping like {{other: 3}}")
        for column, raw in columns.items():
            if column not in index:
                raise AHPError(
                    f"unknown criterion {column!r} in the judgements of {row!r} "
                    f"(expected one of {', '.join(names)})"
                )
            if column == row:
                raise AHPError(f"{row!r} is compared with itself")
            pair = frozenset((row, column))
            if pair in given:
                raise AHPError(f"{row} vs {column} is judged twice (also as {given[pair]})")
            given[pair] = f"{row}: {{{column}: {raw}}}"
            try:
                value = parse_judgement(raw)
            except AHPError as exc:
                raise AHPError(f"{row} vs {column}: {exc}") from None
            i, j = index[row], index[column]
            matrix[i, j] = value
            matrix[j, i] = 1 / value
    missing = [
        f"{a} vs {b}"
        for k, a in enumerate(names)
        for b in names[k + 1 :]
        if frozenset((a, b)) not in given
    ]
    if missing:
        raise AHPError("missing judgements: " + ", ".join(missing))
    return matrix


def principal_eigenvector(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """(weights summing to 1, λmax) of a positive reciprocal matrix."""
    values, vectors = np.linalg.eig(matrix)
    k = int(np.argmax(values.real))
    vector = np.abs(vectors[:, k].real)
    return vector / vector.sum(), float(values[k].real)


def consistency(lambda_max: float, n: int) -> tuple[float, float]:
    """(CI, CR); both 0 for n ≤ 2, where any judgement is consistent."""
    if n <= 2:
        return 0.0, 0.0
    ci = max(0.0, (lambda_max - n) / (n - 1))
    ri = RANDOM_INDEX.get(n, RANDOM_INDEX[max(RANDOM_INDEX)])
    return ci, ci / ri


def most_inconsistent(
    matrix: np.ndarray, weights: np.ndarray
) -> list[tuple[int, int, float, float]]:
    """(i, j, given a_ij, implied w_i/w_j) of the judgements furthest from the weights.

    Every pair i < j whose |ln(a_ij · w_j / w_i)| is within ``TIE_RTOL`` of the largest,
    in row order: one when it stands out, the whole triad for n = 3, where they tie
    exactly and floating-point noise alone would otherwise pick one.
    """
    n = matrix.shape[0]
    deviations = [
        (i, j, float(matrix[i, j]), float(weights[i] / weights[j]))
        for i in range(n)
        for j in range(i + 1, n)
    ]
    errors = [abs(math.log(given / implied)) for _, _, given, implied in deviations]
    worst = max(errors)
    return [
        d for d, error in zip(deviations, errors, strict=True) if error >= worst * (1 - TIE_RTOL)
    ]


def priorities(
    names: Sequence[str],
    judgements: Mapping[str, Mapping[str, object]],
    *,
    max_cr: float = MAX_CR,
) -> Priorities:
    """Weights from judgements; raises ``InconsistentJudgements`` when CR ≥ ``max_cr``."""
    if not names:
        raise AHPError("no criteria")
    matrix = pairwise_matrix(names, judgements)
    weights, lambda_max = principal_eigenvector(matrix)
    ci, cr = consistency(lambda_max, len(names))
    if cr >= max_cr:
        named = []
        for i, j, given, implied in most_inconsistent(matrix, weights):
            a, b = names[i], names[j]
            if b in judgements and a in judgements[b]:  # name it the way it was written
                named.append(Judgement(b, a, 1 / given, 1 / implied))
            else:
                named.append(Judgement(a, b, given, implied))
        raise InconsistentJudgements(cr, named)
    return Priorities(
        names=tuple(names),
        weights=tuple(float(w) for w in weights),
        lambda_max=lambda_max,
        ci=ci,
        cr=cr,
    )


def local_priorities(values: Sequence[float], *, benefit: bool) -> list[float]:
    """Measured values as priorities summing to 1 (distributive mode).

    Benefit criteria (more is better) use v / Σv; cost criteria (less is better) use
    (1/v) / Σ(1/v). A zero cost value is unbeatable and gets everything.
    """
    if not values:
        return []
    if any(v < 0 for v in values):
        raise AHPError("measured values must not be negative")
    if benefit:
        total = sum(values)
        return [v / total for v in values] if total > 0 else [1 / len(values)] * len(values)
    if any(v == 0 for v in values):
        zeros = sum(1 for v in values if v == 0)
        return [1 / zeros if v == 0 else 0.0 for v in values]
    inverse = [1 / v for v in values]
    total = sum(inverse)
    return [v / total for v in inverse]
