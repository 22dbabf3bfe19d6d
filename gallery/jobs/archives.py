"""Checking a ZIP archive before anything is extracted, and extracting it within the same limits.

The check reads only the archive's central directory: entry count, declared sizes, compression
ratio, and each name (no absolute path, no `..`, no link). Extraction counts the bytes it really
writes, so an archive whose headers understate its sizes is stopped at the same limits.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.template.defaultfilters import filesizeformat

CHUNK = 1024 * 1024


class UnsafeArchiveError(ValueError):
    """An archive refused before extraction; the message says which rule it broke."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int
    max_unpacked_bytes: int
    # Uncompressed / compressed size of one entry; images barely compress, so a high ratio
    # is a bomb, not a collection.
    max_ratio: float = 100.0


def check_zip(*, path: Path, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """The archive's file entries, or UnsafeArchiveError naming the first rule it breaks."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchiveError(f"not a readable ZIP archive ({exc})") from exc
    if len(entries) > limits.max_entries:
        raise UnsafeArchiveError(
            f"it holds {len(entries):,} entries; at most {limits.max_entries:,} are accepted"
        )
    total = 0
    files = []
    for entry in entries:
        _check_name(entry)
        if entry.is_dir():
            continue
        if entry.flag_bits & 0x1:
            raise UnsafeArchiveError(f"{entry.filename!r} is encrypted")
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > CHUNK and ratio > limits.max_ratio:
            raise UnsafeArchiveError(
                f"{entry.filename!r} expands {ratio:,.0f} times (at most "
                f"{limits.max_ratio:,.0f} is accepted): it looks like a ZIP bomb"
            )
        total += entry.file_size
        if total > limits.max_unpacked_bytes:
            raise UnsafeArchiveError(
                f"its files expand to more than {filesizeformat(limits.max_unpacked_bytes)}, "
                "the most accepted"
            )
        files.append(entry)
    return files


def extract_zip(*, path: Path, destination: Path, limits: ArchiveLimits) -> int:
    """Check the archive, then extract its files under `destination`. Returns the number of
    files. Stops with UnsafeArchiveError (and removes what it wrote) when the bytes actually
    written pass the limits the headers declared within."""
    entries = check_zip(path=path, limits=limits)
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    written = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for entry in entries:
                target = (root / entry.filename).resolve()
                if not target.is_relative_to(root):  # checked by name already; a last guard
                    raise UnsafeArchiveError(f"{entry.filename!r} points outside the archive")
                target.parent.mkdir(parents=True, exist_ok=True)
                entry_written = 0
                with archive.open(entry) as source, target.open("wb") as out:
                    while chunk := source.read(CHUNK):
                        entry_written += len(chunk)
                        written += len(chunk)
                        if entry_written > entry.file_size or written > limits.max_unpacked_bytes:
                            raise UnsafeArchiveError(
                                f"{entry.filename!r} expands beyond its declared size"
                            )
                        out.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        shutil.rmtree(destination, ignore_errors=True)
        raise UnsafeArchiveError(f"the archive could not be extracted ({exc})") from exc
    except UnsafeArchiveError:
        shutil.rmtree(destination, ignore_errors=True)
        raise
    return len(entries)


def _check_name(entry: zipfile.ZipInfo) -> None:
    name = entry.filename
    mode = entry.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UnsafeArchiveError(f"{name!r} is a link; links are not accepted")
    # Many writers set permission bits without a file type: only a stated type is checked.
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UnsafeArchiveError(f"{name!r} is not a plain file")
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise UnsafeArchiveError(f"{name!r} is an absolute path")
    if ".." in PurePosixPath(normalised).parts:
        raise UnsafeArchiveError(f"{name!r} climbs out of the archive with '..'")
    if "\x00" in name:
        raise UnsafeArchiveError(f"{name!r} holds a NUL character")
