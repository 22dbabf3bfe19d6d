"""Downloading images with the standard library: a timeout, retries with backoff, a size cap."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request

from django.conf import settings

from gallery.importers.common import FetchError

logger = logging.getLogger(__name__)

USER_AGENT = "artwork-gallery-importer/0.1 (+https://github.com/)"
# Statuses worth asking again for; any other HTTP error is final (404 stays 404).
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def fetch_url(
    url: str,
    *,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
    max_bytes: int | None = None,
) -> bytes:
    """GET `url` and return the body. Retries timeouts, connection errors and 5xx/429 up to
    `retries` times, sleeping backoff × 2^attempt between tries; `timeout` bounds the whole
    download of one try, not only each socket read."""
    max_bytes = max_bytes or settings.GALLERY_MAX_UPLOAD_BYTES
    if not url.lower().startswith(("http://", "https://")):
        # urllib would also open file:// and ftp:// URLs; a CSV must not reach local files.
        raise FetchError(f"refusing to fetch {url!r}: only http and https URLs are allowed")
    last: str = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            return _get(url, timeout=timeout, max_bytes=max_bytes)
        except FetchError:
            raise
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code not in RETRY_STATUSES:
                break
        except TimeoutError:
            last = f"timed out after {timeout:g} s"
        except urllib.error.URLError as exc:
            reason = exc.reason
            last = (
                f"timed out after {timeout:g} s"
                if isinstance(reason, TimeoutError)
                else f"connection failed ({reason})"
            )
        except (ConnectionError, OSError) as exc:
            last = f"connection failed ({exc})"
        logger.info("fetch %s: %s (try %d of %d)", url, last, attempt + 1, retries + 1)
    raise FetchError(f"could not fetch {url}: {last}")


def _get(url: str, *, timeout: float, max_bytes: int) -> bytes:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http/https)
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"{url} is larger than {max_bytes / 1e6:.0f} MB")
            if time.monotonic() > deadline:
                raise TimeoutError
            chunks.append(chunk)
    return b"".join(chunks)
