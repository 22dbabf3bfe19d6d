"""Loading SigLIP checkpoints (a Hugging Face id or a local folder).

Shared by the PyTorch encoder (search/encoder.py) and the ONNX Runtime query encoder
(search/onnx_encoder.py), so that both load, check and name a checkpoint the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    import torch


class EncoderLoadError(RuntimeError):
    """The configured model cannot be loaded; the message says which and why."""


def choose_device(requested: str = "auto") -> torch.device:
    import torch

    requested = (requested or "auto").strip().lower()
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE: only the local Hugging Face cache is searched, so a
    missing model fails at once instead of waiting on network timeouts and retries (minutes on a
    machine without internet)."""
    return bool(settings.HF_HUB_OFFLINE or settings.TRANSFORMERS_OFFLINE)


def short_name(model_name: str) -> str:
    """The checkpoint's part of a feature name."""
    path = Path(model_name)
    marker = path / "gallery-test-model.json"
    if marker.is_file():
        info = json.loads(marker.read_text())
        return f"{info['name']}-s{info['seed']}-t{info['version']}"
    if path.is_dir():
        return path.resolve().name
    return model_name.rstrip("/").split("/")[-1]


def is_test_model(model_name: str) -> bool:
    return (Path(model_name) / "gallery-test-model.json").is_file()


def local_folder(model_name: str) -> Path | None:
    """The folder holding the checkpoint's files: the folder itself, or the Hugging Face cache's
    snapshot of a hub id; None when it is not on this machine (nothing is downloaded here)."""
    path = Path(model_name)
    if path.is_dir():
        return path
    if model_name.startswith((".", "/", "~")):
        return None
    from transformers.utils import cached_file

    try:
        config = cached_file(model_name, "config.json", local_files_only=True)
    except Exception:  # transformers raises OSError or hub errors for a missing entry
        return None
    return Path(config).parent if config else None


def check_siglip(model_name: str, config: Any) -> int:
    """The checkpoint's vector size; EncoderLoadError unless it is a SigLIP dual encoder."""
    if getattr(config, "model_type", "") not in {"siglip", "siglip2"}:
        raise EncoderLoadError(f"{model_name!r} is a {config.model_type!r} model, not SigLIP.")
    dimensions = int(config.vision_config.hidden_size)
    text_dims = int(config.text_config.projection_size)
    if text_dims != dimensions:
        raise EncoderLoadError(
            f"{model_name}: text ({text_dims}) and image ({dimensions}) vectors differ "
            "in size; not a SigLIP dual encoder."
        )
    return dimensions


def load_checkpoint(
    model_name: str, *, dtype: Any, with_model: bool = True, local_only: bool = False
) -> tuple[Any, Any]:
    """(model, processor) of a SigLIP checkpoint; with `with_model=False` the model is its config
    only (the ONNX Runtime encoder needs no PyTorch weights once exported). `local_only`: never
    reach the hub, whatever HF_HUB_OFFLINE says."""
    from transformers import AutoConfig, AutoModel, AutoProcessor

    is_folder = Path(model_name).is_dir()
    if not is_folder and model_name.startswith((".", "/", "~")):
        raise EncoderLoadError(f"Embedding model folder {model_name!r} does not exist.")
    local_only = local_only or is_folder or offline()

    def load(**options: Any) -> tuple[Any, Any]:
        processor = AutoProcessor.from_pretrained(model_name, **options)
        if not with_model:
            return AutoConfig.from_pretrained(model_name, **options), processor
        return AutoModel.from_pretrained(model_name, dtype=dtype, **options), processor

    try:
        try:  # the local cache first: a cached model then loads without touching the network
            model, processor = load(local_files_only=True)
        except Exception:
            if local_only:
                raise
            model, processor = load()
    except Exception as exc:  # transformers raises OSError, ValueError, HF hub errors, ...
        where = "folder" if is_folder else "Hugging Face model"
        hint = (
            " (offline: only the local Hugging Face cache is searched)"
            if local_only and not is_folder
            else ""
        )
        raise EncoderLoadError(
            f"Cannot load the embedding model from {where} {model_name!r}{hint}: {exc}. "
            "Set GALLERY_EMBEDDING_MODEL to a SigLIP checkpoint folder or a cached id, or build "
            "the offline test model with `manage.py build_test_model var/test-model`."
        ) from exc
    config = model if not with_model else model.config
    check_siglip(model_name, config)
    return model, processor


# The weight files `from_pretrained` reads, by preference.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def check_checkpoint(model_name: str, *, dimensions: int) -> None:
    """EncoderLoadError, saying why, unless `model_name` is a SigLIP checkpoint on this machine
    (a folder, or a Hugging Face id in the local cache; nothing is downloaded) whose config and
    processor load with the encoder's own loader, whose weights are there and readable, and
    whose vectors have `dimensions` numbers. Cheap enough for a request: the weights' header is
    read, not the weights."""
    import torch

    model_name = model_name.strip()
    if not model_name:
        raise EncoderLoadError("Name a checkpoint.")
    folder = local_folder(model_name)
    if folder is None:
        raise EncoderLoadError(
            f"{model_name!r} is neither a folder nor a model in this machine's Hugging Face "
            "cache (nothing is downloaded here)."
        )
    config, _processor = load_checkpoint(
        model_name, dtype=torch.float32, with_model=False, local_only=True
    )
    found = check_siglip(model_name, config)
    if found != dimensions:
        raise EncoderLoadError(
            f"{model_name!r} makes {found}-number vectors; this gallery stores {dimensions}."
        )
    weights = next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)
    if weights is None:
        raise EncoderLoadError(
            f"{model_name!r} has a config but no weights ({', '.join(WEIGHT_FILES)})."
        )
    if weights.name == "model.safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(weights), framework="pt") as handle:
                names = list(handle.keys())
        except Exception as exc:  # safetensors raises its own error types for a bad file
            raise EncoderLoadError(f"The weights of {model_name!r} cannot be read: {exc}") from exc
        if not any(name.startswith(("text_model.", "vision_model.")) for name in names):
            raise EncoderLoadError(f"The weights of {model_name!r} hold no SigLIP towers.")
