"""Encoder quality: do the query encoders agree with PyTorch fp32, and does the model retrieve well?

    python -m bench.quality [--model test|base|FOLDER|HF-ID] [--limit N] [--no-int8]

Every encoder embeds the same inputs: the paintings (the shared AIC set, 267, else the bundled
sample) and a fixed list of text queries. Against PyTorch fp32 (what the workers store) it reports
the vectors' cosine and the top-10 / top-250 agreement of the neighbours each query vector finds
among the paintings' fp32 vectors (image queries leave themselves out). Encoders: ONNX Runtime
fp32 (the default query encoder on a CPU) and PyTorch dynamic int8 (GALLERY_QUERY_QUANTIZE=int8,
kept only if its top-10 agreement is at least 0.95).

Retrieval quality, from the paintings' own metadata (meaningful only for a real checkpoint; on
random weights it is reported and flagged): nDCG@10 of text queries whose relevant paintings are
those whose titles name the subject, and the same-artist rate among each painting's ten nearest
neighbours (find similar), beside the rate chance would give.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXT_QUERIES = [
    "a portrait of a woman",
    "a portrait of a man in a black coat",
    "a landscape with trees and a river",
    "the Virgin and Child",
    "a saint",
    "a still life with flowers in a vase",
    "a beach by the sea",
    "the crucifixion",
    "a young girl",
    "angels in the sky",
    "a city street",
    "haystacks in a field",
    "dancers on a stage",
    "a boat on the water",
    "a winter scene with snow",
    "a religious scene with many figures",
]
# Labelled text queries: relevant = paintings whose title matches the pattern.
LABELLED = {
    "a portrait": r"\bportrait\b",
    "a landscape": r"\blandscape\b",
    "the Virgin and Child": r"\b(virgin|madonna)\b",
    "a saint": r"\bsaints?\b",
    "a still life": r"\bstill life\b",
    "flowers in a vase": r"\b(vase|flowers|bouquet)\b",
    "a beach": r"\bbeach\b",
    "the crucifixion": r"\b(crucifixion|cross)\b",
    "a young girl": r"\bgirls?\b",
    "a mother and child": r"\bchild\b",
    "angels": r"\bangels?\b",
    "a view of Paris": r"\bparis\b",
}
AGREEMENT_TO_KEEP_INT8 = 0.95


def painting_records(folder: Path | None = None) -> list[tuple[dict[str, Any], Path]]:
    """(metadata, image path) of the shared AIC paintings, else of the bundled sample."""
    candidates = [
        folder,
        Path(os.environ["GALLERY_SAMPLE_PAINTINGS"])
        if os.environ.get("GALLERY_SAMPLE_PAINTINGS")
        else None,
        ROOT.parent / "shared" / "data" / "aic-paintings",
        ROOT / "sample" / "aic",
    ]
    for candidate in candidates:
        if candidate is not None and (candidate / "artworks.json").is_file():
            records = json.loads((candidate / "artworks.json").read_text())
            return [
                (r, candidate / r["image"]) for r in records if (candidate / r["image"]).is_file()
            ]
    raise FileNotFoundError("No paintings: neither the shared AIC set nor sample/aic is here.")


def artist(record: dict[str, Any]) -> str:
    name = re.sub(r"\s*\(.*", "", str(record.get("artist") or ""))
    return re.sub(r"^(Attributed to|Workshop of|Circle of|Follower of|After)\s+", "", name).strip()


def top_k(queries: np.ndarray, corpus: np.ndarray, *, k: int, leave_out_self: bool) -> np.ndarray:
    scores = queries @ corpus.T
    if leave_out_self:
        np.fill_diagonal(scores, -np.inf)
    k = min(k, corpus.shape[0] - (1 if leave_out_self else 0))
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def agreement(
    reference: np.ndarray, candidate: np.ndarray, corpus: np.ndarray, *, k: int, self_ex: bool
) -> float:
    """Mean share of the reference's top-k found in the candidate's top-k."""
    a = top_k(reference, corpus, k=k, leave_out_self=self_ex)
    b = top_k(candidate, corpus, k=k, leave_out_self=self_ex)
    shared = [len(set(x) & set(y)) / len(x) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    return round(float(np.mean(shared)), 4)


def compare(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> dict[str, Any]:
    corpus = reference["images"]
    out: dict[str, Any] = {}
    for kind, self_ex in (("images", True), ("texts", False)):
        cos = np.sum(reference[kind] * candidate[kind], axis=1)
        out[kind] = {
            "mean_cosine": round(float(cos.mean()), 6),
            "min_cosine": round(float(cos.min()), 6),
            "top10_agreement": agreement(
                reference[kind], candidate[kind], corpus, k=10, self_ex=self_ex
            ),
            "top250_agreement": agreement(
                reference[kind], candidate[kind], corpus, k=250, self_ex=self_ex
            ),
        }
    return out


def ndcg_at_10(ranked: list[int], relevant: set[int]) -> float:
    gain = sum(1 / math.log2(i + 2) for i, doc in enumerate(ranked[:10]) if doc in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
    return gain / ideal if ideal else 0.0


def retrieval_quality(
    encoder: Any, *, records: list[dict[str, Any]], images: np.ndarray
) -> dict[str, Any]:
    """nDCG@10 of the labelled text queries and the same-artist rate of find similar."""
    queries = {
        q: {i for i, r in enumerate(records) if re.search(p, str(r.get("title", "")).lower())}
        for q, p in LABELLED.items()
    }
    queries = {q: rel for q, rel in queries.items() if len(rel) >= 2}
    text_vectors = encoder.encode_texts(list(queries))
    ranked = top_k(text_vectors, images, k=10, leave_out_self=False)
    ndcg = {
        q: round(ndcg_at_10(r, rel), 4)
        for (q, rel), r in zip(queries.items(), ranked.tolist(), strict=True)
    }
    artists = [artist(r) for r in records]
    counts = Counter(artists)
    with_peers = [i for i, a in enumerate(artists) if a and counts[a] >= 2]
    neighbours = top_k(images, images, k=10, leave_out_self=True)
    same = [np.mean([artists[j] == artists[i] for j in neighbours[i]]) for i in with_peers]
    chance = [(counts[artists[i]] - 1) / (len(records) - 1) for i in with_peers]
    return {
        "text_ndcg@10_mean": round(float(np.mean(list(ndcg.values()))), 4) if ndcg else None,
        "text_ndcg@10": ndcg,
        "similar_same_artist@10": round(float(np.mean(same)), 4) if same else None,
        "similar_same_artist@10_chance": round(float(np.mean(chance)), 4) if chance else None,
        "similar_queries": len(with_peers),
    }


def embed_all(encoder: Any, *, pixels: Any, texts: list[str]) -> dict[str, np.ndarray]:
    """Every encoder gets the same preprocessed pixels (preprocessing is shared code)."""
    images = [encoder.encode_pixels(pixels[i : i + 8]) for i in range(0, len(pixels), 8)]
    return {"images": np.concatenate(images), "texts": encoder.encode_texts(texts)}


def run(*, model: str, limit: int, int8: bool, paintings: Path | None = None) -> dict[str, Any]:
    from PIL import Image

    from bench.floor import machine, quantised
    from search.encoder import Encoder
    from search.onnx_encoder import create_onnx_encoder

    loaded = painting_records(paintings)[: limit or None]
    records = [r for r, _ in loaded]
    images = [Image.open(path).convert("RGB") for _, path in loaded]
    pytorch = Encoder(model, device="cpu")
    onnx = create_onnx_encoder(model, load_torch=lambda: pytorch)
    encoders: dict[str, Any] = {"onnx runtime fp32": onnx}
    if int8:
        encoders["pytorch dynamic int8"] = quantised(pytorch)
    pixels = pytorch.preprocess_images(images)
    reference = embed_all(pytorch, pixels=pixels, texts=TEXT_QUERIES)
    figures: dict[str, Any] = {
        "model": pytorch.feature_name,
        "semantic": not pytorch.is_test_model and "random" not in model,
        "paintings": len(images),
        "text_queries": len(TEXT_QUERIES),
        "machine": machine(),
        "against_pytorch_fp32": {},
    }
    for name, encoder in encoders.items():
        figures["against_pytorch_fp32"][name] = compare(
            reference, embed_all(encoder, pixels=pixels, texts=TEXT_QUERIES)
        )
    if int8:
        int8_figures = figures["against_pytorch_fp32"]["pytorch dynamic int8"]
        worst = min(
            int8_figures["images"]["top10_agreement"], int8_figures["texts"]["top10_agreement"]
        )
        figures["int8_verdict"] = "keep" if worst >= AGREEMENT_TO_KEEP_INT8 else "drop"
    figures["retrieval"] = retrieval_quality(pytorch, records=records, images=reference["images"])
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="test", help="test | base | a folder | a cached HF id")
    parser.add_argument("--limit", type=int, default=0, help="first N paintings (0: all)")
    parser.add_argument("--no-int8", dest="int8", action="store_false")
    parser.add_argument("--paintings", type=Path, default=None, help="folder with artworks.json")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "quality.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django
    from django.conf import settings

    if not settings.configured:
        django.setup()
    from bench.model import ensure_base_model
    from search.testmodel import ensure_test_model

    model = args.model
    if model == "test":
        model = str(ensure_test_model(ROOT / "var" / "test-model"))
    elif model == "base":
        base = ROOT / "var" / "siglip-base-random"
        model = str(ensure_base_model(base, test_model_dir=ROOT / "var" / "test-model"))
    figures = run(model=model, limit=args.limit, int8=args.int8, paintings=args.paintings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1))
    report(figures)
    return figures


def report(figures: dict[str, Any]) -> None:
    m = figures["machine"]
    print(
        f"{figures['model']}: {figures['paintings']} paintings, {figures['text_queries']} texts; "
        f"{m['cpu']}, {m['cores']} cores, load {m['load_1min']}"
    )
    head = ("against pytorch fp32", "kind", "mean cos", "min cos", "top-10", "top-250")
    print(f"{head[0]:<24}{head[1]:<8}{head[2]:>10}{head[3]:>10}{head[4]:>8}{head[5]:>9}")
    for name, kinds in figures["against_pytorch_fp32"].items():
        for kind, f in kinds.items():
            print(
                f"{name:<24}{kind:<8}{f['mean_cosine']:>10.6f}{f['min_cosine']:>10.6f}"
                f"{f['top10_agreement']:>8.3f}{f['top250_agreement']:>9.3f}"
            )
    if "int8_verdict" in figures:
        threshold = AGREEMENT_TO_KEEP_INT8
        print(f"int8 (top-10 agreement >= {threshold} on both): {figures['int8_verdict']}")
    r = figures["retrieval"]
    flag = "" if figures["semantic"] else " (random weights: not meaningful)"
    print(
        f"retrieval{flag}: text nDCG@10 {r['text_ndcg@10_mean']}, find similar same artist@10 "
        f"{r['similar_same_artist@10']} (chance {r['similar_same_artist@10_chance']}, "
        f"{r['similar_queries']} queries)"
    )


if __name__ == "__main__":
    main()
