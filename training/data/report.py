"""What reading or preparing data kept and what it left out, so that no row is dropped silently.

Two sorts of loss are told apart: *problems* (the row is broken: a missing image, a bad value) and
*filters* (the row is fine but a documented rule of the paper leaves it out: a small image, a
neutral frame over the neutral share). Both are counted, with a few examples each.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# kind -> how the summary names it
PROBLEMS = {
    "bad_row": "row unreadable",
    "missing_value": "column or value missing",
    "not_a_number": "value not a number",
    "not_finite": "value NaN or inf",
    "out_of_range": "value out of range",
    "missing_file": "image file missing",
    "corrupt_image": "image unreadable",
    "not_an_image": "not an image (by its content)",
    "truncated_image": "image cut short (truncated)",
    "too_many_pixels": "image of too many pixels (decompression bomb?)",
    # The same image in several rows (see generic.drop_duplicates):
    "conflicting_labels": "rows of an image with conflicting AU labels (all dropped)",
    "duplicate_row": "row repeating an earlier one (kept once)",
}
EXAMPLES_PER_KIND = 3


@dataclass
class DataReport:
    source: str
    rows: int = 0  # rows (frames, CSV lines) looked at
    kept: int = 0  # usable samples written or returned
    problems: Counter = field(default_factory=Counter)  # kind -> rows
    filtered: Counter = field(default_factory=Counter)  # filter reason -> rows
    examples: dict = field(default_factory=dict)  # kind or reason -> a few "where: what" strings
    notes: list = field(default_factory=list)  # facts worth a line: defaults applied, columns absent

    def skip(self, kind: str, where: str, count: int = 1) -> None:
        """Count ``count`` broken rows (one example); ``kind`` is one of PROBLEMS."""
        if kind not in PROBLEMS:
            raise KeyError(f"unknown problem kind {kind!r}; one of {', '.join(PROBLEMS)}")
        self.problems[kind] += count
        self._example(kind, where)

    def drop(self, reason: str, where: str | None = None, count: int = 1) -> None:
        """Count ``count`` rows left out by a documented filter."""
        if count <= 0:
            return
        self.filtered[reason] += count
        if where:
            self._example(reason, where)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def _example(self, key: str, where: str) -> None:
        examples = self.examples.setdefault(key, [])
        if len(examples) < EXAMPLES_PER_KIND:
            examples.append(where)

    @property
    def skipped(self) -> int:
        return sum(self.problems.values()) + sum(self.filtered.values())

    def _line(self, key: str, label: str, count: int) -> str:
        examples = self.examples.get(key)
        return f"  {count} {label}" + (f" (e.g. {'; '.join(examples)})" if examples else "")

    def summary(self) -> str:
        lines = [f"{self.source}: {self.rows} rows, {self.kept} usable samples, {self.skipped} skipped"]
        lines += [self._line(k, PROBLEMS[k], n) for k, n in sorted(self.problems.items())]
        lines += [self._line(r, f"filtered: {r}", n) for r, n in sorted(self.filtered.items())]
        lines += [f"  note: {t}" for t in self.notes]
        return "\n".join(lines)
