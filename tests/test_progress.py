"""synthtext.progress: bar on a terminal, timed lines in a log, nothing when disabled (fake clock)."""

import io
import re

from synthtext import generate as G
from synthtext import train as T
from synthtext.pii import scan as S
from synthtext.progress import Progress, format_duration


class Clock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_format_duration():
    assert [format_duration(s) for s in (0, 4.6, 59, 62, 145, 3600, 7500)] == \
        ["0s", "5s", "59s", "1m02s", "2m25s", "1h00m", "2h05m"]


def test_training_lines_every_tenth_with_loss_epsilon_elapsed_estimate_and_final_epsilon():
    clock, out = Clock(), io.StringIO()
    calls = []

    def epsilon():
        calls.append(clock.t)
        return 8.0 * len(calls) / 4  # the accountant: grows with each query

    p = T._Progress(40, True, True, stream=out, clock=clock)
    assert p.mode == "lines" and lines(out) == ["DP training: step 0/40 (0%) elapsed 0s"]
    for step in range(1, 41):
        clock.t += 3.1  # 3.1 s per step: 10% (4 steps) every 12.4 s, under the 30 s mark
        p.step(step, 3.5 - step / 100, epsilon, last=step == 40)
    p.close()
    got = lines(out)
    assert len(got) == 11  # start + one per 10%; close adds nothing (the 100% line says it all)
    assert [re.search(r"step (\d+)/40 \((\d+)%\)", line).groups() for line in got[1:4]] == \
        [("4", "10"), ("8", "20"), ("12", "30")]
    assert re.fullmatch(r"DP training: step 12/40 \(30%\) loss 3\.\d{3} epsilon spent \d+\.\d\d "
                        r"elapsed 37s, about 1m27s left", got[3]), got[3]
    # epsilon queried at most every 5 s (the fake accountant is free) and on the last step
    assert 1 < len(calls) < 40 and calls[-1] == clock.t
    assert got[-1] == f"DP training: step 40/40 (100%) loss {p.loss:.3f} epsilon spent {8.0 * len(calls) / 4:.2f} " \
                      "elapsed 2m04s"
    assert [entry["step"] for entry in p.log] == list(range(1, 41)) and p.log[0]["loss"] == 3.49


def test_lines_at_30_seconds_when_tenths_are_slow_and_not_more_than_every_2_seconds():
    clock, out = Clock(), io.StringIO()
    p = Progress(1000, "generating", unit="text", show_rate=True, stream=out, clock=clock)
    for _ in range(70):  # 1 text per second: 10% takes 100 s
        clock.t += 1.0
        p.update(1)
    assert [re.search(r"elapsed (\w+)", line).group(1) for line in lines(out)] == ["0s", "30s", "1m00s"]
    # fast work: every 10% is due at once, but lines are at least 2 s apart
    clock, out = Clock(), io.StringIO()
    p = Progress(100, "generating", unit="text", stream=out, clock=clock)
    for _ in range(100):
        clock.t += 0.125
        p.update(1)
    p.close()
    got = lines(out)
    assert [int(re.search(r": (\d+)/", line).group(1)) for line in got] == [0, 16, 32, 48, 64, 80, 96, 100]
    assert got[-1] == "generating: 100/100 texts (100%) elapsed 12s"


def test_generation_lines_show_texts_rate_and_estimate():
    clock, out = Clock(), io.StringIO()
    p = Progress(500, "generating", unit="text", show_rate=True, stream=out, clock=clock)
    clock.t += 82.0
    p.update(256)
    assert lines(out)[-1] == "generating: 256/500 texts (51%) 3.1 texts/s elapsed 1m22s, about 1m18s left"
    clock.t += 1.0
    p.update(10)  # not due (same tenth, 1 s later)
    assert len(lines(out)) == 2
    p.close()  # stopped early: a last line with the count reached
    assert len(lines(out)) == 3 and lines(out)[-1].startswith("generating: 266/500 texts (53%) 3.2 texts/s")


def test_generate_and_pii_wrappers_use_progress(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    bar = G._progress_bar(10, True)
    bar.update(10)
    bar.close()
    assert lines(out)[0].startswith("generating: 0/10 texts (0%)")
    assert lines(out)[-1].startswith("generating: 10/10 texts (100%)")
    assert not G._progress_bar(10, False).enabled and S._progress_bar(5, False, "scanning for PII", "text") is None
    scan = S._progress_bar(5, True, "scanning for PII", "text")
    scan(5)  # analyze_texts calls progress(n)
    scan.close()
    assert lines(out)[-1].startswith("scanning for PII: 5/5 texts (100%)")


def test_disabled_writes_nothing():
    out = io.StringIO()
    p = T._Progress(10, False, True, stream=out, clock=Clock())
    calls = []
    for step in range(1, 11):
        p.step(step, 1.0, lambda: calls.append(1) or 1.0, last=step == 10)
    p.close()
    assert out.getvalue() == "" and p.mode == "off" and calls == []  # no accountant queries either
    assert len(p.log) == 10
    q = Progress(10, "generating", enabled=False, stream=out)
    q.update(10)
    q.close()
    assert out.getvalue() == ""


def test_tty_stream_gets_a_tqdm_bar():
    out = TTY()
    p = T._Progress(5, True, True, stream=out)
    assert p.mode == "bar"
    for step in range(1, 6):
        p.step(step, 2.0, lambda: 1.25, last=step == 5)
    p.close()
    text = out.getvalue()
    assert "DP training" in text and "5/5" in text and "loss=2.000" in text and "eps=1.25" in text
    assert "epsilon spent" not in text and "\r" in text
    gen = TTY()
    with Progress(3, "generating", unit="text", stream=gen) as bar:
        bar.update(3)
    assert "generating" in gen.getvalue() and "text/s" in gen.getvalue()


def test_no_dp_training_and_unknown_total():
    clock, out = Clock(), io.StringIO()
    p = T._Progress(2, True, False, stream=out, clock=clock)
    p.step(1, None)
    clock.t += 1
    p.step(2, 2.0)
    p.close()
    assert lines(out)[-1] == "training (no DP): step 2/2 (100%) loss 2.000 elapsed 1s"
    out = io.StringIO()
    p = Progress(None, "scanning", unit="text", stream=out, clock=clock)
    p.update(3)
    p.close()
    assert lines(out) == ["scanning: 0/? texts elapsed 0s", "scanning: 3/? texts elapsed 0s"]
