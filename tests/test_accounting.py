"""Privacy accounting and planning: known values, calibration never overshoots, refusals,
and PrivacyConfig validation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import synthtext.train as T
from synthtext.config import PrivacyConfig, PrivacyLedger, TrainConfig
from synthtext.errors import ConfigError, DataError, PrivacyBudgetError


# ------------------------------------------------------------------ known values


def test_rdp_reproduces_known_value():
    # sigma=1.5, q=0.04, 2250 steps (90 epochs), delta=1e-5: the Opacus/TF-Privacy reference value
    assert T._epsilon("rdp", 1.5, 0.04, 2250, 1e-5) == pytest.approx(7.32911117143, abs=1e-6)


def test_prv_reproduces_known_value():
    # PRV estimate 6.7774; Opacus reports the upper end of its error band (eps_error=0.01)
    assert T._epsilon("prv", 1.5, 0.04, 2250, 1e-5) == pytest.approx(6.7774, abs=0.02)


def test_gdp_is_below_prv_as_expected_of_a_clt_approximation():
    assert T._epsilon("gdp", 1.5, 0.04, 2250, 1e-5) < T._epsilon("prv", 1.5, 0.04, 2250, 1e-5)


def test_zero_steps_and_zero_noise():
    assert T._epsilon("rdp", 1.0, 0.1, 0, 1e-5) == 0.0
    assert T._epsilon("rdp", 0.0, 0.1, 5, 1e-5) == math.inf


# ------------------------------------------------------------------ planning


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_calibrated_epsilon_never_exceeds_target(accountant):
    plan = T.plan_privacy(1000, PrivacyConfig(epsilon=3.0, accountant=accountant),
                          TrainConfig(epochs=2, batch_size=50))
    assert plan.sample_rate == 0.05 and plan.steps == 40 and plan.expected_batch_size == pytest.approx(50)
    assert plan.delta == 1e-5
    assert plan.epsilon <= 3.0
    assert plan.epsilon > 2.9  # and spends (nearly) the whole budget: sigma is not wasted
    # the accountant's own check: a slightly smaller sigma would overshoot
    assert T._epsilon(accountant, plan.noise_multiplier * 0.98, 0.05, 40, 1e-5) > plan.epsilon


@settings(max_examples=25, deadline=None)
@given(n=st.integers(100, 100_000), batch=st.integers(1, 512), epochs=st.integers(1, 5),
       eps=st.floats(0.5, 20.0))
def test_plan_never_exceeds_target_property(n, batch, epochs, eps):
    privacy = PrivacyConfig(epsilon=eps, accountant="gdp")  # gdp: fast enough for a property test
    try:
        plan = T.plan_privacy(n, privacy, TrainConfig(epochs=epochs, batch_size=batch))
    except PrivacyBudgetError as e:
        assert "noise multiplier above" in str(e)
        return
    assert plan.epsilon <= eps
    assert 1 - 1e-9 <= plan.expected_batch_size <= n
    assert plan.steps == epochs * plan.steps_per_epoch
    assert plan.delta < 1 / n and plan.noise_multiplier <= 50


def test_sample_rate_matches_opacus_rule():
    # q = 1/len(DataLoader(batch_size)) = 1/ceil(n/B); steps per epoch = int(1/q)
    plan = T.plan_privacy(1050, PrivacyConfig(epsilon=8, accountant="gdp"), TrainConfig(batch_size=100, epochs=3))
    assert plan.sample_rate == 1 / 11 and plan.steps_per_epoch == 11 and plan.steps == 33


def test_default_delta_is_well_below_one_over_n():
    assert PrivacyConfig().resolve_delta(1_000) == 1e-5
    assert PrivacyConfig().resolve_delta(1_000_000) == pytest.approx(1e-7)
    assert PrivacyConfig(delta=1e-6).resolve_delta(1000) == 1e-6


def test_no_dp_plan():
    plan = T.plan_privacy(10, PrivacyConfig(epsilon=None), TrainConfig(batch_size=4, epochs=2))
    # full shuffled batches only: the 2-row remainder is dropped (a tiny last step drags the model to it)
    assert not plan.dp and plan.steps == 4 and plan.noise_multiplier is None and plan.epsilon is None
    assert T.plan_privacy(3, PrivacyConfig(epsilon=None), TrainConfig(batch_size=4, epochs=2)).steps == 2


def test_too_few_rows_refused_with_numbers():
    with pytest.raises(PrivacyBudgetError) as e:
        T.plan_privacy(50, PrivacyConfig(epsilon=8), TrainConfig())
    assert "50 rows" in str(e.value) and "at least 100" in str(e.value) and "epsilon=None" in str(e.value)
    assert "PrivacyConfig.min_records" in str(e.value)
    on_the_command_line = e.value.render(frozenset({"--epsilon", "--min-records"}))
    assert "--epsilon none" in on_the_command_line and "--min-records" in on_the_command_line
    assert "min_records" not in on_the_command_line and "epsilon=None" not in on_the_command_line
    # the threshold is configurable
    assert T.plan_privacy(50, PrivacyConfig(epsilon=8, min_records=10, accountant="gdp"),
                          TrainConfig(batch_size=10)).dp


def test_absurd_noise_refused_with_numbers():
    with pytest.raises(PrivacyBudgetError) as e:
        T.plan_privacy(100, PrivacyConfig(epsilon=0.05, accountant="rdp"), TrainConfig(batch_size=100, epochs=50))
    msg = str(e.value)
    assert "epsilon=0.05" in msg and "100 rows" in msg and "noise multiplier above 50" in msg


def test_fixed_noise_too_small_for_one_step_refused():
    with pytest.raises(PrivacyBudgetError, match="noise_multiplier=0.1"):
        T.plan_privacy(1000, PrivacyConfig(epsilon=1.0, noise_multiplier=0.1, accountant="rdp"), TrainConfig())


def test_delta_not_below_one_over_n_is_config_error():
    with pytest.raises(ConfigError, match="delta"):
        T.plan_privacy(200, PrivacyConfig(delta=0.01), TrainConfig())


def test_no_records_is_data_error():
    with pytest.raises(DataError):
        T.plan_privacy(0, PrivacyConfig(), TrainConfig())


# ------------------------------------------------------------------ PrivacyConfig validation


@pytest.mark.parametrize("field,value", [
    ("epsilon", 0), ("epsilon", -1.0), ("epsilon", math.inf), ("epsilon", float("nan")), ("epsilon", "8"),
    ("delta", 0.0), ("delta", 1.0), ("max_grad_norm", 0.0), ("max_grad_norm", -1.0),
    ("accountant", "moments"), ("noise_multiplier", -0.5), ("min_records", 0), ("max_noise_multiplier", 0),
])
def test_privacy_config_errors_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        PrivacyConfig(**{field: value})


def test_privacy_config_defaults_and_round_trip():
    cfg = PrivacyConfig()
    assert cfg.epsilon == 8.0 and cfg.delta is None and cfg.max_grad_norm is None and cfg.accountant == "prv"
    # clipping by model kind: LoRA's per-record gradients are small, the byte model's are not
    assert cfg.clipping_norm_for("builtin") == 1.0 and cfg.clipping_norm_for("pretrained") == 0.01
    assert PrivacyConfig(max_grad_norm=0.5).clipping_norm_for("pretrained") == 0.5
    assert cfg.dp and not PrivacyConfig(epsilon=None).dp
    assert PrivacyConfig.from_dict(cfg.to_dict()) == cfg


def test_ledger_round_trip_and_summary():
    led = PrivacyLedger(dp=True, epsilon=2.5, delta=1e-5, noise_multiplier=1.1, sample_rate=0.01, steps=300,
                        epochs=3.0, accountant="prv", max_grad_norm=1.0, n_records=5000, model="gpt2")
    d = led.to_dict()
    assert d["privacy_unit"] == "row" and "epsilon=2.5" in d["summary"]
    assert PrivacyLedger.from_dict(d) == led


@pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha")
@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_calibration_agrees_with_opacus_get_noise_multiplier(accountant):
    from opacus.accountants.utils import get_noise_multiplier

    plan = T.plan_privacy(1000, PrivacyConfig(epsilon=3.0, accountant=accountant), TrainConfig(epochs=2, batch_size=50))
    theirs = get_noise_multiplier(target_epsilon=3.0, target_delta=1e-5, sample_rate=0.05, steps=40,
                                  accountant=accountant)
    assert plan.noise_multiplier == pytest.approx(theirs, abs=0.01)
