"""The edit protocol from start to end (``python -m fineface_core.evaluate --protocol edit --photos DIR``):
check what can be checked cheaply first (weights, estimator, the output folder), then invert and edit the
photos not yet done, measure what is unmeasured, and write the reports."""
from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass, field, replace

import torch
from tqdm.auto import tqdm

from ..errors import FineFaceError
from ..faces.libreface import load_estimator
from ..weightfiles.loading import load_weights
from . import base_model, edit_generate, edit_measure, edit_report, measure, report
from .edit_jobs import EditProtocol, limit_photos, list_photos, targets as protocol_targets
from .folder import OutputFolder
from .options import EDIT_PROMPT, SIZES, check_labels
from .processes import Processes, current
from .run import DTYPES, Outcome, _check_plotting, file_digest, resolve_device, resolve_dtype


@dataclass
class EditConfig:
    weights: list[tuple[str, str]]  # (label, path)
    estimator: str
    out: str
    photos: str
    protocol: EditProtocol = field(default_factory=EditProtocol)
    settings: edit_generate.EditSettings = field(default_factory=lambda: edit_generate.EditSettings(
        prompt=EDIT_PROMPT))
    identity: str | None = None
    base_model: str | None = None  # None: the weights' family's (options.BASE_MODELS)
    variant: str = "auto"
    scale: str = "raw"
    no_face: str = "skip"
    batch_size: int = 4
    limit: int | None = None  # photos
    device: str = "auto"
    dtype: str = "auto"


def _check(config: EditConfig):
    check_labels(config.weights)
    s = config.settings
    if not 0 <= s.start_step < s.steps:
        raise FineFaceError(f"--start-step {s.start_step}: give a step from 0 to {s.steps - 1} (--steps {s.steps})")
    if s.size is not None and not (64 <= s.size <= 2048 and s.size % 64 == 0):
        raise FineFaceError(f"--size {s.size}: the edit protocol cuts faces as Face Crop does: give a multiple of 64 "
                            "from 64 to 2048 (the paper: 512)")
    if not (0.0 <= s.grow <= 3.0):
        raise FineFaceError(f"--grow {s.grow}: give a number from 0 to 3")
    if s.region not in edit_generate.REGIONS or s.scheduler not in edit_generate.SCHEDULERS:
        raise FineFaceError(f"--edit-region must be one of {edit_generate.REGIONS} and --scheduler one of "
                            f"{edit_generate.SCHEDULERS}")
    if config.scale not in measure.SCALES or config.no_face not in measure.NO_FACE:
        raise FineFaceError(f"--scale must be one of {measure.SCALES} and --no-face one of {measure.NO_FACE}")
    if config.limit is not None and config.limit < 1:
        raise FineFaceError(f"--limit must be 1 or more, not {config.limit} (leave it out for every photo)")
    if config.batch_size < 1:
        raise FineFaceError(f"--batch-size must be 1 or more, not {config.batch_size}")
    _check_plotting()


def for_family(config: EditConfig, family) -> EditConfig:
    """``config`` with what was left to the weights' family filled in (the base model, the square's size)."""
    settings = config.settings if config.settings.size is not None else replace(config.settings,
                                                                                size=SIZES[family.key])
    return replace(config, base_model=config.base_model or base_model.default_base(family), settings=settings)


