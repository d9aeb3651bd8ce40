"""Generation: the built-in model's KV cache equals a full forward; batched, length-sorted,
left-padded, cached decoding equals one-at-a-time decoding; seeds reproduce; EOS and budgets
stop rows; Hugging Face models (GPT-2, Llama, GPT-NeoX, Qwen2 + LoRA) decode the same batched or
alone, merged or unmerged."""

from __future__ import annotations

import collections
import copy
import random
from dataclasses import replace

import pytest
import torch

from synthtext.config import PrivacyConfig, PrivacyLedger, SamplingConfig, TrainConfig
from synthtext.errors import ConfigError, DataError, ModelError
from synthtext.generate import _encode_prompts, generate_texts, generate_token_ids, sample_next, token_budgets
from synthtext.models import ByteTransformerLM, TrainedModel, add_lora, encode_examples, load_base_model
from synthtext.train import train_private
from tiny_models import FAMILIES, save_tiny_model

# exact comparisons in fp32: bf16 (the CPU default for pretrained models) rounds merged and unmerged weights apart;
# and against a plain argmax, so without the default repetition guard
GREEDY = dict(temperature=0, dtype="float32", no_repeat_ngram=0)


def _wrap(base, model, max_length=None) -> TrainedModel:
    """A TrainedModel around an untrained network (generation does not care how it was trained)."""
    ledger = PrivacyLedger(dp=False, epsilon=None, delta=None, noise_multiplier=None, sample_rate=None, steps=0,
                           epochs=0.0, accountant=None, max_grad_norm=None, n_records=0, model=base.name)
    return TrainedModel(model=model.eval(), tokenizer=base.tokenizer, base_name=base.name, kind=base.kind,
                        family=base.family, ledger=ledger, train_config=TrainConfig(max_length=max_length),
                        privacy_config=PrivacyConfig(epsilon=None), builtin_config=base.builtin_config)


def _prompts(n=9, seed=0):
    """Prompts of unequal lengths, in no particular order."""
    rng = random.Random(seed)
    return [f"rating: {rng.randint(1, 5)} | dept: {'x' * rng.randint(0, 12)}\nReview Text:\n" for _ in range(n)]


@pytest.fixture(scope="module")
def random_builtin():
    """Tiny random built-in model that never says EOS (its texts always run to their budget)."""
    base = load_base_model("builtin", size="tiny", seed=3)
    with torch.no_grad():  # EOS logit = -10 * (normalised feature 0 + 5), about -50: never sampled
        base.model.ln_f.bias[0] = 5.0
        base.model.lm_head.weight[base.tokenizer.eos_token_id] = 0.0
        base.model.lm_head.weight[base.tokenizer.eos_token_id, 0] = -10.0
    return _wrap(base, base.model)


@pytest.fixture(scope="module")
def trained_builtin():
    """Tiny built-in model trained (no DP, quick) to write short texts that end in EOS."""
    base = load_base_model("builtin", size="tiny", seed=0)
    n = 120
    prompts = [f"rating {i % 5} dept {'tops' if i % 3 else 'dresses'} :" for i in range(n)]
    texts = [f" nice fit, size {i % 5}" + ("!" * (i % 5)) for i in range(n)]  # length follows the rating
    ex = encode_examples(base.tokenizer, prompts, texts, 64)
    train = TrainConfig(epochs=20, batch_size=20, max_physical_batch_size=20, learning_rate=3e-3, max_length=64,
                        progress=False)
    return train_private(base, ex, PrivacyConfig(epsilon=None), train)


def _naive_greedy(model: ByteTransformerLM, ids: list[int], eos: int, budget: int) -> list[int]:
    """Greedy decoding of one sequence by full forward passes, no cache, no padding."""
    seq, out = list(ids), []
    with torch.no_grad():
        for _ in range(budget):
            nxt = int(model(torch.tensor([seq]))[0, -1].argmax())
            if nxt == eos:
                break
            out.append(nxt)
            seq.append(nxt)
    return out


# --------------------------------------------------------------------------------------------
# Built-in model: the KV cache
# --------------------------------------------------------------------------------------------


def test_kv_cache_logits_equal_full_forward(random_builtin):
    model = random_builtin.model
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 256, (3, 24), generator=g)
    mask = torch.ones_like(ids)
    mask[0, :7] = 0  # left padding of different widths
    mask[1, :1] = 0
    with torch.no_grad():
        full = model(ids, mask)
        cache = model.new_cache(3, 30)
        pieces = [model(ids[:, a:b], mask[:, a:b], cache=cache) for a, b in ((0, 9), (9, 10), (10, 11), (11, 24))]
    torch.testing.assert_close(torch.cat(pieces, 1), full, rtol=0, atol=1e-5)
    assert cache.length == 24 and cache.n_valid.tolist() == [17, 23, 24]
    # logits_to_keep gives the same last logits
    with torch.no_grad():
        last = model(ids, mask, logits_to_keep=1)
    torch.testing.assert_close(last, full[:, -1:], rtol=0, atol=1e-6)


