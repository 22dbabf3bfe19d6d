"""Build the bundled demo sample: sample/aic/ from the shared AIC paintings folder.

    python scripts/make_sample.py [SOURCE_DIR] [--count 100] [--size 512] [--quality 80]

Picks `count` paintings spread evenly over the source (sorted by collection, then id, so every
period is represented), downscales each so its longer side is at most `size` px, saves it as a
baseline JPEG without metadata, and writes artworks.json in the source's format (the same
fields; `image` points at the small copy). The same arguments always give the same files.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "aic-paintings"
TARGET = ROOT / "sample" / "aic"


def pick(records: list[dict], count: int) -> list[dict]:
    ordered = sorted(records, key=lambda r: (r["collection"], int(r["id"])))
    if count >= len(ordered):
        return ordered
    step = len(ordered) / count
    return [ordered[int(i * step)] for i in range(count)]


def downscale(data: bytes, *, size: int, quality: int) -> bytes:
    with Image.open(io.BytesIO(data)) as source:
        image = ImageOps.exif_transpose(source).convert("RGB")
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--quality", type=int, default=80)
    args = parser.parse_args(argv)

    records = json.loads((args.source / "artworks.json").read_text(encoding="utf-8"))
    chosen = pick(records, args.count)
    images = TARGET / "images"
    images.mkdir(parents=True, exist_ok=True)
    for old in images.glob("*.jpg"):
        old.unlink()
    total = 0
    out_records = []
    for record in chosen:
        small = downscale(
            (args.source / record["image"]).read_bytes(), size=args.size, quality=args.quality
        )
        name = f"images/{record['id']}.jpg"
        (TARGET / name).write_bytes(small)
        total += len(small)
        out_records.append({**record, "image": name})
    (TARGET / "artworks.json").write_text(
        json.dumps(out_records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"{len(out_records)} paintings, {total / 1e6:.2f} MB of images in {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
