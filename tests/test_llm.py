"""The pretrained fast path: LoRA on the top layers only, the frozen lower layers run once per record,
the LM head only at text positions. Each shortcut must give the numbers the plain computation gives."""

from __future__ import annotations

import pytest
import torch

import synthtext.train as T
from synthtext.config import PrivacyConfig, SamplingConfig, TrainConfig
from synthtext.errors import ConfigError
from synthtext.llm import decoder_stack, text_token_losses
from synthtext.models import add_lora, encode_examples, load_base_model, sequence_losses
from tiny_models import save_tiny_model


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return save_tiny_model("llama", tmp_path_factory.mktemp("llm") / "llama")


def _examples(tok, n=40):
    prompts = [f"rating {i % 5} dept {'tops' if i % 3 else 'dresses'} :" for i in range(n)]
    texts = [f" nice fit, size {i % 7}" + ("!" * (i % 4)) for i in range(n)]
    return encode_examples(tok, prompts, texts, 48)


def _batch(base, ex, rows):
    items = [T._Records(ex)[i] for i in rows]
    return T._PadCollate(base.tokenizer.pad_token_id)(items)


def _lora(base, layers):
    torch.manual_seed(0)
    model = add_lora(base, TrainConfig(lora_r=4, lora_layers=layers))
    with torch.no_grad():  # non-zero B, so the adapted layers change the output
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    return model.eval()


def test_head_at_text_positions_equals_full_logits(llama_dir):
    base = load_base_model(llama_dir)
    ex = _examples(base.tokenizer)
    ids, attn, target, _ = _batch(base, ex, range(8))
    model = base.model.eval()
    with torch.no_grad():
        full = sequence_losses(model(input_ids=ids, attention_mask=attn).logits, ids, target)
        stack = decoder_stack(model)
        final = stack.upper(stack.lower(ids, attn, 0), attn, 0)
        fast = text_token_losses(final, stack.lm_head, ids, target)
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)


def test_lora_only_on_the_top_layers(llama_dir):
    base = load_base_model(llama_dir)
    model = _lora(base, 1)  # the tiny model has 2 layers
    assert T.adapted_layers(model) == [1]
    assert all(".layers.1." in n for n, p in model.named_parameters() if p.requires_grad)
    assert T.adapted_layers(_lora(load_base_model(llama_dir), "all")) == [0, 1]
    with pytest.raises(ConfigError, match="lora_layers"):
        TrainConfig(lora_layers=0)


