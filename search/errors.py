"""Retrieval errors: each carries the HTTP status the API answers with and a message for people."""

from __future__ import annotations


def error_body(*, detail: str, code: str) -> dict[str, str]:
    """Every error the API answers, whatever its status, has this shape (ErrorOut)."""
    return {"detail": detail, "code": code}


class RetrievalError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NothingToSearch(RetrievalError):
    status_code = 400
    code = "nothing_to_search"


class MissingInput(RetrievalError):
    """A search configured with on_empty = "error" got no input."""

    status_code = 400
    code = "missing_input"


class UnknownRetriever(RetrievalError):
    status_code = 404
    code = "unknown_retriever"


class UnknownArtwork(RetrievalError):
    status_code = 404
    code = "unknown_artwork"


class NotEmbedded(RetrievalError):
    """The artwork exists but has no vector under the feature yet (or no feature is active)."""

    status_code = 409
    code = "not_embedded"


class FeatureUnavailable(RetrievalError):
    """No active feature, or the query encoder belongs to another feature."""

    status_code = 409
    code = "feature_unavailable"


class ImageTooLarge(RetrievalError):
    status_code = 413
    code = "image_too_large"


class BadImage(RetrievalError):
    status_code = 422
    code = "bad_image"


class TextTooLong(RetrievalError):
    status_code = 422
    code = "text_too_long"


class TopKOutOfRange(RetrievalError):
    status_code = 422
    code = "top_k_out_of_range"


class BadPagination(RetrievalError):
    status_code = 422
    code = "bad_pagination"


class BadRetrieverConfig(RetrievalError):
    """A stored configuration that no longer validates (edited in the database directly)."""

    status_code = 500
    code = "bad_retriever_config"


class EncoderUnavailable(RetrievalError):
    """The model that turns a query's text or image into a vector cannot be loaded. Text
    searches fall back to keywords (with a notice); a query left with nothing to run gets this."""

    status_code = 503
    code = "encoder_unavailable"


class BadRegion(RetrievalError):
    """A region outside the picture, empty, or too small in the source image's pixels."""

    status_code = 422
    code = "bad_region"


class TooManyReferences(RetrievalError):
    """More reference (or negative) artworks than settings.SEARCH_MAX_REFERENCES."""

    status_code = 422
    code = "too_many_references"


class BadWeight(RetrievalError):
    """A weight that is not a finite number in [0, MAX_WEIGHT], or names no search."""

    status_code = 422
    code = "bad_weight"
