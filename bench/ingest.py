"""Ingest throughput: the whole embedding path against the model's forward pass alone.

    python bench/ingest.py [--batch-size N] [--images N] [--device cpu|cuda|auto]
    python bench/ingest.py --device cuda        # one short run on a GPU: every figure at once

Whole path = what a worker does (search.pipeline.embed_artworks): read the stored JPEG, decode
it safely, preprocess (threads, ahead of the model), run the image tower, insert into pgvector.
Model alone = the same image tower on already-preprocessed pixels, same batch size, same images.
The architecture is google/siglip-base-patch16-224's (SiglipConfig defaults, 768-dim) with
random weights built in-process: speed does not depend on the weights, and nothing downloads.
On a GPU the model runs in fp16 (the workers' setting) on batches of the pipeline's GPU default,
decoding uses one thread per core, and the paintings are repeated to make 1,024 images, so that
one run prints images/s for the model alone, for the whole path, and their ratio (target: the
whole path at >= 85 % of the model alone; >= 1,000 images/s on one H100).

It runs against its own database (gallery_bench_ingest on the same server, created and
migrated here), never queues anything on the broker,
and keeps its images in var/bench-media, so the development data is untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--batch-size", type=int, default=0, help="images per forward pass (0: 16 CPU, 64 GPU)"
    )
    parser.add_argument(
        "--images", type=int, default=0, help="images per measurement (0: 32 CPU, 1024 GPU)"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    parser.add_argument("--rounds", type=int, default=1, help="alternating measurements; best kept")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument(
        "--decode-threads", type=int, default=0, help="0: the pipeline default, every core on GPU"
    )
    parser.add_argument(
        "--images-dir",
        type=Path,
        default=Path(
            os.environ.get(
                "GALLERY_SAMPLE_PAINTINGS", ROOT.parent / "shared" / "data" / "aic-paintings"
            )
        ),
    )
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("GALLERY_DATABASE_NAME", "gallery_bench_ingest")
    # Kept between runs beside its database (var/ is git-ignored): re-runs import nothing.
    os.environ["MEDIA_ROOT"] = str(ROOT / "var" / "bench-media")
    _create_database()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run(args)


def _create_database() -> None:
    import psycopg
    from django.db import connection

    # The backend's own parameters (the embedded server starts here when it is the one used).
    params = {**connection.get_connection_params(), "dbname": "postgres"}
    name = connection.settings_dict["NAME"]
    with psycopg.connect(**params, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def run(args: argparse.Namespace) -> None:
    import json

    import torch
    from transformers import SiglipConfig, SiglipImageProcessorPil, SiglipModel, SiglipProcessor
    from transformers import logging as hf_logging

    from gallery.images import load_image
    from gallery.models import Artwork
    from gallery.services import artwork_images_changed, artwork_upsert
    from search.encoder import Encoder
    from search.features import feature_for
    from search.models import Embedding
    from search.pipeline import decode_threads, embed_artworks, model_batch_size
    from search.testmodel import ensure_test_model

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: CUDA is not available on this machine.")
    if args.threads:
        torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    tokenizer = SiglipProcessor.from_pretrained(
        ensure_test_model(ROOT / "var" / "test-model")
    ).tokenizer
    processor = SiglipProcessor(image_processor=SiglipImageProcessorPil(), tokenizer=tokenizer)
    torch.manual_seed(0)
    model = SiglipModel(SiglipConfig())  # = siglip-base-patch16-224's architecture
    encoder = Encoder(
        "bench/siglip-base-patch16-224-random",
        device=args.device,
        model=model,
        processor=processor,
        feature_name="bench-siglip-base-random@v1",
    )
    feature = feature_for(encoder)
    gpu = encoder.device.type == "cuda"
    count = args.images or (1024 if gpu else 32)

    # Importing here must not queue tasks for the real workers.
    artwork_images_changed.disconnect(dispatch_uid="search.queue_embeddings")
    for stale in Artwork.objects.exclude(image=""):
        if not stale.image.storage.exists(stale.image.name or ""):  # media folder was removed
            stale.delete()
    records = json.loads((args.images_dir / "artworks.json").read_text())
    # Repeated paintings are artworks of their own (own id, own stored file), as in a collection.
    ids = []
    for n in range(count):
        r = records[n % len(records)]
        copy = n // len(records)
        ids.append(
            artwork_upsert(
                source="aic",
                external_id=f"{r['id']}-{copy}" if copy else str(r["id"]),
                metadata={"title": r["title"]},
                image_data=(args.images_dir / r["image"]).read_bytes(),
            ).artwork.pk
        )
    n = len(ids)
    pixels = []
    for artwork in Artwork.objects.filter(pk__in=ids).order_by("pk"):
        with artwork.image.open("rb") as fh:
            pixels.append(encoder.preprocess_images([load_image(fh.read()).image])[0])
    batch = args.batch_size or model_batch_size(encoder)
    threads = args.decode_threads or ((os.cpu_count() or 1) if gpu else decode_threads())

    def model_alone() -> float:
        start = time.perf_counter()
        for i in range(0, n, batch):
            encoder.encode_pixels(torch.stack(pixels[i : i + batch]))
        _sync(encoder)
        return time.perf_counter() - start

    def whole_path() -> float:
        Embedding.objects.filter(feature=feature).delete()
        start = time.perf_counter()
        report = embed_artworks(
            ids=ids, encoder=encoder, feature=feature, batch_size=batch, threads=threads
        )
        _sync(encoder)
        elapsed = time.perf_counter() - start
        assert report.embedded == n, report
        return elapsed

    encoder.encode_pixels(torch.stack(pixels[:batch]))  # warm-up: allocator, kernels
    best_model, best_whole = float("inf"), float("inf")
    for _ in range(args.rounds):
        best_model = min(best_model, model_alone())
        best_whole = min(best_whole, whole_path())
    Embedding.objects.filter(feature=feature).delete()

    model_ips, whole_ips = n / best_model, n / best_whole
    print()
    print(
        f"SigLIP base architecture (random weights), {encoder.device} {str(encoder.dtype)[6:]}, "
        f"batch {batch}, {n} images, torch threads {torch.get_num_threads()}, "
        f"decode threads {threads}, cores {os.cpu_count()}, rounds {args.rounds} (best kept)"
    )
    print(f"{'path':<44}{'seconds':>9}{'images/s':>10}{'of model':>10}")
    print(
        f"{'model forward alone (preprocessed pixels)':<44}{best_model:>9.2f}{model_ips:>10.2f}"
        f"{'100.0%':>10}"
    )
    print(
        f"{'whole path (read+decode+preprocess+model+DB)':<44}{best_whole:>9.2f}{whole_ips:>10.2f}"
        f"{whole_ips / model_ips:>10.1%}"
    )
    verdict = "MET" if whole_ips >= 0.85 * model_ips else "NOT MET"
    print(f"target: whole path >= 85% of model alone -> {verdict}")
    from bench.floor import machine

    figures = {
        "device": torch.cuda.get_device_name(encoder.device) if gpu else str(encoder.device),
        "dtype": str(encoder.dtype)[6:],
        "batch": batch,
        "images": n,
        "decode_threads": threads,
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "model_alone_images_per_s": round(model_ips, 2),
        "whole_path_images_per_s": round(whole_ips, 2),
        "whole_over_model": round(whole_ips / model_ips, 4),
    }
    if gpu:
        target = "MET" if whole_ips >= 1000 else "NOT MET"
        print(f"target: whole path >= 1,000 images/s on one H100 -> {target} ({figures['device']})")
    out = ROOT / "var" / "bench" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures))


def _sync(encoder: object) -> None:
    import torch

    if getattr(encoder, "device", None) is not None and encoder.device.type == "cuda":  # type: ignore[attr-defined]
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
