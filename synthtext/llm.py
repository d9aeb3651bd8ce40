"""A pretrained decoder run layer by layer: the frozen lower layers once, the LM head only where it counts.

Two costs dominate DP-LoRA on a CPU, and neither buys anything:

* **The frozen lower layers.** With LoRA only on the top ``k`` layers, the lower layers are a fixed
  public function of the record's tokens. :class:`DecoderStack` runs them once per record
  (:meth:`DecoderStack.lower`) and training reuses their output every epoch; autograd starts at the
  first adapted layer. Privacy is unchanged: each record's cached states depend on that record alone,
  and its gradient is still computed, clipped and noised as before.
* **The 49k-wide output head.** The loss is on the text tokens only, so :func:`text_token_losses`
  evaluates the head at those positions and nowhere else (the prompt's positions carry no loss),
  a few hundred tokens at a time (:func:`head_token_losses`), so their logits never sit in memory together.

And one cost of decoding on a CPU: :func:`grouped_query_attention` reads the shared key/value heads
in place, where transformers' eager attention copies the whole KV cache per query head at every step.

Supported: decoders shaped like Llama (``model.model.layers``, ``.norm``, ``.rotary_emb``,
``model.lm_head``): Llama/SmolLM, Mistral, Qwen2/3. Other families run whole (``decoder_stack``
returns ``None``) with the same loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DecoderStack:
    """The parts of a Llama-shaped causal LM, so it can be run from any layer to any layer."""

    inner: nn.Module
    """The decoder (``LlamaModel``): ``embed_tokens``, ``layers``, ``norm``, ``rotary_emb``."""
    lm_head: nn.Module

    @property
    def n_layers(self) -> int:
        return len(self.inner.layers)

    def run(self, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Hidden states after layers ``start..stop-1``, from the states entering layer ``start``.

        Right padding; position ids are explicit (B, L) so every record gets its own positions."""
        from transformers.masking_utils import create_causal_mask

        b, t = attention_mask.shape
        position_ids = torch.arange(t, device=hidden.device).expand(b, t)
        mask = create_causal_mask(config=self.inner.config, inputs_embeds=hidden, attention_mask=attention_mask,
                                  past_key_values=None, position_ids=position_ids)
        rope = self.inner.rotary_emb(hidden, position_ids=position_ids)
        for layer in self.inner.layers[start:stop]:
            hidden = layer(hidden, attention_mask=mask, position_embeddings=rope, position_ids=position_ids)
        return hidden

    def lower(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, split: int) -> torch.Tensor:
        """States entering layer ``split`` (embeddings and layers below it), without gradients."""
        with torch.no_grad():
            hidden = self.inner.embed_tokens(input_ids)
            return self.run(hidden, attention_mask, 0, split) if split > 0 else hidden

    def lower_after_prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, split: int,
                           shared: int) -> torch.Tensor:
        """:meth:`lower` for right-padded records that all start with the same ``shared`` tokens (the chat
        template and the request: 34 of ~140 tokens in the README job): the prefix runs once, as one row, and
        each record's own tokens run after its cached keys and values. The same states, up to rounding."""
        from transformers import DynamicCache

        if shared <= 0 or split <= 0:
            return self.lower(input_ids, attention_mask, split)
        with torch.no_grad():
            b = input_ids.shape[0]
            prefix_ids = input_ids[:1, :shared]
            prefix_cache = DynamicCache(config=self.inner.config)
            prefix = self._run_cached(self.inner.embed_tokens(prefix_ids), torch.ones_like(prefix_ids), split,
                                      prefix_cache, offset=0)
            cache = DynamicCache(config=self.inner.config)
            for i in range(split):  # every record's cache starts as the prefix's
                layer = prefix_cache.layers[i]
                cache.update(layer.keys.expand(b, -1, -1, -1), layer.values.expand(b, -1, -1, -1), i)
            own = self._run_cached(self.inner.embed_tokens(input_ids[:, shared:]), attention_mask, split, cache,
                                   offset=shared)
            return torch.cat([prefix.expand(b, -1, -1), own], dim=1)

    def _run_cached(self, hidden: torch.Tensor, attention_mask: torch.Tensor, stop: int, cache, offset: int):
        """Layers ``0..stop-1`` over tokens at positions ``offset...``, after those ``cache`` holds;
        ``attention_mask`` covers the cached positions and these."""
        from transformers.masking_utils import create_causal_mask

        b, t = hidden.shape[:2]
        position_ids = torch.arange(offset, offset + t, device=hidden.device).expand(b, t)
        mask = create_causal_mask(config=self.inner.config, inputs_embeds=hidden, attention_mask=attention_mask,
                                  past_key_values=cache, position_ids=position_ids)
        rope = self.inner.rotary_emb(hidden, position_ids=position_ids)
        for layer in self.inner.layers[:stop]:
            hidden = layer(hidden, attention_mask=mask, position_embeddings=rope, position_ids=position_ids,
                           past_key_values=cache, use_cache=True)
        return hidden

    def upper(self, hidden: torch.Tensor, attention_mask: torch.Tensor, split: int) -> torch.Tensor:
        """Final normed states from the states entering layer ``split``."""
        return self.inner.norm(self.run(hidden, attention_mask, split, self.n_layers))

    def record_losses(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, target_mask: torch.Tensor,
                      split: int = 0, hidden: torch.Tensor | None = None) -> torch.Tensor:
        """Per-record losses (:func:`text_token_losses`) of a right-padded batch, from ``hidden`` (the
        states entering layer ``split``, e.g. cached) or from the tokens."""
        if hidden is None:
            hidden = self.lower(input_ids, attention_mask, split)
        final = self.upper(hidden, attention_mask, split)
        return text_token_losses(final, self.lm_head, input_ids, target_mask)


