"""Make a run's cache ready: check that it was built for this run's settings and models (refuse, or
with --rebuild_latent_cache build it anew), build what is missing, verify every shard, open it."""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from fineface_core.files.safe_write import NOT_A_FOLDER, write_problem

from ..errors import TrainingError
from ..folder_lock import CACHE_LOCK, held
from .build import build, plan
from .keys import FORMAT, cache_settings, differences, file_digests, ids_digest, model_fingerprint, settings_digest
from .store import (DamagedManifest, LatentCache, cache_files, foreign_settings, leftovers, read_manifest,
                    remove_cache_files, shard_problem, sidecar, write_manifest)

logger = logging.getLogger("training")
REBUILD_HINT = ("build a cache for this run in another --latent_cache folder, or pass --rebuild_latent_cache to "
                "build this one anew")


@dataclass
class Frozen:
    """The frozen models a cache stands for, with fingerprints of their weights as loaded. SDXL adds its second
    text encoder and tokenizer (both encoders' fingerprints make the text fingerprint)."""
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    vae_fingerprint: str
    text_fingerprint: str
    text_encoder_2: torch.nn.Module | None = None
    tokenizer_2: object = None

    @classmethod
    def of(cls, vae, text_encoder, tokenizer, text_encoder_2=None, tokenizer_2=None) -> "Frozen":
        """Call before the models are cast to the training dtype."""
        text = model_fingerprint(text_encoder)
        if text_encoder_2 is not None:
            text += "+" + model_fingerprint(text_encoder_2)
        return cls(vae, text_encoder, tokenizer, model_fingerprint(vae), text, text_encoder_2, tokenizer_2)

    @property
    def xl(self) -> bool:
        return self.text_encoder_2 is not None


def tokenize(tokenizer, captions: list[str]) -> torch.Tensor:
    """Token ids exactly as the trainer's collate makes them."""
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def caption_ids(tokenizer, captions: list[str], tokenizer_2=None) -> dict[str, torch.Tensor]:
    """{caption: ids} for each distinct caption and the empty one (SDXL: both tokenizers' ids, one after the
    other, so that a caption's key names what both encoders read)."""
    unique = list(dict.fromkeys([*captions, ""]))
    out = {}
    for i in range(0, len(unique), 4096):
        chunk = unique[i:i + 4096]
        ids = tokenize(tokenizer, chunk)
        if tokenizer_2 is not None:
            ids = torch.cat([ids, tokenize(tokenizer_2, chunk)], dim=1)
        out.update(zip(chunk, ids))
    return out


def _refusal(folder: str, changed: list[str]) -> TrainingError:
    return TrainingError(f"--latent_cache {folder} was built for other settings than this run's: {'; '.join(changed)}. "
                         f"Training on it would not be training on this run's data: {REBUILD_HINT}")


def precheck(args) -> None:
    """Before any model loads: a cache for another resolution, crop or flip is refused in seconds
    (the models' fingerprints and the dtype are compared once the models are loaded)."""
    folder = args.latent_cache
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise TrainingError(f"--latent_cache {folder} is a file; give a folder (it is created if absent)")
    if args.rebuild_latent_cache:
        manifest = None  # a damaged manifest is what --rebuild_latent_cache replaces
    else:
        manifest = read_manifest(folder) if os.path.isdir(folder) else None
    if manifest is None:
        probe, why = write_problem(folder)
        if why == NOT_A_FOLDER:
            raise TrainingError(f"--latent_cache {folder}: {probe} is a file, not a folder; give a folder (it is "
                                "created if absent)")
        if why:
            raise TrainingError(f"--latent_cache {folder}: cannot write in {probe} ({why}); give a folder you can "
                                "write to")
        return
    cached = manifest["settings"]
    # the format first: a cache written by another version of this code may lack the fields compared below
    wanted = {**cached, "format": FORMAT, "resolution": int(args.resolution),
              "crop": "center" if args.center_crop else "random", "random_flip": bool(args.random_flip)}
    changed = differences(cached, wanted)
    if changed:
        raise _refusal(folder, changed)


def _check_settings(folder: str, manifest: dict | None, settings: dict, key: str, rebuild: bool):
    """The manifest to extend, None to start afresh, or "clear" (--rebuild_latent_cache: remove the
    cache files first); TrainingError when the cache is for other settings."""
    if manifest is not None:
        changed = differences(manifest["settings"], settings)
        if not changed:
            return manifest
        if not rebuild:
            raise _refusal(folder, changed)
    elif not foreign_settings(folder, key):
        return None
    elif not rebuild:
        raise TrainingError(f"--latent_cache {folder} holds shards of an unfinished build with other settings or "
                            f"models: {REBUILD_HINT}")
    return "clear"


def _verify(accelerator, folder: str, manifest: dict) -> list[str]:
    """Each process checks its share of the shards (size, sha256, header) in threads; all get every problem."""
    from accelerate.utils import gather_object

    rank, world = accelerator.process_index, accelerator.num_processes
    mine = [name for i, name in enumerate(sorted(manifest["shards"])) if i % world == rank]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # hashlib releases the GIL
        problems = pool.map(lambda name: shard_problem(folder, {"file": name, **manifest["shards"][name]}), mine)
    found = [(name, problem) for name, problem in zip(mine, problems) if problem]
    return sorted(gather_object(found))


