"""The evaluation's outputs from its per-image records: results.csv (one row per image), summary.md (a table
shaped like the paper's Tables 1-2, then one per-AU table per weights file) and PNG plots."""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

import numpy as np

from ..aus import ACTION_UNITS, AU_ORDER
from . import metrics
from .folder import OutputFolder, atomic_write, read_json
from .protocol import Job


@dataclass
class Row:
    label: str
    job: Job
    face: str
    measured: np.ndarray | None  # [12]
    reference: np.ndarray | None  # [12], the no-AU image's reading
    clip_i: float | None
    identity: float | None

    @property
    def asked(self) -> np.ndarray:
        return np.asarray(self.job.aus, dtype=np.float64)


def load_rows(folder: OutputFolder, labels: list[str], jobs: list[Job], references: dict[int, Job]) -> list[Row]:
    """The AU jobs' records (those measured), each with its reference's reading."""
    rows = []
    for label in labels:
        ref_measured = {}
        for p, ref in references.items():
            path = folder.record(label, ref.name)
            if os.path.exists(path):
                m = read_json(path)["measured"]
                ref_measured[p] = None if m is None else np.asarray(m, dtype=np.float64)
        for job in jobs:
            path = folder.record(label, job.name)
            if not os.path.exists(path):
                continue
            r = read_json(path)
            m = None if r["measured"] is None else np.asarray(r["measured"], dtype=np.float64)
            rows.append(Row(label, job, r["face"], m, ref_measured.get(job.prompt_index), r["clip_i"], r["identity"]))
    return rows


def _fmt(value, digits: int = 3) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _cross_talk(row: Row) -> float:
    if row.measured is None or row.reference is None:
        return float("nan")
    return float(metrics.cross_talk(row.asked[None], row.measured[None], row.reference[None])[0])


def write_csv(folder: OutputFolder, rows: list[Row]):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["weights", "kind", "prompt_index", "prompt", "seed", "image", "asked"]
               + [f"asked_{a}" for a in AU_ORDER] + ["face"] + [f"measured_{a}" for a in AU_ORDER]
               + ["au_l2_error", "au_mse", "cross_talk", "clip_i", "identity"])
    for r in rows:
        has = r.measured is not None
        w.writerow([r.label, r.job.kind, r.job.prompt_index, r.job.prompt, r.job.seed,
                    os.path.relpath(folder.image(r.label, r.job.name), folder.root), r.job.spec]
                   + [f"{v:g}" for v in r.asked] + [r.face]
                   + ([f"{v:.4f}" for v in r.measured] if has else [""] * len(AU_ORDER))
                   + [_fmt(metrics.l2_errors(r.asked[None], r.measured[None])[0], 4) if has else "",
                      _fmt(metrics.per_image_mse(r.asked[None], r.measured[None])[0], 4) if has else "",
                      _fmt(_cross_talk(r), 4), _fmt(r.clip_i, 4), _fmt(r.identity, 4)])
    atomic_write(folder.csv, buf.getvalue().encode())


@dataclass
class Summary:
    label: str
    single_mse: float
    single_clip: float
    combo_mse: float
    combo_clip: float
    linearity_r: float  # mean over the AUs tested
    slope: float  # mean over the AUs tested
    cross_talk: float  # single-AU images
    identity: float
    images: int
    no_face: int
    per_au: list[tuple[str, float, float, float, float]]  # (AU, MSE, r, slope, cross-talk) per tested AU


def summarise(label: str, rows: list[Row]) -> Summary:
    mine = [r for r in rows if r.label == label]
    read = [r for r in mine if r.measured is not None]
    singles = [r for r in read if r.job.kind == "single"]
    combos = [r for r in read if r.job.kind == "combination"]

    def au_mse(rs):
        return metrics.paper_au_mse(np.stack([r.asked for r in rs]), np.stack([r.measured for r in rs])) if rs \
            else float("nan")

    def clip(kind):
        return metrics.nanmean([r.clip_i for r in mine if r.job.kind == kind and r.clip_i is not None])

    per_au = []
    for i, code in enumerate(AU_ORDER):
        rs = [r for r in singles if r.job.single_au == i]
        if not rs:
            continue
        x = np.array([r.asked[i] for r in rs])
        y = np.array([r.measured[i] for r in rs])
        r_, slope = metrics.linearity(x, y)
        per_au.append((code, float(((x - y) ** 2).mean()), r_, slope,
                       metrics.nanmean([_cross_talk(r) for r in rs])))
    return Summary(
        label=label, single_mse=au_mse(singles), single_clip=clip("single"), combo_mse=au_mse(combos),
        combo_clip=clip("combination"), linearity_r=metrics.nanmean([p[2] for p in per_au]),
        slope=metrics.nanmean([p[3] for p in per_au]), cross_talk=metrics.nanmean([_cross_talk(r) for r in singles]),
        identity=metrics.nanmean([r.identity for r in mine if r.identity is not None]),
        images=len(mine), no_face=sum(r.measured is None for r in mine), per_au=per_au)


