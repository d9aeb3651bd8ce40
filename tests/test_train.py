"""The DP training engine: per-sample gradients, DP == plain without noise/clipping, LoRA
actually learns while the base stays frozen, reproducibility, refusals, ledger, save/load."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.utils.data import DataLoader

import synthtext.train as T
from synthtext.config import PrivacyConfig, TrainConfig
from synthtext.errors import ConfigError, ModelError, PrivacyBudgetError
from synthtext.models import TrainedModel, add_lora, encode_examples, load_base_model
from tiny_models import FAMILIES, save_tiny_model

KINDS = ("builtin", *FAMILIES)
# rdp is the quicker accountant; the calibration is cached, so every test sharing n / batch /
# epochs / epsilon pays for it once.
FAST = PrivacyConfig(epsilon=8.0, accountant="rdp")
QUICK = TrainConfig(epochs=1, batch_size=20, max_physical_batch_size=8, max_length=48, progress=False)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    return {f: save_tiny_model(f, root / f) for f in FAMILIES}


def _base(kind, model_dirs, seed=0):
    if kind == "builtin":
        return load_base_model("builtin", size="tiny", seed=seed)
    return load_base_model(model_dirs[kind])


def _examples(tok, n=120, max_length=48, canary=None):
    prompts = [f"rating {i % 5} dept {'tops' if i % 3 else 'dresses'} :" for i in range(n)]
    texts = [f" nice fit, size {i % 7}" + ("!" * (i % 4)) for i in range(n)]
    if canary:
        texts[0] = canary
    return encode_examples(tok, prompts, texts, max_length)


def _trainable_model(kind, model_dirs):
    """Model in train mode with trainable params; LoRA B made non-zero so every grad is non-trivial."""
    base = _base(kind, model_dirs)
    if kind == "builtin":
        return base, base.model.train()
    torch.manual_seed(0)
    model = add_lora(base, TrainConfig(lora_r=4))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    return base, model.train()


def _plan(n, batch, sigma=0.0, steps=1):
    q = 1.0 / math.ceil(n / batch)
    return T.PrivacyPlan(dp=True, n_records=n, steps=steps, steps_per_epoch=int(1 / q), expected_batch_size=q * n,
                         sample_rate=q, delta=1e-5, noise_multiplier=sigma, epsilon=None, accountant="rdp")


# ------------------------------------------------------------------ loss


def test_sequence_loss_masks_prompt_and_padding_and_is_per_record():
    torch.manual_seed(0)
    ids = torch.tensor([[1, 2, 3, 4, 0, 0], [1, 5, 6, 7, 8, 9]])
    target = torch.tensor([[0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1]])
    logits = torch.randn(2, 6, 10)
    losses = T.sequence_losses(logits, ids, target)
    lp = torch.log_softmax(logits, -1)
    expected0 = -(lp[0, 1, 3] + lp[0, 2, 4]) / 2  # positions 2,3 predicted from 1,2
    torch.testing.assert_close(losses[0], expected0)
    # record 0's loss ignores what record 1 is, and what sits in its padding
    logits2, ids2 = logits.clone(), ids.clone()
    logits2[1] = torch.randn(6, 10)
    ids2[0, 4:] = 7
    logits2[0, 4:] = torch.randn(2, 10)
    torch.testing.assert_close(T.sequence_losses(logits2, ids2, target)[0], losses[0])


# ------------------------------------------------------------------ per-sample gradients


@pytest.mark.parametrize("kind", KINDS)
def test_per_sample_gradients_match_one_at_a_time(kind, model_dirs):
    """Opacus' per-sample gradients of our loss == the gradient of each record alone, unpadded."""
    base, model = _trainable_model(kind, model_dirs)
    ex = _examples(base.tokenizer, n=5)
    ex.input_ids[1] = ex.input_ids[1][:9]  # unequal lengths -> padding in the batch
    params = [p for p in model.parameters() if p.requires_grad]
    reference = []
    for i in range(len(ex)):
        batch = T._PadCollate(base.tokenizer.pad_token_id)([T._Records(ex)[i]])
        model.zero_grad()
        T.backward_batch(model, batch, 1.0, torch.device("cpu"))
        reference.append([p.grad.clone() for p in params])
    model.zero_grad()

    loader = DataLoader(T._Records(ex), batch_size=5, collate_fn=T._PadCollate(base.tokenizer.pad_token_id))
    opt = torch.optim.SGD(params, lr=0.1)
    _, hooks, dp_opt, _ = T.make_private_objects(model, opt, loader, _plan(5, 5), 1.0, 0, torch.device("cpu"))
    try:
        batch = next(iter(loader))
        assert (batch[1] == 0).any()  # really padded
        T.backward_batch(model, batch, 1.0 / 5, torch.device("cpu"))
        for j, p in enumerate(params):
            assert p.grad_sample.shape[0] == 5
            for i in range(5):
                torch.testing.assert_close(p.grad_sample[i], reference[i][j], rtol=1e-4, atol=1e-6)
    finally:
        hooks.cleanup()
    assert T.GRAD_SAMPLE_MODE == "hooks"  # the only mode we use; add a case here if that changes


