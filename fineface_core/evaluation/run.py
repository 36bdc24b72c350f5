"""One evaluation from start to end: check everything that can be checked cheaply first (weights, estimator,
CLIP, the output folder), then generate what is missing, measure what is unmeasured, and write the reports."""
from __future__ import annotations

import gc
import importlib.util
import os
import time
from dataclasses import asdict, dataclass, field, replace

import torch
from tqdm.auto import tqdm

from ..faces.libreface import load_estimator
from ..errors import FineFaceError
from ..files.digest import file_sha256
from ..weightfiles.loading import load_weights
from . import base_model, generate, measure, report
from .folder import OutputFolder
from .options import CLIP, check_labels, check_numbers
from .processes import Processes, current
from .protocol import Protocol, enumerate_jobs, references_for, subset

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Config:
    weights: list[tuple[str, str]]  # (label, path)
    estimator: str
    out: str
    protocol: Protocol
    clip: str = CLIP
    identity: str | None = None
    base_model: str | None = None  # None: the weights' family's (options.BASE_MODELS)
    variant: str = "auto"
    generation: generate.Generation = field(default_factory=generate.Generation)
    scale: str = "raw"
    no_face: str = "skip"
    batch_size: int = 4
    limit: int | None = None
    device: str = "auto"
    dtype: str = "auto"


@dataclass
class Outcome:
    generated: int
    measured: int
    generate_seconds: float  # wall time of this run's generation (model loading included)
    measure_seconds: float
    summaries: list[report.Summary]
    table: str


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as e:
        raise FineFaceError(f"--device {device} cannot be used here ({str(e).splitlines()[0][:160]}); try "
                            "--device cpu or --device auto") from None
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """auto: half precision on a GPU (fp16), full on a CPU (fp16 is slow and poorly supported there)."""
    if dtype == "auto":
        return "fp16" if device.startswith("cuda") else "fp32"
    if dtype not in DTYPES:
        raise FineFaceError(f"--dtype must be auto, {', '.join(DTYPES)}; not {dtype!r}")
    return dtype


def file_digest(paths) -> list[str]:
    """The files' sha256, sorted: what identifies a weights file (or release folder) or an estimator in the
    folder's settings, wherever it is moved or whatever it is renamed to."""
    return sorted(file_sha256(path) for path in paths)


def for_family(config: Config, family) -> Config:
    """``config`` with what was left to the weights' family filled in: the base model, the image size."""
    return replace(config, base_model=config.base_model or base_model.default_base(family),
                   generation=generate.for_family(config.generation, family))


def _check_plotting():
    # the plots are made last: without matplotlib, fail before any work rather than after hours of it
    if importlib.util.find_spec("matplotlib") is None:
        raise FineFaceError("the plots need matplotlib: pip install 'matplotlib>=3.7' (nothing was started)")


