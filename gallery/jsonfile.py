"""A JSON document named on a command line: a file's path, or "-" for standard input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError


def read_json_argument(source: str) -> Any:
    """The JSON document in the file SOURCE (standard input for "-"); a file that cannot be read
    or holds no valid JSON stops the command with a message naming it."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        return json.loads(text)
    except (OSError, ValueError) as exc:
        raise CommandError(f"{source}: {exc}") from exc
