"""The SigLIP encoder: text and images to L2-normalised 768-dim vectors in one embedding space.

Any SigLIP checkpoint loads through transformers' AutoModel/AutoProcessor, from a Hugging Face id
or a local folder. Each embedding feature names its checkpoint (Feature.model_name): workers load
the checkpoint of the feature a batch is for, web processes the active feature's
(search/features.py); `GALLERY_EMBEDDING_MODEL` is the checkpoint of the first feature. One
`Encoder` per process and checkpoint, loaded lazily on first use (after a Celery worker forks,
never at import) behind a lock; at most MAX_LOADED_CHECKPOINTS stay loaded, the least recently
used is dropped first, so a worker filling a second feature holds two models, not every model
it ever saw.

Settings (declared in gallery/config.py):
  GALLERY_EMBEDDING_MODEL     HF id or folder (default google/siglip-base-patch16-224)
  GALLERY_EMBEDDING_DEVICE    auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps
  GALLERY_TORCH_THREADS       torch CPU threads for this process; 0 leaves torch's default (one
                              per core). Lower it when several workers share a machine.
  GALLERY_EMBEDDING_FALLBACK  1: when the configured model cannot be loaded, use the offline
                              test model (random weights, not semantic) and say so. Default: DEBUG.
  GALLERY_TEST_MODEL_DIR      where that test model is built (default var/test-model)
  GALLERY_QUERY_ENCODER       the encoder that serves QUERIES (get_encoder(for_queries=True)):
                              "onnx" (ONNX Runtime sessions exported from the same checkpoint,
                              exact fp32, search/onnx_encoder.py), "torch" (PyTorch eager), or
                              "auto" (default): onnx on CPU, torch on a GPU. Workers always
                              embed with PyTorch (fp16 on GPUs).
  GALLERY_ONNX_THREADS, GALLERY_ONNX_CACHE_DIR   see search/onnx_encoder.py
  GALLERY_QUERY_QUANTIZE      "int8": the query encoder is PyTorch with its Linear layers
                              dynamically quantised to int8, on CPU only; off by default. Stored
                              vectors always come from the fp32 model.
  GALLERY_ENCODER_RETRY_SECONDS  after a failed load, how long queries are told "unavailable"
                              without trying again (default 30), so a missing model costs one
                              attempt, not one per query.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from search.checkpoint import (
    EncoderLoadError,
    choose_device,
    is_test_model,
    load_checkpoint,
    short_name,
)

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["TEXT_MAX_LENGTH", "Encoder", "EncoderLoadError", "get_encoder"]

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


class Encoder:
    """SigLIP's two towers in PyTorch. Vectors are float32, L2-normalised, one row per input.

    Subclasses swap the towers (`text_tower`, `image_tower`) and keep the rest: tokenisation,
    preprocessing, pooling and normalisation are shared, so every backend sees the same inputs."""

    backend = "torch"
    # What tokenize and preprocess_images return: "pt" (torch tensors) or "np" (numpy arrays).
    tensors = "pt"

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

        self.device = choose_device(device)
        # fp16 halves memory and uses tensor cores on GPUs; on CPUs fp32 is the fast path
        # (fp16/bf16 matmuls are emulated there and far slower).
        self.dtype = torch.float32 if self.device.type == "cpu" else torch.float16
        if model is None or processor is None:
            model, processor = load_checkpoint(model_name, dtype=self.dtype)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self._describe(
            model_name, config=model.config, processor=processor, feature_name=feature_name
        )

    def _describe(
        self, model_name: str, *, config: Any, processor: Any, feature_name: str | None
    ) -> None:
        from search.checkpoint import check_siglip

        self.model_name = model_name
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_processor = processor.image_processor
        self.is_test_model = is_test_model(model_name)
        self.quantized = ""  # "int8" once _quantize_int8 has run
        self.feature_name = feature_name or f"{short_name(model_name)}@{ENCODER_VERSION}"
        self.dimensions = check_siglip(model_name, config)

    def __repr__(self) -> str:
        dtype = f"{self.dtype}" + (f", {self.quantized}" if self.quantized else "")
        return f"<Encoder {self.feature_name} {self.backend} on {self.device} ({dtype})>"

    # Text ---------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> Any:
        """Token ids (n, TEXT_MAX_LENGTH), int64, as a torch tensor or a numpy array (`tensors`)."""
        encoded = self.tokenizer(
            list(texts),
            padding="max_length",
            max_length=TEXT_MAX_LENGTH,
            truncation=True,
            return_tensors=self.tensors,
        )
        return encoded["input_ids"]

    def text_tower(self, input_ids: torch.Tensor) -> Any:
        """The text tower alone: projected, unnormalised features (n, dimensions)."""
        import torch

        with torch.inference_mode():
            # No attention_mask, as in training: SigLIP attends to its </s> padding (big_vision
            # and open_clip pass no mask; the pad token is the EOS token).
            return _pooled(self.model.get_text_features(input_ids=input_ids.to(self.device)))

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        out = [
            normalise(self.text_tower(self.tokenize(texts[start : start + batch_size])))
            for start in range(0, len(texts), batch_size)
        ]
        return _stack(out, self.dimensions)

    # Images -------------------------------------------------------------------------------------
    def preprocess_images(self, images: Sequence[Image.Image]) -> Any:
        """Resize + normalise on the CPU into float32 pixels (n, 3, H, W), a torch tensor or a
        numpy array (`tensors`). Thread-safe: the worker pipeline calls it from decoding
        threads, ahead of the model."""
        pixels = self.image_processor(images=list(images), return_tensors=self.tensors)
        return pixels["pixel_values"]

    def image_tower(self, pixel_values: torch.Tensor) -> Any:
        """The image tower alone: projected, unnormalised features (n, dimensions)."""
        import torch

        pixels = pixel_values.to(device=self.device, dtype=self.dtype, non_blocking=True)
        with torch.inference_mode():
            return _pooled(self.model.get_image_features(pixel_values=pixels))

    def encode_pixels(self, pixel_values: torch.Tensor) -> np.ndarray:
        """The image tower on preprocessed pixels: one forward pass for the whole batch."""
        return normalise(self.image_tower(pixel_values))

    def encode_images(self, images: Sequence[Image.Image], *, batch_size: int = 16) -> np.ndarray:
        out = [
            self.encode_pixels(self.preprocess_images(images[start : start + batch_size]))
            for start in range(0, len(images), batch_size)
        ]
        return _stack(out, self.dimensions)


def _pooled(features: Any) -> Any:
    # transformers 5 returns a ModelOutput whose pooler_output is the projected embedding;
    # transformers 4 returned the tensor itself.
    return features if not hasattr(features, "pooler_output") else features.pooler_output


def normalise(features: Any) -> np.ndarray:
    """L2-normalised float32 rows, from a torch tensor (any device or dtype) or a numpy array."""
    if not isinstance(features, np.ndarray):
        features = features.float().cpu().numpy()
    features = features.astype(np.float32, copy=False)
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _stack(parts: list[np.ndarray], dimensions: int) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, dimensions), dtype=np.float32)


# The per-process encoders -----------------------------------------------------------------------
# The searched feature's and one being filled beside it, plus a collection's own model.
MAX_LOADED_CHECKPOINTS = 3

_lock = threading.Lock()
_encoders: OrderedDict[str, Encoder] = OrderedDict()  # least recently used first
_failures: dict[str, tuple[float, EncoderLoadError]] = {}  # name -> (when, why) of a failed load
_threads_set = False


def test_model_dir() -> Path:
    return Path(settings.GALLERY_TEST_MODEL_DIR)


def _configure_threads() -> None:
    global _threads_set
    if _threads_set:
        return
    threads = settings.GALLERY_TORCH_THREADS
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    _threads_set = True


def query_quantization() -> str:
    """ "int8" or "" (GALLERY_QUERY_QUANTIZE)."""
    value = settings.GALLERY_QUERY_QUANTIZE.strip().lower()
    if value in {"", "0", "off", "no", "none", "false", "fp32"}:
        return ""
    if value != "int8":
        raise EncoderLoadError(f"GALLERY_QUERY_QUANTIZE must be 'int8' or empty, not {value!r}.")
    return value


def query_backend() -> str:
    """ "onnx" or "torch": GALLERY_QUERY_ENCODER, where "auto" (the default) is onnx on a CPU."""
    value = settings.GALLERY_QUERY_ENCODER.strip().lower() or "auto"
    if value == "auto":
        device = choose_device(settings.GALLERY_EMBEDDING_DEVICE)
        return "onnx" if device.type == "cpu" else "torch"
    if value not in {"onnx", "torch"}:
        raise EncoderLoadError(
            f"GALLERY_QUERY_ENCODER must be 'auto', 'onnx' or 'torch', not {value!r}."
        )
    return value


def get_encoder(model_name: str | None = None, *, for_queries: bool = False) -> Encoder:
    """The encoder for `model_name` (default: GALLERY_EMBEDDING_MODEL), loaded once per process.

    When the configured model cannot be loaded and GALLERY_EMBEDDING_FALLBACK is on (the default
    with DEBUG), the offline test model is used instead, with a warning on the console. A load
    that failed is not retried for GALLERY_ENCODER_RETRY_SECONDS: callers get the same error.

    `for_queries=True` is the encoder that serves searches, in the same vector space: on a CPU
    by default ONNX Runtime sessions exported from the same checkpoint (GALLERY_QUERY_ENCODER);
    with GALLERY_QUERY_QUANTIZE=int8 a separate, int8-quantised PyTorch instance.
    """
    requested = model_name or str(settings.GALLERY_EMBEDDING_MODEL)
    variant = ""
    if for_queries:
        variant = query_quantization() or query_backend()
    variant = "" if variant == "torch" else variant  # fp32 PyTorch: the workers' own encoder
    key = f"{variant}:{requested}" if variant else requested
    encoder = _encoders.get(key)
    if encoder is not None:
        _touch(key)
        return encoder
    with _lock:
        encoder = _encoders.get(key)
        if encoder is None:
            fallback = model_name is None
            # A failure is remembered with the fallback setting it happened under.
            failure_key = f"{key}|{fallback and _fallback_enabled()}"
            failed = _failures.get(failure_key)
            retry = settings.GALLERY_ENCODER_RETRY_SECONDS
            if failed is not None and time.monotonic() - failed[0] < retry:
                raise failed[1]
            _configure_threads()
            try:
                if variant == "onnx":
                    from search.onnx_encoder import create_onnx_encoder

                    encoder = create_onnx_encoder(
                        requested, load_torch=lambda: _create(requested, fallback=fallback)
                    )
                else:
                    encoder = _create(requested, fallback=fallback)
            except EncoderLoadError as exc:
                _failures[failure_key] = (time.monotonic(), exc)
                raise
            _failures.pop(failure_key, None)
            if variant == "int8":
                _quantize_int8(encoder)
            elif not variant:
                _encoders.setdefault(encoder.model_name, encoder)
            _encoders[key] = encoder
            _evict()
    return encoder


def _touch(key: str) -> None:
    with contextlib.suppress(KeyError):  # dropped by another thread meanwhile
        _encoders.move_to_end(key)


def _evict() -> None:
    """Drop the least recently used encoders (under every name they are kept by) while more
    than MAX_LOADED_CHECKPOINTS distinct ones are loaded. A caller still holding one keeps using
    it; its memory goes with the last reference."""
    while len({id(e) for e in _encoders.values()}) > MAX_LOADED_CHECKPOINTS:
        _key, oldest = next(iter(_encoders.items()))
        for name in [k for k, e in _encoders.items() if e is oldest]:
            del _encoders[name]
        logger.info("Unloaded %r (least recently used)", oldest)


def loaded_checkpoints() -> list[str]:
    """The checkpoints this process holds an encoder of, least recently used first."""
    return list(dict.fromkeys(e.model_name for e in list(_encoders.values())))


def _quantize_int8(encoder: Encoder) -> None:
    """Dynamic int8 quantisation of the Linear layers, IN PLACE (no copy of the fp32 model, so
    the process's peak memory stays at one model). CPU only: quantize_dynamic has no GPU kernels,
    and GPUs are fast enough in fp16.

    Approximate vectors: keep it only where `python -m bench.quality --model <checkpoint>`
    measures a top-10 agreement with fp32 of at least 0.95 (it prints the verdict), and note
    that its gain depends on the CPU's int8 instructions (VNNI).
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
    return bool(settings.GALLERY_EMBEDDING_FALLBACK)


def _create(model_name: str, *, fallback: bool) -> Encoder:
    device = settings.GALLERY_EMBEDDING_DEVICE
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