@pytest.mark.parametrize("kind", KINDS)
def test_plain_training_weighs_tokens_not_records(kind, model_dirs):
    """Without DP the step follows the mean over all target tokens of the batch (physical chunks and
    all), so a 2-token target (the missing-text marker) no longer weighs like a whole review."""
    base, model = _trainable_model(kind, model_dirs)
    reference, per_record = copy.deepcopy(model), copy.deepcopy(model)
    tok = base.tokenizer
    texts = [" ok", " a long and careful review of the dress, its fit, its colour and its fabric", " no",
             " fine, thanks, it fits", " x"]
    ex = encode_examples(tok, [f"rating {i} :" for i in range(5)], texts, 48)
    lengths = [len(ids) - int(p) for ids, p in zip(ex.input_ids, ex.prompt_lengths)]
    assert max(lengths) > 3 * min(lengths)  # really unequal
    collate = T._PadCollate(tok.pad_token_id)
    cfg = TrainConfig(epochs=1, batch_size=5, max_physical_batch_size=2, progress=False)
    cpu = torch.device("cpu")

    def step(m, **kw):
        params = [p for p in m.parameters() if p.requires_grad]
        loader = DataLoader(T._Records(ex), batch_size=5, collate_fn=collate)
        T.plain_loop(m, torch.optim.SGD(params, lr=0.5), loader, _plan(5, 5), cfg, cpu, **kw)
        return params

    ours, by_record = step(model), step(per_record, weigh_tokens=False)
    ids, attn, target = collate([T._Records(ex)[i] for i in range(5)])[:3]
    params = [p for p in reference.parameters() if p.requires_grad]
    labels = ids[:, 1:].masked_fill(target[:, 1:] == 0, -100)
    logits = T.model_logits(reference, ids, attn)[:, :-1]
    torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1)).backward()
    torch.optim.SGD(params, lr=0.5).step()
    for p, q in zip(ours, params):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(p, q, rtol=1e-4, atol=1e-6) for p, q in zip(by_record, params))


# ------------------------------------------------------------------ DP == plain without noise/clipping


@pytest.mark.parametrize("kind", ["builtin", "gpt2", "llama"])
def test_dp_step_equals_plain_step_without_noise_and_clipping(kind, model_dirs):
    """Opacus' equivalence idea: sigma=0, huge C, q=1 (every record every step) -> same update."""
    base, model = _trainable_model(kind, model_dirs)
    twin = copy.deepcopy(model)
    ex = _examples(base.tokenizer, n=8)
    cfg = TrainConfig(epochs=2, batch_size=8, max_physical_batch_size=3, progress=False)
    cpu = torch.device("cpu")

    def loader():
        return DataLoader(T._Records(ex), batch_size=8, collate_fn=T._PadCollate(base.tokenizer.pad_token_id))

    params = [p for p in model.parameters() if p.requires_grad]
    plan = _plan(8, 8, sigma=0.0, steps=2)
    engine, hooks, dp_opt, dp_loader = T.make_private_objects(
        model, torch.optim.SGD(params, lr=0.5), loader(), plan, 1e6, 0, cpu)
    try:
        assert T.dp_loop(model, dp_opt, dp_loader, engine, plan, cfg, cpu) == (2, 16)
    finally:
        hooks.cleanup()
    twin_params = [p for p in twin.parameters() if p.requires_grad]
    assert T.plain_loop(twin, torch.optim.SGD(twin_params, lr=0.5), loader(), plan, cfg, cpu,
                        weigh_tokens=False) == (2, 16)
    moved = 0
    for p, q, p0 in zip(params, twin_params, [p for p in _trainable_model(kind, model_dirs)[1].parameters()
                                              if p.requires_grad]):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
        moved += not torch.equal(p, p0)
    assert moved == len(params)