def padded_states(states, width: int, device) -> torch.Tensor:
    """Per-record states (each (length, hidden), e.g. cached frozen-layer outputs) as one right-padded batch
    (B, width, hidden), zeros after each record's own positions."""
    hidden = torch.zeros((len(states), width, states[0].shape[-1]), dtype=states[0].dtype, device=device)
    for row, rec in enumerate(states):
        hidden[row, :len(rec)] = rec[:width].to(device)
    return hidden


def shared_prefix_length(seqs) -> int:
    """Leading tokens every sequence has, at most the shortest length - 1 (each keeps a token of its own):
    their states are the same for every sequence, so they can be computed once."""
    if len(seqs) < 2:
        return 0
    first, shortest = seqs[0], min(len(s) for s in seqs)
    n = 0
    while n < shortest - 1 and all(s[n] == first[n] for s in seqs):
        n += 1
    return n


def decoder_stack(model: nn.Module) -> DecoderStack | None:
    """The :class:`DecoderStack` of a (peft-wrapped) Llama-shaped causal LM, else ``None``."""
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner, head = getattr(hf, "model", None), getattr(hf, "lm_head", None)
    if inner is None or head is None or not all(hasattr(inner, a) for a in ("layers", "norm", "rotary_emb",
                                                                             "embed_tokens")):
        return None
    return DecoderStack(inner=inner, lm_head=head)


def text_token_losses(final_hidden: torch.Tensor, lm_head: nn.Module, input_ids: torch.Tensor,
                      target_mask: torch.Tensor) -> torch.Tensor:
    """Per-record loss, shape (B,): mean next-token loss over the record's target tokens.

    The same numbers as :func:`synthtext.models.sequence_losses` on full logits, but the head runs
    only at the positions that predict a target token. Token losses use reduction="none" and are
    averaged within each record, so no record's loss depends on another's."""
    b = input_ids.shape[0]
    predicts = target_mask[:, 1:].bool()  # position t predicts token t+1
    rows = predicts.nonzero()[:, 0]
    hidden = final_hidden[:, :-1][predicts]
    labels = input_ids[:, 1:][predicts]
    if isinstance(lm_head, nn.Linear) and lm_head.bias is None and not lm_head.weight.requires_grad:
        tok = head_token_losses(hidden, lm_head.weight, labels)
    else:
        tok = F.cross_entropy(lm_head(hidden).float(), labels, reduction="none")
    total = torch.zeros(b, dtype=tok.dtype, device=tok.device).index_add(0, rows, tok)
    return total / predicts.sum(1).clamp(min=1).to(tok.dtype)


HEAD_CHUNK_TOKENS = 256
"""Tokens per piece in :func:`head_token_losses`: 256 x 49k fp32 logits is 50 MB, where a physical batch of
16 records held ~1.3 GB of logits and their gradients at once."""


