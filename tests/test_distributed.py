"""One DP model over several processes (gloo on CPU, 2 processes, a tiny model): the shared Poisson
sample, the same weights as one process on the same logical batches, the same ledger, generation
shared out by chunks."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

import synthtext.distributed as D
import synthtext.train as T
from synthtext.config import PrivacyConfig, TrainConfig
from synthtext.models import encode_examples, load_base_model

N_RECORDS = 40
SETTINGS = TrainConfig(epochs=2, batch_size=N_RECORDS, max_physical_batch_size=7, max_length=40, progress=False,
                       seed=3)
"""q = 1 (one batch of every record per step): the logical batches are the same for any number of processes."""
SMALL_BATCHES = dataclasses.replace(SETTINGS, batch_size=8, epochs=3)  # q = 1/5: Poisson batches, some shares empty
PRIVACY = PrivacyConfig(epsilon=50.0, accountant="rdp", min_records=10)


def _examples(tok):
    prompts = [f"rating {i % 5} :" for i in range(N_RECORDS)]
    texts = [f" nice fit, size {i % 7}" + "!" * (i % 4) for i in range(N_RECORDS)]
    return encode_examples(tok, prompts, texts, 40)


def _train(privacy: PrivacyConfig | None, train: TrainConfig):
    base = load_base_model("builtin", size="tiny", seed=0)
    trained = T.train_private(base, _examples(base.tokenizer), privacy, train)
    weights = {k: v.detach().clone() for k, v in trained.model.state_dict().items()}
    return weights, trained.ledger, trained.train_log


def _plain_sgd() -> dict:
    """Shuffled batches of 16 (the last dropped), SGD: what train_private does without DP, but with SGD."""
    base = load_base_model("builtin", size="tiny", seed=0)
    model = base.model.train()
    train = dataclasses.replace(SETTINGS, batch_size=16)
    loader = DataLoader(T._Records(_examples(base.tokenizer)), batch_size=16, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(5),
                        collate_fn=T._PadCollate(base.tokenizer.pad_token_id))
    plan = T.plan_privacy(N_RECORDS, PrivacyConfig(epsilon=None), train)
    T.plain_loop(model, torch.optim.SGD(model.parameters(), lr=0.5), loader, plan, train, torch.device("cpu"))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


LOOPBACK = {"GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo")}
"""gloo binds to the interface of the machine's hostname unless told; the tests talk over loopback only."""