def test_cached_frozen_layers_give_the_same_losses_and_gradients(llama_dir):
    base = load_base_model(llama_dir)
    ex = _examples(base.tokenizer)
    model = _lora(base, 1)
    cfg = TrainConfig(lora_layers=1, max_physical_batch_size=8, progress=False)
    cached = T._frozen_prefix_objective(model, ex, base, cfg, torch.device("cpu"), bf16=False)
    assert cached.split == 1 and cached.cached is not None and len(cached.cached) == len(ex)
    whole = T._Objective(model)  # every layer, every position through the head
    batch = _batch(base, ex, [3, 17, 5, 30])
    grads = []
    for objective in (cached, whole):
        model.zero_grad()
        loss = objective(*batch)
        loss.sum().backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=1e-5)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_a_record_loss_does_not_depend_on_its_batch(llama_dir):
    base = load_base_model(llama_dir)
    ex = _examples(base.tokenizer)
    model = _lora(base, 1)
    objective = T._frozen_prefix_objective(model, ex, base, TrainConfig(lora_layers=1), torch.device("cpu"), False)
    with torch.no_grad():
        together = objective(*_batch(base, ex, [2, 9, 33]))
        alone = torch.cat([objective(*_batch(base, ex, [i])) for i in (2, 9, 33)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_dp_training_on_the_top_layers_learns_and_keeps_the_ledger(llama_dir):
    quick = dict(epochs=1, batch_size=20, max_physical_batch_size=8, max_length=48, progress=False)
    privacy = PrivacyConfig(epsilon=8.0, accountant="rdp")
    ledgers = []
    for layers in (1, "all"):
        base = load_base_model(llama_dir)
        ex = _examples(base.tokenizer, n=120)
        trained = T.train_private(base, ex, privacy, TrainConfig(lora_layers=layers, **quick))
        trainable = [n for n, p in trained.model.named_parameters() if "lora_B" in n]
        assert all((".layers.1." in n) for n in trainable) or layers == "all"
        assert any(p.abs().sum() > 0 for n, p in trained.model.named_parameters() if "lora_B" in n)  # it moved
        ledgers.append(trained.ledger)
    # how many layers train changes nothing about the privacy accounting
    assert ledgers[0].epsilon == ledgers[1].epsilon and ledgers[0].noise_multiplier == ledgers[1].noise_multiplier
    assert ledgers[0].steps == ledgers[1].steps and ledgers[0].sample_rate == ledgers[1].sample_rate
    assert ledgers[0].max_grad_norm == 0.01  # LoRA's default clipping norm, as used and recorded


def test_lora_clipping_norm_is_what_opacus_clips_to(llama_dir, monkeypatch):
    seen = []
    real = T.make_private_objects
    monkeypatch.setattr(T, "make_private_objects", lambda *a, **k: seen.append(a[4]) or real(*a, **k))
    base = load_base_model(llama_dir)
    quick = TrainConfig(epochs=1, batch_size=20, max_physical_batch_size=8, max_length=48, progress=False)
    trained = T.train_private(base, _examples(base.tokenizer, n=120), PrivacyConfig(epsilon=8.0, accountant="rdp"),
                              quick)
    assert seen == [0.01] == [trained.ledger.max_grad_norm]


CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_chat_template_wraps_the_prompt_for_training_and_generation(llama_dir):
    from synthtext.generate import _encode_prompts
    from synthtext.models import prompt_prefixes, uses_chat_template
    from synthtext.prompts import PromptFormat

    base = load_base_model(llama_dir)
    tok = base.tokenizer
    assert not uses_chat_template(tok)
    tok.chat_template = CHAT  # an instruction-tuned model's tokenizer
    assert uses_chat_template(tok)
    fmt = PromptFormat(conditioning_columns=["Rating", "Department Name"], text_columns=["Review Text"],
                       style="instruction")
    prompt, target = fmt.example({"Rating": 4, "Department Name": "Tops", "Review Text": "Nice."}, "Review Text")
    assert prompt == "Write a review text.\nRating: 4\nDepartment Name: Tops"
    ex = encode_examples(tok, [prompt], [target], 128)
    ids, plen = ex.input_ids[0], ex.prompt_lengths[0]
    assert tok.decode(ids[:plen]) == f"<|user|>{prompt}</s><|assistant|>"
    assert tok.decode(ids[plen:-1]) == "Nice." and ids[-1] == tok.eos_token_id  # the answer, then EOS
    assert prompt_prefixes(tok, [prompt]) == _encode_prompts(tok, [prompt]) == [ids[:plen]]
    assert PromptFormat.from_dict(fmt.to_dict()) == fmt


def test_grouped_attention_gives_eager_attentions_numbers():
    """CPU decoding reads the shared key/value heads in place instead of repeat_kv's copy: the logits of a
    left-padded prefill and of every cached decoding step must equal transformers' eager attention."""
    from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

    from synthtext.llm import GROUPED_ATTENTION, use_grouped_attention

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=6, num_key_value_heads=2)  # 3 query heads per key/value head
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 97, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, :4], mask[1, :1] = 0, 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)

    def run(implementation):
        model.set_attn_implementation(implementation) if implementation == "eager" else use_grouped_attention(model)
        assert model.config._attn_implementation == implementation
        cache, step_mask, out = DynamicCache(config=config), mask, []
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache).logits
            out.append(logits)
            nxt, pos = logits[:, -1].argmax(-1), mask.sum(-1)
            for _ in range(4):
                step_mask = torch.cat([step_mask, torch.ones_like(nxt)[:, None]], dim=1)
                logits = model(input_ids=nxt[:, None], attention_mask=step_mask, position_ids=pos[:, None],
                               past_key_values=cache).logits
                out.append(logits)
                nxt, pos = logits[:, -1].argmax(-1), pos + 1
        return out

    eager, grouped = run("eager"), run(GROUPED_ATTENTION)
    real = mask.bool()  # the prefill's padding positions are never read
    torch.testing.assert_close(grouped[0][real], eager[0][real])
    for a, b in zip(eager[1:], grouped[1:]):
        torch.testing.assert_close(b, a)


