"""The cost of the largest accepted query image: time and peak memory growth of decoding it.

    python -m bench.large_image [--side 7999] [--repeats 3]

Writes a JPEG of side × side pixels (just under the 64-megapixel limit at the default), then, each
in a fresh process so that peak memory is its own, decodes it the way a search by image does
(`load_image(..., reduce_to=224)`), the way a visitor's upload is kept (`upload_store`: reduced
decode, a preview, the bytes written), and whole (the full-scale decode, for comparison); and the
largest PNG a query accepts (decoded whole: PNG has no reduced scale). Prints
the seconds (best of --repeats) and the growth of the process's peak RSS over its size before
the first decode, with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("query", "upload", "full", "png-query")


def make_image(*, side: int, path: Path, fmt: str) -> int:
    from PIL import Image

    # A smooth picture compresses to a small file, as the 1 MB image of the report did.
    image = Image.radial_gradient("L").resize((side, side)).convert("RGB")
    image.save(path, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return path.stat().st_size


def run_case(*, case: str, path: Path, repeats: int) -> dict[str, float]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django

    django.setup()
    from gallery.images import load_image
    from gallery.uploads import upload_store
    from search.retriever import QUERY_IMAGE_SIDE

    data = path.read_bytes()
    # Reset the kernel's peak-RSS mark to the current size, so the peak read after is this work's.
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        if case in ("query", "png-query"):
            load_image(data, reduce_to=QUERY_IMAGE_SIDE)
        elif case == "upload":
            upload_store(data=data)
        else:
            load_image(data)
        times.append(time.perf_counter() - started)
    peak = _status_kib("VmHWM")
    return {"seconds": min(times), "peak_rss_growth_mb": (peak - before) / 1024}


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} is not in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=7999)
    parser.add_argument("--png-side", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # a child's one case
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(case=args.case, path=args.path, repeats=args.repeats)))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large.jpg"
        size = make_image(side=args.side, path=path, fmt="JPEG")
        # The largest PNG a query accepts (GALLERY_MAX_FULL_DECODE_PIXELS, 16 megapixels).
        png = Path(folder) / "large.png"
        png_size = make_image(side=args.png_side, path=png, fmt="PNG")
        env = {**os.environ, "GALLERY_QUERY_UPLOAD_DIR": str(Path(folder) / "uploads")}
        results = {}
        for case in CASES:
            command = [sys.executable, "-m", "bench.large_image", "--case", case]
            command += ["--path", str(png if case == "png-query" else path)]
            command += ["--repeats", str(args.repeats)]
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            results[case] = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"{args.side}×{args.side} JPEG, {size / 2**20:.2f} MiB; "
        f"{args.png_side}×{args.png_side} PNG, {png_size / 2**20:.2f} MiB; {_machine()}"
    )
    for case, figures in results.items():
        print(
            f"  {case:<9} {figures['seconds'] * 1000:8.0f} ms   "
            f"peak RSS +{figures['peak_rss_growth_mb']:.0f} MB"
        )


def _machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, load {load}, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