def _drop(manifest: dict, damaged: set) -> dict:
    """The manifest without the damaged shards and their entries (they are computed again)."""
    keep = lambda entries: {k: v for k, v in entries.items() if v[0] not in damaged}  # noqa: E731
    return {**manifest, "shards": {n: s for n, s in manifest["shards"].items() if n not in damaged},
            "images": keep(manifest["images"]), "captions": keep(manifest["captions"])}


def _manifest_after(folder: str, manifest: dict | None, jobs, settings: dict, source: str, empty_key: str) -> dict:
    new = manifest or {"settings": settings, "source": source, "shards": {}, "images": {}, "captions": {},
                       "empty_caption": None}
    new = {**new, "shards": dict(new["shards"]), "images": dict(new["images"]), "captions": dict(new["captions"]),
           "empty_caption": empty_key or new["empty_caption"]}
    for job in jobs:
        record = sidecar(folder, job.name)
        new["shards"][job.name] = {"kind": job.kind, "size": record["size"], "sha256": record["sha256"]}
        entries = new["images"] if job.kind == "latents" else new["captions"]
        entries.update({k: [job.name, row] for row, k in enumerate(job.keys)})
    return new


def ensure_cache(accelerator, frozen: Frozen, args, records: list, dtype: torch.dtype):
    """(LatentCache, image key per record, caption key per record or None with --no-cache_text),
    building what is missing (a cache built without captions gets them when a run asks for them).
    Call on every process; raises TrainingError (on every process) when the cache cannot be used, or
    while another process builds in the same folder."""
    precheck(args)
    folder = args.latent_cache
    busy = (f"--latent_cache {folder} is being built or checked by another process (a `python -m training.cache "
            "build` or a training run with --latent_cache): wait until it has finished, then run again (what it "
            "built is kept and used), or give another --latent_cache folder")
    with held(accelerator, folder, CACHE_LOCK, busy):
        return _ensure(accelerator, frozen, args, records, dtype)


def _ensure(accelerator, frozen: Frozen, args, records: list, dtype: torch.dtype):
    folder = args.latent_cache
    settings = cache_settings(args, dtype, frozen.vae_fingerprint, frozen.text_fingerprint, frozen.xl)
    key = settings_digest(settings)
    precheck(args)
    try:
        manifest = read_manifest(folder)
    except DamagedManifest:
        if not args.rebuild_latent_cache:
            raise
        manifest = None
        if accelerator.is_main_process:
            logger.info("--rebuild_latent_cache: %s is unreadable; building the cache anew", folder)
    manifest = _check_settings(folder, manifest, settings, key, args.rebuild_latent_cache)
    if manifest == "clear":
        if accelerator.is_main_process:
            logger.info("--rebuild_latent_cache: removing the cache files in %s built for other settings", folder)
            remove_cache_files(folder)
        manifest = None
    if manifest is not None:  # what it adds must match what it holds (flipped latents for a flipped cache)
        settings = manifest["settings"]
        key = settings_digest(settings)
    accelerator.wait_for_everyone()

    image_keys = file_digests([r.file for r in records])
    images = dict(zip(image_keys, (r.file for r in records)))
    text_keys, captions, empty_key = None, {}, None
    if args.cache_text:
        ids = caption_ids(frozen.tokenizer, [r.caption for r in records], frozen.tokenizer_2)
        digests = {caption: ids_digest(t) for caption, t in ids.items()}
        text_keys, empty_key = [digests[r.caption] for r in records], digests[""]
        captions = {digests[c]: t for c, t in ids.items()}

    for _ in range(2):  # a second round rebuilds shards found damaged, with --rebuild_latent_cache
        jobs = plan(manifest, images, captions, args.cache_shard_size)
        if jobs:
            n_img = sum(len(j.keys) for j in jobs if j.kind == "latents")
            n_txt = sum(len(j.keys) for j in jobs if j.kind == "text")
            logger.info("latent cache %s: computing %d image(s) and %d caption(s) in %d shard(s)%s", folder, n_img,
                        n_txt, len(jobs), f" (it held {len(manifest['images'])} images)" if manifest else "")
            if accelerator.is_main_process:
                os.makedirs(folder, exist_ok=True)
                remove_cache_files(folder, leftovers(folder))  # the temporary files of a killed build
            accelerator.wait_for_everyone()
            build(accelerator, frozen, jobs, folder, settings, key, images, captions, args.cache_batch_size)
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                write_manifest(folder, _manifest_after(folder, manifest, jobs, settings,
                                                       args.pretrained_model_name_or_path, empty_key))
            accelerator.wait_for_everyone()
            manifest = read_manifest(folder)
        problems = _verify(accelerator, folder, manifest)
        if not problems:
            break
        listing = "\n".join(f"  - {p}" for _, p in problems)
        if not args.rebuild_latent_cache:
            raise TrainingError(f"--latent_cache {folder}: {len(problems)} damaged shard(s), not trained on:\n"
                                f"{listing}\nPass --rebuild_latent_cache to compute them again (the intact shards "
                                "are kept)")
        logger.warning("--rebuild_latent_cache: computing damaged shard(s) again:\n%s", listing)
        damaged = {name for name, _ in problems}
        manifest = _drop(manifest, damaged)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            remove_cache_files(folder, [n for n in cache_files(folder) if n.split(".safetensors")[0] + ".safetensors"
                                        in damaged])
            write_manifest(folder, manifest)
        accelerator.wait_for_everyone()
    else:
        raise TrainingError(f"--latent_cache {folder}: shards still damaged after rebuilding them; is the disk "
                            "failing?")
    return LatentCache(folder, manifest), image_keys, text_keys