def test_pad_collate_rounds_widths_up_to_the_limit():
    items = [(torch.tensor([5, 6, 7]), torch.tensor(1)), (torch.tensor([5] * 10), torch.tensor(2))]
    ids, attn, target = T._PadCollate(0, multiple=8, limit=12)(items)
    assert ids.shape == (2, 12) and attn.sum().item() == 13 and target[0].tolist() == [0, 1, 1] + [0] * 9
    assert T._PadCollate(0, multiple=8, limit=64)(items)[0].shape == (2, 16)
    assert T._PadCollate(0)(items)[0].shape == (2, 10)


def test_length_sorted_layout_pads_less_and_gives_the_same_clipped_sum(monkeypatch):
    """train_private lays records out shortest first, so Opacus' physical batches hold similar
    lengths. That only changes how a logical batch is split: with clipping active (tiny C), no
    noise and q=1, one DP step gives the same update as the plain layout."""
    base, model = _trainable_model("builtin", None)
    twin = copy.deepcopy(model)
    n = 12
    ex = encode_examples(base.tokenizer, [f"rating {i % 5} :" for i in range(n)],
                         [" fits" * (1 + (7 * i) % n) for i in range(n)], 96)  # lengths out of order
    order = T.length_order(ex)
    assert [len(ex.input_ids[i]) for i in order] == sorted(len(ids) for ids in ex.input_ids)
    cpu, plan = torch.device("cpu"), _plan(n, n, sigma=0.0, steps=1)
    cfg = TrainConfig(epochs=1, batch_size=n, max_physical_batch_size=4, progress=False)
    widths, real = [], T.backward_batch
    monkeypatch.setattr(T, "backward_batch", lambda m, b, *a: (widths[-1].append(b[0].shape[1]), real(m, b, *a))[1])
    updated = []
    for net, layout in ((model, order), (twin, None)):
        widths.append([])
        params = [p for p in net.parameters() if p.requires_grad]
        before = [p.detach().clone() for p in params]
        loader = DataLoader(T._Records(ex, layout), batch_size=n, collate_fn=T._PadCollate(base.tokenizer.pad_token_id))
        engine, hooks, dp_opt, dp_loader = T.make_private_objects(
            net, torch.optim.SGD(params, lr=1.0), loader, plan, 1e-3, 0, cpu)
        try:
            assert T.dp_loop(net, dp_opt, dp_loader, engine, plan, cfg, cpu) == (1, n)
        finally:
            hooks.cleanup()
        assert all(not torch.equal(p, p0) for p, p0 in zip(params, before))
        updated.append(params)
    sorted_widths, plain_widths = widths
    assert len(sorted_widths) == 3 and sorted_widths == sorted(sorted_widths)
    assert sum(sorted_widths) < sum(plain_widths)  # less padding
    for p, q in zip(*updated):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="permutation"):
        T._Records(ex, [0] * n)


# ------------------------------------------------------------------ end-to-end training


@pytest.mark.parametrize("family", FAMILIES)
def test_dp_lora_trains_only_lora_and_base_stays_bit_identical(family, model_dirs):
    base = load_base_model(model_dirs[family])
    original = {k: v.clone() for k, v in base.model.state_dict().items()}
    trained = T.train_private(base, _examples(base.tokenizer), FAST, QUICK)
    model = trained.model
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert lora and all(p.requires_grad for p in lora.values())
    assert all(not p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)
    # lora_B starts at exactly zero: after DP steps with noise every one has moved (opacus #820)
    assert all(p.abs().sum() > 0 for n, p in lora.items() if "lora_B" in n)
    for name, value in model.get_base_model().state_dict().items():
        if "lora_" not in name:
            assert torch.equal(value, original[name.replace(".base_layer", "")]), name
    led = trained.ledger
    assert led.dp and led.epsilon <= 8.0 and led.accountant == "rdp" and led.privacy_unit == "row"
    assert led.steps == 6 and led.n_records == 120 and led.noise_multiplier > 0
    assert led.model == base.name