def evaluate_edits(config: EditConfig, progress: bool = True, processes: Processes | None = None) -> Outcome:
    """Run the edit protocol; under a launcher (``processes``, by default found from the environment) this
    process edits and measures its share of the photos and the main process writes the reports (the others'
    table is "")."""
    procs = current() if processes is None else processes
    _check(config)
    photos = limit_photos(list_photos(config.photos, config.protocol.seed), config.limit)
    mine = procs.share(photos)  # a photo is one unit: one inversion serves all its targets
    targets = protocol_targets(config.protocol)
    device = resolve_device(procs.device if config.device == "auto" and procs.device else config.device)
    dtype = resolve_dtype(config.dtype, device)
    loaded = {label: load_weights(path, config.variant) for label, path in config.weights}
    config = for_family(config, base_model.family_of(loaded))
    measurer = measure.Measurer(load_estimator(config.estimator, device), None,
                                measure.load_image_model(config.identity, device, "identity model")
                                if config.identity else None, config.scale, config.no_face)
    folder = OutputFolder(config.out)
    common = {"protocol": {"kind": "edit", **config.protocol.settings()}, "edit": asdict(config.settings),
              "base_model": config.base_model, "dtype": dtype,
              "estimator": {"sha256": file_digest([config.estimator])}, "scale": config.scale,
              "no_face": config.no_face, "identity": config.identity}
    settings = folder.check(common, {label: {"sha256": file_digest(w.files)} for label, w in loaded.items()})
    labels = [label for label, _ in config.weights]
    damaged = edit_measure.damaged_files(folder, labels, photos, targets)
    if damaged:
        raise FineFaceError(f"{len(damaged)} damaged file(s) in {folder.root}:\n  " + "\n  ".join(damaged[:12])
                            + ("\n  ..." if len(damaged) > 12 else "") + "\nDelete them and run the same command "
                            "again: an image is made again (the same seed gives the same image), a record is measured "
                            "again from its image. Nothing was changed.")

    start = time.perf_counter()
    todo = {label: [(p, edit_generate.pending_targets(folder, label, p, targets)) for p in mine] for label in labels}
    base = base_model.load_checked(config.base_model, base_model.family_of(loaded), device, DTYPES[dtype], loaded) \
        if any(t for v in todo.values() for _, t in v) else None
    if procs.main:
        folder.claim(settings)  # everything is checked and loaded: from here on, work is kept
    procs.wait()
    generated = _edit_all(config, base, loaded, measurer, targets, todo, folder, progress) if base is not None else 0
    del base
    gc.collect()
    generate_seconds = time.perf_counter() - start

    start = time.perf_counter()
    todo = {label: [(p, edit_measure.pending(folder, label, p, targets)) for p in mine] for label in labels}
    with tqdm(total=sum(len(t) for v in todo.values() for _, t in v), desc="measuring", unit="image",
              disable=not progress) as bar:
        measured = sum(edit_measure.measure_photo(folder, label, p, targets, t, measurer, config.batch_size,
                                                  lambda _: bar.update(1))
                       for label in labels for p, t in todo[label])
    measure_seconds = time.perf_counter() - start
    procs.wait()
    if not procs.main:
        return Outcome(generated, measured, generate_seconds, measure_seconds, [], "")

    s = config.settings
    header = (f"{len(photos)} photos x {len(targets)} targets (a replay with no change, {len(targets) - 1} edits); "
              f"{s.steps} steps from step {s.start_step}, cfg {s.guidance:g}, {s.scheduler}, {s.size} px, edit region "
              f"{s.region}; AU MSE: the paper's Eq. (3) (mean L2 error over the 12 AUs); gain: measured change / asked "
              f"change, against the replay; LibreFace readings {config.scale}.\n")
    summaries, table = _write_reports(folder, labels, photos, targets, header)
    return Outcome(generated, measured, generate_seconds, measure_seconds, summaries, table)


def _edit_all(config: EditConfig, base, loaded: dict, measurer, targets, todo: dict, folder: OutputFolder,
              progress: bool) -> int:
    made = 0
    total = sum(len(t) for v in todo.values() for _, t in v)
    with tqdm(total=total, desc="editing", unit="image", disable=not progress) as bar:
        for label, work in todo.items():
            if not any(t for _, t in work):
                continue
            bar.set_postfix_str(label)
            editor = edit_generate.Editor(base, loaded[label], config.settings)
            for photo, pending in work:
                if pending:
                    made += edit_generate.edit_photo(editor, measurer, folder, label, photo, targets, pending,
                                                     config.batch_size, lambda _: bar.update(1))
            del editor  # one patched UNet copy at a time
            gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return made


def _write_reports(folder: OutputFolder, labels, photos, targets, header: str):
    rows, skipped = edit_report.load_rows(folder, labels, photos, targets)
    edit_report.write_csv(folder, rows)
    summaries = [edit_report.summarise(label, rows, len(photos), skipped[label]) for label in labels]
    table = edit_report.markdown(summaries, header)
    report.write_summary_and_plots(folder, table, rows, labels, edit_report.plot_responses, edit_report.plot_cross_talk)
    return summaries, table
