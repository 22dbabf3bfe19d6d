"""The encoder's floor: each tower's forward pass alone, threads, backends and int8 quantisation.

    python -m bench.floor [--model base|test|FOLDER] [--rounds 15] [--threads 1 2]

run as a script, compares PyTorch eager fp32 with ONNX Runtime fp32 (the default query encoder on
a CPU) on the same inputs, interleaved in one process (one call of each configuration per round,
so a change in the machine's load touches them all alike), and checks that the two give the same
vectors. `--model base` (the default) is SigLIP base's architecture with random weights.

    python -m bench.floor --query-path [--model base] [--rounds 15]

times the query encoder as searches call it (`get_encoder(for_queries=True)`, the settings' thread
count) in a process that loaded no other model, and in a child forked from it.

A text query cannot be faster than the text tower's forward pass; the query path should add
little to it (target: a text query at most ~1.3x the tower). Dynamic int8 quantisation of the
Linear layers is the CPU lever: its agreement with fp32 is measured on real paintings (mean
cosine between the two vectors of one image; top-10 overlap of the neighbours each would
retrieve, among the paintings and in the benchmark collection).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import loadavg, percentiles, timed  # noqa: E402

PHRASE = "a portrait of a woman wearing a blue dress"


def tower_floor(encoder: Any, *, image: Any, runs: int) -> dict[str, Any]:
    """p50/p95 of the text tower (64 tokens) and the image tower (one image), each alone, and of
    the encoder's full calls (tokenise / preprocess included). Any backend."""
    import torch

    ids = encoder.tokenize([PHRASE])
    pixels = encoder.preprocess_images([image])
    return {
        "backend": encoder.backend,
        "torch_threads": torch.get_num_threads(),
        "onnx_threads": getattr(encoder, "threads", None),
        "text_tower_ms": percentiles(timed(lambda: encoder.text_tower(ids), runs=runs, warmup=2)),
        "text_encode_ms": percentiles(
            timed(lambda: encoder.encode_texts([PHRASE]), runs=runs, warmup=1)
        ),
        "image_tower_ms": percentiles(
            timed(lambda: encoder.image_tower(pixels), runs=max(3, runs // 2), warmup=1)
        ),
        "image_encode_ms": percentiles(
            timed(lambda: encoder.encode_images([image]), runs=max(3, runs // 2), warmup=1)
        ),
    }


def thread_sweep(encoder: Any, *, runs: int, threads: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """Text tower p50 per thread count: torch.set_num_threads for PyTorch (the process's
    setting is restored), one session per count for ONNX Runtime."""
    import torch

    ids = encoder.tokenize([PHRASE])
    out: dict[str, Any] = {}
    before = torch.get_num_threads()
    try:
        for n in threads:
            if encoder.backend == "onnx":
                variant = onnx_variant(encoder, threads=n)
            else:
                torch.set_num_threads(n)
                variant = encoder
            out[f"text_tower_ms@{n}"] = percentiles(
                timed(partial(variant.text_tower, ids), runs=runs, warmup=1)
            )
    finally:
        torch.set_num_threads(before)
    return out


def onnx_variant(encoder: Any, *, threads: int, spinning: bool = False) -> Any:
    """Another ONNX Runtime encoder over the same export, with its own thread pool."""
    from search.onnx_encoder import OnnxEncoder

    return OnnxEncoder(
        encoder.model_name,
        export=encoder.export,
        config=_config(encoder.model_name),
        processor=encoder.processor,
        threads=threads,
        spinning=spinning,
    )


def torch_twin(encoder: Any) -> Any:
    """The PyTorch fp32 encoder of the same checkpoint (itself when it is one)."""
    if encoder.backend == "torch" and not encoder.quantized:
        return encoder
    from search.encoder import Encoder

    return Encoder(encoder.model_name, device="cpu")


def _config(model_name: str) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model_name, local_files_only=True)


def quantised(encoder: Any) -> Any:
    """A copy of `encoder` whose Linear layers are dynamically quantised to int8."""
    import warnings

    import torch

    clone = copy.copy(encoder)
    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        clone.model = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(encoder.model), {torch.nn.Linear}, dtype=torch.qint8
        )
    return clone


def int8_lever(
    encoder: Any,
    *,
    images: list[Path],
    phrases: list[str],
    collection: np.ndarray,
    runs: int,
) -> dict[str, Any]:
    """int8 vs fp32: tower timings, and agreement on real paintings and on phrases."""
    import torch
    from PIL import Image

    encoder = torch_twin(encoder)
    q = quantised(encoder)
    ids = encoder.tokenize([PHRASE])
    loaded = [Image.open(p).convert("RGB") for p in images]
    pixels = encoder.preprocess_images(loaded[:1])

    def text_tower() -> None:
        with torch.inference_mode():
            q.model.get_text_features(input_ids=ids)

    def image_tower() -> None:
        with torch.inference_mode():
            q.model.get_image_features(pixel_values=pixels)

    text_ms = percentiles(timed(text_tower, runs=runs, warmup=2))
    image_ms = percentiles(timed(image_tower, runs=max(3, runs // 2), warmup=1))

    fp32_img = encoder.encode_images(loaded, batch_size=8)
    int8_img = q.encode_images(loaded, batch_size=8)
    fp32_txt = encoder.encode_texts(phrases)
    int8_txt = q.encode_texts(phrases)
    return {
        "int8_text_tower_ms": text_ms,
        "int8_image_tower_ms": image_ms,
        "images": len(loaded),
        "image_mean_cosine": round(float(np.mean(np.sum(fp32_img * int8_img, axis=1))), 4),
        "image_min_cosine": round(float(np.min(np.sum(fp32_img * int8_img, axis=1))), 4),
        # Neighbours among the paintings themselves (each image's own vector left out).
        "image_top10_overlap_paintings": _overlap(fp32_img, int8_img, fp32_img, k=10, self_ex=True),
        # Neighbours in the benchmark collection (what a search would return).
        "image_top10_overlap_collection": _overlap(fp32_img, int8_img, collection, k=10),
        "text_mean_cosine": round(float(np.mean(np.sum(fp32_txt * int8_txt, axis=1))), 4),
        "text_top10_overlap_collection": _overlap(fp32_txt, int8_txt, collection, k=10),
    }


def _overlap(
    a: np.ndarray, b: np.ndarray, corpus: np.ndarray, *, k: int, self_ex: bool = False
) -> float:
    """Mean |top-k(a_i) ∩ top-k(b_i)| / k over the corpus (fp32 corpus vectors)."""
    sa, sb = a @ corpus.T, b @ corpus.T
    if self_ex:
        np.fill_diagonal(sa, -np.inf)
        np.fill_diagonal(sb, -np.inf)
    k = min(k, corpus.shape[0] - (1 if self_ex else 0))
    ta = np.argpartition(-sa, k, axis=1)[:, :k]
    tb = np.argpartition(-sb, k, axis=1)[:, :k]
    shared = [len(set(x) & set(y)) for x, y in zip(ta.tolist(), tb.tolist(), strict=True)]
    return round(float(np.mean(shared)) / k, 4)


# The interleaved comparison (python -m bench.floor) -----------------------------------------------
def machine() -> dict[str, Any]:
    """What every figure is reported with: CPU model, cores, load."""
    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "load_1min": loadavg()}


def compare_backends(
    folder: Path, *, rounds: int, threads: tuple[int, ...], image: Any
) -> dict[str, Any]:
    """Median ms of each tower per (backend, threads), interleaved, and ONNX/PyTorch cosines."""
    import torch

    from search.checkpoint import short_name
    from search.encoder import Encoder
    from search.onnx_encoder import OnnxEncoder, onnx_cache_dir
    from search.onnx_export import ensure_export

    pytorch = Encoder(str(folder), device="cpu")
    started = time.perf_counter()
    export, made = ensure_export(
        folder, cache_dir=onnx_cache_dir(), name=short_name(str(folder)), model=pytorch.model
    )
    export_s = round(time.perf_counter() - started, 1)
    configs: dict[str, tuple[Any, int]] = {}
    for n in threads:
        configs[f"pytorch eager fp32, {n} thread(s)"] = (pytorch, n)
        onnx = OnnxEncoder(
            str(folder),
            export=export,
            config=pytorch.model.config,
            processor=pytorch.processor,
            threads=n,
        )
        configs[f"onnx runtime fp32, {n} thread(s)"] = (onnx, n)
    ids = pytorch.tokenize([PHRASE])
    pixels = pytorch.preprocess_images([image])
    ms: dict[str, dict[str, list[float]]] = {k: {"text": [], "image": []} for k in configs}
    before = torch.get_num_threads()
    try:
        for round_ in range(rounds + 1):  # round 0 warms every configuration up, untimed
            for name, (encoder, n) in configs.items():
                torch.set_num_threads(n)
                for tower, run in (
                    ("text", lambda e=encoder: e.text_tower(ids)),
                    ("image", lambda e=encoder: e.image_tower(pixels)),
                ):
                    t = time.perf_counter()
                    run()
                    if round_:
                        ms[name][tower].append((time.perf_counter() - t) * 1000)
    finally:
        torch.set_num_threads(before)
    onnx_any = next(e for e, _ in configs.values() if e.backend == "onnx")
    texts = [PHRASE, "a storm at sea", "", "flowers in a vase " * 20]
    return {
        "export_seconds": export_s if made else None,
        "medians_ms": {
            name: {t: round(statistics.median(v), 1) for t, v in towers.items()}
            for name, towers in ms.items()
        },
        "cosine_text_min": _min_cosine(onnx_any.encode_texts(texts), pytorch.encode_texts(texts)),
        "cosine_image_min": _min_cosine(
            onnx_any.encode_images([image]), pytorch.encode_images([image])
        ),
    }


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(np.min(np.sum(a * b, axis=1))), 6)


# The query path as searches call it (python -m bench.floor --query-path) --------------------------
def query_path(*, runs: int, image: Any) -> dict[str, Any]:
    """p50/p95 of `get_encoder(for_queries=True).encode_texts([text])` and `.encode_images([image])`
    in this process (no other model loaded), then in a child forked from it after the warm-up
    (as gunicorn's preloaded workers are: ONNX Runtime's pool threads do not survive fork), then
    in this process again, so that a change in the machine's load shows."""
    from search.encoder import get_encoder

    encoder = get_encoder(for_queries=True)
    count = iter(range(1 << 30))

    def measure() -> dict[str, Any]:
        return {
            "text_ms": percentiles(
                timed(
                    lambda: encoder.encode_texts([f"{PHRASE} {next(count)}"]), runs=runs, warmup=2
                )
            ),
            "image_ms": percentiles(
                timed(lambda: encoder.encode_images([image]), runs=max(3, runs // 2), warmup=1)
            ),
        }

    result: dict[str, Any] = {"encoder": repr(encoder), "this_process": measure()}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports through the pipe and leaves without Python's shutdown,
        try:  # whose teardown of the inherited ONNX Runtime thread pools would block
            os.close(read)
            with os.fdopen(write, "w") as out:
                out.write(json.dumps(measure()))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        result["forked_child"] = json.loads(fh.read() or "null")
    os.waitpid(pid, 0)
    result["this_process_again"] = measure()
    return result


def _print_query_path(figures: dict[str, Any]) -> None:
    print(f"{figures['encoder']}; load {figures['load_1min']} -> {figures['load_1min_after']}")
    for where in ("this_process", "forked_child", "this_process_again"):
        m = figures[where]
        print(
            f"{where:<20} text p50 {m['text_ms']['p50']:7.1f} p95 {m['text_ms']['p95']:7.1f}"
            f" | image p50 {m['image_ms']['p50']:7.1f} p95 {m['image_ms']['p95']:7.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="base", help="base | test | a checkpoint folder")
    parser.add_argument("--rounds", type=int, default=15, help="timed calls per configuration")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--query-path",
        action="store_true",
        help="time the query encoder as searches call it, here and in a forked child",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django

    django.setup()
    from PIL import Image

    from bench.model import ensure_base_model
    from search.testmodel import ensure_test_model

    test_dir = ROOT / "var" / "test-model"
    if args.model == "test":
        folder = ensure_test_model(test_dir)
    elif args.model == "base":
        folder = ensure_base_model(ROOT / "var" / "siglip-base-random", test_model_dir=test_dir)
    else:
        folder = Path(args.model).resolve()
    from bench.quality import painting_records

    image = Image.open(painting_records()[0][1]).convert("RGB")
    before = machine()
    if args.query_path:
        from django.conf import settings

        settings.GALLERY_EMBEDDING_MODEL = str(folder)
        figures = {"model": folder.name, "machine": before, "load_1min": before["load_1min"]}
        figures.update(query_path(runs=args.rounds, image=image))
        figures["load_1min_after"] = loadavg()
        out = ROOT / "var" / "bench" / "query-path.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=1))
        print(f"{folder.name}: {before['cpu']}, {before['cores']} cores; {out}")
        _print_query_path(figures)
        return
    result = compare_backends(folder, rounds=args.rounds, threads=tuple(args.threads), image=image)
    figures = {"model": folder.name, "rounds": args.rounds, "machine": before, **result}
    figures["load_1min_after"] = loadavg()
    out = ROOT / "var" / "bench" / "floor.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1))
    print(f"{folder.name}: {before['cpu']}, {before['cores']} cores, load {before['load_1min']}")
    print(f"{'median ms':<36}{'text tower':>12}{'image tower':>13}")
    for name, m in figures["medians_ms"].items():
        print(f"{name:<36}{m['text']:>12}{m['image']:>13}")
    print(
        f"min cosine ONNX vs PyTorch: text {figures['cosine_text_min']}, "
        f"image {figures['cosine_image_min']}; load after {figures['load_1min_after']}; {out}"
    )
    if min(figures["cosine_text_min"], figures["cosine_image_min"]) < 0.9999:
        sys.exit("ONNX Runtime vectors differ from PyTorch's (cosine < 0.9999)")


if __name__ == "__main__":
    main()
