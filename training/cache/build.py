"""Computing the cache: a plan of shards for the entries missing from it, and each process building
its share of them (shard i on process i % processes), shard by shard, so that an interrupted build
resumes where it stopped and a dataset that grew only adds shards."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..checkpoints import kill_point
from ..data.generic import pixel_transform, read_rgb
from ..errors import TrainingError
from .store import shard_is_complete, shard_name, write_shard


@dataclass
class Job:
    kind: str  # latents | text
    name: str  # the shard's file name
    keys: list  # image or caption keys, one row each


def plan(manifest: dict | None, images: dict, captions: dict, shard_size: int) -> list[Job]:
    """Shards for the images / captions not in ``manifest``, numbered after its own. The same inputs
    give the same plan on every process and after a restart: that is what lets a build resume."""
    jobs = []
    for kind, wanted, have in (("latents", images, "images"), ("text", captions, "captions")):
        present = manifest[have] if manifest else {}
        missing = sorted(k for k in wanted if k not in present)
        numbers = [int(name.split("-")[1].split(".")[0]) for name in (manifest or {}).get("shards", {})
                   if name.startswith(kind + "-")]
        first = max(numbers, default=-1) + 1
        for i in range(0, len(missing), shard_size):
            jobs.append(Job(kind, shard_name(kind, first + i // shard_size), missing[i:i + shard_size]))
    return jobs


@torch.no_grad()
def encode_images(vae, paths: list[str], resolution: int, flip: bool, dtype, batch_size: int) -> dict:
    """The VAE's latent distribution (mean, std) of each image, as the uncached trainer computes it;
    with ``flip`` also of the mirrored image (encoded, not the latent mirrored: a VAE is not exactly
    mirror-symmetric)."""
    transform = pixel_transform(resolution, center_crop=True, random_flip=False)
    out = {k: [] for k in (("mean", "std", "mean_flipped", "std_flipped") if flip else ("mean", "std"))}
    device = next(vae.parameters()).device
    for i in range(0, len(paths), batch_size):
        try:
            images = [read_rgb(p) for p in paths[i:i + batch_size]]
        except RuntimeError as exc:  # an image that no longer opens (or was never checked: --no_verify_images)
            raise TrainingError(f"building the latent cache: {exc}") from exc
        pixels = torch.stack([transform(im) for im in images]).float().to(device, dtype)
        for suffix, x in (("", pixels), ("_flipped", pixels.flip(-1))) if flip else (("", pixels),):
            dist = vae.encode(x).latent_dist
            out["mean" + suffix].append(dist.mean.cpu())
            out["std" + suffix].append(dist.std.cpu())
    return {k: torch.cat(v) for k, v in out.items()}


@torch.no_grad()
def encode_captions(frozen, ids: list[torch.Tensor], batch_size: int) -> dict:
    """The text states of each caption, as the uncached trainer computes them (SDXL: both encoders' states and
    the pooled embedding, from the two tokenizers' ids stored one after the other)."""
    text_encoder = frozen.text_encoder
    device = next(text_encoder.parameters()).device
    if frozen.xl:
        from ..sdxl import encode_xl

        n = frozen.tokenizer.model_max_length
        parts = [encode_xl(text_encoder, frozen.text_encoder_2, b[:, :n], b[:, n:])
                 for b in (torch.stack(ids[i:i + batch_size]) for i in range(0, len(ids), batch_size))]
        return {"text": torch.cat([p.embeds.cpu() for p in parts]), "pooled": torch.cat([p.pooled.cpu() for p in parts])}
    states = [text_encoder(torch.stack(ids[i:i + batch_size]).to(device), return_dict=False)[0].cpu()
              for i in range(0, len(ids), batch_size)]
    return {"text": torch.cat(states)}


def image_time_ids(paths: list[str], resolution: int) -> torch.Tensor:
    """SDXL's micro-conditioning of each image (its size and center crop at ``resolution``)."""
    from ..sdxl import center_crop_time_ids, image_size

    return torch.stack([center_crop_time_ids(image_size(p), resolution) for p in paths])


def build(accelerator, frozen, jobs: list[Job], folder: str, settings: dict, settings_key: str, images: dict,
          captions: dict, batch_size: int) -> int:
    """Build this process's shards of ``jobs`` (skipping complete ones); returns how many it computed."""
    from tqdm.auto import tqdm

    rank, world = accelerator.process_index, accelerator.num_processes
    mine = [(i, j) for i, j in enumerate(jobs) if i % world == rank]
    bar = tqdm(total=sum(len(j.keys) for _, j in mine), desc=f"latent cache ({world} process(es))", unit="item",
               disable=not accelerator.is_local_main_process)
    computed = 0
    try:
        for index, job in mine:
            if not shard_is_complete(folder, job.name, settings_key, job.keys):
                if job.kind == "latents":
                    tensors = encode_images(frozen.vae, [images[k] for k in job.keys], settings["resolution"],
                                            settings["random_flip"], frozen.vae.dtype, batch_size)
                    if settings.get("time_ids"):
                        tensors["time_ids"] = image_time_ids([images[k] for k in job.keys], settings["resolution"])
                else:
                    tensors = encode_captions(frozen, [captions[k] for k in job.keys], batch_size)
                write_shard(folder, job.name, tensors, settings_key, job.keys)
                computed += 1
            bar.update(len(job.keys))
            kill_point("cache_shard", index)  # test hook: a build killed after this shard
    finally:
        bar.close()
    return computed
