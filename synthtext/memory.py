"""Give freed memory back to the operating system between the heavy stages.

DP training and batched decoding allocate and free gigabytes of short-lived tensors (logits, KV
caches, per-sample gradients). glibc keeps much of that freed memory in its heap instead of returning
it, so the process's resident size after training stayed ~1.5 GiB above what it still used (measured on
the README job: 3.34 GiB after ``fit``, 1.88 GiB after ``malloc_trim``), and the next stage's peak
came on top of it. ``malloc_trim(0)`` returns the free pages; it frees nothing still in use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc

__all__ = ["release_freed_memory"]


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, or ``None`` where there is none (macOS, Windows, musl)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed_memory(*, collect: bool = True) -> bool:
    """Collect garbage (``collect``), then hand the heap's free pages back to the OS. Returns whether it
    could. ``collect=False`` where refcounting already freed everything (a decoding batch's tensors): a
    full collection costs ~0.35 s with presidio, spaCy and SDV loaded, the trim ~5 ms."""
    if collect:
        gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