def head_token_losses(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``cross_entropy(hidden @ weight.T, labels, reduction="none")`` for a frozen output layer, a few hundred
    tokens at a time: each piece's logits are dropped once its losses and its gradient with respect to
    ``hidden`` are known (that gradient is all backward needs: ``weight`` does not train)."""
    return _HeadCrossEntropy.apply(hidden, weight, labels)


class _HeadCrossEntropy(torch.autograd.Function):
    """d loss_t / d hidden_t = (softmax(logits_t) - onehot(label_t)) @ weight, computed in forward."""

    @staticmethod
    def forward(ctx, hidden, weight, labels):
        dtype = torch.get_autocast_dtype(hidden.device.type) if torch.is_autocast_enabled(hidden.device.type) \
            else hidden.dtype  # the dtype autocast would give the head's matrix product
        w = weight.to(dtype)
        need_grad = ctx.needs_input_grad[0]
        losses = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        grad = torch.empty(hidden.shape, dtype=torch.float32, device=hidden.device) if need_grad else None
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            for start in range(0, hidden.shape[0], HEAD_CHUNK_TOKENS):
                piece = slice(start, start + HEAD_CHUNK_TOKENS)
                logits = (hidden[piece].to(dtype) @ w.T).float()
                lse = torch.logsumexp(logits, dim=-1)
                label = labels[piece, None]
                losses[piece] = lse - logits.gather(1, label).squeeze(1)
                if need_grad:
                    probs = logits.sub_(lse[:, None]).exp_()
                    probs.scatter_add_(1, label, torch.full_like(label, -1.0, dtype=probs.dtype))
                    grad[piece] = (probs.to(dtype) @ w).float()
        ctx.save_for_backward(grad)
        ctx.hidden_dtype = hidden.dtype
        return losses

    @staticmethod
    def backward(ctx, grad_losses):
        (grad,) = ctx.saved_tensors
        return (grad * grad_losses[:, None]).to(ctx.hidden_dtype), None, None


GROUPED_ATTENTION = "synthtext_grouped"
"""The attention implementation CPU decoding uses (:func:`grouped_query_attention`), registered with
``transformers``' AttentionInterface by :func:`use_grouped_attention`."""


def grouped_query_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            attention_mask: torch.Tensor | None, scaling: float, dropout: float = 0.0,
                            **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """``transformers``' eager attention, the same numbers, without copying the KV cache.

    With grouped-query attention (SmolLM2: 9 query heads share 3 key/value heads) the eager code first
    repeats every key and value head for its query heads (``repeat_kv``): at every decoding step a copy
    of the whole cache, which took more time than the model's linear layers on a 2-core CPU. Here the
    query heads of one group are stacked instead, so each key/value head is read once, in place.

    A prefill (more than one query) goes to torch's fused attention instead: the explicit weights would be
    (batch, heads, L, L) floats, ~0.7 GB per layer for a refilled batch of 128 rows at 400 tokens, the peak
    of a whole run; the fused kernel works in blocks and returns no weights."""
    batch, heads, q_len, dim = query.shape
    if q_len > 1 and dropout == 0.0:
        mask = None if attention_mask is None else attention_mask[:, :, :, : key.shape[-2]]
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling, enable_gqa=True)
        return out.transpose(1, 2).contiguous(), None
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    q = query.reshape(batch, kv_heads, groups * q_len, dim)  # query head h = kv head h // groups
    # keys @ queries, not queries @ keys^T: the cached keys are a view of buffers with free slots at the end,
    # which torch multiplied from the right 2.3x slower (2.85 vs 1.24 ms per layer at 128 rows x 250 slots, the
    # same numbers); from the left they are an ordinary strided matrix
    weights = torch.matmul(key, q.transpose(2, 3)).transpose(2, 3).contiguous() * scaling  # (b, kv, g*q, keys)
    if attention_mask is not None:
        keys = weights.shape[-1]
        mask = attention_mask[:, :, None, :, :keys]  # (batch, 1, 1, q_len, keys): the same for each group
        weights = (weights.view(batch, kv_heads, groups, q_len, keys) + mask).view(batch, kv_heads, -1, keys)
    # in the query's dtype: torch's CPU softmax accumulates bf16 in float anyway, and the float32 result cast
    # back to bf16 (eager attention's way) took ~45% of a decoding step's attention (0.99 of 2.14 ms per layer
    # at 128 rows x 250 slots); the weights differ by at most one bf16 rounding step, fp32 is unchanged
    weights = F.softmax(weights, dim=-1)
    weights = F.dropout(weights, p=dropout, training=module.training)
    out = torch.matmul(weights, value).view(batch, heads, q_len, -1)
    return out.transpose(1, 2).contiguous(), weights.view(batch, heads, q_len, -1)


def use_grouped_attention(model: nn.Module) -> bool:
    """Switch a ``transformers`` model to :func:`grouped_query_attention`; False when it cannot be set."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    if not hasattr(model, "set_attn_implementation"):
        return False
    AttentionInterface.register(GROUPED_ATTENTION, grouped_query_attention)
    AttentionMaskInterface.register(GROUPED_ATTENTION, eager_mask)
    model.set_attn_implementation(GROUPED_ATTENTION)
    return model.config._attn_implementation == GROUPED_ATTENTION