def test_guard_raises_when_weights_do_not_change(monkeypatch):
    """The opacus #820 symptom (training 'runs', LoRA weights never move) must not pass silently."""
    monkeypatch.setattr(T, "_make_optimizer", lambda params, cfg: torch.optim.SGD(params, lr=0.0))
    base = load_base_model("builtin", size="tiny")
    with pytest.raises(ModelError, match="#820"):
        T.train_private(base, _examples(base.tokenizer), FAST, QUICK)


@pytest.mark.parametrize("kind", ["builtin", "gpt2"])
def test_same_seed_same_weights(kind, model_dirs):
    runs = []
    for seed in (0, 0, 1):
        base = _base(kind, model_dirs, seed=seed)
        cfg = TrainConfig(**{**QUICK.to_dict(), "seed": seed})
        runs.append(T.train_private(base, _examples(base.tokenizer), FAST, cfg).model.state_dict())
    assert runs[0].keys() == runs[1].keys()
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_no_dp_training_says_so():
    base = load_base_model("builtin", size="tiny")
    trained = T.train_private(base, _examples(base.tokenizer, n=40), PrivacyConfig(epsilon=None), QUICK)
    led = trained.ledger
    assert led.dp is False and led.epsilon is None and led.noise_multiplier is None
    assert "no differential privacy" in led.summary
    assert led.steps == 2 and led.n_records == 40  # no min_records without DP


def test_too_few_rows_refused_before_training():
    base = load_base_model("builtin", size="tiny")
    before = copy.deepcopy(base.model.state_dict())
    with pytest.raises(PrivacyBudgetError, match="99 rows") as e:
        T.train_private(base, _examples(base.tokenizer, n=99), FAST, QUICK)
    assert "at least 100" in str(e.value) and "PrivacyConfig.min_records" in str(e.value)
    assert all(torch.equal(v, base.model.state_dict()[k]) for k, v in before.items())


def test_records_longer_than_model_refused():
    base = load_base_model("builtin", size="tiny")  # 128 positions
    ex = encode_examples(base.tokenizer, ["p"] * 120, ["x" * 300] * 120, max_length=100)
    with pytest.raises(ConfigError, match="max_length=48"):
        T.train_private(base, ex, FAST, QUICK)  # encoded longer than the configured max_length
    with pytest.raises(ConfigError, match="128 positions"):
        T.train_private(base, ex, FAST, TrainConfig(max_length=200, progress=False))
    assert base.max_length(TrainConfig()) == 128  # default: 512 bytes, capped by the model


def test_empty_poisson_batches_are_noise_only_steps(monkeypatch):
    """batch_size=2 over 100 rows: P(empty batch) = e^-2, about 7 of the 50 steps."""
    empties = []
    real = T._empty_logical_batch
    monkeypatch.setattr(T, "_empty_logical_batch", lambda opt: (empties.append(1), real(opt)))
    base = load_base_model("builtin", size="tiny")
    cfg = TrainConfig(epochs=1, batch_size=2, max_physical_batch_size=4, progress=False)
    trained = T.train_private(base, _examples(base.tokenizer, n=100),
                              PrivacyConfig(epsilon=50.0, noise_multiplier=1.0, accountant="rdp"), cfg)
    assert empties  # the seed gives several; each is still a (noise-only) accounted step
    assert trained.ledger.steps == 50 and trained.ledger.sample_rate == 0.02
    assert trained.ledger.epsilon <= 50.0


def test_fixed_noise_multiplier_stops_at_budget():
    base = load_base_model("builtin", size="tiny")
    cfg = TrainConfig(epochs=5, batch_size=20, progress=False)
    trained = T.train_private(base, _examples(base.tokenizer),
                              PrivacyConfig(epsilon=4.0, noise_multiplier=1.2, accountant="rdp"), cfg)
    led = trained.ledger
    assert led.stopped_early and 0 < led.steps < 30 and led.epsilon <= 4.0
    assert T._epsilon("rdp", 1.2, led.sample_rate, led.steps + 1, led.delta) > 4.0
    assert any("stopped after" in note for note in led.notes)


