"""Begin and end years from a museum's free-text date ("c. 1505", "1461/62", "1890–95")."""

from __future__ import annotations

import re

# A year, optionally a decade ("1630s"), optionally followed by a range end written in full or
# abbreviated ("1890–95", "1461/62", "1580–c. 1600").
_YEAR = re.compile(
    r"(?<!\d)(?P<start>\d{3,4})(?P<decade>s)?"
    r"(?:\s*[–—\-/]\s*(?:c\.\s*)?(?P<end>\d{1,4})(?!\d))?"
)
_CENTURY = re.compile(r"(?<!\d)(?P<n>\d{1,2})(?:st|nd|rd|th)\s+century", re.IGNORECASE)


def parse_years(text: str) -> tuple[int | None, int | None]:
    """(begin, end) covering every year the text mentions, or (None, None) when it names none."""
    spans: list[tuple[int, int]] = []
    for match in _CENTURY.finditer(text):
        first = (int(match["n"]) - 1) * 100
        spans.append((first, first + 99))
    for match in _YEAR.finditer(text):
        start = int(match["start"])
        end = start
        if match["decade"]:
            end = start + (99 if start % 100 == 0 else 9)
        if match["end"]:
            digits = match["end"]
            # "1461/62": the end borrows the start's leading digits.
            end = int(match["start"][: len(match["start"]) - len(digits)] + digits)
            if end < start:  # "1899–02" crosses a century
                end += 10 ** len(digits)
        spans.append((start, end))
    if not spans:
        return None, None
    return min(s for s, _ in spans), max(e for _, e in spans)
