"""Counting what was skipped while reading data, so nothing is dropped silently."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

PROBLEMS = {
    "missing_file": "image file missing",
    "corrupt_image": "image unreadable",
    "missing_value": "column or value missing",
    "not_a_number": "value not a number",
    "not_finite": "NaN or inf",
    "out_of_range": "intensity out of range",
    "filtered": "left out by a documented filter",
}
EXAMPLES_PER_KIND = 3


@dataclass
class DataReport:
    source: str
    rows: int = 0
    kept: int = 0
    problems: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

    def skip(self, kind: str, where: str):
        if kind not in PROBLEMS:
            raise KeyError(kind)
        self.problems[kind] += 1
        self.examples.setdefault(kind, [])
        if len(self.examples[kind]) < EXAMPLES_PER_KIND:
            self.examples[kind].append(where)

    @property
    def skipped(self) -> int:
        return sum(self.problems.values())

    def summary(self) -> str:
        head = f"{self.source}: {self.rows} rows, {self.kept} usable samples, {self.skipped} skipped"
        parts = [f"{n} {PROBLEMS[k]} (e.g. {'; '.join(self.examples[k])})" for k, n in sorted(self.problems.items())]
        return head + ("" if not parts else ": " + ", ".join(parts))