def test_bf16_autocast_path_trains_on_cpu():
    base = load_base_model("builtin", size="tiny")
    cfg = TrainConfig(**{**QUICK.to_dict(), "precision": "bf16"})
    trained = T.train_private(base, _examples(base.tokenizer), FAST, cfg)
    assert trained.ledger.steps == 6
    assert all(torch.isfinite(p).all() for p in trained.model.parameters())


def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch):
    cpu = torch.device("cpu")
    assert not T._use_bf16("fp32", cpu) and T._use_bf16("bf16", cpu)
    for native in (True, False):
        monkeypatch.setattr(T, "cpu_has_native_bf16", lambda: native)
        assert T._use_bf16("auto", cpu) is native
    base = load_base_model("builtin", size="tiny")
    trained = T.train_private(base, _examples(base.tokenizer), FAST, QUICK)  # auto, patched: no native bf16
    assert trained.train_log["precision"] == "fp32"


def test_bf16_per_sample_gradients_are_clipped_in_fp32(monkeypatch):
    """Under bf16 autocast Opacus would take some per-sample norms in bf16 (8 significant bits), so a
    clipped gradient could exceed C; they are cast to the fp32 parameters' dtype first."""
    from opacus.optimizers import DPOptimizer

    seen, real = [], DPOptimizer.clip_and_accumulate
    monkeypatch.setattr(DPOptimizer, "clip_and_accumulate",
                        lambda self: (seen.append({p.grad_sample.dtype for p in self.params}), real(self))[1])
    base = load_base_model("builtin", size="tiny")
    T.train_private(base, _examples(base.tokenizer), FAST, TrainConfig(**{**QUICK.to_dict(), "precision": "bf16"}))
    assert seen and all(dtypes == {torch.float32} for dtypes in seen)


def test_progress_lines_on_stderr_without_a_tty(capsys):
    base = load_base_model("builtin", size="tiny")
    cfg = TrainConfig(**{**QUICK.to_dict(), "progress": True})
    trained = T.train_private(base, _examples(base.tokenizer), FAST, cfg)
    err = capsys.readouterr().err  # pytest's stderr is not a TTY: plain lines, as a log file gets them
    steps = trained.ledger.steps
    last = [line for line in err.splitlines() if f"step {steps}/{steps} (100%)" in line][-1]
    assert last.startswith("DP training: ") and " loss " in last
    assert f"epsilon spent {trained.ledger.epsilon:.2f}" in last  # the final epsilon, from the accountant


def _epsilon_per_step(trained) -> list[tuple[int, float]]:
    return [(e["step"], e["epsilon"]) for e in trained.train_log["steps"] if e["epsilon"] is not None]


def test_train_log_has_epsilon_per_step_from_the_ledgers_accountant():
    """The report's epsilon curve: non-decreasing, its last point the ledger's epsilon (to the bit: the
    same accountant call), every step's loss kept; without DP no epsilon at all."""
    base = load_base_model("builtin", size="tiny")
    trained = T.train_private(base, _examples(base.tokenizer), FAST, QUICK)
    led, log = trained.ledger, trained.train_log["steps"]
    assert [e["step"] for e in log] == list(range(1, led.steps + 1)) and all("loss" in e for e in log)
    curve = _epsilon_per_step(trained)
    assert len(curve) == min(led.steps, T._Progress.EPS_LOG_POINTS) and curve[-1][0] == led.steps
    assert all(b >= a for (_, a), (_, b) in zip(curve, curve[1:])) and curve[0][1] > 0
    assert curve[-1][1] == led.epsilon
    for step, eps in curve:
        assert eps == T._epsilon(led.accountant, led.noise_multiplier, led.sample_rate, step, led.delta)
    plain = T.train_private(load_base_model("builtin", size="tiny"), _examples(base.tokenizer),
                            PrivacyConfig(epsilon=None), QUICK)
    assert plain.train_log["steps"] and all("epsilon" not in e for e in plain.train_log["steps"])