def test_kv_cache_select_drops_rows(random_builtin):
    model = random_builtin.model
    ids = torch.randint(0, 256, (4, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache(4, 12)
        model(ids[:, :8], cache=cache)
        cache.select(torch.tensor([True, False, True, False]))
        rest = model(ids[[0, 2], 8:], cache=cache)
    torch.testing.assert_close(rest, full[[0, 2], 8:], rtol=0, atol=1e-5)


def test_kv_cache_overflow_raises(random_builtin):
    model = random_builtin.model
    with torch.no_grad():
        cache = model.new_cache(1, 4)
        with pytest.raises(ModelError, match="do not fit the cache"):
            model(torch.zeros(1, 5, dtype=torch.long), cache=cache)
        cache = model.new_cache(1, 200)  # slots may exceed positions, positions may not
        model(torch.zeros(1, 128, dtype=torch.long), cache=cache)
        with pytest.raises(ModelError, match="positions"):
            model(torch.zeros(1, 1, dtype=torch.long), cache=cache)


@pytest.mark.parametrize("which", ["random", "trained"])
def test_greedy_cached_batched_equals_naive_one_at_a_time(which, random_builtin, trained_builtin):
    trained = random_builtin if which == "random" else trained_builtin
    prompts = _prompts(9) if which == "random" else [f"rating {i} dept {d} :" for i, d in
                                                     [(1, "tops"), (4, "dresses"), (2, "dresses"), (0, "tops")]]
    budget = 20 if which == "random" else 40
    ids = _encode_prompts(trained.tokenizer, prompts)
    expected = [_naive_greedy(trained.model, p, trained.tokenizer.eos_token_id, budget) for p in ids]
    got = generate_token_ids(trained, prompts, max_new_tokens=budget, batch_size=4, **GREEDY)
    assert got == expected
    if which == "trained":  # every text ended at EOS, at different steps
        assert all(len(e) < budget for e in expected) and len({len(e) for e in expected}) > 1
    else:  # random weights never stopped: full budget, and the texts differ by prompt
        assert all(len(e) == budget for e in expected) and len({tuple(e) for e in expected}) > 1


def test_batching_and_sorting_do_not_change_greedy_output(random_builtin):
    prompts = _prompts(11, seed=5)
    alone = [generate_token_ids(random_builtin, [p], max_new_tokens=15, **GREEDY)[0] for p in prompts]
    for bs in (1, 4, 64):
        assert generate_token_ids(random_builtin, prompts, max_new_tokens=15, batch_size=bs, **GREEDY) == alone
    texts = generate_texts(random_builtin, prompts, max_new_tokens=15, batch_size=4, **GREEDY)
    assert texts == [random_builtin.tokenizer.decode(a) for a in alone]  # input order kept


def test_stops_at_eos(trained_builtin):
    tok = trained_builtin.tokenizer
    texts = generate_texts(trained_builtin, ["rating 3 dept tops :"] * 8, seed=0, max_new_tokens=60, temperature=0.5)
    assert all(t.startswith(" nice fit, size") and len(t.encode()) < 60 for t in texts)
    # a model that always says EOS writes empty texts
    model = copy.deepcopy(trained_builtin.model)
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[tok.eos_token_id] = 1.0
    eos_only = copy.copy(trained_builtin)
    eos_only.model = model
    assert generate_texts(eos_only, _prompts(5), seed=0) == [""] * 5


def test_seed_reproduces_and_leaves_global_rng_alone(trained_builtin):
    prompts = [f"rating {i % 5} dept tops :" for i in range(12)]
    state = torch.get_rng_state()
    a = generate_texts(trained_builtin, prompts, seed=7, batch_size=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert generate_texts(trained_builtin, prompts, seed=7, batch_size=5) == a
    assert len(set(a)) > 1  # it does sample
    others = [generate_texts(trained_builtin, prompts, seed=s, batch_size=5) for s in (8, 9)]
    assert any(o != a for o in others)


def test_budgets(random_builtin, trained_builtin):
    tok = random_builtin.tokenizer
    p = ["ab", "x" * 100]
    out = generate_token_ids(random_builtin, p, max_new_tokens=40, seed=0)
    # random weights never say EOS: 40 new tokens, or what is left of the 128 positions (1 BOS + 100)
    assert [len(o) for o in out] == [40, 27]
    assert token_budgets(random_builtin, [3, 101], None) == [125, 27]  # default: up to max_length (= 128)
    assert token_budgets(trained_builtin, [10], None) == [54]  # trained with max_length=64
    assert token_budgets(trained_builtin, [70], None) == [1]
    assert token_budgets(trained_builtin, [70], 100) == [58]
    with pytest.raises(DataError, match="128 positions"):
        generate_texts(random_builtin, ["ok", "y" * 127])
    assert tok.eos_token_id not in sum(out, [])


def test_invalid_arguments(random_builtin):
    for kwargs, field in [(dict(temperature=-1), "temperature"), (dict(top_p=0), "top_p"),
                          (dict(top_p=1.5), "top_p"), (dict(batch_size=0), "batch_size"),
                          (dict(max_new_tokens=0), "max_new_tokens"), (dict(seed=1.5), "seed"),
                          (dict(dtype="int8"), "dtype")]:
        with pytest.raises(ConfigError, match=field):
            generate_texts(random_builtin, ["a"], **kwargs)
    with pytest.raises(DataError, match="prompt 1"):
        generate_texts(random_builtin, ["a", None])
    with pytest.raises(DataError, match="one string"):
        generate_texts(random_builtin, "a prompt")
    assert generate_texts(random_builtin, []) == []


def test_a_sampling_config_and_keywords_give_the_same_texts(random_builtin):
    """generate_texts takes a SamplingConfig, its fields as keywords, or both (keywords win)."""
    prompts = _prompts(5)
    by_keywords = generate_token_ids(random_builtin, prompts, max_new_tokens=9, seed=4, batch_size=2)
    config = SamplingConfig(max_new_tokens=9, seed=4, batch_size=2)
    assert generate_token_ids(random_builtin, prompts, config) == by_keywords
    assert generate_token_ids(random_builtin, prompts, replace(config, seed=0), seed=4) == by_keywords
    with pytest.raises(ConfigError, match="top_p"):
        generate_texts(random_builtin, prompts, config, top_p=2)


def test_sample_next():
    logits = torch.log(torch.tensor([[0.05, 0.9, 0.05], [0.5, 0.3, 0.2]]))
    g = torch.Generator().manual_seed(0)
    assert sample_next(logits, temperature=0, top_p=1.0).tolist() == [1, 0]
    # top_p=0.5: row 0 keeps only its 0.9 token, row 1 only its 0.5 token
    draws = torch.stack([sample_next(logits, temperature=1.0, top_p=0.5, generator=g) for _ in range(200)])
    assert (draws[:, 0] == 1).all() and (draws[:, 1] == 0).all()
    # top_p=0.7 in row 1 keeps 0.5 and 0.3 (the token that crosses 0.7 is kept), never 0.2
    draws = torch.stack([sample_next(logits, temperature=1.0, top_p=0.7, generator=g) for _ in range(300)])
    assert set(draws[:, 1].tolist()) == {0, 1}
    # no cut: every token appears, at about its probability
    draws = torch.stack([sample_next(logits, temperature=1.0, top_p=1.0, generator=g) for _ in range(2000)])
    freq = torch.bincount(draws[:, 1], minlength=3).float() / 2000
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.2]), rtol=0, atol=0.05)
    # high temperature flattens
    hot = torch.stack([sample_next(logits, temperature=100.0, top_p=1.0, generator=g) for _ in range(600)])
    assert (hot[:, 0] != 1).float().mean() > 0.5


