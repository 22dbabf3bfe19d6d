"""gunicorn config for `bench.query --int8`: each worker quantises its query encoder to int8.

The lever measured without touching search/: after the worker has loaded the app, the encoder is
loaded and its Linear layers are dynamically quantised (torch.ao.quantization.quantize_dynamic),
in place of the cached fp32 model that the retriever will use.
"""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    from bench.floor import quantise_in_place

    quantise_in_place()
