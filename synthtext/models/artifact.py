"""The saved artifact: ``TrainedModel`` is what training returns; it saves to / loads from a
directory of JSON and safetensors files (no pickle, no training text).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import PrivacyConfig, PrivacyLedger, TrainConfig
from ..errors import ModelError
from .encoding import EncodedExamples, length_order, sequence_losses
from .loading import cpu_has_native_bf16, default_max_length, first_line, layer_index, load_base_model
from .network import ByteLMConfig, ByteTokenizer, ByteTransformerLM

FORMAT_NAME = "synthtext-model"
FORMAT_VERSION = 1
META_FILE = "synthtext_model.json"
LEDGER_FILE = "privacy_ledger.json"
BUILTIN_WEIGHTS = "model.safetensors"
ADAPTER_DIR = "adapter"

SAVED_SUFFIXES = (".json", ".safetensors")


def check_saved_files(directory: str | os.PathLike) -> None:
    """Refuse a saved directory holding anything but JSON and safetensors files (and folders).

    Pickles (.bin, .pt, .pkl) can run code when loaded, and a file this version does not write
    could be anything, so loading stops before reading a byte of it. Links are refused too: they
    could point outside the directory.
    """
    root = Path(directory)
    for entry in sorted(root.rglob("*")):
        name = entry.relative_to(root).as_posix()
        if entry.is_symlink():
            problem = "is a symbolic link"
        elif entry.is_dir():
            continue
        elif not entry.is_file():
            problem = "is not a regular file"
        elif entry.suffix.lower() in SAVED_SUFFIXES:
            continue
        else:
            problem = "is not a JSON or safetensors file"
        raise ModelError(
            f"{root} holds {name}, which {problem}. A saved synthtext model holds only JSON and safetensors "
            "files, and synthtext never loads pickled or unknown files (they can run code). Remove the file "
            "if you know where it came from, or save the model again with synthtext."
        )


def base_fingerprint(model: nn.Module) -> str:
    """Hash of the first input-embedding rows: detects loading an adapter onto another base."""
    emb = model.get_input_embeddings().weight.detach().float().cpu().flatten()[:4096]
    return hashlib.sha256(emb.numpy().tobytes()).hexdigest()[:16]


@dataclass
class FrozenStates:
    """Some records' states entering the first adapted layer, as training computed them (in memory only):
    a loss of such a record needs only the adapted layers and the head, not the frozen ones below."""

    split: int
    """The first adapted layer: the states are the output of layers ``0..split-1``."""
    by_tokens: dict
    """A record's token ids (a tuple) -> its states, shape (len(tokens), hidden)."""


