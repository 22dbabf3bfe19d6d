"""The query encoder on ONNX Runtime: SigLIP's towers exported from the configured checkpoint.

Same vectors as the PyTorch encoder (exact fp32; the tokenizer, image processor, pooling and
normalisation are the PyTorch encoder's own code, on numpy arrays) at about twice its speed on
a CPU. The export
is made on first use, or ahead of time by `manage.py export_onnx`, and cached on disk
(search/onnx_export.py); a process whose export exists loads no PyTorch weights at all.

Settings (declared in gallery/config.py):
  GALLERY_ONNX_CACHE_DIR  where exports are kept (default var/onnx beside manage.py); a folder
                          shared by the processes of a machine, writable by the first of them
  GALLERY_ONNX_THREADS    intra-op threads per process (0, the default: GALLERY_TORCH_THREADS
                          when set, else one per core this process may use). One process on a
                          machine: every core (lowest latency). W web processes on C cores:
                          C // W each (at least 1), so that concurrent queries do not fight
                          over cores; requests inside one process share its session. Cores
                          busy with other work: one thread (a pool's threads wait for each
                          other at every operator, so one that is not scheduled stalls all).
                          ONNX Runtime's pool threads do not survive fork: a process forked
                          after its sessions were built (gunicorn's preload_app) runs them on
                          its calling thread only, which suits W >= C workers; with fewer
                          workers than cores, let each build its own (GALLERY_WEB_PRELOAD=0).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from search.checkpoint import EncoderLoadError, load_checkpoint, local_folder, short_name
from search.encoder import Encoder

logger = logging.getLogger(__name__)


def onnx_cache_dir() -> Path:
    return Path(settings.GALLERY_ONNX_CACHE_DIR)


def onnx_threads() -> int:
    for threads in (settings.GALLERY_ONNX_THREADS, settings.GALLERY_TORCH_THREADS):
        if threads > 0:
            return int(threads)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def session_options(*, threads: int, spinning: bool = False) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Idle pool threads sleep instead of spinning: a spinning pool takes cores from the other
    # processes of the machine (web workers, the database) between queries.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # one tower is one chain of operators: nothing to overlap
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return options


class OnnxEncoder(Encoder):
    """The Encoder's public interface with the towers run by ONNX Runtime on the CPU (fp32)."""

    backend = "onnx"
    # Numpy from end to end: no torch operator runs on a query. One large enough to go parallel
    # wakes torch's OpenMP threads, which may still be spinning on the cores when ONNX
    # Runtime's own threads start.
    tensors = "np"

    def __init__(
        self,
        model_name: str,
        *,
        export: Path,
        config: Any,
        processor: Any,
        threads: int,
        spinning: bool = False,
        feature_name: str | None = None,
    ) -> None:
        import onnxruntime as ort
        import torch

        from search.onnx_export import IMAGE_FILE, TEXT_FILE

        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.export = export
        self.configured_threads = threads
        self._built_by = os.getpid()
        self._describe(model_name, config=config, processor=processor, feature_name=feature_name)
        options = session_options(threads=threads, spinning=spinning)
        providers = ["CPUExecutionProvider"]
        self.text_session = ort.InferenceSession(str(export / TEXT_FILE), options, providers)
        self.image_session = ort.InferenceSession(str(export / IMAGE_FILE), options, providers)

    @property
    def threads(self) -> int:
        """The threads a run uses: the configured count in the process that built the sessions;
        one in a process forked from it, where the pool's threads do not exist (a run's work
        is then done by its calling thread)."""
        return self.configured_threads if os.getpid() == self._built_by else 1

    def __repr__(self) -> str:
        return f"<Encoder {self.feature_name} onnx on cpu (float32, {self.threads} threads)>"

    def text_tower(self, input_ids: Any) -> np.ndarray:
        """`input_ids`: a numpy array, or a CPU tensor (the benchmarks feed both backends the
        same tensors)."""
        ids = np.ascontiguousarray(np.asarray(input_ids), dtype=np.int64)
        return self.text_session.run(None, {"input_ids": ids})[0]

    def image_tower(self, pixel_values: Any) -> np.ndarray:
        pixels = np.ascontiguousarray(np.asarray(pixel_values), dtype=np.float32)
        return self.image_session.run(None, {"pixel_values": pixels})[0]


def create_onnx_encoder(model_name: str, *, load_torch: Callable[[], Encoder]) -> Encoder:
    """The ONNX Runtime encoder of `model_name`, exported first if its export is not cached.

    A checkpoint that is not on this machine is loaded by `load_torch` (which downloads it, or
    falls back to the offline test model where that is allowed, or raises EncoderLoadError), and
    exported from the loaded model. A checkpoint ONNX export does not handle (SigLIP 2's
    variable-resolution image tower) or an export that fails is served by PyTorch, and logged."""
    try:
        return _onnx_encoder(model_name, model=None)
    except EncoderLoadError as exc:
        logger.info("ONNX query encoder: %s; loading the checkpoint with PyTorch first", exc)
    encoder = load_torch()
    try:
        return _onnx_encoder(encoder.model_name, model=encoder.model)
    except EncoderLoadError as exc:
        logger.warning("PyTorch serves queries for %s: %s", encoder.model_name, exc)
        return encoder


def _onnx_encoder(model_name: str, *, model: Any) -> OnnxEncoder:
    from search.onnx_export import ensure_export

    folder = local_folder(model_name)
    if folder is None:
        raise EncoderLoadError(f"{model_name!r} is not on this machine")
    import torch

    config, processor = load_checkpoint(model_name, dtype=torch.float32, with_model=False)
    if config.model_type != "siglip":
        raise EncoderLoadError(f"ONNX export supports SigLIP, not {config.model_type!r}")
    try:
        export, made = ensure_export(
            folder, cache_dir=onnx_cache_dir(), name=short_name(model_name), model=model
        )
    except FileNotFoundError as exc:
        raise EncoderLoadError(str(exc)) from exc
    except Exception as exc:  # the exporter raises many kinds; PyTorch still serves queries
        logger.exception("ONNX export of %s failed", model_name)
        raise EncoderLoadError(f"ONNX export failed: {exc}") from exc
    if made:
        logger.info("Exported %s to ONNX in %s", model_name, export)
    return OnnxEncoder(
        model_name, export=export, config=config, processor=processor, threads=onnx_threads()
    )
