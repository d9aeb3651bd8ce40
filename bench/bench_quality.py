"""Is the synthetic text readable and does it follow its row? Scored against real reviews the job never saw.

Default: the README's main job (examples/reviews_500.csv, default model, epsilon 8, "Review Text"
conditioned on Rating, Recommended IND, Department Name, Age). The held-out set is real reviews from
../shared/data/womens_clothing_reviews.csv that are not in the training file (``--n-heldout``, seeded).

Figures (written as JSON with ``--out``):

* ``oov_rate``: share of the synthetic texts' words (lower-cased ``[a-z']+``) that never occur in the
  training file's texts; ``heldout_oov_rate`` is the same for the held-out real reviews (the floor);
* ``discriminator_auc``: real-vs-synthetic classifier (TF-IDF of words 1-2 + characters 2-5, logistic
  regression), 5-fold cross-validated out-of-fold AUC over n synthetic vs n held-out real texts;
  0.5 = indistinguishable, 1.0 = always told apart;
* ``lift``: the report's "text follows its row" lift per condition column (synthtext.evaluate);
* ``words``: mean words per text, synthetic vs held-out real;
* ``looping_texts``: share of texts more than 30% of whose word 3-grams repeat an earlier one (a sampler
  caught in a loop: "a great. a great. a great."), synthetic vs held-out real;
* ``wall_s`` per stage, and three synthetic texts verbatim.

``--prompt-only`` skips fine-tuning: the base model continues the prompt as it is (no privacy cost:
it never sees the data), the baseline DP fine-tuning must beat. ``--epsilon none`` trains without DP.

    python bench/bench_quality.py --out docs/benchmarks/quality_readme_dp8.json
    python bench/bench_quality.py --prompt-only
    python bench/bench_quality.py --epsilon none
    python bench/bench_quality.py --rows 5000 --out ...   # 5,000 rows of the shared file (held-out excluded)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TEXT = "Review Text"
CONDITIONS = ["Rating", "Recommended IND", "Department Name", "Age"]
SHARED = ROOT.parent / "shared" / "data" / "womens_clothing_reviews.csv"
_WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def oov_rate(texts, vocabulary: set[str]) -> float:
    tokens = [w for t in texts for w in words(t)]
    return float(np.mean([w not in vocabulary for w in tokens])) if tokens else float("nan")


def repetition(text: str, n: int = 3) -> float:
    """Share of the text's word n-grams that repeat an earlier one (0: none; real reviews average 0.002)."""
    w = words(text)
    grams = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def discriminator_auc(real: list[str], synthetic: list[str], seed: int = 0) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline, make_union

    n = min(len(real), len(synthetic))
    rng = np.random.default_rng(seed)
    real = [real[i] for i in rng.choice(len(real), n, replace=False)]
    synthetic = [synthetic[i] for i in rng.choice(len(synthetic), n, replace=False)]
    x, y = real + synthetic, np.r_[np.zeros(n), np.ones(n)]
    features = make_union(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True))
    clf = make_pipeline(features, LogisticRegression(max_iter=2000, C=1.0))
    proba = cross_val_predict(clf, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                              method="predict_proba")[:, 1]
    return float(roc_auc_score(y, proba))


def load_data(csv: str | None, rows: int | None, n_heldout: int, seed: int):
    from synthtext.io import read_csv

    shared = read_csv(SHARED)
    shared = shared[shared[TEXT].map(lambda v: isinstance(v, str) and bool(v.strip()))].reset_index(drop=True)
    if rows is None:
        train = read_csv(csv or ROOT / "examples" / "reviews_500.csv")
        seen = set(train[TEXT].dropna())
        pool = shared[~shared[TEXT].isin(seen)]
        heldout = pool.sample(n=n_heldout, random_state=seed)
    else:  # rows from the shared file; the held-out reviews are drawn first and never trained on
        heldout = shared.sample(n=n_heldout, random_state=seed)
        train = shared.drop(heldout.index).sample(n=rows, random_state=seed + 1).reset_index(drop=True)
    return train, heldout.reset_index(drop=True)