@dataclass
class TrainedModel:
    """A trained model (LoRA-adapted pretrained model, or the built-in model) and its ledger.

    ``model`` is a peft ``PeftModelForCausalLM`` (has ``.generate``) or a
    :class:`ByteTransformerLM` (``forward(input_ids, attention_mask, position_ids) -> logits``).
    """

    model: nn.Module
    tokenizer: Any
    base_name: str
    kind: str
    family: str | None
    ledger: PrivacyLedger
    train_config: TrainConfig
    privacy_config: PrivacyConfig
    builtin_config: ByteLMConfig | None = None
    base_fingerprint: str | None = None
    extra: dict = field(default_factory=dict)
    train_log: dict = field(default_factory=dict, repr=False)
    """Loss/epsilon per step and wall time of this run: in memory only, never saved (not DP)."""
    frozen_states: FrozenStates | None = field(default=None, repr=False)
    """Frozen-layer states training kept for the records it was asked to (``train_private(keep_states_for=)``,
    the membership attack's sample): :meth:`record_losses` reuses them. In memory only, never saved."""

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for a batch (right or left padded), on the model's device."""
        dev = next(self.model.parameters()).device
        input_ids = input_ids.to(dev)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        attention_mask = attention_mask.to(dev)
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
        return out if isinstance(out, torch.Tensor) else out.logits

    @property
    def max_length(self) -> int:
        """Tokens per record this model was trained with (prompt + text)."""
        if self.train_config.max_length is not None:
            return self.train_config.max_length
        return default_max_length(self.kind, self.builtin_config.max_positions if self.builtin_config else None)

    def _losses(self, ids: torch.Tensor, attn: torch.Tensor, target: torch.Tensor,
                states: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Per-record losses of a right-padded batch, as training computes them: for a Llama-shaped
        model the head runs at text positions only, in bf16 where the hardware has it. ``states``: each
        record's kept frozen-layer states (:class:`FrozenStates`), so the layers below the adapters are skipped."""
        from ..llm import decoder_stack, padded_states, shared_prefix_length

        stack = None if self.kind == "builtin" else decoder_stack(self.model)
        if stack is None:
            return sequence_losses(self.logits(ids, attn), ids, target)
        bf16 = ids.device.type == "cuda" or (ids.device.type == "cpu" and cpu_has_native_bf16())
        split = min(_lora_layers(self.model), default=0)
        with torch.no_grad(), torch.autocast(device_type=ids.device.type, dtype=torch.bfloat16, enabled=bf16):
            if states is not None:
                hidden = padded_states(states, ids.shape[1], ids.device)
            elif split:  # the layers below the adapters are the base model's: the shared first tokens run once
                lengths = attn.sum(1).tolist()
                shared = shared_prefix_length([row[:n] for row, n in zip(ids.tolist(), lengths)])
                hidden = stack.lower_after_prefix(ids, attn, split, shared)
                hidden = hidden.to(torch.bfloat16) if bf16 else hidden  # rounded as training's cached states are
            else:
                hidden = None
            return stack.record_losses(ids, attn, target, split, hidden)

    def _kept_states(self, examples: EncodedExamples) -> list[torch.Tensor | None]:
        """Per record, its kept frozen-layer states, or None (computed from its tokens then)."""
        kept = self.frozen_states
        usable = (kept is not None and self.kind != "builtin"
                  and kept.split == min(_lora_layers(self.model), default=0))
        return [kept.by_tokens.get(tuple(ids)) if usable else None for ids in examples.input_ids]

    def record_losses(self, examples: EncodedExamples, batch_size: int = 32) -> np.ndarray:
        """Each record's loss under this model (mean next-token loss over its text tokens, as in
        training), shape (n,). Used by membership-inference scoring and the canary audit; reading
        private records here is evaluation, outside the DP guarantee."""
        dev = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        losses = np.zeros(len(examples))
        kept = self._kept_states(examples)
        order = length_order(examples)  # batches of similar length: little padding to compute
        # records with kept states batch apart from the others, which run the frozen layers
        groups = [[j for j in order if kept[j] is not None], [j for j in order if kept[j] is None]]
        was_training = self.model.training
        self.model.eval()
        try:
            for group in groups:
                for start in range(0, len(group), batch_size):
                    chunk = group[start:start + batch_size]
                    width = max(len(examples.input_ids[j]) for j in chunk)
                    ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                    attn = torch.zeros_like(ids)
                    target = torch.zeros_like(ids)
                    for row, j in enumerate(chunk):
                        seq = examples.input_ids[j]
                        ids[row, :len(seq)] = torch.tensor(seq)
                        attn[row, :len(seq)] = 1
                        target[row, examples.prompt_lengths[j]:len(seq)] = 1
                    states = [kept[j] for j in chunk] if kept[chunk[0]] is not None else None
                    losses[chunk] = self._losses(ids.to(dev), attn.to(dev), target.to(dev),
                                                 states).float().cpu().numpy()
        finally:
            self.model.train(was_training)
        return losses

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``path/`` with JSON metadata + ledger and safetensors weights (no pickle, no text)."""
        from safetensors.torch import save_file

        out = Path(path)
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise ModelError(f"{out} exists and is not empty; pass overwrite=True or choose another directory.")
        out.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "base_model": self.base_name,
            "family": self.family,
            "builtin_config": self.builtin_config.to_dict() if self.builtin_config else None,
            "base_fingerprint": self.base_fingerprint,
            "tokenizer": "bytes" if self.kind == "builtin" else "base model tokenizer",
            "train_config": self.train_config.to_dict(),
            "privacy_config": self.privacy_config.to_dict(),
            "extra": self.extra,
        }
        if self.kind == "builtin":
            state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
            save_file(state, str(out / BUILTIN_WEIGHTS), metadata={"format": FORMAT_NAME})
        else:
            self.model.save_pretrained(str(out / ADAPTER_DIR), safe_serialization=True)
            (out / ADAPTER_DIR / "README.md").unlink(missing_ok=True)  # peft's model card: only JSON + safetensors
        (out / LEDGER_FILE).write_text(json.dumps(self.ledger.to_dict(), indent=2) + "\n")
        (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")  # written last: marks a complete save
        return out

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, base_model: str | os.PathLike | None = None, device: str = "cpu"
    ) -> TrainedModel:
        """Load a directory written by :meth:`save`. Never runs remote code or unpickles.

        Args:
            base_model: where to find the pretrained base now, if it moved since training
                (ignored for the built-in model).
        """
        from safetensors.torch import load_file

        src = Path(path)
        meta_path = src / META_FILE
        if not meta_path.is_file():
            raise ModelError(f"{src} is not a saved synthtext model (no {META_FILE}).")
        check_saved_files(src)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            ledger = PrivacyLedger.from_dict(json.loads((src / LEDGER_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            raise ModelError(f"cannot read the metadata in {src} ({type(e).__name__}: {first_line(e)}): the "
                             "directory is damaged. Save or train the model again.") from e
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME or meta.get("format_version") != FORMAT_VERSION:
            found = (meta.get("format"), meta.get("format_version")) if isinstance(meta, dict) else (None, None)
            raise ModelError(f"{src}: unsupported format {found[0]!r} v{found[1]!r} (this synthtext reads "
                             f"{FORMAT_NAME!r} v{FORMAT_VERSION}). Load it with the synthtext version that saved it, "
                             "or train it again with this one.")
        try:
            train_cfg = TrainConfig.from_dict(meta["train_config"])
            priv_cfg = PrivacyConfig.from_dict(meta["privacy_config"])
            kind, base_name = meta["kind"], str(meta["base_model"])
            bcfg = ByteLMConfig(**meta["builtin_config"]) if kind == "builtin" else None
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise ModelError(f"the metadata in {meta_path} is damaged ({type(e).__name__}: {first_line(e)}). "
                             "Save or train the model again.") from e
        if kind == "builtin":
            net = ByteTransformerLM(bcfg)
            try:
                net.load_state_dict(load_file(str(src / BUILTIN_WEIGHTS)), strict=True)
            except Exception as e:  # safetensors raises its own SafetensorError (an Exception) on damage
                raise ModelError(f"cannot load the weights in {src / BUILTIN_WEIGHTS} ({first_line(e)}): the file "
                                 "is damaged or belongs to another model. Save or train the model again.") from e
            tok, family, fp = ByteTokenizer(), meta.get("family"), None
        elif kind == "pretrained":
            from peft import PeftModel

            adapter = src / ADAPTER_DIR
            if (adapter / "adapter_model.bin").exists() or not (adapter / "adapter_model.safetensors").is_file():
                raise ModelError(f"{adapter} must hold adapter_model.safetensors (pickled .bin files are refused).")
            base = load_base_model(base_model if base_model is not None else base_name)
            fp = base_fingerprint(base.model)
            if meta.get("base_fingerprint") and fp != meta["base_fingerprint"]:
                raise ModelError(
                    f"the base model {base.name} differs from the one this adapter was trained on "
                    f"({meta['base_model']}): its embedding weights do not match."
                )
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
                    net = PeftModel.from_pretrained(base.model, str(adapter), is_trainable=False)
            except Exception as e:  # a damaged adapter file or config: SafetensorError, ValueError, KeyError...
                raise ModelError(f"cannot load the adapter in {adapter} ({type(e).__name__}: {first_line(e)}): "
                                 "it is damaged. Save or train the model again.") from e
            tok, family, bcfg = base.tokenizer, base.family, None
        else:
            raise ModelError(f"{src}: unknown model kind {kind!r}; it was saved by another synthtext version. "
                             "Load it with that version, or train the model again.")
        net.to(device).eval()
        return cls(
            model=net, tokenizer=tok, base_name=base_name, kind=kind, family=family,
            ledger=ledger, train_config=train_cfg, privacy_config=priv_cfg, builtin_config=bcfg,
            base_fingerprint=fp, extra=meta.get("extra", {}),
        )


def _lora_layers(model) -> list[int]:
    """Indices of the decoder layers that hold LoRA weights (trainable or not: a loaded model's are frozen)."""
    return sorted({i for name, _ in model.named_parameters()
                   if "lora_" in name and (i := layer_index(name)) is not None})