def test_epsilon_points_are_bounded_spread_and_end_at_the_last_step():
    progress = T._Progress(300, False, True)
    for step in range(1, 301):
        progress.step(step, 1.0)
    asked = []
    progress.add_epsilon(lambda k: asked.append(k) or k / 100)
    steps = [e["step"] for e in progress.log if e["epsilon"] is not None]
    assert asked == steps and len(steps) == T._Progress.EPS_LOG_POINTS and steps[0] == 1 and steps[-1] == 300
    assert max(b - a for a, b in zip(steps, steps[1:])) <= 300 // (T._Progress.EPS_LOG_POINTS - 1) + 1


def test_prv_ledger_within_target_and_save_load_without_text(tmp_path, model_dirs):
    base = load_base_model(model_dirs["gpt2"])
    canary = " CANARY-7f3a my secret review text"
    ex = _examples(base.tokenizer, canary=canary)
    trained = T.train_private(base, ex, PrivacyConfig(epsilon=4.0), QUICK)  # prv, the default
    assert trained.ledger.accountant == "prv" and trained.ledger.epsilon <= 4.0
    assert trained.ledger.epsilon > 3.9  # calibrated: spends (almost) all of it
    curve = [eps for _, eps in _epsilon_per_step(trained)]  # the PRV curve too: rising, ending at the ledger's
    assert all(b >= a for a, b in zip(curve, curve[1:])) and curve[-1] == trained.ledger.epsilon
    out = trained.save(tmp_path / "run")
    for f in out.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert b"CANARY" not in data and b"nice fit" not in data, f
    loaded = TrainedModel.load(out)
    ids = torch.tensor([ex.input_ids[3]])
    assert torch.equal(trained.logits(ids), loaded.logits(ids))
    assert loaded.ledger == trained.ledger
    # learning_rate=None resolves by kind, and the saved config says what was used
    assert QUICK.learning_rate is None
    assert trained.train_config.learning_rate == loaded.train_config.learning_rate == 2e-2  # LoRA under DP


def test_default_learning_rate_depends_on_the_model_kind():
    rate = TrainConfig().learning_rate_for
    assert rate("builtin", 24) == rate("builtin", 150) == 5e-3
    assert rate("builtin", 300) == pytest.approx(2.5e-3)  # 5e-3 * 150 / 300
    assert rate("builtin", 750) == pytest.approx(1e-3)
    assert rate("builtin", 100_000) == 1e-3  # never below 1e-3
    assert rate("pretrained", 12) == rate("pretrained", 24) == 2e-2  # LoRA under DP, every record clipped
    # beyond 24 steps the noise's random walk would grow: 2e-2 * sqrt(24 / steps) (5,000 rows diverged at 2e-2)
    assert rate("pretrained", 96) == pytest.approx(1e-2)
    assert rate("pretrained", 213) == pytest.approx(2e-2 * (24 / 213) ** 0.5)
    assert rate("pretrained", 24, dp=False) == 2e-3
    assert TrainConfig(learning_rate=2e-4).learning_rate_for("builtin", 24) == 2e-4
    base = load_base_model("builtin", size="tiny")
    trained = T.train_private(base, _examples(base.tokenizer), PrivacyConfig(epsilon=None), QUICK)
    assert trained.train_config.learning_rate == 5e-3  # 6 steps
    assert trained.train_config.epochs == QUICK.epochs  # only the step size was filled in


# ------------------------------------------------------------------ TrainConfig validation


@pytest.mark.parametrize("field,value", [
    ("epochs", 0), ("batch_size", 0), ("max_physical_batch_size", 0), ("learning_rate", 0.0),
    ("learning_rate", float("nan")), ("max_length", 1), ("lora_r", 0), ("lora_dropout", 1.0),
    ("target_modules", "everything"), ("target_modules", []), ("device", "tpu"), ("precision", "fp8"),
    ("progress", "yes"), ("seed", -1), ("epochs", 1.5),
])
def test_train_config_errors_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_train_config_round_trips_through_dict():
    cfg = TrainConfig(target_modules=("q_proj", "v_proj"), epochs=2)
    assert cfg.target_modules == ["q_proj", "v_proj"]
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown"):
        TrainConfig.from_dict({"epochz": 1})


def test_no_gpu_is_config_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="device"):
        T._device("cuda")
