"""The edit protocol's outputs from its records: results.csv (one row per edit), summary.md (one row per
weights file, then a per-AU table each) and PNG plots (measured change against asked change per AU; cross-talk)."""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

import numpy as np

from ..aus import ACTION_UNITS, AU_ORDER
from . import edit_metrics, metrics
from .edit_generate import photo_file, source_record
from .edit_jobs import Photo, Target
from .edit_measure import record_path
from .folder import OutputFolder, atomic_write, read_json
from .report import _fmt, save_au_grid, save_cross_talk


@dataclass
class EditRow:
    label: str
    photo: str
    target: Target
    record: dict
    replay: np.ndarray | None  # [12]: the replay's reading, what changes are measured against

    def _array(self, key):
        v = self.record[key]
        return None if v is None else np.asarray(v, dtype=np.float64)

    @property
    def asked(self) -> np.ndarray:
        return self._array("asked")

    @property
    def measured(self) -> np.ndarray | None:
        return self._array("measured")

    @property
    def asked_change(self) -> np.ndarray:
        return self.asked - self._array("source")

    @property
    def measured_change(self) -> np.ndarray | None:
        m = self.measured
        return None if m is None or self.replay is None else m - self.replay

    def gain(self) -> float:
        change = self.measured_change
        return float("nan") if change is None else edit_metrics.gain(self.asked_change, change)

    def cross_talk(self) -> float:
        m = self.measured
        return float("nan") if m is None or self.replay is None else \
            edit_metrics.edit_cross_talk(self.asked_change, m, self.replay)


def load_rows(folder: OutputFolder, labels: list[str], photos: list[Photo], targets: list[Target]):
    """(the records of every measured edit, each with its photo's replay reading; {label: photos skipped})."""
    rows, skipped = [], {label: 0 for label in labels}
    for label in labels:
        for photo in photos:
            src = source_record(folder, label, photo)
            if os.path.exists(src) and read_json(src).get("skipped"):
                skipped[label] += 1
                continue
            records = {t.name: read_json(p) for t in targets if os.path.exists(p := record_path(folder, label, photo, t))}
            replay = records.get("replay", {}).get("measured")
            replay = None if replay is None else np.asarray(replay, dtype=np.float64)
            rows += [EditRow(label, photo.name, t, records[t.name], replay) for t in targets if t.name in records]
    return rows, skipped


def write_csv(folder: OutputFolder, rows: list[EditRow]):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["weights", "photo", "target", "kind", "au", "level", "image"] + [f"asked_{a}" for a in AU_ORDER]
               + [f"source_{a}" for a in AU_ORDER] + ["face"] + [f"measured_{a}" for a in AU_ORDER]
               + ["au_l2_error", "au_mse", "gain", "cross_talk", "identity", "psnr", "outside_identical"])
    for r in rows:
        m = r.measured
        w.writerow([r.label, r.photo, r.target.name, r.target.kind, r.record["au"] or "", f"{r.target.level:g}",
                    os.path.relpath(photo_file(folder, r.label, Photo("", r.photo, 0), r.target.name), folder.root)]
                   + [f"{v:g}" for v in r.asked] + [f"{v:.4f}" for v in r.record["source"]] + [r.record["face"]]
                   + ([f"{v:.4f}" for v in m] if m is not None else [""] * len(AU_ORDER))
                   + [_fmt(metrics.l2_errors(r.asked[None], m[None])[0], 4) if m is not None else "",
                      _fmt(metrics.per_image_mse(r.asked[None], m[None])[0], 4) if m is not None else "",
                      _fmt(r.gain(), 4), _fmt(r.cross_talk(), 4), _fmt(r.record["identity"], 4),
                      "inf" if r.record["psnr"] == float("inf") else _fmt(r.record["psnr"], 2),
                      _fmt(r.record["outside_identical"], 4)])
    atomic_write(folder.csv, buf.getvalue().encode())


@dataclass
class EditSummary:
    label: str
    mse: dict  # kind -> the paper's AU MSE (mean L2 error) of that kind's edits
    gain: dict  # kind -> mean relative expression gain
    linearity: dict  # kind ("absolute", "relative") -> (mean r, mean slope) over the AUs
    cross_talk: float
    identity: float
    replay_psnr: float  # the worst photo's
    replay_outside: float  # mean share, the replays
    edit_outside: float  # mean share, every other edit
    photos: int
    skipped: int
    no_face: int  # edits without an AU reading
    per_au: list  # (AU, absolute MSE, r abs, slope abs, r rel, slope rel, gain rel, cross-talk)


def _linearity(rows: list[EditRow], i: int, kind: str) -> tuple[float, float]:
    if kind == "absolute":
        pts = [(r.asked[i], r.measured[i]) for r in rows if r.target.kind == kind and r.target.au == i
               and r.measured is not None]
    else:
        pts = [(r.asked_change[i], r.measured_change[i]) for r in rows if r.target.kind == kind and r.target.au == i
               and r.measured_change is not None]
    return metrics.linearity([p[0] for p in pts], [p[1] for p in pts]) if pts else (float("nan"), float("nan"))


def _per_au(rows: list[EditRow]) -> list:
    out = []
    for i, code in enumerate(AU_ORDER):
        mine = [r for r in rows if r.target.au == i]
        if not mine:
            continue
        absolute = [r for r in mine if r.target.kind == "absolute" and r.measured is not None]
        mse = float(np.mean([(r.asked[i] - r.measured[i]) ** 2 for r in absolute])) if absolute else float("nan")
        out.append((code, mse, *_linearity(rows, i, "absolute"), *_linearity(rows, i, "relative"),
                    metrics.nanmean([r.gain() for r in mine if r.target.kind == "relative"]),
                    metrics.nanmean([r.cross_talk() for r in mine])))
    return out