def markdown(summaries: list[Summary], header: str = "") -> str:
    with_identity = any(np.isfinite(s.identity) for s in summaries)
    cols = ["Weights", "Single AU MSE ↓", "Single CLIP-I", "Combination AU MSE ↓", "Combination CLIP-I",
            "Linearity r ↑", "Slope (1 = calibrated)", "Cross-talk ↓"]
    cols += ["Identity ↑"] if with_identity else []
    cols += ["No face"]
    lines = [header] if header else []
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for s in summaries:
        cells = [s.label, _fmt(s.single_mse, 2), _fmt(s.single_clip, 2), _fmt(s.combo_mse, 2), _fmt(s.combo_clip, 2),
                 _fmt(s.linearity_r, 2), _fmt(s.slope, 2), _fmt(s.cross_talk, 2)]
        cells += [_fmt(s.identity, 2)] if with_identity else []
        cells += [f"{s.no_face} / {s.images}"]
        lines.append("| " + " | ".join(c or "n/a" for c in cells) + " |")
    for s in summaries:
        if not s.per_au:
            continue
        lines += ["", f"### {s.label}: per AU (single-AU images)", "",
                  "| AU | MSE ↓ | Linearity r ↑ | Slope | Cross-talk ↓ |", "|---|---|---|---|---|"]
        lines += [f"| {code} | {_fmt(mse, 2) or 'n/a'} | {_fmt(r_, 2) or 'n/a'} | {_fmt(slope, 2) or 'n/a'} | "
                  f"{_fmt(ct, 2) or 'n/a'} |" for code, mse, r_, slope, ct in s.per_au]
    return "\n".join(lines) + "\n"


def plot_responses(folder: OutputFolder, rows: list[Row], labels: list[str]) -> str:
    """One panel per AU: the mean measured intensity of that AU against the asked one (0 = the no-AU image),
    one line per weights file, the ideal y = x dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 4, figsize=(14, 10), sharex=True, sharey=True)
    top, legend = 5.0, {}
    for i, (au, ax) in enumerate(zip(ACTION_UNITS, axes.flat)):
        ax.set_title(f"{au.code} {au.name}", fontsize=10)
        for label in labels:
            mine = [r for r in rows if r.label == label and r.job.single_au == i and r.measured is not None]
            points: dict[float, list[float]] = {}
            for r in mine:
                points.setdefault(float(r.asked[i]), []).append(r.measured[i])
            # asked 0: each prompt's no-AU image, once
            refs = {r.job.prompt_index: r.reference[i] for r in mine if r.reference is not None}
            if refs:
                points[0.0] = list(refs.values())
            if points:
                xs = sorted(points)
                means = [float(np.mean(points[x])) for x in xs]
                sds = [float(np.std(points[x])) for x in xs]
                legend[label] = ax.errorbar(xs, means, yerr=sds, marker="o", capsize=3, label=label)
                top = max(top, max(xs))
        legend["measured = asked"] = ax.plot([0, top], [0, top], "k--", linewidth=0.8)[0]
    return save_au_grid(fig, axes, legend, ("asked intensity", "measured intensity"),
                        "Measured against asked, single-AU images (mean ± sd over prompts)",
                        os.path.join(folder.plots, "au_response.png"))


def save_au_grid(fig, axes, legend: dict, labels: tuple[str, str], title: str, path: str) -> str:
    """The 3 x 4 per-AU response grid finished (grids, axis labels, one legend below, title) and saved as a PNG;
    both protocols draw theirs here."""
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel(labels[0])
    for ax in axes[:, 0]:
        ax.set_ylabel(labels[1])
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(len(legend), 4))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return _save(fig, path)


def write_summary_and_plots(folder: OutputFolder, table: str, rows: list, labels: list[str], plot_responses,
                            plot_cross_talk):
    """The summary table and the plots (one response grid, a cross-talk map per weights file), for either
    protocol's rows and plotting functions."""
    atomic_write(folder.summary, table.encode())
    plot_responses(folder, rows, labels)
    for label in labels:
        plot_cross_talk(folder, rows, label)


def plot_cross_talk(folder: OutputFolder, rows: list[Row], label: str) -> str:
    """A 12 x 12 map for one weights file: row = the AU asked, column = how far each other AU moved."""
    rs = [r for r in rows if r.label == label and r.job.kind == "single" and r.measured is not None
          and r.reference is not None]
    matrix = metrics.cross_talk_matrix([r.job.single_au for r in rs], np.stack([r.measured for r in rs]),
                                       np.stack([r.reference for r in rs])) if rs else np.full((12, 12), np.nan)
    return save_cross_talk(matrix, os.path.join(folder.plots, f"cross_talk_{label}.png"), "AU asked",
                           f"{label}: cross-talk, mean |measured - no-AU image|")


def save_cross_talk(matrix: np.ndarray, path: str, asked: str, title: str) -> str:
    """The 12 x 12 cross-talk map as a PNG: row = the AU asked (``asked`` labels the axis), column = the AU that
    moved; both protocols draw theirs here."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(matrix, cmap="viridis", vmin=0)
    ax.set_xticks(range(12), AU_ORDER, rotation=90)
    ax.set_yticks(range(12), AU_ORDER)
    ax.set_xlabel("AU that moved (not asked)")
    ax.set_ylabel(asked)
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return path

