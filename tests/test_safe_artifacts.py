"""Safe artifacts: a saved synthesizer holds only JSON and safetensors, never training text or a PII value
the scan found; and the main job runs with the network cut off (nothing is fetched unless a hub model is
asked for)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from synthtext import pii
from synthtext.config import TrainConfig
from synthtext.errors import ModelError
from synthtext.models import TrainedModel, check_saved_files
from synthtext.synthesizer import TextSynthesizer
from tiny_models import reseal

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 20  # no run of this many characters of any training text may be saved

PLANTED_NAME = "Zebulon Quartermaine"
PLANTED_EMAIL = "zebulon.quartermaine@marmoset-post.com"
PLANTED_PHONE = "(415) 555-0199"


def private_table(n: int = 40) -> pd.DataFrame:
    """PII columns and texts that the synthesizer's own Faker (en_US) cannot produce by chance, so any
    match in a saved file is a copy, not a coincidence."""
    from faker import Faker

    fake = Faker("fi_FI")
    fake.seed_instance(97531)
    rows = []
    for i in range(n):
        first, last = fake.first_name(), fake.last_name()
        text = (f"parcel {i:03d} arrived with the {['lid', 'strap', 'hinge', 'clasp'][i % 4]} bent and smelled "
                f"of wet cedar, receipt {i * 7919 % 1000:03d}")
        if i % 9 == 0:
            text = (f"Please call {PLANTED_NAME} on {PLANTED_PHONE} or write to {PLANTED_EMAIL} about "
                    f"parcel {i:03d}")
        rows.append({"customer": f"{first} {last}", "email": f"{first.lower()}.{i}@kuusiposti.fi",
                     "phone": f"+358 40 {1_000_000 + i * 7919}", "product": ["dress", "coat"][i % 2],
                     "rating": 1 + i % 5, "comment": text})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A fitted synthesizer (SDV for the structured columns, so the saved pool is checked too), saved."""
    df = private_table()
    synth = TextSynthesizer(model="builtin", model_size="tiny", max_new_tokens=16, epsilon=None,
                            train=TrainConfig(epochs=1, progress=False)).fit(df)
    path = synth.save(tmp_path_factory.mktemp("saved") / "model")
    return df, path


def windows(data: bytes, size: int = WINDOW) -> set[bytes]:
    return {data[i:i + size] for i in range(len(data) - size + 1)}


def saved_contents(path: Path) -> list[tuple[str, bytes]]:
    """(file, bytes) for every file, plus the strings inside each JSON file decoded (escapes such as
    \\u00e9 undone), so text is found however it was written."""
    out = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        data = file.read_bytes()
        out.append((file.name, data))
        if file.suffix == ".json":
            strings = []

            def walk(node):
                if isinstance(node, str):
                    strings.append(node)
                elif isinstance(node, dict):
                    for key, value in node.items():
                        walk(key)
                        walk(value)
                elif isinstance(node, list):
                    for value in node:
                        walk(value)

            walk(json.loads(data))
            out.append((file.name + " (decoded)", "\n".join(strings).encode("utf-8")))
    return out


def test_saved_directory_holds_only_json_and_safetensors(saved):
    _, path = saved
    files = [p for p in path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"synthesizer.json", "structured_pool.json", "model.safetensors"}
    assert all(p.suffix in (".json", ".safetensors") for p in files), files
    check_saved_files(path)  # the loader's own check agrees


def test_no_training_text_is_saved(saved):
    df, path = saved
    scan = pii.scan_pii(df)
    training = df["comment"].tolist() + pii.redact_frame(df, scan)["comment"].tolist()
    needles = set().union(*(windows(text.encode("utf-8")) for text in training))
    assert all(len(text) > WINDOW for text in training)
    assert needles & windows(json.dumps({"x": training[5][3:30]}).encode())  # it would see a copied text
    for name, data in saved_contents(path):
        copied = needles & windows(data)
        assert not copied, f"{name} holds training text: {sorted(copied)[:3]}"


def test_no_pii_value_found_by_the_scan_is_saved(saved):
    df, path = saved
    found = pii.found_values(df, pii.scan_pii(df))
    values = {value for group in found.values() for value in group}
    # the planted values and the PII columns are among what the scan found (else this test proves little)
    assert {PLANTED_NAME, PLANTED_PHONE, PLANTED_EMAIL} <= values
    assert set(df["customer"]) <= values and set(df["email"]) <= values
    contents = saved_contents(path)
    for value in sorted(values):
        for name, data in contents:
            assert value.encode("utf-8") not in data, f"{name} holds the PII value {value!r}"


def test_saved_pool_has_surrogates_and_no_text(saved):
    """The SDV pool (the only saved rows) has Faker surrogates in the PII columns and no text."""
    df, path = saved
    pool = pd.read_json(path / "structured_pool.json", orient="split", dtype=False)
    assert pool["comment"].isna().all()
    for column in ("customer", "email", "phone"):
        assert not set(pool[column].dropna()) & set(df[column]), column


# ------------------------------------------------------------------------------- loading refuses


def test_loading_refuses_any_file_that_is_not_json_or_safetensors(saved, tmp_path):
    _, path = saved
    for bad in ("evil.pkl", "text_model_0/weights.bin", "text_model_0/model.pt", "notes.txt", "README.md"):
        copy = tmp_path / bad.replace("/", "_")
        shutil.copytree(path, copy)
        (copy / bad).write_bytes(b"\x80\x04K\x01.")
        with pytest.raises(ModelError, match=f"holds {bad}, which is not a JSON or safetensors file"):
            TextSynthesizer.load(copy)
        if bad.startswith("text_model_0/"):
            with pytest.raises(ModelError, match="is not a JSON or safetensors file"):
                TrainedModel.load(copy / "text_model_0")


