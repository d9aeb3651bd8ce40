"""SamplingConfig: every sampling setting checked on construction, with a message naming the field."""

from dataclasses import FrozenInstanceError, replace

import pytest

from synthtext.config import SamplingConfig
from synthtext.errors import ConfigError


@pytest.mark.parametrize("settings, message", [
    ({"temperature": -1}, "temperature must be a finite number >= 0 (0 = greedy), got -1."),
    ({"temperature": float("nan")}, "temperature must be a finite number"),
    ({"temperature": True}, "temperature must be a finite number"),
    ({"top_p": 0}, "top_p must be in (0, 1] (1 = no nucleus cut), got 0."),
    ({"top_p": 1.5}, "top_p must be in (0, 1]"),
    ({"min_p": 1}, "min_p must be in [0, 1) (0 = no min-p cut), got 1."),
    ({"min_p": -0.1}, "min_p must be in [0, 1)"),
    ({"min_p": True}, "min_p must be in [0, 1)"),
    ({"no_repeat_ngram": 1}, "no_repeat_ngram must be 0 (off), an integer >= 2 or None (by model), got 1."),
    ({"no_repeat_ngram": -2}, "no_repeat_ngram must be 0"),
    ({"max_new_tokens": 0}, "max_new_tokens must be a positive integer or None, got 0."),
    ({"batch_size": 2.0}, "batch_size must be a positive integer or None, got 2.0."),
    ({"seed": 1.5}, "seed must be an integer or None, got 1.5."),
    ({"progress": "yes"}, "progress must be True or False, got 'yes'."),
    ({"merge_lora": None}, "merge_lora must be True or False"),
    ({"dtype": "int8"}, "dtype must be 'auto', 'float32', 'bfloat16', 'float16' or a torch dtype, got 'int8'."),
])
def test_bad_settings_are_refused_with_the_field_named(settings, message):
    with pytest.raises(ConfigError) as caught:
        SamplingConfig(**settings)
    assert str(caught.value).startswith(message)


def test_defaults_and_a_torch_dtype_are_accepted_and_the_config_is_frozen():
    import torch

    config = SamplingConfig()
    assert (config.temperature, config.top_p, config.min_p, config.no_repeat_ngram, config.max_new_tokens,
            config.seed) == (1.0, 1.0, 0.05, None, None, None)
    assert SamplingConfig(temperature=0, top_p=1, dtype=torch.bfloat16).dtype is torch.bfloat16
    with pytest.raises(FrozenInstanceError):
        config.temperature = 0.5
    with pytest.raises(ConfigError, match="top_p"):
        replace(config, top_p=0)  # a changed copy is checked again