def evaluate(config: Config, on_image=lambda job: None, progress: bool = True,
             processes: Processes | None = None) -> Outcome:
    """Run the evaluation; under a launcher (``processes``, by default found from the environment) this
    process does its share and the main process writes the reports (the others' table is "")."""
    procs = current() if processes is None else processes
    check_labels(config.weights)
    g, p = config.generation, config.protocol
    check_numbers(steps=g.steps, size=g.size, guidance=g.guidance, au_scale=g.au_scale, lora_strength=g.lora_strength,
                  batch_size=config.batch_size, limit=config.limit, seed=p.seed, combination_seed=p.combination_seed)
    if config.scale not in measure.SCALES or config.no_face not in measure.NO_FACE:
        raise FineFaceError(f"--scale must be one of {measure.SCALES} and --no-face one of {measure.NO_FACE}")
    _check_plotting()
    all_jobs = enumerate_jobs(config.protocol)
    jobs = subset(all_jobs, config.limit)
    refs = references_for(config.protocol, jobs)
    device = resolve_device(procs.device if config.device == "auto" and procs.device else config.device)
    dtype = resolve_dtype(config.dtype, device)
    loaded = {label: load_weights(path, config.variant) for label, path in config.weights}
    config = for_family(config, base_model.family_of(loaded))
    estimator = load_estimator(config.estimator, device)
    measurer = measure.Measurer(estimator, measure.load_image_model(config.clip, device, "CLIP model"),
                                measure.load_image_model(config.identity, device, "identity model")
                                if config.identity else None, config.scale, config.no_face)
    folder = OutputFolder(config.out)
    common = {"protocol": config.protocol.settings(), "generation": asdict(config.generation),
              "base_model": config.base_model, "dtype": dtype,
              "estimator": {"sha256": file_digest([config.estimator])}, "scale": config.scale,
              "no_face": config.no_face, "clip": config.clip, "identity": config.identity}
    settings = folder.check(common, {label: {"sha256": file_digest(w.files)} for label, w in loaded.items()})
    everything = refs + jobs  # references first: measuring an AU image needs its reference's record
    labels = [label for label, _ in config.weights]
    folder.check_files(labels, everything)

    start = time.perf_counter()
    todo = {label: generate.pending(folder, label, everything) for label in labels}
    family = base_model.family_of(loaded)
    base = base_model.load_checked(config.base_model, family, device, DTYPES[dtype], loaded) \
        if any(todo.values()) else None
    if procs.main:
        folder.claim(settings)  # everything is checked and loaded: from here on, work is kept
    procs.wait()
    generated = _generate_all(config, base, loaded, everything, folder, on_image, progress, procs) \
        if base is not None else 0
    procs.wait()
    del base
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    generate_seconds = time.perf_counter() - start

    start = time.perf_counter()
    ref_by_prompt = {r.prompt_index: r for r in refs}
    measured = 0
    for stage in (refs, jobs):  # an AU image's record needs its reference's, which another process may write
        measured += _measure_all(config, measurer, labels, stage, ref_by_prompt, folder, progress, procs)
        procs.wait()
    measure_seconds = time.perf_counter() - start
    if not procs.main:
        return Outcome(generated, measured, generate_seconds, measure_seconds, [], "")

    subset_note = f", a --limit {config.limit} subset of the protocol" if len(jobs) < len(all_jobs) else ""
    header = (f"{len(jobs)} AU images per weights file ({len(refs)} no-AU images besides){subset_note}; "
              f"AU MSE: the paper's Eq. (3), mean over images of the L2 norm of the 12-AU error; "
              f"LibreFace readings {config.scale}.\n")
    summaries, table = _write_reports(folder, labels, jobs, ref_by_prompt, header)
    return Outcome(generated, measured, generate_seconds, measure_seconds, summaries, table)


def _mine(procs: Processes, items: list, batch_size: int, path) -> tuple[list[list], int]:
    """This process' fixed batches that hold a job whose file (``path(job)``) is missing, and how many are."""
    batches = [b for b in procs.batches(items, batch_size) if any(not os.path.exists(path(j)) for j in b)]
    return batches, sum(not os.path.exists(path(j)) for b in batches for j in b)


def _generate_all(config: Config, base, loaded: dict, everything: list, folder: OutputFolder, on_image,
                  progress: bool, procs: Processes) -> int:
    generated = 0
    todo = {label: _mine(procs, everything, config.batch_size, lambda j, lb=label: folder.image(lb, j.name))
            for label in loaded}
    with tqdm(total=sum(n for _, n in todo.values()), desc="generating", unit="image", disable=not progress) as bar:
        for label, (batches, _) in todo.items():
            if not batches:
                continue
            bar.set_postfix_str(label)
            ff = base_model.with_weights(base, loaded[label], config.generation.lora_strength)

            def done(job):
                bar.update(1)
                on_image(job)

            for batch in batches:
                generated += generate.generate(ff, batch, folder, label, config.generation, len(batch), done)
            del ff  # one patched UNet copy at a time
            gc.collect()
    return generated


def _measure_all(config: Config, measurer, labels: list[str], stage: list, references: dict, folder: OutputFolder,
                 progress: bool, procs: Processes) -> int:
    todo = {label: _mine(procs, stage, config.batch_size, lambda j, lb=label: folder.record(lb, j.name))
            for label in labels}
    written = 0
    with tqdm(total=sum(n for _, n in todo.values()), desc="measuring", unit="image", disable=not progress) as bar:
        for label, (batches, _) in todo.items():
            cache: dict = {}
            for batch in batches:
                written += measure.measure(batch, references, folder, label, measurer, len(batch),
                                           lambda job: bar.update(1), cache)
    return written


def _write_reports(folder: OutputFolder, labels: list[str], jobs, references: dict, header: str):
    rows = report.load_rows(folder, labels, jobs, references)
    report.write_csv(folder, rows)
    summaries = [report.summarise(label, rows) for label in labels]
    table = report.markdown(summaries, header)
    report.write_summary_and_plots(folder, table, rows, labels, report.plot_responses, report.plot_cross_talk)
    return summaries, table
