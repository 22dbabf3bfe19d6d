"""The one check of every text value a visitor sends (API and pages alike), before it reaches SQL.

PostgreSQL refuses NUL in text (a DataError), and a lone surrogate ("\\ud800", valid in JSON
text) cannot be encoded to UTF-8 at all; other control characters are never meaningful in a
search. Each is refused with a message naming the field, as is a value over its length limit.
"""

from __future__ import annotations

import re

from search.errors import RetrievalError

# C0 and C1 controls but tabs and line breaks (whitespace a person may paste), DEL, surrogates.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_NAME_CHARS = 100  # a retriever's name (a slug of at most 100 characters)


class BadText(RetrievalError):
    status_code = 422
    code = "bad_text"


def text_problem(*, value: str, max_length: int | None = None) -> str:
    """Why `value` cannot be accepted ("" when it can), for a message naming its field."""
    if max_length is not None and len(value) > max_length:
        return f"is {len(value)} characters long; the limit is {max_length}"
    for pattern, what in ((_SURROGATE, "an unpaired surrogate"), (_CONTROL, "a control character")):
        found = pattern.search(value)
        if found:
            return f"contains {what} (U+{ord(found.group()):04X}) at position {found.start()}"
    return ""


def check_text(*, field: str, value: str, max_length: int | None = None) -> str:
    """`value` unchanged, or BadText (422) naming `field` and the problem."""
    problem = text_problem(value=value, max_length=max_length)
    if problem:
        raise BadText(f"{field} {problem}.")
    return value
