"""Base models: built-in byte model, loading tiny random HF models from a directory, LoRA,
encoding, save/load. No downloads: every pretrained model is built from a config."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from synthtext.config import PrivacyConfig, PrivacyLedger, TrainConfig
from synthtext.errors import ConfigError, DataError, ModelError
from synthtext.models import (
    ByteLMConfig,
    ByteTokenizer,
    ByteTransformerLM,
    TrainedModel,
    add_lora,
    base_fingerprint,
    encode_examples,
    load_base_model,
    lora_target_modules,
)
from tiny_models import FAMILIES, save_tiny_model


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    return {f: save_tiny_model(f, root / f) for f in FAMILIES}


def _ledger(name: str) -> PrivacyLedger:
    return PrivacyLedger(dp=True, epsilon=1.0, delta=1e-5, noise_multiplier=1.0, sample_rate=0.1, steps=10,
                         epochs=1.0, accountant="prv", max_grad_norm=1.0, n_records=100, model=name)


# ------------------------------------------------------------------ byte tokenizer / built-in


def test_byte_tokenizer_round_trip_and_specials():
    tok = ByteTokenizer()
    text = "Größe M, 5★ — fits"
    ids = tok.encode(text)
    assert all(0 <= i < 256 for i in ids)
    assert tok.decode(ids) == text
    assert tok.decode([tok.bos_token_id, *ids, tok.eos_token_id, tok.pad_token_id]) == text
    assert len({tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.sep_token_id}) == 4
    assert tok.vocab_size == 260


def test_builtin_model_uses_only_opacus_supported_trainable_modules():
    model = load_base_model("builtin", size="small").model
    for module in model.modules():
        if any(True for _ in module.parameters(recurse=False)):
            assert type(module) in (nn.Linear, nn.Embedding, nn.LayerNorm), type(module)
    n = sum(p.numel() for p in model.parameters())
    assert 1_000_000 < n < 3_000_000
    assert model.lm_head.weight.data_ptr() != model.tok_emb.weight.data_ptr()  # untied


def test_builtin_size_presets_and_validation():
    assert load_base_model("builtin", size="tiny").name == "synthtext/byte-transformer-tiny"
    assert load_base_model("builtin", size="auto", device="cpu").builtin_config.size == "small"
    assert load_base_model("builtin", size="auto", device="cuda").builtin_config.size == "base"
    with pytest.raises(ConfigError, match="size"):
        load_base_model("builtin", size="huge")
    with pytest.raises(ConfigError, match="n_head"):
        ByteLMConfig(d_model=30, n_head=4)


def test_builtin_forward_is_padding_invariant():
    torch.manual_seed(0)
    model = ByteTransformerLM(ByteLMConfig.preset("tiny"), seed=1).eval()
    x = torch.randint(0, 256, (1, 7))
    ref = model(x)
    pad = torch.full((1, 3), ByteTokenizer.pad_token_id)
    right = model(torch.cat([x, pad], 1), attention_mask=torch.tensor([[1] * 7 + [0] * 3]))
    left = model(torch.cat([pad, x], 1), attention_mask=torch.tensor([[0] * 3 + [1] * 7]))
    torch.testing.assert_close(right[:, :7], ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(left[:, 3:], ref, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(left).all()


def test_builtin_init_is_seeded():
    a = ByteTransformerLM(ByteLMConfig.preset("tiny"), seed=3)
    b = ByteTransformerLM(ByteLMConfig.preset("tiny"), seed=3)
    c = ByteTransformerLM(ByteLMConfig.preset("tiny"), seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.tok_emb.weight, c.tok_emb.weight)


# ------------------------------------------------------------------ encoding


def test_encode_examples_prompt_mask_bos_eos():
    tok = ByteTokenizer()
    ex = encode_examples(tok, ["ab", ""], ["xyz", "q"], max_length=32)
    assert ex.input_ids[0] == [tok.bos_token_id, 97, 98, 120, 121, 122, tok.eos_token_id]
    assert ex.prompt_lengths == [3, 1]
    assert ex.target_mask(0) == [0, 0, 0, 1, 1, 1, 1]
    assert ex.input_ids[1] == [tok.bos_token_id, 113, tok.eos_token_id]
    assert ex.n_truncated == 0


def test_encode_examples_truncates_text_without_eos():
    tok = ByteTokenizer()
    ex = encode_examples(tok, ["ab"], ["0123456789"], max_length=8)
    assert len(ex.input_ids[0]) == 8
    assert ex.input_ids[0][-1] != tok.eos_token_id
    assert ex.n_truncated == 1


def test_encode_examples_refuses_prompt_without_room_and_bad_input():
    tok = ByteTokenizer()
    with pytest.raises(DataError, match="max_length"):
        encode_examples(tok, ["a" * 10], ["x"], max_length=8)
    with pytest.raises(DataError, match="prompts"):
        encode_examples(tok, ["a"], ["x", "y"], max_length=8)
    with pytest.raises(DataError, match="text 0"):
        encode_examples(tok, ["a"], [None], max_length=8)
    with pytest.raises(ConfigError, match="max_length"):
        encode_examples(tok, ["a"], ["x"], max_length=1)


@pytest.mark.parametrize("family", FAMILIES)
def test_encode_with_pretrained_tokenizer_uses_bos_or_eos(model_dirs, family):
    base = load_base_model(model_dirs[family])
    tok = base.tokenizer
    ex = encode_examples(tok, ["rating 5 :"], [" lovely"], max_length=64)
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    assert ex.input_ids[0][0] == bos and ex.input_ids[0][-1] == tok.eos_token_id
    assert tok.decode(ex.input_ids[0][ex.prompt_lengths[0]:-1]) == " lovely"


# ------------------------------------------------------------------ pretrained models + LoRA


@pytest.mark.parametrize("family", FAMILIES)
def test_load_tiny_pretrained_from_directory(model_dirs, family):
    base = load_base_model(model_dirs[family])
    assert base.kind == "pretrained"
    assert base.family == ("llama" if family == "qwen2" else family)
    assert base.name == str(model_dirs[family].resolve())
    assert base.tokenizer.pad_token_id is not None
    assert base.max_positions == 128
    assert all(p.dtype == torch.float32 for p in base.model.parameters())


EXPECTED_LORA_MODULES = {"gpt2": 2 * 4, "llama": 2 * 7, "gpt_neox": 2 * 4, "qwen2": 2 * 7}


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_all_linear_only_lora_trainable(model_dirs, family):
    base = load_base_model(model_dirs[family])
    frozen = {k: v.clone() for k, v in base.model.state_dict().items()}
    model = add_lora(base, TrainConfig())
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)
    assert len(trainable) == 2 * EXPECTED_LORA_MODULES[family]
    # the base weights are untouched by adding LoRA
    for name, value in model.get_base_model().state_dict().items():
        key = name.replace(".base_layer", "")
        if "lora_" not in name:
            assert torch.equal(value, frozen[key]), name


def test_lora_target_presets_and_lists():
    assert lora_target_modules("gpt2", "attention") == ["c_attn"]
    assert lora_target_modules("llama", "all-linear")[-1] == "down_proj"
    assert lora_target_modules("mystery", "all-linear") == "all-linear"
    assert lora_target_modules("mystery", ["q"]) == ["q"]
    with pytest.raises(ConfigError, match="target_modules"):
        lora_target_modules("mystery", "attention")


def test_lora_unmatched_target_is_config_error(model_dirs):
    base = load_base_model(model_dirs["llama"])
    with pytest.raises(ConfigError, match="target_modules"):
        add_lora(base, TrainConfig(target_modules=["no_such_layer"]))


# ------------------------------------------------------------------ load failures


def test_missing_directory_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="no such directory") as e:
        load_base_model(str(tmp_path / "nope"))
    assert "model='builtin'" in str(e.value)


def test_directory_without_model_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="config.json") as e:
        load_base_model(tmp_path)
    assert "model='builtin'" in str(e.value)


def test_unknown_hub_id_offline_is_model_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError) as e:
        load_base_model("synthtext-tests/no-such-model-xyz")
    msg = str(e.value)
    assert "synthtext-tests/no-such-model-xyz" in msg
    assert "hf download" in msg and "model='builtin'" in msg and "HF_HUB_OFFLINE" in msg


# ------------------------------------------------------------------ save / load


def _probe(tok) -> torch.Tensor:
    ex = encode_examples(tok, ["rating 4 :", "x"], [" soft fabric", "ok then"], max_length=32)
    width = max(map(len, ex.input_ids))
    ids = torch.tensor([ids + [tok.pad_token_id] * (width - len(ids)) for ids in ex.input_ids])
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in ex.input_ids])
    return ids, mask


def test_save_load_builtin_identical_logits(tmp_path):
    base = load_base_model("builtin", size="tiny", seed=5)
    trained = TrainedModel(model=base.model.eval(), tokenizer=base.tokenizer, base_name=base.name, kind="builtin",
                           family=base.family, ledger=_ledger(base.name), train_config=TrainConfig(),
                           privacy_config=PrivacyConfig(), builtin_config=base.builtin_config)
    out = trained.save(tmp_path / "m")
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "privacy_ledger.json", "synthtext_model.json"]
    loaded = TrainedModel.load(out)
    ids, mask = _probe(base.tokenizer)
    assert torch.equal(trained.logits(ids, mask), loaded.logits(ids, mask))
    assert loaded.ledger == trained.ledger
    assert loaded.builtin_config == base.builtin_config
    with pytest.raises(ModelError, match="not empty"):
        trained.save(out)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_save_load_lora_identical_logits(tmp_path, model_dirs, family):
    base = load_base_model(model_dirs[family])
    fp = base_fingerprint(base.model)
    model = add_lora(base, TrainConfig(lora_r=4))
    with torch.no_grad():  # make the adapter non-trivial (lora_B starts at zero)
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    trained = TrainedModel(model=model.eval(), tokenizer=base.tokenizer, base_name=base.name, kind="pretrained",
                           family=base.family, ledger=_ledger(base.name), train_config=TrainConfig(lora_r=4),
                           privacy_config=PrivacyConfig(), base_fingerprint=fp)
    out = trained.save(tmp_path / "adapter_run")
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert "adapter/adapter_model.safetensors" in files and "adapter/adapter_config.json" in files
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    meta = json.loads((out / "synthtext_model.json").read_text())
    assert meta["base_model"] == base.name and meta["kind"] == "pretrained"
    loaded = TrainedModel.load(out)
    ids, mask = _probe(base.tokenizer)
    assert torch.equal(trained.logits(ids, mask), loaded.logits(ids, mask))
    assert hasattr(loaded.model, "generate")


def test_load_refuses_other_base_and_pickles(tmp_path, model_dirs):
    base = load_base_model(model_dirs["gpt2"])
    fp = base_fingerprint(base.model)
    model = add_lora(base, TrainConfig())
    trained = TrainedModel(model=model, tokenizer=base.tokenizer, base_name=base.name, kind="pretrained",
                           family="gpt2", ledger=_ledger(base.name), train_config=TrainConfig(),
                           privacy_config=PrivacyConfig(), base_fingerprint=fp)
    out = trained.save(tmp_path / "run")
    other = save_tiny_model("gpt2", tmp_path / "other_gpt2", seed=99)
    with pytest.raises(ModelError, match="differs"):
        TrainedModel.load(out, base_model=other)
    (out / "adapter" / "adapter_model.bin").write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match="pickled"):
        TrainedModel.load(out)
    with pytest.raises(ModelError, match="not a saved synthtext model"):
        TrainedModel.load(tmp_path)



def test_record_losses_match_the_training_loss_one_record_at_a_time():
    """record_losses (used by MIA and the canary audit) is the training loss of each record alone,
    whatever else is in its batch."""
    import torch

    from synthtext.config import PrivacyConfig, TrainConfig
    from synthtext.models import EncodedExamples, TrainedModel, load_base_model, sequence_losses

    base = load_base_model("builtin", size="tiny", seed=0)
    examples = EncodedExamples(input_ids=[[1, 5, 6, 7, 2], [1, 9, 10, 2], [1, 3, 4, 5, 6, 7, 8, 2]],
                               prompt_lengths=[2, 1, 4])
    trained = TrainedModel(model=base.model, tokenizer=base.tokenizer, base_name="builtin", kind="builtin",
                           family=None, ledger=None, train_config=TrainConfig(), privacy_config=PrivacyConfig())
    batched = trained.record_losses(examples, batch_size=3)
    assert batched.shape == (3,)
    for i, seq in enumerate(examples.input_ids):
        ids = torch.tensor([seq])
        target = torch.zeros_like(ids)
        target[0, examples.prompt_lengths[i]:] = 1
        alone = sequence_losses(trained.logits(ids), ids, target).item()
        assert abs(batched[i] - alone) < 1e-4
    assert (trained.record_losses(examples, batch_size=1) - batched).__abs__().max() < 1e-4
    assert (trained.record_losses(examples, batch_size=2) - batched).__abs__().max() < 1e-4  # sorted by length
