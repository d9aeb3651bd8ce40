"""The canary audit: the one-run bound against hand-checked values, its power without DP, its
consistency under DP, and the CLI."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from synthtext import cli
from synthtext.audit import (AuditResult, audit, epsilon_lower_bound, exposure, guess_grid, one_run_bound,
                             p_value)
from synthtext.config import TrainConfig
from synthtext.errors import ConfigError, PrivacyBudgetError


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP spin-waiting made these
    tests ~10x slower (measured: 9 min with 2 threads vs 40 s with 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- the bound --------------------------------------------------------------------------------------


def test_all_correct_without_delta_matches_the_closed_form():
    # delta = 0: p = q^r for r correct out of r, so the bound is logit(level^(1/r)).
    for r, level in ((100, 0.05), (37, 0.01), (1000, 0.05)):
        q = level ** (1 / r)
        assert epsilon_lower_bound(r, r, r, 0.0, level) == pytest.approx(math.log(q / (1 - q)), abs=1e-6)
    assert epsilon_lower_bound(100, 100, 100, 0.0, 0.05) == pytest.approx(3.49297, abs=1e-4)


def test_p_value_is_the_binomial_tail_plus_the_delta_term():
    from scipy import stats

    m, r, v, eps, delta = 500, 60, 45, 1.0, 1e-5
    q = 1 / (1 + math.exp(-eps))
    beta = stats.binom.sf(v - 1, r, q)
    # the paper's loop, written out
    alpha, running = 0.0, 0.0
    for i in range(1, v + 1):
        running += stats.binom.pmf(v - i, r, q)
        alpha = max(alpha, running / i)
    assert p_value(m, r, v, eps, delta) == pytest.approx(beta + alpha * delta * 2 * m, rel=1e-9)
    assert p_value(m, r, v, eps, 0.0) == pytest.approx(beta, rel=1e-12)


def test_random_guessing_gives_no_bound_and_delta_only_lowers_it():
    assert epsilon_lower_bound(1000, 200, 100, 1e-5) == 0.0  # half right: chance
    assert epsilon_lower_bound(1000, 200, 80, 1e-5) == 0.0  # worse than chance
    assert epsilon_lower_bound(1000, 1000, 1000, 1e-5) < epsilon_lower_bound(1000, 1000, 1000, 0.0)


def test_bound_is_monotone_in_correct_guesses_and_capped_by_perfect_guessing():
    m, r, delta = 1000, 200, 1e-5
    bounds = [epsilon_lower_bound(m, r, v, delta, 0.05 / 12) for v in range(90, r + 1, 5)]
    assert all(a <= b + 1e-9 for a, b in zip(bounds, bounds[1:]))
    assert bounds[0] == 0.0 and bounds[-1] > 2
    perfect = epsilon_lower_bound(m, r, r, delta, 0.05 / 12)
    assert max(bounds) <= perfect + 1e-9
    # more guesses all correct: a higher ceiling
    assert epsilon_lower_bound(m, 500, 500, delta) > epsilon_lower_bound(m, 100, 100, delta)


def test_guess_grid_is_fixed_and_fits_the_canaries():
    assert guess_grid(20) == [(10, 0), (10, 10)]
    grid = guess_grid(1000)
    assert [k for k, _ in grid[::2]] == [10, 20, 50, 100, 200, 500]
    assert all(kp + km <= 1000 for kp, km in grid)


def test_one_run_bound_separated_losses_give_a_positive_bound_and_shuffled_labels_none():
    rng = np.random.default_rng(1)
    included = rng.random(400) < 0.5
    losses = np.where(included, 1.0, 2.0) + rng.normal(0, 0.05, 400)
    best = one_run_bound(losses, included, 1e-5)
    assert best["epsilon"] > 3
    assert best["correct"] == best["guesses"] == best["k_plus"] + best["k_minus"]
    assert best["grid_size"] == len(guess_grid(400)) and best["test_level"] == pytest.approx(0.05 / best["grid_size"])
    # the bound never beats what a perfect guesser with the same counts could claim
    assert best["epsilon"] <= epsilon_lower_bound(400, best["guesses"], best["guesses"], 1e-5, best["test_level"])
    noise = rng.normal(0, 1, 400)  # losses unrelated to inclusion
    assert one_run_bound(noise, included, 1e-5)["epsilon"] < 0.5


def test_exposure_separates_memorised_from_unseen_secrets():
    rng = np.random.default_rng(0)
    reference = rng.normal(2.3, 0.1, 2000)
    bits = exposure(np.array([2.3, 1.5, 0.0]), reference, space_bits=12 * math.log2(10))
    assert bits[0] == pytest.approx(1.0, abs=0.3)  # the median secret: rank half the space
    assert bits[1] > 20 and bits[2] == pytest.approx(12 * math.log2(10))
    unseen = exposure(rng.normal(2.3, 0.1, 2000), reference, 40.0)
    assert unseen.mean() == pytest.approx(1 / math.log(2), abs=0.2)


# -- the audit on a tiny model ------------------------------------------------------------------------


def table(n=60) -> pd.DataFrame:
    products = ["dress", "jacket", "jeans", "sweater"]
    return pd.DataFrame({
        "product": [products[i % 4] for i in range(n)],
        "rating": [1 + i % 5 for i in range(n)],
        "comment": [f"the {products[i % 4]} was {'great' if i % 3 else 'too small'}" for i in range(n)],
    })


# Settings under which the tiny model memorises its canaries within seconds (many small steps). The DP
# test uses the same ones, so it would fail if DP were silently off (the no-DP bound is about 2.9).
MEMORISING = dict(canaries=200, canary_digits=8, references=200, model="builtin", model_size="tiny", seed=0,
                  train=TrainConfig(epochs=40, batch_size=16, learning_rate=3e-3, progress=False))


def test_without_dp_the_audit_shows_memorisation():
    result = audit(table(100), ["comment"], epsilon=None, **MEMORISING)
    assert isinstance(result, AuditResult) and not result.dp
    assert result.empirical_epsilon_lower_bound > 1.0
    assert result.losses["inserted_mean"] < result.losses["not_inserted_mean"]
    assert result.exposure["inserted_mean"] > result.exposure["not_inserted_mean"] + 2
    assert result.ledger["n_records"] == 100 + result.n_inserted
    d = result.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["verdict"].startswith("trained without DP") and d["claimed_epsilon"] is None


def test_under_dp_the_bound_stays_below_the_claim():
    result = audit(table(100), ["comment"], epsilon=1.0, **MEMORISING)
    assert result.dp and 0 < result.claimed_epsilon <= 1.0 + 1e-9
    assert result.empirical_epsilon_lower_bound <= result.claimed_epsilon
    assert result.consistent and "consistent with the claim" in result.verdict
    assert result.ledger["n_records"] == 100 + result.n_inserted
    assert set(result.to_dict()) >= {"method", "dp", "claimed_epsilon", "delta", "n_canaries", "n_inserted",
                                     "empirical_epsilon_lower_bound", "confidence", "guesses", "exposure",
                                     "ledger", "verdict", "caveat"}


def test_audit_refuses_what_fit_refuses():
    with pytest.raises(PrivacyBudgetError, match="too few"):
        audit(table(40), ["comment"], epsilon=8.0, canaries=100, model="builtin", model_size="tiny")
    with pytest.raises(ConfigError, match="canaries"):
        audit(table(), ["comment"], epsilon=None, canaries=5, model="builtin", model_size="tiny")


# -- the CLI ------------------------------------------------------------------------------------------


def test_cli_audit_writes_json(tmp_path, capsys):
    src, out = tmp_path / "in.csv", tmp_path / "audit.json"
    table(120).to_csv(src, index=False)
    code = cli.main(["audit", str(src), "--text-columns", "comment", "--epsilon", "none", "--canaries", "40",
                     "--model", "builtin", "--model-size", "tiny", "--epochs", "1", "-o", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert not data["dp"] and data["n_canaries"] == 40 and data["confidence"] == 0.95
    assert data["ledger"]["n_records"] == 120 + data["n_inserted"]
    assert "empirical epsilon lower bound" in capsys.readouterr().out


def test_cli_audit_too_few_rows_exits_2(tmp_path, capsys):
    src, out = tmp_path / "in.csv", tmp_path / "audit.json"
    table(40).to_csv(src, index=False)
    code = cli.main(["audit", str(src), "--text-columns", "comment", "--epsilon", "8", "--model", "builtin", "--model-size", "tiny",
                     "-o", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "too few" in err and "Traceback" not in err
    assert not out.exists()
