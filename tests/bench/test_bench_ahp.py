"""AHP: eigenvector weights, consistency ratio, and errors that name the judgement."""

from __future__ import annotations

import itertools

import numpy as np
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
    assert exc.pairs == (("throughput", "operability"),)
    assert "'throughput vs operability = 1/9' disagrees most" in str(exc)
    assert f"CR {exc.cr:.3f}" in str(exc)


def test_a_standing_out_judgement_is_named_whatever_the_criteria_order() -> None:
    """n = 4: the one outlier is named alone, for every order of the criteria."""
    judgements = {
        "throughput": {"latency": 3, "memory": 3, "operability": "1/9"},
        "latency": {"memory": 3, "operability": 3},
        "memory": {"operability": 9},
    }
    for order in itertools.permutations(CRITERIA):
        with pytest.raises(ahp.InconsistentJudgements) as caught:
            ahp.priorities(order, judgements)
        assert caught.value.pairs == (("throughput", "operability"),), order


TRIAD = {"a": {"b": 1, "c": 1}, "c": {"b": "1/9"}}  # b vs c = 9, written as c vs b = 1/9


def test_three_criteria_name_the_whole_triad_in_criteria_order() -> None:
    """n = 3: all |ln(a_ij w_j/w_i)| are equal, so all three judgements are named.

    Which one used to be named was decided by floating-point noise and changed with
    the order of the criteria.
    """
    for order in itertools.permutations("abc"):
        with pytest.raises(ahp.InconsistentJudgements) as caught:
            ahp.priorities(order, TRIAD)
        exc = caught.value
        # each as written in the judgements, in the order the criteria were given
        written = {
            frozenset("ab"): ("a", "b"),
            frozenset("ac"): ("a", "c"),
            frozenset("bc"): ("c", "b"),
        }
        expected = tuple(written[frozenset(pair)] for pair in itertools.combinations(order, 2))
        assert exc.pairs == expected, order
        assert "revising any one of them can restore consistency" in str(exc)
    with pytest.raises(ahp.InconsistentJudgements) as caught:
        ahp.priorities(["a", "b", "c"], TRIAD)
    assert str(caught.value).startswith(
        f"inconsistent judgements (CR {caught.value.cr:.3f} >= 0.1): "
        "'a vs b = 1', 'a vs c = 1' and 'c vs b = 1/9' are equally far from what the weights"
    )


def test_any_one_triad_judgement_can_restore_consistency() -> None:
    """The claim in the message: each of the three, set to what the other two imply."""
    for fixed in (
        {"a": {"b": "1/9", "c": 1}, "c": {"b": "1/9"}},  # a/b = (a/c)(c/b)
        {"a": {"b": 1, "c": 9}, "c": {"b": "1/9"}},  # a/c = (a/b)(b/c)
        {"a": {"b": 1, "c": 1}, "c": {"b": 1}},  # c/b = (c/a)(a/b)
    ):
        assert ahp.priorities(["a", "b", "c"], fixed).cr == pytest.approx(0.0, abs=1e-9)


def test_consistency_ratio_is_textbook() -> None:
    """Saaty's RI (spot values of his table), CI = (λmax - n)/(n - 1), CR = CI/RI, λmax
    the largest eigenvalue."""
    assert [ahp.RANDOM_INDEX[n] for n in (1, 2, 3, 4, 10)] == [0.0, 0.0, 0.58, 0.90, 1.49]
    judgements = {"a": {"b": 2, "c": 5, "d": 1}, "b": {"c": 3, "d": "1/2"}, "c": {"d": "1/4"}}
    p = ahp.priorities(list("abcd"), judgements)
    matrix = ahp.pairwise_matrix(list("abcd"), judgements)
    lambda_max = max(np.linalg.eigvals(matrix).real)
    assert p.lambda_max == pytest.approx(lambda_max)
    assert p.ci == pytest.approx((lambda_max - 4) / 3)
    assert p.cr == pytest.approx((lambda_max - 4) / 3 / 0.90)
    assert (matrix @ np.array(p.weights)) == pytest.approx(lambda_max * np.array(p.weights))


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
