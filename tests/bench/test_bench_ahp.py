"""AHP: eigenvector weights, consistency ratio, and errors that name the judgement."""

from __future__ import annotations

import pytest

from hubbub.evaluate import ahp

CRITERIA = ["throughput", "latency", "memory", "operability"]


def test_consistent_matrix_gives_the_weights_it_was_built_from() -> None:
    """A perfectly consistent matrix a_ij = w_i/w_j yields w back, with CR 0."""
    judgements = {
        "throughput": {"latency": 2, "memory": 4, "operability": 4},
        "latency": {"memory": 2, "operability": 2},
        "memory": {"operability": 1},
    }
    p = ahp.priorities(CRITERIA, judgements)
    assert p.weights == pytest.approx((0.5, 0.25, 0.125, 0.125), abs=1e-9)
    assert p.lambda_max == pytest.approx(4.0, abs=1e-9)
    assert p.cr == pytest.approx(0.0, abs=1e-9)


def test_saaty_three_by_three_example() -> None:
    """The textbook 3x3 matrix (3, 5, 3): weights ≈ .637/.258/.105, λmax ≈ 3.039, CR ≈ .033."""
    p = ahp.priorities(["a", "b", "c"], {"a": {"b": 3, "c": 5}, "b": {"c": 3}})
    assert p.weights == pytest.approx((0.637, 0.258, 0.105), abs=0.001)
    assert p.lambda_max == pytest.approx(3.039, abs=0.001)
    ci, cr = ahp.consistency(p.lambda_max, 3)
    assert ci == pytest.approx((p.lambda_max - 3) / 2)
    assert cr == pytest.approx(ci / 0.58)
    assert p.cr == pytest.approx(0.033, abs=0.001)


def test_judgements_may_be_given_in_either_direction_and_as_fractions() -> None:
    """'b: {a: 1/3}' is the same judgement as 'a: {b: 3}'."""
    one = ahp.priorities(["a", "b", "c"], {"a": {"b": 3, "c": 5}, "b": {"c": 3}})
    two = ahp.priorities(["a", "b", "c"], {"b": {"a": "1/3", "c": 3}, "c": {"a": 0.2}})
    assert one.weights == pytest.approx(two.weights)


def test_inconsistent_judgements_name_the_worst_pair() -> None:
    """CR ≥ 0.1 raises, naming the judgement furthest from what the others imply."""
    judgements = {
        # operability < memory < latency < throughput, except one judgement says
        # operability is 9 times as important as throughput:
        "throughput": {"latency": 3, "memory": 3, "operability": "1/9"},
        "latency": {"memory": 3, "operability": 3},
        "memory": {"operability": 9},
    }
    with pytest.raises(ahp.InconsistentJudgements) as caught:
        ahp.priorities(CRITERIA, judgements)
    exc = caught.value
    assert exc.cr >= 0.1
    assert set(exc.pair) == {"throughput", "operability"}
    assert "throughput vs operability = 1/9" in str(exc)
    assert f"CR {exc.cr:.3f}" in str(exc)


def test_missing_duplicate_and_unknown_judgements_are_errors() -> None:
    """Every pair exactly once, known names only, on Saaty's scale."""
    with pytest.raises(ahp.AHPError, match="missing judgements: b vs c"):
        ahp.pairwise_matrix(["a", "b", "c"], {"a": {"b": 2, "c": 2}})
    with pytest.raises(ahp.AHPError, match="judged twice"):
        ahp.pairwise_matrix(["a", "b"], {"a": {"b": 2}, "b": {"a": "1/2"}})
    with pytest.raises(ahp.AHPError, match="unknown criterion 'x'"):
        ahp.pairwise_matrix(["a", "b"], {"x": {"b": 2}})
    with pytest.raises(ahp.AHPError, match="outside Saaty's scale"):
        ahp.pairwise_matrix(["a", "b"], {"a": {"b": 12}})
    with pytest.raises(ahp.AHPError, match="compared with itself"):
        ahp.pairwise_matrix(["a", "b"], {"a": {"a": 1, "b": 1}})


def test_parse_and_format_judgements() -> None:
    """Numbers and fractions in; people's notation out."""
    assert ahp.parse_judgement("1/3") == pytest.approx(1 / 3)
    assert ahp.parse_judgement(7) == 7.0
    with pytest.raises(ahp.AHPError):
        ahp.parse_judgement(True)
    with pytest.raises(ahp.AHPError):
        ahp.parse_judgement("three")
    assert ahp.format_judgement(1 / 3) == "1/3"
    assert ahp.format_judgement(5.0) == "5"


def test_local_priorities_for_benefit_and_cost() -> None:
    """More is better: v/Σv; less is better: (1/v)/Σ(1/v)."""
    assert ahp.local_priorities([1, 3], benefit=True) == pytest.approx([0.25, 0.75])
    assert ahp.local_priorities([1, 3], benefit=False) == pytest.approx([0.75, 0.25])
    assert ahp.local_priorities([0, 5], benefit=False) == [1.0, 0.0]