def _worker(rank: int, size: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(LOOPBACK)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    try:
        results = {name: _train(privacy, train) for name, (privacy, train) in _RUNS.items()}
        results["plain_sgd"] = _plain_sgd()
        results["chunks"] = D.gather_chunks(D.shard_chunks(11, 3),
                                            lambda i, chunk: [(i, j, D.world()[0]) for j in chunk])
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


_RUNS = {"dp_q1": (PRIVACY, SETTINGS), "no_dp": (PrivacyConfig(epsilon=None), SETTINGS),
         "dp_poisson": (PRIVACY, SMALL_BATCHES)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Every run of _RUNS in 2 gloo processes (rank 0's results), and the same runs in this process."""
    out = str(tmp_path_factory.mktemp("ddp") / "rank0.pt")
    mp.start_processes(_worker, args=(2, _free_port(), out), nprocs=2, join=True, start_method="spawn")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = {name: _train(privacy, train) for name, (privacy, train) in _RUNS.items()}
        single["plain_sgd"] = _plain_sgd()
    finally:
        torch.set_num_threads(threads)
    return torch.load(out, weights_only=False), single


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)  # the sums run in another order


def test_dp_over_two_processes_is_the_single_process_step(two_processes):
    """q = 1 with DP on: rank 0 adds the same noise (same generator) to the same clipped sum that one process
    forms, so the weights match; clipping is per record (each rank clips its own records)."""
    (weights2, ledger2, log2), (weights1, ledger1, log1) = two_processes[0]["dp_q1"], two_processes[1]["dp_q1"]
    assert ledger2 == ledger1 and ledger1.dp and ledger1.sample_rate == 1.0
    _assert_same_weights(weights2, weights1)
    assert log2["processes"] == 2 and log1["processes"] == 1
    assert log2["records_processed"] == log1["records_processed"] == N_RECORDS * SETTINGS.epochs
    for a, b in zip(log2["steps"], log1["steps"]):  # the logged loss is over both ranks' shares
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)


def test_training_without_dp_over_two_processes_matches_one(two_processes):
    """The ledger through train_private; the weights through its loop with SGD (with Adam, the rounding of
    gradients that are zero in exact arithmetic, such as an attention key's bias, becomes steps of the
    learning rate's size, in one process as in two)."""
    (_, ledger2, log2), (_, ledger1, _) = two_processes[0]["no_dp"], two_processes[1]["no_dp"]
    assert not ledger2.dp and ledger2 == ledger1 and log2["processes"] == 2
    _assert_same_weights(two_processes[0]["plain_sgd"], two_processes[1]["plain_sgd"])
    initial = load_base_model("builtin", size="tiny", seed=0).model.state_dict()
    assert all(not torch.equal(initial[k], v) for k, v in two_processes[1]["plain_sgd"].items())


def test_poisson_batches_over_two_processes_keep_the_ledger(two_processes):
    """q < 1: the ledger (noise multiplier, sample rate, steps, epsilon) is the single-process one, from
    the accountant over what ran; the records processed are the shared Poisson draws."""
    (_, ledger2, log2), (_, ledger1, _) = two_processes[0]["dp_poisson"], two_processes[1]["dp_poisson"]
    assert ledger2 == ledger1 and ledger2.sample_rate == 1 / 5 and ledger2.steps == 15
    assert ledger2.epsilon == T._epsilon(ledger2.accountant, ledger2.noise_multiplier, ledger2.sample_rate,
                                         ledger2.steps, ledger2.delta)
    draws = T.SharedPoissonSampler(N_RECORDS, 1 / 5, 5, SMALL_BATCHES.seed + 3)
    expected = sum(len(batch) for _ in range(3) for batch in draws)
    assert log2["records_processed"] == expected


def test_generation_chunks_come_back_in_order_from_both_ranks(two_processes):
    chunks = two_processes[0]["chunks"]
    assert [j for _, j, _ in chunks] == list(range(11))
    assert {(i, rank) for i, _, rank in chunks} == {(0, 0), (1, 1), (2, 0), (3, 1)}  # every other chunk


def test_shared_poisson_sampler_shares_out_one_poisson_sample():
    """Each step the ranks' shares are disjoint and make up the one-process draw of the same seed; over many
    steps each record joins with probability q."""
    one = list(T.SharedPoissonSampler(50, 0.1, 400, seed=7))
    shares = [list(T.SharedPoissonSampler(50, 0.1, 400, seed=7, rank=r, size=3)) for r in range(3)]
    assert len(T.SharedPoissonSampler(50, 0.1, 400, seed=7)) == 10  # opacus reads q as 1 / len
    empty = 0
    for step, batch in enumerate(one):
        parts = [share[step] for share in shares]
        assert sorted(i for part in parts for i in part) == batch
        empty += sum(not part for part in parts)
    assert empty > 0  # some rank's share was empty: the step still happened on every rank
    joined = torch.zeros(50)
    for batch in one:
        joined[batch] += 1
    assert abs(joined.mean().item() / 400 - 0.1) < 0.01
    assert joined.min() > 0


def test_without_a_process_group_nothing_is_shared():
    assert D.world() == (0, 1) and D.is_main()
    assert D.all_agree({"a": 1}, "a plan") == {"a": 1}
    assert D.gather_chunks(D.shard_chunks(5, 2), lambda i, chunk: [i * 10 + j for j in chunk]) == [0, 1, 12, 13, 24]
    assert D.default_workers(8) == 8
    with D.process_group_from_env() as started:  # no torchrun: WORLD_SIZE unset
        assert not started and not dist.is_initialized()


def test_pad_collate_of_an_empty_share():
    ids, attn, target, index = T._PadCollate(0)([])
    assert ids.shape == (0, 0) and index.shape == (0,)
    assert math.isclose(1 / len(T.SharedPoissonSampler(45, 1 / 3, 3, 0)), 1 / 3)


# ------------------------------------------------------------------ the command under torchrun

DRIVER = str(Path(__file__).with_name("torchrun_driver.py"))
TINY = ["--model", "builtin", "--model-size", "tiny", "--epochs", "1", "--max-new-tokens", "6", "--quiet",
        "--text-columns", "note", "--min-records", "20"]


@pytest.fixture(scope="module")
def notes_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("notes") / "notes.csv"
    pd.DataFrame({"product": [("Dresses", "Tops", "Jeans")[i % 3] for i in range(60)],
                  "note": [f"the {('dress', 'top', 'pair')[i % 3]} fits well, size {i % 7} and a nice colour"
                           for i in range(60)]}).to_csv(path, index=False)
    return path


def _command(processes: int, *argv, chunk: int = 5) -> subprocess.CompletedProcess:
    launch = [sys.executable, DRIVER] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", DRIVER]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **LOOPBACK}
    return subprocess.run([*launch, str(chunk), *map(str, argv)], capture_output=True, text=True, timeout=300,
                          env=env)


def test_synthesize_and_sample_under_torchrun(notes_csv, tmp_path):
    """One DP model over 2 processes, saved once by rank 0 with the single-process plan's ledger; then
    `sample` of that model writes, over 2 processes, exactly the CSV one process writes (chunks of 5 rows,
    each with its own seed)."""
    model = tmp_path / "model"
    done = _command(2, "synthesize", notes_csv, "-o", tmp_path / "two.csv", "--save-model", model,
                    "--report", tmp_path / "report", *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "report", "two.csv"]
    assert len(pd.read_csv(tmp_path / "two.csv")) == 60  # as many rows as the input
    ledger = json.loads((model / "synthesizer.json").read_text())["privacy_ledger"]["models"][0]
    plan = T.plan_privacy(54, PrivacyConfig(min_records=20), TrainConfig(epochs=1))
    assert (ledger["noise_multiplier"], ledger["sample_rate"], ledger["steps"], ledger["epsilon"]) == (
        plan.noise_multiplier, plan.sample_rate, plan.steps, plan.epsilon)
    one = _command(1, "sample", model, "-o", tmp_path / "one_sample.csv", "--rows", 23, "--seed", 4, "--quiet")
    two = _command(2, "sample", model, "-o", tmp_path / "two_sample.csv", "--rows", 23, "--seed", 4, "--quiet")
    assert one.returncode == 0 and two.returncode == 0, (one.stderr[-2000:], two.stderr[-2000:])
    assert (tmp_path / "one_sample.csv").read_bytes() == (tmp_path / "two_sample.csv").read_bytes()


def test_whole_rows_sample_alike_over_one_and_two_processes(tmp_path):
    """structured='dp': the rows are written in chunks of 5 with their own seeds, shared out over the ranks,
    so 2 processes write exactly the CSV one process writes."""
    short = tmp_path / "short.csv"  # whole rows within the tiny byte model's 128 positions
    pd.DataFrame({"size": [i % 7 for i in range(60)],
                  "note": [f"fits, {('dress', 'top', 'pair')[i % 3]}" for i in range(60)]}).to_csv(short, index=False)
    model = tmp_path / "model"
    fitted = _command(1, "synthesize", short, "-o", tmp_path / "fit.csv", "--save-model", model,
                      "--structured", "dp", *TINY)
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    one = _command(1, "sample", model, "-o", tmp_path / "one.csv", "--rows", 13, "--seed", 2, "--quiet")
    two = _command(2, "sample", model, "-o", tmp_path / "two.csv", "--rows", 13, "--seed", 2, "--quiet")
    assert one.returncode == 0 and two.returncode == 0, (one.stderr[-2000:], two.stderr[-2000:])
    assert len(pd.read_csv(tmp_path / "one.csv")) == 13
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    first = _command(1, "sample", model, "-o", tmp_path / "first.csv", "--rows", 5, "--seed", 2, "--quiet")
    whole = _command(1, "sample", model, "-o", tmp_path / "whole.csv", "--rows", 13, "--seed", 2, "--quiet",
                     chunk=1000)
    assert first.returncode == 0 and whole.returncode == 0, (first.stderr[-2000:], whole.stderr[-2000:])
    chunked = pd.read_csv(tmp_path / "one.csv")
    assert chunked[:5].equals(pd.read_csv(tmp_path / "first.csv"))  # chunk 0: the run's own seed
    assert not chunked.equals(pd.read_csv(tmp_path / "whole.csv"))  # the other chunks: seeds of their own


def test_a_bad_column_under_torchrun_fails_with_one_message(notes_csv, tmp_path):
    done = _command(2, "synthesize", notes_csv, "-o", tmp_path / "out.csv", *TINY[:-4], "--text-columns", "nope")
    assert done.returncode != 0
    assert done.stderr.count("synthtext: error:") == 1 and "nope" in done.stderr
    assert not (tmp_path / "out.csv").exists()


def test_generation_chunks_have_their_own_seeds(monkeypatch):
    """Chunk 0 keeps the sampling seed (a table under one chunk samples as before), the others get seeds of
    their own; texts come back in the prompts' order."""
    import synthtext.generate as G
    from synthtext.config import SamplingConfig

    seen = []
    monkeypatch.setattr(G, "generate_texts", lambda trained, prompts, sampling=None, **_:
                        seen.append((len(prompts), sampling.seed)) or [p.upper() for p in prompts])
    monkeypatch.setattr(G, "CHUNK_ROWS", 4)
    assert G.generate_texts_by_chunks(None, list("abcdefghij"), SamplingConfig(seed=7)) == list("ABCDEFGHIJ")
    assert [n for n, _ in seen] == [4, 4, 2] and seen[0][1] == 7 and len({s for _, s in seen}) == 3
    assert seen[1][1] != 8  # not seed + i: chunk 1 of seed 7 is not chunk 0 of seed 8


def test_plan_under_torchrun_prints_once(notes_csv):
    done = _command(2, "plan", notes_csv, *TINY, "--no-probe")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("Plan: 60 rows") == 1
