"""A collection's feature extractor configuration: its schema, validation and naming.

The shape is the case study's:

    {"feature_extractor": {"feature_extractor_name": "image_extractor", "version": "v1",
      "input_mappings": {"image": "image"},
      "parameters": {"model": "siglip-base-patch16-224", "generate_thumbnail": true}}}

- `image_extractor` is the one extractor here: SigLIP over the artwork's image. Its only input
  is `image`, mapped to the artwork's `image` field.
- `version` is "v1", "v2", ...: vectors of one version are never compared with another's, so
  a collection whose model changes gets the next version (see `with_version_for`).
- `parameters.model` is a SigLIP checkpoint: the case study's `siglip-base-patch16-224` (loaded
  from GALLERY_EMBEDDING_MODEL, see search/features.py), a Hugging Face id or a local folder.
- `parameters.generate_thumbnail`: whether imports make a thumbnail of each image.

Each extractor version produces one feature, addressed by a feature URI
`<scheme>://<extractor>@<version>/<feature>` (search/feature_uris.py); `feature_name` gives the
`<feature>` part for a model.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

IMAGE_EXTRACTOR = "image_extractor"
# The case study's checkpoint, by its short name and its Hugging Face id.
DEFAULT_MODEL = "siglip-base-patch16-224"
DEFAULT_MODEL_NAMES = frozenset({DEFAULT_MODEL, "google/siglip-base-patch16-224"})
# The case study names that checkpoint's feature so; other models are named after themselves.
DEFAULT_FEATURE_NAME = "google_siglip_base_v1"
VERSION_RE = re.compile(r"^v([1-9][0-9]{0,5})$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExtractorParameters(_Strict):
    model: str = Field(min_length=1, max_length=500)
    generate_thumbnail: bool = True

    @field_validator("model")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the model must be named")
        return value


class FeatureExtractor(_Strict):
    feature_extractor_name: Literal["image_extractor"]
    version: str = "v1"
    input_mappings: dict[str, str] = Field(default_factory=lambda: {"image": "image"})
    parameters: ExtractorParameters

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not VERSION_RE.match(value):
            raise ValueError(f'the version must look like "v1", "v2", ...; got {value!r}')
        return value

    @field_validator("input_mappings")
    @classmethod
    def _mappings(cls, value: dict[str, str]) -> dict[str, str]:
        # The extractor reads one input, the image; an artwork holds its image in `image`.
        if value != {"image": "image"}:
            raise ValueError(
                "the image_extractor takes one input, mapped from the artwork's image: "
                '{"image": "image"}'
            )
        return value

    @property
    def feature(self) -> str:
        return feature_name(self.parameters.model)


class CollectionConfig(_Strict):
    feature_extractor: FeatureExtractor


class ExtractorConfigError(ValueError):
    """A feature extractor configuration that does not validate; the message names each field."""


def default_extractor() -> dict[str, Any]:
    """The case study's extractor, as stored on the default collection."""
    return {
        "feature_extractor_name": IMAGE_EXTRACTOR,
        "version": "v1",
        "input_mappings": {"image": "image"},
        "parameters": {"model": DEFAULT_MODEL, "generate_thumbnail": True},
    }


def parse_extractor(data: Any) -> FeatureExtractor:
    """Validate a stored extractor (the object under "feature_extractor")."""
    try:
        return FeatureExtractor.model_validate(data)
    except ValidationError as exc:
        raise ExtractorConfigError(_describe(exc, prefix="feature_extractor")) from exc


def parse_collection_config(data: Any) -> FeatureExtractor:
    """Validate a collection configuration as the case study prints it
    ({"feature_extractor": {...}}) and return its extractor."""
    try:
        return CollectionConfig.model_validate(data).feature_extractor
    except ValidationError as exc:
        raise ExtractorConfigError(_describe(exc, prefix="")) from exc


def feature_name(model: str) -> str:
    """The feature part of a feature URI for `model`: the case study's name for its checkpoint,
    else the model's name (a folder's own name, not its path) in lower case with runs of other
    characters as "_"."""
    if model in DEFAULT_MODEL_NAMES:
        return DEFAULT_FEATURE_NAME
    if model.startswith(("/", ".", "~")):
        model = PurePath(model).name
    return re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_") or "model"


def with_version_for(*, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """`new`, with its version raised past `old`'s when the model changed but the version did
    not: a new model's vectors must never be mixed with the old model's under one feature."""
    if not old:
        return new
    old_model = (old.get("parameters") or {}).get("model")
    new_model = (new.get("parameters") or {}).get("model")
    if old_model == new_model or old.get("version") != new.get("version"):
        return new
    match = VERSION_RE.match(str(old.get("version", "")))
    number = int(match.group(1)) if match else 0
    return {**new, "version": f"v{number + 1}"}


def _describe(exc: ValidationError, *, prefix: str) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(
            [prefix, *(str(p) for p in error["loc"])] if prefix else map(str, error["loc"])
        )
        parts.append(f"{where or 'config'}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
