"""What a reliability test tried and found, added up over the session (see conftest.py)."""

from __future__ import annotations

from collections import Counter


class Tally:
    def __init__(self, counts: Counter[str], kinds: set[str]) -> None:
        self.counts = counts
        self.kinds = kinds

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    def fault(self, kind: str) -> None:
        self.kinds.add(kind)

    def lost(self, n: int) -> None:
        self.counts["lost or silently wrong"] += n
