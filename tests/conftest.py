"""Shared test settings: nothing in the suite may reach the network or download a model."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DATA = ROOT / "bench" / "data" / "presidio_synth_pii.csv"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
