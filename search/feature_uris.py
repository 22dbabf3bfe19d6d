"""Feature URIs: `<scheme>://<extractor>@<version>/<feature>` names one feature of a collection's
feature extractor, e.g. `mixpeek://image_extractor@v1/google_siglip_base_v1`.

- `scheme` is `gallery` (this gallery's own) or `mixpeek` (so that configurations written for
  Mixpeek's retrievers run unchanged): both resolve here.
- `extractor@version` must be the extractor of at least one collection (gallery/extractors.py);
  a collection whose model changes gets a new version, so a URI never spans two models.
- `feature` is the extractor's output for its model (`gallery.extractors.feature_name`).

`parse_feature_uri` checks the form alone (config validation, no database); `check_feature_uri`
also checks that a collection has the feature (a retriever's save); `model_for_uri` gives the
model a URI's vectors come from (query time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gallery.extractors import ExtractorConfigError, FeatureExtractor, parse_extractor
from gallery.models import Collection

SCHEMES = ("gallery", "mixpeek")
URI_RE = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<extractor>[a-z0-9_-]+)@(?P<version>v[0-9]+)"
    r"/(?P<feature>[a-z0-9_.-]+)$"
)


class UnknownFeatureURI(LookupError):
    """No collection has the feature a URI names; the message lists the known ones."""


@dataclass(frozen=True)
class FeatureURI:
    scheme: str
    extractor: str
    version: str
    feature: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.extractor}@{self.version}/{self.feature}"

    def matches(self, extractor: FeatureExtractor) -> bool:
        return (
            extractor.feature_extractor_name == self.extractor
            and extractor.version == self.version
            and extractor.feature == self.feature
        )


def parse_feature_uri(uri: str) -> FeatureURI:
    """The parts of `uri`; ValueError saying what is wrong with its form."""
    match = URI_RE.match(uri.strip())
    if match is None:
        raise ValueError(
            f"{uri!r} is not a feature URI: expected <scheme>://<extractor>@<version>/<feature>, "
            "e.g. mixpeek://image_extractor@v1/google_siglip_base_v1"
        )
    parsed = FeatureURI(**match.groupdict())
    if parsed.scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {parsed.scheme!r} in {uri!r}: use {' or '.join(SCHEMES)}")
    return parsed


def feature_uri_of(extractor: FeatureExtractor, *, scheme: str = "gallery") -> str:
    return str(
        FeatureURI(
            scheme=scheme,
            extractor=extractor.feature_extractor_name,
            version=extractor.version,
            feature=extractor.feature,
        )
    )


def _extractors() -> list[tuple[str, FeatureExtractor]]:
    found = []
    for name, stored in Collection.objects.values_list("name", "feature_extractor"):
        try:
            found.append((name, parse_extractor(stored)))
        except ExtractorConfigError:
            continue  # refused on save; a row edited by hand is skipped, not fatal
    return found


def model_for_uri(uri: str) -> str:
    """The model whose vectors `uri` addresses. UnknownFeatureURI when no collection has it,
    ValueError when it is not a feature URI."""
    parsed = parse_feature_uri(uri)
    extractors = _extractors()
    for _, extractor in extractors:
        if parsed.matches(extractor):
            return extractor.parameters.model
    known = sorted({feature_uri_of(extractor) for _, extractor in extractors})
    raise UnknownFeatureURI(
        f"no collection has the feature {uri}; the collections' features are: "
        + (", ".join(known) or "none")
        + " (any of them also as mixpeek://...)"
    )


def check_feature_uri(uri: str) -> None:
    """ValueError/UnknownFeatureURI unless some collection has the feature `uri` names."""
    model_for_uri(uri)