def test_cpu_decoding_model_uses_grouped_attention(llama_dir):
    from synthtext.config import PrivacyLedger
    from synthtext.generate import _inference_model
    from synthtext.llm import GROUPED_ATTENTION
    from synthtext.models import TrainedModel

    base = load_base_model(str(llama_dir))
    ledger = PrivacyLedger(dp=False, epsilon=None, delta=None, noise_multiplier=None, sample_rate=None, steps=0,
                           epochs=0, accountant=None, max_grad_norm=None, n_records=0, model=base.name)
    trained = TrainedModel(model=base.model, tokenizer=base.tokenizer, base_name=base.name, kind=base.kind,
                           family=base.family, ledger=ledger, train_config=TrainConfig(),
                           privacy_config=PrivacyConfig(epsilon=None))
    decoding = _inference_model(trained, SamplingConfig(merge_lora=True, dtype="float32"))
    assert decoding.config._attn_implementation == GROUPED_ATTENTION
    assert base.model.config._attn_implementation != GROUPED_ATTENTION  # the trained model is left as it was


def test_head_losses_in_pieces_equal_cross_entropy_and_its_gradient(monkeypatch):
    """The frozen output layer's losses are computed a few tokens at a time with their gradient (so a batch
    never holds all its 49k-wide logits): losses and d loss / d hidden must be cross_entropy's."""
    import torch.nn.functional as F

    import synthtext.llm as L

    monkeypatch.setattr(L, "HEAD_CHUNK_TOKENS", 7)  # 3 pieces, the last one short
    torch.manual_seed(0)
    weight, labels, upstream = torch.randn(50, 16), torch.randint(0, 50, (20,)), torch.randn(20)
    hidden = torch.randn(20, 16, requires_grad=True)
    plain = F.cross_entropy(hidden @ weight.T, labels, reduction="none")
    (expected_grad,) = torch.autograd.grad((plain * upstream).sum(), hidden)
    pieces = L.head_token_losses(hidden, weight, labels)
    (grad,) = torch.autograd.grad((pieces * upstream).sum(), hidden)
    torch.testing.assert_close(pieces, plain)
    torch.testing.assert_close(grad, expected_grad)
    with torch.no_grad():  # evaluation (membership losses): no gradient kept
        torch.testing.assert_close(L.head_token_losses(hidden, weight, labels), plain)


def test_the_shared_prefix_runs_once_and_gives_the_same_states_and_losses(llama_dir, monkeypatch):
    """Records that start alike (chat template, request): the lower layers run the shared tokens once, as one
    row, and each record's own tokens after them; the states, the frozen-layer cache and the membership losses
    must be what running every record whole gives."""
    import synthtext.llm as L
    from synthtext.models.artifact import TrainedModel

    base = load_base_model(llama_dir)
    ex = _examples(base.tokenizer, n=12)
    shared = L.shared_prefix_length(ex.input_ids)
    assert shared >= 2  # BOS and "rating"
    ids, attn, target, _ = _batch(base, ex, range(12))
    model = _lora(base, 1)
    stack = decoder_stack(model)
    whole, after = stack.lower(ids, attn, 1), stack.lower_after_prefix(ids, attn, 1, shared)
    lengths = attn.sum(1).tolist()
    for row, n in enumerate(lengths):
        torch.testing.assert_close(after[row, :n], whole[row, :n], atol=1e-5, rtol=1e-5)
    trained = TrainedModel(model=model, tokenizer=base.tokenizer, base_name=base.name, kind=base.kind,
                           family=base.family, ledger=None, train_config=TrainConfig(), privacy_config=PrivacyConfig())
    calls = []
    real = L.DecoderStack.lower_after_prefix
    monkeypatch.setattr(L.DecoderStack, "lower_after_prefix", lambda self, *a: calls.append(a[-1]) or real(self, *a))
    shared_losses = trained.record_losses(ex)
    assert calls and max(calls) >= 2  # the membership losses took the shared path
    monkeypatch.setattr(L, "shared_prefix_length", lambda seqs: 0)
    plain = trained.record_losses(ex)
    assert min(calls) == 0  # ... and this time not
    assert shared_losses == pytest.approx(plain, abs=1e-5)


