"""Exporting SigLIP's two towers to ONNX, cached on disk under a key made of the checkpoint's files.

Each tower is exported with `torch.onnx.export` from the PyTorch model the workers use, with a
dynamic batch axis; its output is the projected, not yet normalised, embedding (the encoder
normalises it exactly as it does PyTorch's). An export lives in `<cache>/<name>-<key>/` where the
key is a SHA-256 over the export format and the content of the checkpoint's config and weight
files: a changed checkpoint gets a new export, an unchanged one is never exported twice.

Safe when several processes start at once: an export is written into a temporary folder and
renamed into place (atomic on one file system), and a lock file makes a second process wait for
the first one's export instead of repeating it. Nothing here needs Django (torch is imported
with this module: import it only to export).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

# Bump when the exported graphs change (inputs, outputs, opset, exporter options).
EXPORT_FORMAT = 1
OPSET = 18
TEXT_FILE = "text.onnx"
IMAGE_FILE = "image.onnx"
INFO_FILE = "export.json"
# The files that define a checkpoint's computation: its config and its weights.
CHECKPOINT_PATTERNS = ("config.json", "*.safetensors", "*.safetensors.index.json", "*.bin")


def checkpoint_files(folder: Path) -> list[Path]:
    files = sorted({p for pattern in CHECKPOINT_PATTERNS for p in folder.glob(pattern)})
    if not any(p.name == "config.json" for p in files) or len(files) < 2:
        raise FileNotFoundError(f"{folder} holds no config.json and weights to export from.")
    return files


def file_digest(path: Path, *, memo_dir: Path) -> str:
    """SHA-256 of a file's content, remembered under `memo_dir` by (path, size, mtime), so a
    process start rehashes nothing unless the file changed."""
    real = path.resolve()
    stat = real.stat()
    memo = memo_dir / (hashlib.sha256(str(real).encode()).hexdigest()[:32] + ".json")
    stamp = {"path": str(real), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(memo.read_text())
        if {k: known.get(k) for k in stamp} == stamp:
            return str(known["sha256"])
    digest = hashlib.sha256()
    with real.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    _write_atomic(memo, json.dumps({**stamp, "sha256": digest.hexdigest()}))
    return digest.hexdigest()


def export_key(folder: Path, *, cache_dir: Path) -> str:
    """The cache key of `folder`'s checkpoint: export format + every file's name and content."""
    key = hashlib.sha256(f"format {EXPORT_FORMAT} opset {OPSET}\n".encode())
    for path in checkpoint_files(folder):
        digest = file_digest(path, memo_dir=cache_dir / "digests")
        key.update(f"{path.name} {digest}\n".encode())
    return key.hexdigest()[:20]


def export_dir(folder: Path, *, cache_dir: Path, name: str) -> Path:
    return cache_dir / f"{_safe(name)}-{export_key(folder, cache_dir=cache_dir)}"


def is_complete(target: Path) -> bool:
    return all((target / f).is_file() for f in (TEXT_FILE, IMAGE_FILE, INFO_FILE))


def ensure_export(
    folder: Path, *, cache_dir: Path, name: str, model: Any = None
) -> tuple[Path, bool]:
    """The export folder of the checkpoint in `folder` and whether this call made it. `model` is
    the loaded PyTorch SiglipModel if the caller has one (else it is loaded from `folder`)."""
    target = export_dir(folder, cache_dir=cache_dir, name=name)
    if is_complete(target):
        return target, False
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _locked(cache_dir / f".{target.name}.lock"):
        if is_complete(target):  # another process exported it while this one waited
            return target, False
        if model is None:
            from transformers import AutoModel

            model = AutoModel.from_pretrained(folder, local_files_only=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
        try:
            export_towers(model, work=work)
            (work / INFO_FILE).write_text(json.dumps(_info(folder), indent=1))
            work.chmod(0o755)
            if target.exists():  # an incomplete leftover (a crash between files): replace it
                shutil.rmtree(target)
            try:
                os.rename(work, target)
            except OSError:
                if not is_complete(target):  # a process without the lock won: theirs is as good
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target, True


def export_towers(model: Any, *, work: Path) -> None:
    """Write text.onnx (input_ids int64 (n, 64) -> features) and image.onnx (pixel_values float32
    (n, 3, H, W) -> features) for a PyTorch SiglipModel, in fp32 on the CPU."""
    import copy
    import logging

    model = model if _is_fp32_cpu(model) else copy.deepcopy(model).float().cpu()
    model.eval()
    text_len = int(model.config.text_config.max_position_embeddings)
    size = int(model.config.vision_config.image_size)
    towers = [
        (_TextTower(model), torch.ones((2, text_len), dtype=torch.long), "input_ids", TEXT_FILE),
        (_ImageTower(model), torch.zeros((2, 3, size, size)), "pixel_values", IMAGE_FILE),
    ]
    # The graph optimisers log every folded constant and deduplicated weight at INFO.
    quiet = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        for tower, example, input_name, filename in towers:
            _export_one(tower, example=example, input_name=input_name, path=work / filename)
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


def _export_one(tower: Any, *, example: torch.Tensor, input_name: str, path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter and deprecation chatter, not errors
        program = torch.onnx.export(
            tower,
            (example,),
            input_names=[input_name],
            output_names=["features"],
            dynamic_shapes={input_name: {0: torch.export.Dim("batch")}},
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    if program is None:
        raise RuntimeError(f"torch.onnx.export returned no program for {path.name}")
    program.save(str(path), external_data=True)


def _is_fp32_cpu(model: Any) -> bool:
    parameter = next(model.parameters())
    return bool(parameter.dtype == torch.float32 and parameter.device.type == "cpu")


class _TextTower(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # No attention mask, as in training and in the PyTorch encoder.
        return _pooled(self.model.get_text_features(input_ids=input_ids))


class _ImageTower(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return _pooled(self.model.get_image_features(pixel_values=pixel_values))


def _pooled(features: Any) -> Any:
    return features if not hasattr(features, "pooler_output") else features.pooler_output


def _info(folder: Path) -> dict[str, Any]:
    import onnx

    return {
        "format": EXPORT_FORMAT,
        "opset": OPSET,
        "checkpoint": [p.name for p in checkpoint_files(folder)],
        "torch": torch.__version__,
        "onnx": onnx.__version__,
    }


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "model"
