"""A pretrained decoder run layer by layer: the frozen lower layers once, the LM head only where it counts.

Two costs dominate DP-LoRA on a CPU, and neither buys anything:

* **The frozen lower layers.** With LoRA only on the top ``k`` layers, the lower layers are a fixed
  public function of the record's tokens. :class:`DecoderStack` runs them once per record
  (:meth:`DecoderStack.lower`) and training reuses their output every epoch; autograd starts at the
  first adapted layer. Privacy is unchanged: each record's cached states depend on that record alone,
  and its gradient is still computed, clipped and noised as before.
* **The 49k-wide output head.** The loss is on the text tokens only, so :func:`text_token_losses`
  evaluates the head at those positions and nowhere else (the prompt's positions carry no loss).

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
    tok = F.cross_entropy(lm_head(hidden).float(), labels, reduction="none")
    total = torch.zeros(b, dtype=tok.dtype, device=tok.device).index_add(0, rows, tok)
    return total / predicts.sum(1).clamp(min=1).to(tok.dtype)