def test_training_keeps_the_frozen_states_asked_for_and_their_losses_skip_the_frozen_layers(llama_dir, monkeypatch):
    """The membership attack scores a sample of the training records: training hands back those records'
    frozen-layer states (computed once for training anyway), and their losses then run only the adapted
    layers and the head. The losses must be what running every layer gives; other records still run them."""
    import synthtext.llm as L

    base = load_base_model(llama_dir)
    ex = _examples(base.tokenizer, n=120)
    members = ex.__class__(input_ids=ex.input_ids[:10], prompt_lengths=ex.prompt_lengths[:10])
    quick = dict(epochs=1, batch_size=20, max_physical_batch_size=8, max_length=48, progress=False, lora_layers=1)
    trained = T.train_private(base, ex, PrivacyConfig(epsilon=8.0, accountant="rdp"), TrainConfig(**quick),
                              keep_states_for=members)
    kept = trained.frozen_states
    assert kept.split == 1 and set(kept.by_tokens) == {tuple(ids) for ids in members.input_ids}
    outsiders = ex.__class__(input_ids=ex.input_ids[100:], prompt_lengths=ex.prompt_lengths[100:])
    lowered = []
    real = L.DecoderStack.lower_after_prefix
    monkeypatch.setattr(L.DecoderStack, "lower_after_prefix", lambda self, ids, *a: lowered.append(len(ids)) or
                        real(self, ids, *a))
    fast = trained.record_losses(members)
    assert lowered == []  # no record of the sample ran the frozen layers
    trained.record_losses(outsiders)
    assert sum(lowered) == len(outsiders)  # records without kept states do
    trained.frozen_states = None
    lowered.clear()
    slow = trained.record_losses(members)
    assert sum(lowered) == len(members)
    assert fast == pytest.approx(slow, abs=1e-5)
    # nothing is kept unless asked for
    assert T.train_private(load_base_model(llama_dir), ex, PrivacyConfig(epsilon=8.0, accountant="rdp"),
                           TrainConfig(**quick)).frozen_states is None


def test_fit_keeps_the_frozen_states_of_exactly_the_rows_the_membership_attack_scores(llama_dir):
    """fit draws the membership attack's training sample before training (with the seed, as the report does),
    so the report's losses of those rows skip the frozen layers; the attack's input is what it was."""
    from synthtext.synthesizer import TextSynthesizer, _membership_rows
    from test_synthesize import table

    synth = TextSynthesizer(["comment"], model=str(llama_dir), epsilon=8.0, max_new_tokens=8,
                            train=TrainConfig(epochs=1, batch_size=32, lora_layers=1, progress=False)).fit(table(240))
    trained, data = synth.models_["comment"], synth._fit_data
    sample = _membership_rows(data.redacted_train, data.redacted_holdout, ["comment"], synth.seed)["comment"]
    members = synth.training_records(synth.prompt_format_, trained.tokenizer, trained.max_length, sample["train"],
                                     "comment")
    assert 0 < len(members) < (data.redacted_train["comment"].notna()).sum()  # a sample (200 of the training rows)
    assert set(trained.frozen_states.by_tokens) == {tuple(ids) for ids in members.input_ids}
    fast = synth._membership()["comment"]
    trained.frozen_states = None
    slow = synth._membership()["comment"]
    for side in ("train_losses", "holdout_losses"):
        assert fast[side] == pytest.approx(slow[side], abs=1e-4)  # bf16 on CPUs with it