def test_min_p_drops_the_tokens_below_its_share_of_the_top_one_then_the_nucleus_cuts_what_is_left():
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.07, 0.03], [0.3, 0.25, 0.25, 0.2]]))
    g = torch.Generator().manual_seed(0)
    # min_p 0.1: row 0 cuts below 0.06 (token 3), row 1 below 0.03 (nothing); the rest at its renormalised share
    draws = torch.stack([sample_next(logits, temperature=1.0, top_p=1.0, min_p=0.1, generator=g) for _ in range(4000)])
    freq0 = torch.bincount(draws[:, 0], minlength=4).float() / 4000
    torch.testing.assert_close(freq0, torch.tensor([0.6, 0.3, 0.07, 0.0]) / 0.97, rtol=0, atol=0.03)
    assert freq0[3] == 0
    assert set(draws[:, 1].tolist()) == {0, 1, 2, 3}
    # top_p 0.92 after it is a share of what is left: row 0 renormalised is 0.619 / 0.309 / 0.072, the first two
    # reach 0.92, so 0.07 is cut too; without min-p 0.6 + 0.3 = 0.9 do not, and it is kept
    with_cut = torch.stack([sample_next(logits, temperature=1.0, top_p=0.92, min_p=0.1, generator=g)
                            for _ in range(1000)])
    without = torch.stack([sample_next(logits, temperature=1.0, top_p=0.92, generator=g) for _ in range(1000)])
    assert set(with_cut[:, 0].tolist()) == {0, 1} and set(without[:, 0].tolist()) == {0, 1, 2}


