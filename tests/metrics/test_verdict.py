import pytest

from recogan_app.metrics.verdict import RANK, bar_score, ks_verdict


def test_bar_score_is_the_worst_criterion_relative_to_the_excellent_bar():
    assert bar_score(0.035, 0.04, 0.01) == pytest.approx(1.0)
    assert bar_score(0.01, 0.16, 0.01) == pytest.approx(2.0)
    assert bar_score(0.01, 0.01, 0.10) == pytest.approx(2.0)


def test_a_verdict_passes_the_levels_at_or_below_it():
    assert [ks_verdict(0.01, 0.07), ks_verdict(0.05, 0.14), ks_verdict(0.06, 0.1)] == ["excellent", "good", "poor"]
    assert [level for level in ("none", "good", "excellent") if RANK[ks_verdict(0.05, 0.14)] >= RANK[level]] == [
        "none", "good"]
