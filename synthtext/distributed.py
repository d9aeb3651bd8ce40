"""Several processes, one DP model: the process group ``torchrun`` starts.

``torchrun --nproc-per-node N -m synthtext fit|synthesize ...`` starts N copies of the command; each
reads the table, scans and redacts it, and plans the run in the same deterministic way (no rank reads
another rank's files), then:

* training (:mod:`synthtext.train`) is one DP-SGD run over the N processes: every rank draws the same
  Poisson sample of all records at each step and works on its share of it; per-record gradients are
  clipped where they are computed, rank 0 alone adds the noise, and the sum is shared (Opacus'
  distributed optimizer), so the step is the single-process step and the ledger is the single-process
  ledger, for any N;
* generation splits the synthetic rows into fixed chunks, each with its own seed, that the ranks share
  out (:func:`shard_chunks`); every rank gets every chunk back (:func:`gather_chunks`), so the output
  for a seed is the same for any N;
* only rank 0 writes files (the model, the CSV, the report) and prints progress.

From Python, initialise the process group yourself (``torch.distributed.init_process_group``) before
``fit``; :func:`world` is what the pipeline asks. Without a group (or with one process) nothing here
changes anything.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")

TIMEOUT = datetime.timedelta(minutes=30)
"""How long a rank waits for the others at a collective before it gives up (torch's default for gloo)."""


def world() -> tuple[int, int]:
    """(this process's rank, number of processes): (0, 1) without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Rank 0, or no process group: the process that writes files and shows progress."""
    return world()[0] == 0


@contextlib.contextmanager
def process_group_from_env() -> Iterator[bool]:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment): start the process group (NCCL with one
    GPU per process when there are GPUs, gloo for CPU tensors), and end it when the block ends. Yields whether it
    did; without torchrun, or when a group already exists, it does nothing."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1 or not dist.is_available() or dist.is_initialized():
        yield False
        return
    gpu = torch.cuda.is_available() and torch.cuda.device_count() > 0
    if gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    # NCCL for GPU tensors, gloo for CPU ones (a CPU run on a GPU machine, the objects all_gather_object sends)
    dist.init_process_group(backend="cpu:gloo,cuda:nccl" if gpu else "gloo", timeout=TIMEOUT)
    try:
        yield True
    finally:
        dist.destroy_process_group()


def default_workers(cores: int | None = None) -> int:
    """This process's share of the CPU cores (at least 1): N processes on one machine must not each take
    all of them (measured: three 2-thread torch jobs on 2 cores made each step ~10x slower)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // world()[1])


def all_agree(value: T, what: str) -> T:
    """Check that every rank holds the same ``value`` (a plan, a record count): a rank that read other
    data or other settings would otherwise train on something else, silently. Returns ``value``."""
    rank, size = world()
    if size == 1:
        return value
    values: list[Any] = [None] * size
    dist.all_gather_object(values, value)
    for other, seen in enumerate(values):
        if seen != value:
            raise RuntimeError(f"the {size} processes do not agree on {what}: rank {rank} has {value!r}, rank "
                               f"{other} has {seen!r}. Every process must read the same input with the same "
                               "options.")
    return value


def shard_chunks(n_items: int, chunk_size: int) -> list[range]:
    """The fixed chunks of ``range(n_items)`` (``chunk_size`` each, the last shorter), whatever the number
    of processes; :func:`my_chunks` says which of them this rank does."""
    return [range(start, min(start + chunk_size, n_items)) for start in range(0, n_items, chunk_size)]


def gather_chunks(chunks: Sequence[range], work: Callable[[int, range], list]) -> list:
    """Run ``work(index, chunk)`` for this rank's chunks (every N-th, from its rank) and return every
    chunk's results, from every rank, in chunk order (one flat list)."""
    rank, size = world()
    mine = {i: work(i, chunk) for i, chunk in enumerate(chunks) if i % size == rank}
    if size > 1:
        everyone: list[Any] = [None] * size
        dist.all_gather_object(everyone, mine)
        mine = {i: out for part in everyone for i, out in part.items()}
    return [item for i in range(len(chunks)) for item in mine[i]]
