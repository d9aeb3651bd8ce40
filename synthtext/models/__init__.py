"""Base models, one module per role: ``network`` (the built-in byte-level transformer), ``loading``
(a base model by name, LoRA), ``encoding`` ((prompt, text) pairs -> token ids, per-record losses),
``artifact`` (:class:`TrainedModel` and its saved-directory format). This face only hands names on.
"""

from .artifact import FrozenStates, TrainedModel, base_fingerprint, check_saved_files
from .encoding import (EncodedExamples, encode_examples, encode_texts, length_order, prompt_prefixes,
                       sequence_losses, uses_chat_template)
from .loading import (DEFAULT_MODEL_NAMES, BaseModel, add_lora, cpu_has_native_bf16, layer_index, load_base_model,
                      lora_target_modules)
from .network import ByteLMConfig, ByteTokenizer, ByteTransformerLM, KVCache

__all__ = [
    "DEFAULT_MODEL_NAMES",
    "BaseModel",
    "ByteLMConfig",
    "ByteTokenizer",
    "ByteTransformerLM",
    "EncodedExamples",
    "FrozenStates",
    "KVCache",
    "TrainedModel",
    "add_lora",
    "base_fingerprint",
    "check_saved_files",
    "cpu_has_native_bf16",
    "encode_examples",
    "encode_texts",
    "layer_index",
    "length_order",
    "load_base_model",
    "lora_target_modules",
    "prompt_prefixes",
    "sequence_losses",
    "uses_chat_template",
]
