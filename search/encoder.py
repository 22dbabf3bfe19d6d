"""The SigLIP encoder: text and images to L2-normalised 768-dim vectors in one embedding space.

Any SigLIP checkpoint loads through transformers' AutoModel/AutoProcessor, from a Hugging Face id
or a local folder (`GALLERY_EMBEDDING_MODEL`). One `Encoder` per process and model, loaded lazily
on first use (after a Celery worker forks, never at import) behind a lock.

Settings (Django settings, else environment variables of the same name):
  GALLERY_EMBEDDING_MODEL     HF id or folder (default google/siglip-base-patch16-224)
  GALLERY_EMBEDDING_DEVICE    auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps
  GALLERY_TORCH_THREADS       torch CPU threads for this process; 0 leaves torch's default (one
                              per core). Lower it when several workers share a machine.
  GALLERY_EMBEDDING_FALLBACK  1: when the configured model cannot be loaded, use the offline
                              test model (random weights, not semantic) and say so. Default: DEBUG.
  GALLERY_TEST_MODEL_DIR      where that test model is built (default var/test-model)
  GALLERY_QUERY_QUANTIZE      "int8": the encoder that serves QUERIES (get_encoder(for_queries=
                              True)) has its Linear layers dynamically quantised to int8, on CPU
                              only; off by default. Stored vectors always come from the fp32
                              model (embedding workers never quantise).
  GALLERY_ENCODER_RETRY_SECONDS  after a failed load, how long queries are told "unavailable"
                              without trying again (default 30), so a missing model costs one
                              attempt, not one per query.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

if TYPE_CHECKING:
    import torch
    from PIL import Image

logger = logging.getLogger(__name__)

# Part of every feature name: bump it when preprocessing or pooling changes, so that vectors
# computed the old way are never compared with new ones.
ENCODER_VERSION = "v1"

# SigLIP's text tower was trained on texts padded to 64 tokens, and it pools the LAST position,
# so the padding is part of the input. The transformers documentation says so: "When using the
# standalone SiglipTokenizer or SiglipProcessor, make sure to pass padding="max_length" as that's
# how the model was trained" (https://huggingface.co/docs/transformers/model_doc/siglip, usage
# tips; also the examples in transformers' modeling_siglip.py).
TEXT_MAX_LENGTH = 64


class EncoderLoadError(RuntimeError):
    """The configured model cannot be loaded; the message says which and why."""


def setting(name: str, default: str = "") -> str:
    value = getattr(settings, name, None)
    if value is None or value == "":
        value = os.environ.get(name, default)
    return str(value)


def setting_bool(name: str, default: bool) -> bool:
    value = setting(name, "")
    if value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


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


def _offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, in Django settings or the environment: only the
    local Hugging Face cache is searched, so a missing model fails at once instead of waiting on
    network timeouts and retries (minutes on a machine without internet)."""
    return any(setting_bool(name, False) for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _short_name(model_name: str) -> str:
    path = Path(model_name)
    marker = path / "gallery-test-model.json"
    if marker.is_file():
        import json

        info = json.loads(marker.read_text())
        return f"{info['name']}-s{info['seed']}-t{info['version']}"
    if path.is_dir():
        return path.resolve().name
    return model_name.rstrip("/").split("/")[-1]


class Encoder:
    """SigLIP's two towers. Vectors are float32, L2-normalised, one row per input."""

    def __init__(
        self,
        model_name: str,
        *,
        device: str = "auto",
        model: Any = None,
        processor: Any = None,
        feature_name: str | None = None,
    ) -> None:
        import torch

        self.model_name = model_name
        self.device = choose_device(device)
        # fp16 halves memory and uses tensor cores on GPUs; on CPUs fp32 is the fast path
        # (fp16/bf16 matmuls are emulated there and far slower).
        self.dtype = torch.float32 if self.device.type == "cpu" else torch.float16
        if model is None or processor is None:
            model, processor = _load(model_name, dtype=self.dtype)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_processor = processor.image_processor
        self.is_test_model = (Path(model_name) / "gallery-test-model.json").is_file()
        self.quantized = ""  # "int8" once _quantize_int8 has run
        self.feature_name = feature_name or f"{_short_name(model_name)}@{ENCODER_VERSION}"
        self.dimensions = int(self.model.config.vision_config.hidden_size)
        text_dims = int(self.model.config.text_config.projection_size)
        if text_dims != self.dimensions:
            raise EncoderLoadError(
                f"{model_name}: text ({text_dims}) and image ({self.dimensions}) vectors differ "
                "in size; not a SigLIP dual encoder."
            )

    def __repr__(self) -> str:
        dtype = f"{self.dtype}" + (f", {self.quantized}" if self.quantized else "")
        return f"<Encoder {self.feature_name} on {self.device} ({dtype})>"

    # Text ---------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        encoded = self.tokenizer(
            list(texts),
            padding="max_length",
            max_length=TEXT_MAX_LENGTH,
            truncation=True,
            return_tensors="pt",
        )
        return encoded["input_ids"]

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        import torch

        out = []
        for start in range(0, len(texts), batch_size):
            input_ids = self.tokenize(texts[start : start + batch_size]).to(self.device)
            with torch.inference_mode():
                # No attention_mask, as in training: SigLIP attends to its </s> padding (big_vision
                # and open_clip pass no mask; the pad token is the EOS token).
                features = self.model.get_text_features(input_ids=input_ids)
            out.append(_normalise(_pooled(features)))
        return _stack(out, self.dimensions)

    # Images -------------------------------------------------------------------------------------
    def preprocess_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Resize + normalise on the CPU into float32 pixels (n, 3, H, W). Thread-safe: the
        worker pipeline calls it from decoding threads, ahead of the model."""
        return self.image_processor(images=list(images), return_tensors="pt")["pixel_values"]

    def encode_pixels(self, pixel_values: torch.Tensor) -> np.ndarray:
        """The image tower alone, on preprocessed pixels: one forward pass for the whole batch."""
        import torch

        pixels = pixel_values.to(device=self.device, dtype=self.dtype, non_blocking=True)
        with torch.inference_mode():
            features = self.model.get_image_features(pixel_values=pixels)
        return _normalise(_pooled(features))

    def encode_images(self, images: Sequence[Image.Image], *, batch_size: int = 16) -> np.ndarray:
        out = [
            self.encode_pixels(self.preprocess_images(images[start : start + batch_size]))
            for start in range(0, len(images), batch_size)
        ]
        return _stack(out, self.dimensions)


def _pooled(features: Any) -> torch.Tensor:
    # transformers 5 returns a ModelOutput whose pooler_output is the projected embedding;
    # transformers 4 returned the tensor itself.
    return features if not hasattr(features, "pooler_output") else features.pooler_output


def _normalise(features: torch.Tensor) -> np.ndarray:
    import torch

    features = features.float()
    features = features / torch.linalg.vector_norm(features, dim=-1, keepdim=True).clamp_min(1e-12)
    return features.cpu().numpy().astype(np.float32, copy=False)


def _stack(parts: list[np.ndarray], dimensions: int) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, dimensions), dtype=np.float32)


def _load(model_name: str, *, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoProcessor

    is_folder = Path(model_name).is_dir()
    if not is_folder and model_name.startswith((".", "/", "~")):
        raise EncoderLoadError(f"Embedding model folder {model_name!r} does not exist.")
    local_only = is_folder or _offline()
    try:
        try:  # the local cache first: a cached model then loads without touching the network
            processor = AutoProcessor.from_pretrained(model_name, local_files_only=True)
            model = AutoModel.from_pretrained(model_name, local_files_only=True, dtype=dtype)
        except Exception:
            if local_only:
                raise
            processor = AutoProcessor.from_pretrained(model_name)
            model = AutoModel.from_pretrained(model_name, dtype=dtype)
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
    if getattr(model.config, "model_type", "") not in {"siglip", "siglip2"}:
        raise EncoderLoadError(
            f"{model_name!r} is a {model.config.model_type!r} model, not SigLIP."
        )
    return model, processor


# The per-process encoders -----------------------------------------------------------------------
_lock = threading.Lock()
_encoders: dict[str, Encoder] = {}
_failures: dict[str, tuple[float, EncoderLoadError]] = {}  # name -> (when, why) of a failed load
_threads_set = False


def test_model_dir() -> Path:
    return Path(
        setting("GALLERY_TEST_MODEL_DIR", str(Path(settings.BASE_DIR) / "var" / "test-model"))
    )


def _configure_threads() -> None:
    global _threads_set
    if _threads_set:
        return
    threads = int(setting("GALLERY_TORCH_THREADS", "0") or 0)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    _threads_set = True


def query_quantization() -> str:
    """ "int8" or "" (GALLERY_QUERY_QUANTIZE)."""
    value = setting("GALLERY_QUERY_QUANTIZE", "").strip().lower()
    if value in {"", "0", "off", "no", "none", "false", "fp32"}:
        return ""
    if value != "int8":
        raise EncoderLoadError(f"GALLERY_QUERY_QUANTIZE must be 'int8' or empty, not {value!r}.")
    return value


def get_encoder(model_name: str | None = None, *, for_queries: bool = False) -> Encoder:
    """The encoder for `model_name` (default: GALLERY_EMBEDDING_MODEL), loaded once per process.

    When the configured model cannot be loaded and GALLERY_EMBEDDING_FALLBACK is on (the default
    with DEBUG), the offline test model is used instead, with a warning on the console. A load
    that failed is not retried for GALLERY_ENCODER_RETRY_SECONDS: callers get the same error.

    `for_queries=True` is the encoder that serves searches: with GALLERY_QUERY_QUANTIZE=int8 it
    is a separate, int8-quantised instance (the vectors stored by workers stay fp32).
    """
    requested = model_name or str(settings.GALLERY_EMBEDDING_MODEL)
    quantize = query_quantization() if for_queries else ""
    key = f"{quantize}:{requested}" if quantize else requested
    encoder = _encoders.get(key)
    if encoder is not None:
        return encoder
    with _lock:
        encoder = _encoders.get(key)
        if encoder is None:
            fallback = model_name is None
            # A failure is remembered with the fallback setting it happened under.
            failure_key = f"{key}|{fallback and _fallback_enabled()}"
            failed = _failures.get(failure_key)
            retry = float(setting("GALLERY_ENCODER_RETRY_SECONDS", "30") or 0)
            if failed is not None and time.monotonic() - failed[0] < retry:
                raise failed[1]
            _configure_threads()
            try:
                encoder = _create(requested, fallback=fallback)
            except EncoderLoadError as exc:
                _failures[failure_key] = (time.monotonic(), exc)
                raise
            _failures.pop(failure_key, None)
            if quantize:
                _quantize_int8(encoder)
            else:
                _encoders.setdefault(encoder.model_name, encoder)
            _encoders[key] = encoder
    return encoder


def _quantize_int8(encoder: Encoder) -> None:
    """Dynamic int8 quantisation of the Linear layers, IN PLACE (no copy of the fp32 model, so
    the process's peak memory stays at one model). CPU only: quantize_dynamic has no GPU kernels,
    and GPUs are fast enough in fp16.

    Measured on SigLIP base's architecture with RANDOM weights (bench/floor.py): text tower 200
    -> 78 ms, image tower 393 -> 211 ms; agreement with fp32: mean cosine 0.9998, top-10 overlap
    0.956 (images) and 0.916 (texts). Recheck agreement on the real checkpoint before turning
    this on in production (`python -m bench.query --levers` reports it on real paintings).
    """
    if encoder.device.type != "cpu":
        logger.info("GALLERY_QUERY_QUANTIZE ignored on %s: int8 kernels are CPU only", encoder)
        return
    import warnings

    import torch

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which would be a new heavy
        # dependency; the eager API still works on torch 2.13 (revisit on a torch upgrade).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.ao.quantization.quantize_dynamic(
            encoder.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )
    encoder.quantized = "int8"
    logger.info("Quantised the query encoder %r to int8", encoder)


def _fallback_enabled() -> bool:
    return setting_bool("GALLERY_EMBEDDING_FALLBACK", bool(settings.DEBUG))


def _create(model_name: str, *, fallback: bool) -> Encoder:
    device = setting("GALLERY_EMBEDDING_DEVICE", "auto")
    try:
        encoder = Encoder(model_name, device=device)
    except EncoderLoadError as exc:
        if not (fallback and _fallback_enabled()):
            raise
        from search.testmodel import ensure_test_model

        folder = ensure_test_model(test_model_dir())
        message = (
            f"OFFLINE TEST ENCODER: {exc}\nUsing the offline test model in {folder}: random "
            "weights, search results are NOT semantic."
        )
        logger.warning(message)
        print(f"\n*** {message}\n", flush=True)  # noqa: T201 - the console must say so
        encoder = Encoder(str(folder), device=device)
    logger.info("Loaded %r", encoder)
    return encoder


def reset_encoder() -> None:
    """Forget the loaded encoders and failed loads (tests; after GALLERY_EMBEDDING_MODEL
    changes)."""
    global _threads_set
    with _lock:
        _encoders.clear()
        _failures.clear()
        _threads_set = False


def is_offline_test_model() -> bool:
    """True when searches run on the offline test model (pages say "results are not semantic").
    Loads the configured encoder if this process has not yet."""
    return get_encoder().is_test_model
