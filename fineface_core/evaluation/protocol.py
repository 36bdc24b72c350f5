"""The paper's evaluation protocol (Section 5) as a list of jobs: which prompt, which AU vector, which seed.

Per prompt: each tested AU alone at each intensity (12 x 5), plus seeded random combinations (50), all with
the prompt's one seed, so that they and the prompt's no-AU image (its *reference*, which CLIP-I and
cross-talk compare against) start from the same noise. 15 prompts give 15 x 12 x 5 + 15 x 50 = 1,650 jobs;
the 15 references come on top (the paper's count leaves them out).

The paper does not say how its combinations were drawn. Here: a number of AUs uniform in
``combination_size``, the AUs drawn without replacement from the tested ones, each at an intensity drawn
from ``combination_intensities``; the generator is seeded by (combination_seed, prompt index), so adding a
prompt changes no other prompt's combinations.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..aus import AU_ORDER, N_AUS, SAFE_MAX, SAFE_MIN, format_aus
from ..errors import FineFaceError
from .options import COMBINATION_SIZE, COMBINATIONS, INTENSITIES, PROMPTS_FILE  # noqa: F401 (PROMPTS_FILE: API)

KINDS = ("reference", "single", "combination")


@dataclass(frozen=True)
class Protocol:
    prompts: tuple[str, ...]
    aus: tuple[str, ...] = AU_ORDER  # the AUs tested one at a time
    intensities: tuple[float, ...] = INTENSITIES
    combinations: int = COMBINATIONS  # per prompt
    combination_size: tuple[int, int] = COMBINATION_SIZE  # fewest, most AUs in a combination
    combination_intensities: tuple[float, ...] = INTENSITIES
    combination_seed: int = 0
    seed: int = 0  # prompt i is generated with seed + i

    def __post_init__(self):
        if not self.prompts:
            raise FineFaceError("no prompts: give a prompts file with at least one line that is not a # comment")
        unknown = [a for a in self.aus if a not in AU_ORDER]
        if unknown or not self.aus:
            raise FineFaceError(f"unknown AUs {unknown} in --aus; choose among {', '.join(AU_ORDER)}")
        twice = sorted({a for a in self.aus if self.aus.count(a) > 1})
        if twice:  # its images would be made and counted twice
            raise FineFaceError(f"--aus: {twice[0]} is given twice; give each AU once")
        lo, hi = self.combination_size
        if self.combinations < 0:
            raise FineFaceError(f"--combinations must be 0 or more, not {self.combinations}")
        if self.combinations and not 1 <= lo <= hi <= len(self.aus):
            raise FineFaceError(f"--combination-size {lo} {hi}: need 1 <= fewest <= most <= {len(self.aus)} "
                                "(the number of tested AUs)")
        if self.combinations and not self.combination_intensities:
            raise FineFaceError("--combination-intensities is empty")
        _check_levels("--intensities", self.intensities)
        _check_levels("--combination-intensities", self.combination_intensities)

    def settings(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Job:
    prompt_index: int
    prompt: str
    seed: int
    kind: str  # one of KINDS
    aus: tuple[float, ...] = field(default=(0.0,) * N_AUS)  # asked intensities, AU_ORDER
    name: str = ""  # file stem, unique within one weights file

    @property
    def spec(self) -> str:
        return format_aus(list(self.aus))

    @property
    def single_au(self) -> int | None:
        """The index (AU_ORDER) of the one AU a single-AU job asks for."""
        return next(i for i, v in enumerate(self.aus) if v) if self.kind == "single" else None


def _check_levels(flag: str, levels: tuple[float, ...]):
    """Each level asks an AU to move (not 0), within what the pipeline accepts, once: a level given twice
    would make two jobs of one image (one file) and count it twice."""
    for v in levels:
        if not math.isfinite(v) or v == 0 or not SAFE_MIN <= v <= SAFE_MAX:
            raise FineFaceError(f"{flag}: {v:g} cannot be asked; give intensities from {SAFE_MIN:g} to {SAFE_MAX:g}, "
                                "not 0 (the no-AU image of each prompt is made anyway), such as 1,2,3,4,5")
    twice = sorted({v for v in levels if levels.count(v) > 1})
    if twice:
        raise FineFaceError(f"{flag}: {twice[0]:g} is given twice; give each intensity once")


MAX_PROMPTS_BYTES = 1 << 20  # 1 MB: thousands of prompts; more is not a prompts file (/dev/zero, a video ...)


def read_prompts(path: str) -> tuple[str, ...]:
    """One prompt per line; blank lines and lines starting with # are skipped. At most MAX_PROMPTS_BYTES are
    read (a device or a huge file is refused, not read until memory runs out), and parsing is linear."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PROMPTS_BYTES + 1)
    except FileNotFoundError:
        raise FineFaceError(f"prompts file not found: {path}") from None
    except OSError as e:
        raise FineFaceError(f"cannot read the prompts file {path} ({e.strerror or e}); give a UTF-8 text file, one "
                            "prompt per line") from None
    if len(data) > MAX_PROMPTS_BYTES:
        raise FineFaceError(f"the prompts file {path} is larger than {MAX_PROMPTS_BYTES // (1 << 20)} MB: not a prompts "
                            "file (one prompt per line); give a text file of prompts")
    if b"\0" in data:
        raise FineFaceError(f"the prompts file {path} holds NUL bytes: a binary file, not text; give a UTF-8 text "
                            "file, one prompt per line")
    try:
        text = data.decode("utf-8-sig")  # a BOM is no part of the first prompt
    except UnicodeDecodeError as e:
        raise FineFaceError(f"cannot read the prompts file {path} ({e}); give a UTF-8 text file, one prompt "
                            "per line") from None
    prompts = tuple(s.strip() for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#"))
    if not prompts:
        raise FineFaceError(f"{path} holds no prompts (one per line; # starts a comment)")
    return prompts


def _vector(values: dict[int, float]) -> tuple[float, ...]:
    vec = [0.0] * N_AUS
    for i, v in values.items():
        vec[i] = float(v)
    return tuple(vec)


def _fmt(value: float) -> str:
    return f"{value:g}".replace(".", "p").replace("-", "m")


def combinations_for(protocol: Protocol, prompt_index: int) -> list[tuple[float, ...]]:
    rng = np.random.default_rng([protocol.combination_seed, prompt_index])
    indices = [AU_ORDER.index(a) for a in protocol.aus]
    lo, hi = protocol.combination_size
    out = []
    for _ in range(protocol.combinations):
        k = int(rng.integers(lo, hi + 1))
        chosen = sorted(rng.choice(indices, size=k, replace=False).tolist())
        levels = rng.choice(np.asarray(protocol.combination_intensities, dtype=float), size=k)
        out.append(_vector(dict(zip(chosen, levels.tolist()))))
    return out


def reference_jobs(protocol: Protocol) -> list[Job]:
    """One no-AU image per prompt, with the prompt's seed."""
    return [Job(p, prompt, protocol.seed + p, "reference", name=f"p{p:02d}_reference")
            for p, prompt in enumerate(protocol.prompts)]


def enumerate_jobs(protocol: Protocol) -> list[Job]:
    """Every AU job of the protocol, prompt by prompt: single AUs (AU by AU, intensity by intensity), then
    the combinations."""
    jobs = []
    for p, prompt in enumerate(protocol.prompts):
        seed = protocol.seed + p
        for code in protocol.aus:
            i = AU_ORDER.index(code)
            for level in protocol.intensities:
                jobs.append(Job(p, prompt, seed, "single", _vector({i: level}), f"p{p:02d}_{code}_{_fmt(level)}"))
        for c, vec in enumerate(combinations_for(protocol, p)):
            jobs.append(Job(p, prompt, seed, "combination", vec, f"p{p:02d}_combo{c:03d}"))
    return jobs


def subset(jobs: list[Job], limit: int | None) -> list[Job]:
    """``limit`` jobs spread evenly over the whole list (so a quick run sees several prompts, AUs and
    combinations), always the same ones for the same limit; None: all."""
    if limit is None or limit >= len(jobs):
        return list(jobs)
    if limit < 1:
        raise FineFaceError(f"--limit must be 1 or more, not {limit}")
    picks = np.unique(np.linspace(0, len(jobs) - 1, limit).round().astype(int))
    return [jobs[i] for i in picks]


def references_for(protocol: Protocol, jobs: list[Job]) -> list[Job]:
    used = {j.prompt_index for j in jobs}
    return [r for r in reference_jobs(protocol) if r.prompt_index in used]
