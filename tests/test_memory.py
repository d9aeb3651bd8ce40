"""release_freed_memory hands freed heap pages back to the OS (glibc), and is a no-op elsewhere."""

import sys

import pytest

from synthtext import memory


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux") or memory._malloc_trim() is None,
                    reason="glibc's malloc_trim only")
def test_freed_heap_is_returned_to_the_os():
    # 240 MB of 8 kB blocks (malloc, not pymalloc); every 50th kept, so the heap cannot shrink from its top
    blocks = [bytearray(8000) for _ in range(30_000)]
    kept = blocks[::50]
    del blocks
    before = _rss_mb()
    assert memory.release_freed_memory() is True
    after = _rss_mb()
    assert before - after > 100, (before, after)
    assert len(kept) == 600


def test_without_malloc_trim_it_only_collects(monkeypatch):
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.release_freed_memory() is False


def test_collect_false_skips_the_garbage_collection(monkeypatch):
    calls = []
    monkeypatch.setattr(memory.gc, "collect", lambda: calls.append(1))
    memory.release_freed_memory(collect=False)
    assert calls == []
    memory.release_freed_memory()
    assert calls == [1]