def prompt_only(synth, train: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Sample from the base model itself, prompted exactly as a fine-tuned model would be."""
    from synthtext import prompts
    from synthtext.config import PrivacyConfig, PrivacyLedger, TrainConfig
    from synthtext.generate import generate_texts
    from synthtext.models import TrainedModel, load_base_model, uses_chat_template

    base = load_base_model(synth.model)
    fmt = prompts.PromptFormat(conditioning_columns=CONDITIONS, text_columns=[TEXT],
                               style="instruction" if uses_chat_template(base.tokenizer) else "plain")
    ledger = PrivacyLedger(dp=False, epsilon=None, delta=None, noise_multiplier=None, sample_rate=None, steps=0,
                           epochs=0, accountant=None, max_grad_norm=None, n_records=0, model=base.name)
    trained = TrainedModel(model=base.model, tokenizer=base.tokenizer, base_name=base.name, kind=base.kind,
                           family=base.family, ledger=ledger, train_config=TrainConfig(max_length=256),
                           privacy_config=PrivacyConfig(epsilon=None))
    rows = train.sample(n=n, replace=n > len(train), random_state=seed).reset_index(drop=True)
    texts = generate_texts(trained, [fmt.prompt(r, TEXT) for r in rows.to_dict("records")],
                           temperature=synth.temperature, top_p=synth.top_p, seed=seed)
    rows[TEXT] = [prompts.split_generated(t) for t in texts]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", default=None, help="training file (default examples/reviews_500.csv)")
    ap.add_argument("--rows", type=int, default=None, help="train on N rows of the shared file instead")
    ap.add_argument("--n-heldout", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=None, help="synthetic rows (default: as many as trained on, "
                                                             "at most 1000)")
    ap.add_argument("--epsilon", default="8")
    ap.add_argument("--model", default=None)
    ap.add_argument("--train", default="{}", help="TrainConfig overrides as JSON")
    ap.add_argument("--privacy", default="{}", help="PrivacyConfig overrides as JSON")
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--top-p", type=float, default=None)
    ap.add_argument("--min-p", type=float, default=None)
    ap.add_argument("--no-repeat-ngram", type=int, default=None)
    ap.add_argument("--prompt-only", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--save-csv", default=None, help="write the synthetic rows here")
    ap.add_argument("--save-model", default=None, help="save the fitted synthesizer here")
    ap.add_argument("--load-model", default=None, help="sample from this saved synthesizer instead of fitting")
    args = ap.parse_args()

    import torch

    import synthtext
    from synthtext.config import PrivacyConfig, TrainConfig

    torch.set_num_threads(int(os.environ.get("SYNTHTEXT_THREADS", os.cpu_count() or 1)))
    train, heldout = load_data(args.csv, args.rows, args.n_heldout, args.seed)
    eps = None if args.epsilon.lower() == "none" else float(args.epsilon)
    options = {}
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.top_p is not None:
        options["top_p"] = args.top_p
    if args.min_p is not None:
        options["min_p"] = args.min_p
    if args.no_repeat_ngram is not None:
        options["no_repeat_ngram"] = args.no_repeat_ngram
    synth = synthtext.TextSynthesizer([TEXT], CONDITIONS, epsilon=eps, model=args.model, seed=args.seed,
                                      train=TrainConfig(**json.loads(args.train)),
                                      privacy=PrivacyConfig(**json.loads(args.privacy)), progress=True, **options)
    n = args.sample or min(len(train), 1000)
    timings = {}
    t0 = time.perf_counter()
    if args.prompt_only:
        synthetic = prompt_only(synth, train, n, args.seed)
        timings["generate"] = time.perf_counter() - t0
        ledger, lift = None, {}
    else:
        if args.load_model:
            loaded = synthtext.TextSynthesizer.load(args.load_model)
            loaded.temperature, loaded.top_p, loaded.min_p = synth.temperature, synth.top_p, synth.min_p
            loaded.no_repeat_ngram = synth.no_repeat_ngram
            synth = loaded
        else:
            synth.fit(train)
            timings["fit"] = time.perf_counter() - t0
            timings["train"] = synth.timings_.get("train")
            if args.save_model:
                synth.save(args.save_model, overwrite=True)
        t0 = time.perf_counter()
        synthetic = synth.sample(n)
        timings["generate"] = time.perf_counter() - t0
        ledger = synth.privacy_ledger_["models"][0]
        synth.progress = True
    texts = [t for t in synthetic[TEXT] if isinstance(t, str) and t.strip()]
    real_texts = heldout[TEXT].tolist()
    vocabulary = {w for t in train[TEXT].dropna() for w in words(t)}
    evaluation = synthtext.evaluate(train, synthetic, [TEXT], CONDITIONS, holdout=heldout, embedding="tfidf",
                                    seed=args.seed).to_dict()
    lift = {}  # the report's rule (synthtext.metrics.verdicts): balanced accuracy above chance, synthetic / real
    for column, r in evaluation["columns"][TEXT]["fidelity"]["conditional"].items():
        chance = r["chance_balanced_accuracy"]
        gap = r["real_holdout_balanced_accuracy"] - chance["real_holdout"]
        lift[column] = None if gap < 0.05 else (r["synthetic_balanced_accuracy"] - chance["synthetic"]) / gap
    result = {
        "job": {"rows": len(train), "sample": n, "epsilon": eps, "prompt_only": args.prompt_only,
                "model": args.model or "default", "train": json.loads(args.train),
                "privacy": json.loads(args.privacy), "temperature": synth.temperature, "top_p": synth.top_p,
                "min_p": synth.min_p, "no_repeat_ngram": synth._no_repeat_ngram()},
        "oov_rate": oov_rate(texts, vocabulary), "heldout_oov_rate": oov_rate(real_texts, vocabulary),
        "discriminator_auc": discriminator_auc(real_texts, texts, args.seed),
        "lift": lift,
        "words": {"synthetic": float(np.mean([len(words(t)) for t in texts])) if texts else 0.0,
                  "heldout": float(np.mean([len(words(t)) for t in real_texts]))},
        "empty_texts": int(len(synthetic) - len(texts)),
        # texts caught in a loop: more than 30% of their word 3-grams repeat (real reviews: about none)
        "looping_texts": {"synthetic": float(np.mean([repetition(t) > 0.3 for t in texts])) if texts else 0.0,
                          "heldout": float(np.mean([repetition(t) > 0.3 for t in real_texts]))},
        "ledger": {k: ledger.get(k) for k in ("epsilon", "delta", "noise_multiplier", "sample_rate", "steps",
                                               "epochs")} if ledger else None,
        "train_loss": None if args.prompt_only else [s["loss"] for s in synth.models_[TEXT].train_log.get("steps", [])],
        "wall_s": {k: round(v, 1) for k, v in timings.items() if v is not None},
        "examples": texts[:3],
        "machine": {"cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__},
    }
    print(json.dumps({k: v for k, v in result.items() if k != "train_loss"}, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.save_csv:
        synthetic.to_csv(args.save_csv, index=False)


if __name__ == "__main__":
    main()