def summarise(label: str, rows: list[EditRow], photos: int, skipped: int) -> EditSummary:
    mine = [r for r in rows if r.label == label]
    edits = [r for r in mine if r.target.kind != "replay"]
    replays = [r for r in mine if r.target.kind == "replay"]

    def mse(kind):
        rs = [r for r in mine if r.target.kind == kind and r.measured is not None]
        return metrics.paper_au_mse(np.stack([r.asked for r in rs]), np.stack([r.measured for r in rs])) if rs \
            else float("nan")

    per_au = _per_au(mine)
    kinds = ("absolute", "relative", "neutral")
    psnrs = [r.record["psnr"] for r in replays]
    return EditSummary(
        label=label, mse={k: mse(k) for k in kinds},
        gain={k: metrics.nanmean([r.gain() for r in mine if r.target.kind == k]) for k in kinds},
        linearity={"absolute": (metrics.nanmean([p[2] for p in per_au]), metrics.nanmean([p[3] for p in per_au])),
                   "relative": (metrics.nanmean([p[4] for p in per_au]), metrics.nanmean([p[5] for p in per_au]))},
        cross_talk=metrics.nanmean([r.cross_talk() for r in edits]),
        identity=metrics.nanmean([r.record["identity"] for r in edits if r.record["identity"] is not None]),
        replay_psnr=float(min(psnrs)) if psnrs else float("nan"),
        replay_outside=metrics.nanmean([r.record["outside_identical"] for r in replays]),
        edit_outside=metrics.nanmean([r.record["outside_identical"] for r in edits]),
        photos=photos, skipped=skipped, no_face=sum(r.measured is None for r in mine), per_au=per_au)


def _db(value: float) -> str:
    return "∞ (exact)" if value == float("inf") else (_fmt(value, 1) or "n/a")


COLUMNS = ["Weights", "Absolute AU MSE ↓", "Relative AU MSE ↓", "Neutral AU MSE ↓", "Gain absolute",
           "Gain relative", "Gain neutral", "Linearity r ↑", "Slope", "Linearity r (relative) ↑", "Slope (relative)",
           "Cross-talk ↓", "Identity ↑", "Replay PSNR (dB) ↑", "Outside face identical, replay",
           "Outside face identical, edits", "Photos (skipped)", "No face"]


def markdown(summaries: list[EditSummary], header: str = "") -> str:
    lines = [header] if header else []
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for s in summaries:
        k = ("absolute", "relative", "neutral")
        cells = ([s.label] + [_fmt(s.mse[x], 2) for x in k] + [_fmt(s.gain[x], 2) for x in k]
                 + [_fmt(v, 2) for v in (*s.linearity["absolute"], *s.linearity["relative"], s.cross_talk, s.identity)]
                 + [_db(s.replay_psnr), _fmt(s.replay_outside, 4), _fmt(s.edit_outside, 4),
                    f"{s.photos} ({s.skipped})", str(s.no_face)])
        lines.append("| " + " | ".join(c or "n/a" for c in cells) + " |")
    for s in summaries:
        if not s.per_au:
            continue
        lines += ["", f"### {s.label}: per AU", "",
                  "| AU | Absolute MSE ↓ | r ↑ | Slope | r (relative) ↑ | Slope (relative) | Gain relative | Cross-talk ↓ |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join([p[0]] + [_fmt(v, 2) or "n/a" for v in p[1:]]) + " |" for p in s.per_au]
    return "\n".join(lines) + "\n"


def plot_responses(folder: OutputFolder, rows: list[EditRow], labels: list[str]) -> str:
    """One panel per AU: the measured change of that AU against the asked change (relative edits: circles,
    absolute: crosses), one colour per weights file, the ideal y = x dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 4, figsize=(14, 10), sharex=True, sharey=True)
    legend = {}
    for i, (au, ax) in enumerate(zip(ACTION_UNITS, axes.flat)):
        ax.set_title(f"{au.code} {au.name}", fontsize=10)
        for n, label in enumerate(labels):
            for kind, marker in (("relative", "o"), ("absolute", "x")):
                pts = [(r.asked_change[i], r.measured_change[i]) for r in rows if r.label == label and r.target.au == i
                       and r.target.kind == kind and r.measured_change is not None]
                if pts:
                    legend[f"{label}, {kind}"] = ax.scatter(*zip(*pts), marker=marker, color=f"C{n}", alpha=0.6)
        legend["measured = asked"] = ax.plot([-5, 5], [-5, 5], "k--", linewidth=0.8)[0]
    return save_au_grid(fig, axes, legend, ("asked change", "measured change (against the replay)"),
                        "Edits: measured change against asked change, per AU (every photo and level)",
                        os.path.join(folder.plots, "edit_response.png"))


def plot_cross_talk(folder: OutputFolder, rows: list[EditRow], label: str) -> str:
    """A 12 x 12 map: row = the AU an edit asked, column = how far each other AU moved from the replay."""
    rs = [r for r in rows if r.label == label and r.target.au is not None and r.measured_change is not None]
    matrix = metrics.cross_talk_matrix([r.target.au for r in rs], np.stack([r.measured for r in rs]),
                                       np.stack([r.replay for r in rs])) if rs else np.full((12, 12), np.nan)
    return save_cross_talk(matrix, os.path.join(folder.plots, f"edit_cross_talk_{label}.png"), "AU the edit asked",
                           f"{label}: edit cross-talk, mean |measured - replay|")