def test_loading_refuses_links(saved, tmp_path):
    _, path = saved
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes((copy / "text_model_0" / "model.safetensors").read_bytes())
    (copy / "text_model_0" / "model.safetensors").unlink()
    (copy / "text_model_0" / "model.safetensors").symlink_to(outside)
    with pytest.raises(ModelError, match="model.safetensors, which is a symbolic link"):
        TextSynthesizer.load(copy)


def test_loading_refuses_damaged_weights_and_metadata(saved, tmp_path):
    _, path = saved
    cases = {
        "truncated weights": ("text_model_0/model.safetensors", lambda b: b[:-64], "cannot load the weights"),
        "garbage weights": ("text_model_0/model.safetensors", lambda b: b"\xff" * 32, "cannot load the weights"),
        "model from another version": ("text_model_0/synthtext_model.json",
                                       lambda b: json.dumps({**json.loads(b), "format_version": 7}).encode(),
                                       "unsupported format 'synthtext-model' v7"),
        "synthesizer from another version": ("synthesizer.json",
                                             lambda b: json.dumps({**json.loads(b), "version": 7}).encode(),
                                             "written by another synthtext version"),
        "truncated metadata": ("text_model_0/synthtext_model.json", lambda b: b[:50], "cannot read the metadata"),
        "not an object": ("synthesizer.json", lambda b: b"[1, 2]", "written by another synthtext version"),
    }
    for name, (file, damage, message) in cases.items():
        copy = tmp_path / name.replace(" ", "_")
        shutil.copytree(path, copy)
        (copy / file).write_bytes(damage((copy / file).read_bytes()))
        if file != "synthesizer.json":  # (its format and version are read before the manifest)
            with pytest.raises(ModelError, match="does not match its manifest.json"):
                TextSynthesizer.load(copy)  # the content hash catches any edit first...
            reseal(copy)
        with pytest.raises(ModelError, match=message):
            TextSynthesizer.load(copy)  # ...and behind it each file's own check
    TextSynthesizer.load(path)  # the undamaged original still loads


# ------------------------------------------------------------------------------- no network

SITECUSTOMIZE = textwrap.dedent('''
    """Test harness: cut Python off the network and log every attempt (loaded via PYTHONPATH)."""
    import os
    import socket

    _LOG = os.environ["SYNTHTEXT_TEST_NET_LOG"]


    def _record(what, detail):
        with open(_LOG, "a", encoding="utf-8") as handle:
            handle.write(f"{what} {detail!r}\\n")


    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


    def _local(sock):
        return sock.family == getattr(socket, "AF_UNIX", None)  # local IPC is not the network


    def connect(self, address):
        if _local(self):
            return _connect(self, address)
        _record("connect", address)
        raise OSError(101, "network disabled by the test")


    def connect_ex(self, address):
        if _local(self):
            return _connect_ex(self, address)
        _record("connect_ex", address)
        return 101


    def getaddrinfo(host, *args, **kwargs):
        _record("getaddrinfo", host)
        raise socket.gaierror(-3, "network disabled by the test")


    def gethostbyname(host):
        _record("gethostbyname", host)
        raise socket.gaierror(-3, "network disabled by the test")


    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo, socket.gethostbyname = getaddrinfo, gethostbyname
    _record("installed", os.getpid())
''')


def _unshare_prefix() -> list[str]:
    """`unshare -rn` (a new network namespace with no interfaces up) when this system allows it."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return []
    try:
        ok = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return ["unshare", "-rn"] if ok else []


def test_main_job_runs_with_the_network_cut_off(tmp_path):
    """`synthtext synthesize` (scan, SDV, DP training, generation, model save, report) on a small CSV, with
    every socket connection and name lookup failing and logged, and HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE
    unset, so synthtext's own code is shown not to need them; inside an empty network namespace too where
    the system allows one (`unshare -rn`)."""
    harness = tmp_path / "harness"
    harness.mkdir()
    (harness / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "network.log"
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(PYTHONPATH=os.pathsep.join([str(harness), str(ROOT)]), SYNTHTEXT_TEST_NET_LOG=str(log))
    prefix = _unshare_prefix()

    # the harness works: a plain download attempt is stopped and logged
    probe = subprocess.run([*prefix, sys.executable, "-c",
                            "import urllib.request; urllib.request.urlopen('http://example.com', timeout=5)"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "getaddrinfo 'example.com'" in log.read_text()
    log.unlink()

    rows = [{"product": ["dress", "coat"][i % 2], "rating": 1 + i % 5,
             "comment": f"parcel {i:03d} came with a bent strap, call Anna Virtanen at anna{i}@kuusiposti.fi"}
            for i in range(130)]  # enough rows for DP at the default epsilon
    src = tmp_path / "in.csv"
    pd.DataFrame(rows).to_csv(src, index=False)
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "synthtext.cli", "synthesize", str(src), "-o", str(tmp_path / "out.csv"),
         "--model", "builtin", "--model-size", "tiny", "--epochs", "1", "--max-new-tokens", "16", "--save-model", str(tmp_path / "model"),
         "--report", str(tmp_path / "reports")],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    attempts = [line for line in log.read_text().splitlines() if not line.startswith("installed")]
    assert log.read_text().startswith("installed")  # the harness was active in the job
    assert attempts == [], attempts
    assert len(pd.read_csv(tmp_path / "out.csv")) == 130
    assert (tmp_path / "model" / "synthesizer.json").is_file()
    assert list((tmp_path / "reports").glob("*/report.html"))