@pytest.mark.parametrize("scale", [0.1, 3.0])  # flat: nucleus of thousands of tokens; peaked: a few
def test_sample_next_large_vocab_matches_sorted_nucleus(scale):
    """The top-k search for the nucleus gives the same distribution as a full sort."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 5000, generator=g) * scale
    p = torch.softmax(logits[0] / 0.8, -1)
    sorted_p, order = p.sort(descending=True)
    keep = (sorted_p.cumsum(0) - sorted_p) < 0.9
    nucleus = set(order[keep].tolist())
    want = torch.zeros(5000)
    want[order[keep]] = sorted_p[keep] / sorted_p[keep].sum()
    n = 4000
    draws = sample_next(logits.expand(n, -1), temperature=0.8, top_p=0.9, generator=g)
    assert set(draws.tolist()) <= nucleus
    freq = torch.bincount(draws, minlength=5000).float() / n
    top = order[:5]
    torch.testing.assert_close(freq[top], want[top], rtol=0, atol=0.03)
    assert (len(nucleus) > 256) == (scale < 1)  # the flat case needed the wider search


def test_saved_and_loaded_model_generates_the_same(trained_builtin, tmp_path):
    trained_builtin.save(tmp_path / "m")
    loaded = TrainedModel.load(tmp_path / "m")
    prompts = [f"rating {i} dept tops :" for i in range(5)]
    assert generate_texts(loaded, prompts, seed=3) == generate_texts(trained_builtin, prompts, seed=3)


# --------------------------------------------------------------------------------------------
# Hugging Face models + LoRA
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_models(tmp_path_factory):
    """Each tiny family with a random (non-zero) LoRA adapter, wrapped as a TrainedModel."""
    root = tmp_path_factory.mktemp("tiny_gen")
    out = {}
    for family in FAMILIES:
        base = load_base_model(save_tiny_model(family, root / family))
        torch.manual_seed(0)
        model = add_lora(base, TrainConfig(lora_r=4))
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 0.5)
        out[family] = _wrap(base, model, max_length=48)
    return out


def test_prompt_encoding_matches_training(lora_models, random_builtin):
    prompts = _prompts(4)
    for trained in [random_builtin, *lora_models.values()]:
        ex = encode_examples(trained.tokenizer, prompts, ["some text"] * 4, 128)
        want = [ids[:pl] for ids, pl in zip(ex.input_ids, ex.prompt_lengths)]
        assert _encode_prompts(trained.tokenizer, prompts) == want


@pytest.mark.parametrize("family", FAMILIES)
def test_hf_greedy_batched_equals_alone_and_merged_equals_unmerged(family, lora_models):
    trained = lora_models[family]
    before = {k: v.clone() for k, v in trained.model.state_dict().items()}
    prompts = _prompts(7, seed=2)
    alone = [generate_token_ids(trained, [p], max_new_tokens=12, merge_lora=False, **GREEDY)[0] for p in prompts]
    unmerged = generate_token_ids(trained, prompts, max_new_tokens=12, batch_size=4, merge_lora=False, **GREEDY)
    merged = generate_token_ids(trained, prompts, max_new_tokens=12, batch_size=4, merge_lora=True, **GREEDY)
    assert unmerged == alone
    assert merged == alone
    assert len({tuple(a) for a in alone}) > 1
    # generation left the trained model as it was: still a peft model with the same weights
    after = trained.model.state_dict()
    assert hasattr(trained.model, "peft_config") and before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_hf_continuous_batching_and_the_shared_prefix_give_the_texts_of_each_prompt_alone(family, lora_models,
                                                                                          monkeypatch):
    """Waiting prompts join a batch as its rows finish (the rows still writing keep their KV cache), and the
    prompts' shared first tokens are encoded once: the texts must be what decoding each prompt alone gives,
    and the sampled ones the same for a seed."""
    import synthtext.generate as G

    trained = lora_models[family]
    prompts = _prompts(11, seed=5)
    assert G.shared_prefix_length(G._encode_prompts(trained.tokenizer, prompts)) > 2  # "rating: " and BOS
    # no max_new_tokens: each prompt may fill the 48 training positions, so rows finish at different steps
    alone = [generate_token_ids(trained, [p], **GREEDY)[0] for p in prompts]
    assert len({len(a) for a in alone}) > 1
    monkeypatch.setattr(G, "REFILL_FRACTION", 0.01)  # a waiting prompt joins as soon as one row has finished
    joins = []
    real = G._Rows.join
    monkeypatch.setattr(G._Rows, "join", lambda self, other: joins.append(len(other)) or real(self, other))
    joined = generate_token_ids(trained, prompts, batch_size=4, **GREEDY)
    assert joined == alone
    assert len(joins) >= 3  # 11 prompts through 4 places: the 7 after the first 4 joined a running batch
    sampled = [generate_token_ids(trained, prompts, batch_size=4, seed=3, dtype="float32") for _ in range(2)]
    assert sampled[0] == sampled[1]
    monkeypatch.setattr(G, "shared_prefix_length", lambda seqs: 0)
    assert generate_token_ids(trained, prompts, batch_size=4, **GREEDY) == alone  # the same without the prefix


def test_joined_kv_buffers_are_right_aligned_with_zeros_in_the_padding():
    """Joining two batches' caches: each row's slots end at the same column, and the slots left of a row's own
    hold zeros: masked, but garbage there (uninitialised memory can be NaN) would poison the attention."""
    import synthtext.generate as G

    wide, narrow = G._row_buffers_layer(), G._row_buffers_layer()
    wide.update(torch.full((2, 1, 5, 3), float("nan")), torch.ones(2, 1, 5, 3))
    wide.keep(torch.tensor([0, 1]), 0)
    wide._k[:, :, :5] = 1.0
    narrow.update(torch.full((1, 1, 2, 3), 2.0), torch.full((1, 1, 2, 3), 2.0))
    narrow._k[:, :, 2:] = float("nan")  # beyond its used slots: must not be copied
    wide.join(narrow)
    assert wide.keys.shape == (3, 1, 5, 3) and wide._n == 5
    assert torch.equal(wide.keys[2, :, 3:], torch.full((1, 2, 3), 2.0))  # the narrow row's slots end at column 5
    assert torch.equal(wide.keys[2, :, :3], torch.zeros(1, 3, 3)) and torch.equal(wide.values[2, :, :3], torch.zeros(1, 3, 3))
    assert torch.equal(wide.keys[:2], torch.ones(2, 1, 5, 3))
    assert not torch.isnan(wide._k[:, :, :5]).any()
    wide.keep(torch.tensor([2]), 3)  # the slots that were padding for every row kept go
    assert torch.equal(wide.keys, torch.full((1, 1, 2, 3), 2.0)) and wide._k.shape[2] == 2 + G.CACHE_GROW_TOKENS


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_hf_kv_cache_that_grows_gives_the_same_texts(family, lora_models, monkeypatch):
    """A decoding batch's KV buffers hold a few slots beyond what they use and grow when full: the texts must
    not change however often they grow."""
    import synthtext.generate as G

    trained = lora_models[family]
    prompts = _prompts(6, seed=7)
    sized = generate_token_ids(trained, prompts, batch_size=3, **GREEDY)  # 64 free slots: never full here
    monkeypatch.setattr(G, "CACHE_GROW_TOKENS", 1)  # full at every new token
    grown = generate_token_ids(trained, prompts, batch_size=3, **GREEDY)
    assert grown == sized
    assert max(len(t) for t in grown) > 2  # the texts ran past the first slots


def test_hf_merged_lora_changes_output_vs_base(lora_models):
    """Guard against a merge that silently drops the adapter: LoRA output != base output."""
    trained = lora_models["gpt2"]
    prompts = _prompts(4)
    with_lora = generate_token_ids(trained, prompts, max_new_tokens=12, **GREEDY)
    with trained.model.disable_adapter():
        base_only = generate_token_ids(trained, prompts, max_new_tokens=12, merge_lora=False, **GREEDY)
    assert with_lora != base_only


def test_hf_seed_reproduces_and_restores_global_rng(lora_models):
    trained = lora_models["llama"]
    prompts = _prompts(6)
    state = torch.get_rng_state()
    a = generate_texts(trained, prompts, seed=11, max_new_tokens=10, batch_size=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert generate_texts(trained, prompts, seed=11, max_new_tokens=10, batch_size=4) == a
    assert generate_texts(trained, prompts, seed=12, max_new_tokens=10, batch_size=4) != a


def test_hf_budgets_and_default_length(lora_models):
    trained = lora_models["gpt2"]  # 128 positions, "trained" with max_length=48
    out = generate_token_ids(trained, ["ab", "c" * 30], seed=0)  # default: up to 48 tokens in total
    eos = trained.tokenizer.eos_token_id
    lengths = [len(o) for o in out]
    assert lengths[0] <= 48 - 3 and lengths[1] <= 48 - 31
    assert eos not in sum(out, [])
    with pytest.raises(DataError, match="positions"):
        generate_texts(trained, ["z" * 127])


def test_hf_trained_lora_stops_at_eos(tmp_path):
    """A GPT-2 LoRA trained (no DP) on short texts ends them with EOS."""
    base = load_base_model(save_tiny_model("gpt2", tmp_path / "gpt2"))
    n = 60
    prompts = [f"r{i % 3}:" for i in range(n)]
    texts = [" ok" for _ in range(n)]
    ex = encode_examples(base.tokenizer, prompts, texts, 16)
    train = TrainConfig(epochs=12, batch_size=20, max_physical_batch_size=20, learning_rate=2e-2, max_length=16,
                        progress=False, lora_r=8)
    trained = train_private(base, ex, PrivacyConfig(epsilon=None), train)
    got = generate_texts(trained, ["r1:", "r2:", "r0:"], max_new_tokens=10, **GREEDY)
    assert got == [" ok"] * 3


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_hf_static_cache_path_matches_dynamic(family, lora_models):
    """The GPU-only static-cache branch, run on CPU (transformers compiles it only on a GPU)."""
    from synthtext.generate import _clean_generation_config, _inference_model, _sample_hf

    trained = lora_models[family]
    tok = trained.tokenizer
    seqs = _encode_prompts(tok, _prompts(5, seed=4))
    model = _inference_model(trained, SamplingConfig())
    greedy = SamplingConfig(temperature=0, top_p=1.0)
    kw = dict(pad_id=tok.pad_token_id, eos_id=tok.eos_token_id)
    with _clean_generation_config(model, tok):
        static = _sample_hf(model, seqs, [10] * 5, sampling=replace(greedy, static_cache=True), **kw)
        dynamic = _sample_hf(model, seqs, [10] * 5, sampling=greedy, **kw)
    assert static == dynamic


def test_low_precision_copy_runs(random_builtin, lora_models):
    """dtype='bfloat16' decodes a cast copy (the GPU default), leaving the trained weights alone."""
    for trained in (random_builtin, lora_models["gpt2"]):
        out = generate_token_ids(trained, _prompts(3), max_new_tokens=5, seed=0, dtype="bfloat16")
        assert len(out) == 3 and all(len(o) <= 5 for o in out) and any(out)
        assert next(trained.model.parameters()).dtype == torch.float32


def test_bf16_decoding_copy_is_cast_on_the_way_and_leaves_the_trained_model(lora_models):
    """The decoding copy takes the frozen weights straight in bf16 (no full-precision copy of the whole
    model first); its numbers are those of the old copy-merge-cast, and the trained model is untouched."""
    from synthtext.generate import _frozen_weights_as, _inference_model

    trained = lora_models["llama"]
    model = trained.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    frozen = {id(p) for p in model.parameters() if not p.requires_grad}
    memo = _frozen_weights_as(model, torch.bfloat16)
    assert set(memo) == frozen and {t.dtype for t in memo.values()} == {torch.bfloat16}
    decoding = _inference_model(trained, SamplingConfig(dtype="bfloat16"))
    assert {p.dtype for p in decoding.parameters()} == {torch.bfloat16}
    for name, p in model.named_parameters():
        assert p.dtype == before[name].dtype and torch.equal(p.detach(), before[name]), name
    old = copy.deepcopy(model).merge_and_unload().to(torch.bfloat16).eval()
    ids = torch.randint(3, trained.tokenizer.vocab_size, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(decoding(input_ids=ids).logits.float(), old(input_ids=ids).logits.float(),
                                   atol=3e-2, rtol=3e-2)


def test_calls_inside_one_decoding_copy_share_one_copy_and_write_the_same_texts(lora_models, monkeypatch):
    """Whole rows decode a column per call: inside ``one_decoding_copy`` the calls share one decoding copy
    (made at the first call, one per dtype), write what separate copies write, and the copy is gone after."""
    import synthtext.generate as G

    trained, prompts = lora_models["llama"], _prompts(4, seed=2)
    made = []
    real = G._decoding_copy
    monkeypatch.setattr(G, "_decoding_copy", lambda t, s: made.append(s.dtype) or real(t, s))
    alone = [generate_token_ids(trained, prompts, max_new_tokens=8, seed=k) for k in range(3)]
    assert len(made) == 3
    made.clear()
    with G.one_decoding_copy(trained):
        with G.one_decoding_copy(trained):  # nested: the outer one holds the copy
            shared = [generate_token_ids(trained, prompts, max_new_tokens=8, seed=k) for k in range(3)]
        assert id(trained) in G._SHARED_COPIES
        generate_token_ids(trained, prompts, max_new_tokens=8, seed=0, dtype="bfloat16")
    assert shared == alone and made == ["auto", "bfloat16"]
    assert id(trained) not in G._SHARED_COPIES
    generate_token_ids(trained, prompts, max_new_tokens=8, seed=0)
    assert len(made) == 3


@pytest.mark.parametrize("which", ["builtin", "llama"])
def test_stop_at_ends_a_row_at_the_first_token_holding_the_character(which, lora_models, random_builtin):
    """``stop_at`` (the whole-row decoder's field separator) ends a row after the first token whose text holds
    the character, that token kept; the other rows decode exactly as without it (greedy)."""
    trained = random_builtin if which == "builtin" else lora_models[which]
    tok, prompts = trained.tokenizer, _prompts(6, seed=4)
    free = generate_token_ids(trained, prompts, max_new_tokens=30, **GREEDY)
    stop = tok.decode([free[0][2]])[0]
    stopped = generate_token_ids(trained, prompts, max_new_tokens=30, stop_at=stop, **GREEDY)
    for full, cut in zip(free, stopped):
        hits = [k for k, t in enumerate(full) if stop in tok.decode([t])]
        assert cut == (full[: hits[0] + 1] if hits else full)
    assert len(stopped[0]) <= 3 < len(free[0])


def _repeats_an_ngram(ids, n):
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return len(set(grams)) < len(grams)


def test_ban_repeated_ngrams_bans_the_token_that_would_repeat_a_written_ngram():
    from synthtext.generate import ban_repeated_ngrams

    written = torch.tensor([[5, 6, 7, 5, 6, 0], [5, 6, 7, 5, 6, 0], [1, 2, 1, 2, 9, 9]])
    counts = torch.tensor([5, 4, 4])  # row 1 has written only 5 6 7 5; row 2's last two are padding
    banned = ban_repeated_ngrams(torch.zeros(3, 10), written, counts, 3)
    assert torch.isinf(banned[0]).nonzero().flatten().tolist() == [7]  # "5 6" came before, then 7
    assert not torch.isinf(banned[1]).any()  # "7 5" never came before
    assert torch.isinf(banned[2]).nonzero().flatten().tolist() == [1]  # "1 2" then 1; padding is not text
    assert torch.isinf(ban_repeated_ngrams(torch.zeros(3, 10), written, counts, 2)[0]).nonzero().flatten().tolist() == [7]


@pytest.mark.parametrize("which", ["builtin", "llama"])
def test_no_repeat_ngram_keeps_every_decoder_out_of_loops(which, random_builtin, lora_models):
    """Greedy decoding of a random model loops; with ``no_repeat_ngram=3`` no text holds a token 3-gram twice
    (the built-in model's batches and the continuous-batching decoder; transformers' generate below)."""
    trained = random_builtin if which == "builtin" else lora_models["llama"]
    prompts = _prompts(6)
    loose = generate_token_ids(trained, prompts, max_new_tokens=40, batch_size=4, **GREEDY)
    guarded = generate_token_ids(trained, prompts, max_new_tokens=40, batch_size=4, **dict(GREEDY, no_repeat_ngram=3))
    assert any(_repeats_an_ngram(ids, 3) for ids in loose)
    assert not any(_repeats_an_ngram(ids, 3) for ids in guarded)
    assert all(len(ids) >= 30 for ids in guarded) or which == "llama"  # the built-in model never ends early


@pytest.mark.parametrize("which", ["builtin", "llama"])
def test_the_repetition_guard_by_default_counts_tokens_and_is_off_on_the_byte_model(which, random_builtin, lora_models):
    """``no_repeat_ngram=None`` (the default) is 3 token-grams on a tokenizer model and off on the built-in byte
    model, where a "token 3-gram" is three letters (docs/benchmarks/quality_builtin_sampling.json)."""
    trained = random_builtin if which == "builtin" else lora_models["llama"]
    prompts = _prompts(6)
    settings = dict(max_new_tokens=40, batch_size=4, temperature=0, dtype="float32")
    by_default = generate_token_ids(trained, prompts, **settings)
    expected = generate_token_ids(trained, prompts, no_repeat_ngram=0 if which == "builtin" else 3, **settings)
    other = generate_token_ids(trained, prompts, no_repeat_ngram=3 if which == "builtin" else 0, **settings)
    assert by_default == expected and by_default != other


def test_the_synthesizer_reports_the_repetition_guard_it_uses():
    from synthtext import TextSynthesizer

    assert TextSynthesizer(["t"], model="builtin")._sampling(0).no_repeat_ngram == 0
    assert TextSynthesizer(["t"])._sampling(0).no_repeat_ngram == 3
    assert TextSynthesizer(["t"], model="builtin", no_repeat_ngram=4)._sampling(0).no_repeat_ngram == 4


def test_no_repeat_ngram_in_transformers_generate(lora_models):
    from synthtext.generate import _sample_hf

    trained = lora_models["llama"]
    tok = trained.tokenizer
    seqs = _encode_prompts(tok, _prompts(4))
    out = {}
    for n in (0, 3):
        sampling = SamplingConfig(temperature=0, no_repeat_ngram=n, dtype="float32")
        out[n] = _sample_hf(trained.model, seqs, [40] * 4, pad_id=tok.pad_token_id, eos_id=tok.eos_token_id,
                            sampling=sampling, generator=torch.Generator().manual_seed(0))
    assert any(_repeats_an_ngram(ids, 3) for ids in out[0])  # greedy loops
    assert not any(_repeats_an_ngram(ids, 3) for ids in out[3])


def test_at_a_text_start_the_tokens_that_open_a_missing_text_keep_the_models_own_probability():
    """min-p / top-p cut the tail of ways to begin a text and so raise the share of the missing-text openings
    (EOS, the marker's first token); at a text's first token those are drawn with the model's probability,
    the truncation sharing out only the rest. Rows not at a start sample as before."""
    g = torch.Generator().manual_seed(0)
    # token 0 = EOS at 4%, token 1 (the marker's "<") at 2%, token 2 the top at 30%, a tail of 64 tokens at 1% each
    p = torch.tensor([0.04, 0.02, 0.30] + [0.01] * 64)
    n = 40000
    logits = torch.log(p / p.sum()).expand(n, -1).clone()
    openings = torch.tensor([0, 1])
    at_start = torch.arange(n) % 2 == 0  # half the rows at their text's start
    draws = sample_next(logits, temperature=1.0, top_p=1.0, min_p=0.2, generator=g, at_start=at_start,
                        untruncated_ids=openings)
    start, other = draws[at_start], draws[~at_start]
    share = lambda d, t: float((d == t).float().mean())  # noqa: E731
    assert abs(share(start, 0) - 0.04) < 0.006 and abs(share(start, 1) - 0.02) < 0.005
    assert (start > 2).sum() == 0  # the tail is still cut (1% < 0.2 x 30%)
    assert share(start, 2) == pytest.approx(0.94, abs=0.01)
    # not at a start: min-p keeps the top token only (everything else < 6%)
    assert (other == 2).all()
    # without the rule min-p would have cut both openings at the start too
    plain = sample_next(logits[:2000], temperature=1.0, top_p=1.0, min_p=0.2, generator=g)
    assert (plain == 2).all()
    # top_p=0.3 of what is left (the top token alone: 0.30 / 0.94) still draws the openings at their rate
    nucleus = sample_next(logits, temperature=1.0, top_p=0.3, min_p=0.0, generator=g,
                          at_start=torch.ones(n, dtype=torch.bool), untruncated_ids=openings)
    assert abs(share(nucleus, 0) - 0.04) < 0.005 and share(nucleus, 2) == pytest.approx(0.94, abs=0.01)


def test_at_a_text_start_a_truncation_that_kept_only_an_opening_falls_back_to_the_models_other_tokens():
    g = torch.Generator().manual_seed(1)
    p = torch.tensor([0.7, 0.0, 0.2, 0.1])  # EOS the top token: min-p 0.5 keeps only it
    n = 20000
    logits = torch.log(p).expand(n, -1).clone()
    draws = sample_next(logits, temperature=1.0, top_p=1.0, min_p=0.5, generator=g,
                        at_start=torch.ones(n, dtype=torch.bool), untruncated_ids=torch.tensor([0, 1]))
    freq = torch.bincount(draws, minlength=4).float() / n
    torch.testing.assert_close(freq, torch.tensor([0.7, 0.0, 0.2, 0.1]), rtol=0, atol=0.015)


def test_how_a_text_ends_follows_the_models_own_odds_where_min_p_would_cut_the_rarer_end():
    """EOS (0) at 0.60, a newline token (1) at 0.024: min-p 0.05 keeps EOS and never the newline; with both as
    ``end_ids`` a text that ends ends with the newline at the model's 0.024 / 0.624. Whether it ends is min-p's,
    and the other tokens are drawn as without ``end_ids``."""
    p = torch.tensor([0.60, 0.024, 0.256, 0.12])
    n = 40000
    logits = torch.log(p).expand(n, -1).clone()
    plain = sample_next(logits, temperature=1.0, top_p=1.0, min_p=0.05, generator=torch.Generator().manual_seed(2))
    assert not (plain == 1).any()
    draws = sample_next(logits, temperature=1.0, top_p=1.0, min_p=0.05, generator=torch.Generator().manual_seed(2),
                        end_ids=torch.tensor([0, 1]))
    freq = torch.bincount(draws, minlength=4).float() / n
    kept = p.masked_fill(p < 0.05 * p.max(), 0.0)
    kept = kept / kept.sum()  # min-p's distribution: the chance to end is kept[0] + kept[1] = kept[0]
    ends = kept[0]
    torch.testing.assert_close(freq, torch.tensor([ends * 0.6 / 0.624, ends * 0.024 / 0.624, kept[2], kept[3]]),
                               rtol=0, atol=0.008)
    assert (draws == 1).sum() > 400


@pytest.mark.parametrize("decoder", ["builtin", "stream"])
def test_the_end_choice_is_asked_for_by_the_unit_writer_and_covers_eos_and_every_stop_token(decoder, random_builtin,
                                                                                             lora_models, monkeypatch):
    """``ends_at_model_rate`` passes EOS and the tokens holding its characters to the sampler at every step (not
    the other stop tokens: a unit's row that goes on with a field is not one of its ends), and nothing otherwise."""
    import synthtext.generate as G

    trained = random_builtin if decoder == "builtin" else lora_models["llama"]
    tok = trained.tokenizer
    seen = []
    real = G.sample_next

    def spy(logits, **kw):
        seen.append(None if kw.get("end_ids") is None else sorted(kw["end_ids"].tolist()))
        return real(logits, **kw)

    monkeypatch.setattr(G, "sample_next", spy)
    settings = dict(max_new_tokens=6, batch_size=4, seed=0, dtype="float32")
    generate_token_ids(trained, _prompts(3), starts=["a:", "b:", "c:"], stop_at="|\n", **settings)
    assert seen and all(ends is None for ends in seen)
    seen.clear()
    generate_token_ids(trained, _prompts(3), starts=["a:", "b:", "c:"], stop_at="|\n", ends_at_model_rate="\n",
                       **settings)
    expected = sorted({tok.eos_token_id, *G._stop_token_ids(tok, "\n", "cpu").tolist()})
    assert seen and all(ends == expected for ends in seen)
    assert set(G._stop_token_ids(tok, "|", "cpu").tolist()) - set(expected)  # bar tokens stop, are no end choice
    with pytest.raises(ValueError, match="among the stop characters"):
        generate_token_ids(trained, _prompts(1), stop_at="|", ends_at_model_rate="\n", **settings)


@pytest.mark.parametrize("decoder", ["builtin", "stream", "generate"])
def test_each_decoder_marks_every_text_start_once_and_nothing_else(decoder, random_builtin, lora_models,
                                                                   monkeypatch):
    """The decoders tell the sampler which rows are at their text's first token: every prompt exactly once
    (the continuous-batching decoder also for the prompts that join a running batch), none when the texts
    continue given starts; the openings are EOS and the first token of the missing marker."""
    import synthtext.generate as G
    from synthtext.models import encode_texts, prompt_prefixes
    from synthtext.prompts import MISSING

    trained = random_builtin if decoder == "builtin" else lora_models["llama"]
    tok = trained.tokenizer
    marked, openings = [], set()
    real = G.sample_next

    def spy(logits, **kw):
        if kw.get("at_start") is not None:
            marked.append(int(kw["at_start"].sum()))
            openings.update(kw["untruncated_ids"].tolist())
        return real(logits, **kw)

    monkeypatch.setattr(G, "sample_next", spy)
    monkeypatch.setattr(G, "REFILL_FRACTION", 0.01)
    if decoder == "generate":  # transformers' generate, batch by batch (the static-cache path on a GPU)
        seqs = _encode_prompts(tok, _prompts(5))
        G._sample_hf(trained.model, seqs, [10] * 5, pad_id=tok.pad_token_id, eos_id=tok.eos_token_id,
                     sampling=SamplingConfig(dtype="float32"), generator=torch.Generator().manual_seed(0),
                     openings=G._missing_text_openings(tok, "cpu"))
        n_prompts = 5
    else:
        prompts = _prompts(11, seed=5)
        generate_token_ids(trained, prompts, batch_size=4, seed=0, dtype="float32")
        n_prompts = len(prompts)
        if decoder == "stream":
            assert len(marked) >= 3  # the first batch and the prompts that joined it later
    assert sum(marked) == n_prompts
    assert openings == {tok.eos_token_id, encode_texts(tok, [MISSING])[0][0]}
    marked.clear()
    generate_token_ids(trained, _prompts(3), starts=["It was", "Nice", "A"], max_new_tokens=5, seed=0,
                       dtype="float32")
    assert marked == []
    if decoder == "generate":
        return
    # whole rows: every start ends with a field's name, and the value's first token is a start
    openings.clear()
    generate_token_ids(trained, _prompts(3), starts=["Age:", "Rating: 4 | Text:", "A:"], max_new_tokens=5, seed=0,
                       dtype="float32", starts_open_values=True)
    assert sum(marked) == 3
    marker = prompt_prefixes(tok, [""], ["Age: " + MISSING])[0][len(prompt_prefixes(tok, [""], ["Age:"])[0])]
    assert openings == {marker}


def test_markup_at_a_text_start_is_told_from_the_marker_and_placeholders():
    from synthtext.generate import _opens_with_markup

    for text in ("<head>\n<meta>", "<@!@[<@](", " <p>Nice", "<3", "<missing information>", "<Mark> this",
                 "<I>Nice</I>", "<missing>(20230701)", "<missing>\n<missing>. this dress"):
        assert _opens_with_markup(text), text
    for text in ("<missing>", "<MISSING>", " <missing> |", "<missing> | Age: 3", "<missing>\n", "<PERSON> called twice",
                 "I <3 it", "", "Nice"):
        assert not _opens_with_markup(text), text


def test_a_text_being_written_is_judged_as_soon_as_its_start_decides_and_as_the_whole_text_would_be():
    """The streaming decoder's verdict on a text's first characters: undecided only while they could still become
    the marker or a placeholder; once decided, the verdict is the whole text's (every prefix of every text)."""
    from synthtext.generate import _markup_verdict, _opens_with_markup

    texts = ["<head>\n<meta>", "<@!@[<@](", " <p>Nice", "<3", "<missing information>", "<Mark> this", "<I>Nice</I>",
             "<missing>", "<MISSING>", " <missing> |", "<PERSON> called twice", "<PERSONAL> note", "<PERSON", "I <3 it",
             "", "Nice", "  \n", "<mi", "\u00e9t\u00e9 <p>", "<\u00e9t\u00e9>", "<missing>(20230701)",
             "<missing> \n<missing>. x", "<missing> | Age: 3", "<missing>  "]
    for text in texts:
        for k in range(len(text) + 1):
            verdict = _markup_verdict(text[:k], final=False)
            assert verdict is None or verdict == _opens_with_markup(text), (text, k)
        assert _markup_verdict(text, final=True) == _opens_with_markup(text), text
    # decided early: at the second character for a tag, at the first for ordinary text
    assert _markup_verdict("<h", final=False) is True and _markup_verdict("N", final=False) is False
    for undecided in ("", " ", "<", "<mis", "<MISS", "<PERS", "<I", "<missing>", "<missing> \n"):
        assert _markup_verdict(undecided, final=False) is None, undecided


def test_the_streaming_decoder_draws_a_text_again_as_soon_as_it_opens_with_markup(lora_models, monkeypatch):
    """A pretrained model's rows are judged token by token (until a verdict) and a row that opens with markup
    leaves the batch at once and starts again from its prompt, at most MARKUP_REDRAWS times; with given starts
    nothing is judged."""
    import synthtext.generate as G

    trained = lora_models["llama"]
    tok = trained.tokenizer
    prompts = _prompts(6)
    settings = dict(max_new_tokens=12, batch_size=4, seed=3, dtype="float32", min_p=0.0, temperature=2.0)
    first = generate_token_ids(trained, prompts, **settings)
    starts = collections.Counter(tok.decode(ids[:1]) for ids in first)
    banned = {text for text, n in starts.items() if n == 1}  # "markup": openings that one text of the first pass has
    assert len(banned) >= 2
    judged = []

    def at_first_token(text, final):  # decides on every text's first token
        judged.append(text)
        return text in banned

    monkeypatch.setattr(G, "_markup_verdict", at_first_token)
    again = generate_token_ids(trained, prompts, **settings)
    assert not any(tok.decode(ids[:1], skip_special_tokens=True) in banned for ids in again)
    redrawn = sum(text in banned for text in judged)
    assert redrawn >= 1 and len(judged) == 6 + redrawn  # judged once per start, never after the verdict
    assert all(text in {tok.decode([t]) for ids in again + first for t in ids[:1]} | banned for text in judged)

    judged.clear()
    monkeypatch.setattr(G, "_markup_verdict", lambda text, final: judged.append(text) or True)  # always markup
    kept = generate_token_ids(trained, prompts, **settings)
    assert len(kept) == 6 and len(judged) == 6 * (G.MARKUP_REDRAWS + 1)  # bounded; the last draw is kept
    assert sum(map(len, kept)) > len(kept)  # kept texts are written on after their verdict

    judged.clear()
    monkeypatch.setattr(G, "_markup_verdict",  # undecided until a text ends: judged as a whole text
                        lambda text, final: judged.append(final) or (None if not final else text[:1] in banned))
    generate_token_ids(trained, prompts, **settings)
    assert judged.count(True) >= 6 and judged.count(False) > 0

    judged.clear()
    generate_token_ids(trained, prompts[:2], starts=["It", "A"], **settings)
    assert judged == []  # texts continued from given starts are not at their start


def test_texts_that_open_with_markup_are_drawn_again_and_the_others_kept(random_builtin, monkeypatch):
    """Rejection sampling of markup openings by the batch decoders (here the built-in model's): the flagged texts
    are decoded again, at most MARKUP_REDRAWS times; the other texts are the ones the first pass wrote."""
    import synthtext.generate as G

    trained = random_builtin
    prompts = _prompts(6)
    settings = dict(max_new_tokens=12, batch_size=4, seed=3, dtype="float32", min_p=0.0, temperature=2.0)
    first = generate_token_ids(trained, prompts, **settings)
    flagged = {trained.tokenizer.decode(first[i], skip_special_tokens=True) for i in (1, 4)}
    calls = []

    def opens_with_markup(text):  # the first pass's texts 1 and 4 "open with markup"
        calls.append(text)
        return text in flagged

    monkeypatch.setattr(G, "_opens_with_markup", opens_with_markup)
    again = generate_token_ids(trained, prompts, **settings)
    assert [again[i] for i in (0, 2, 3, 5)] == [first[i] for i in (0, 2, 3, 5)]
    assert again[1] != first[1] and again[4] != first[4]
    assert len(calls) == 6 + 2  # every text checked, then the two drawn again
    monkeypatch.setattr(G, "_opens_with_markup", lambda text: True)  # never well-formed: bounded
    assert len(generate_token_ids(trained, prompts, **settings)) == 6
    # texts continued from given starts are not at their start: nothing is checked
    calls.clear()
    monkeypatch.setattr(G, "_opens_with_markup", opens_with_markup)
    generate_token_ids(trained, prompts[:2], starts=["It", "A"], **settings)
    assert calls == []


def test_default_batch_size_follows_the_decoding_dtype_on_a_cpu(random_builtin, lora_models):
    """A pretrained model decoded in bf16 on a CPU takes 128 rows; in float32 (a CPU without native bf16) 64,
    whose KV cache is as large; the built-in model 64; an explicit batch size as given."""
    from synthtext.generate import batch_size_for

    llama = lora_models["llama"]
    assert batch_size_for(llama, SamplingConfig(dtype="bfloat16")) == 128
    assert batch_size_for(llama, SamplingConfig(dtype="float32")) == 64
    assert batch_size_for(random_builtin, SamplingConfig(dtype="bfloat16")) == 64
    assert batch_size_for(llama, SamplingConfig(dtype="float32", batch_size=7)) == 7
