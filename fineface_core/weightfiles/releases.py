"""The official FineFace releases, one row each: every file name, label and download address that a loader,
a node, a message or the headless runner shows is formatted from this table (adding a release is one row).

* SD 2.1 (the paper's model): the encoder is Res + MLP64, 1024 wide; the adapter holds
  ``<attn2 path>.processor.au_to_{k,v}.weight`` ([C, 1024]); the LoRA has peft names with a ``unet.``
  prefix, rank 32, and stores no alpha.
* SD 1.5 (paired with IP-Adapter FaceID by the official code): a 768 wide encoder (hidden 756, no
  padding) and an adapter of [C, 768]; no LoRA.
* SDXL: no official release exists (no files, no hub). ``NO_RELEASE`` holds that row, so that messages
  say so and name ``training/`` instead of pointing at a hub.

The LoRA file stores no alpha. Training used peft's default alpha 8 at rank 32 (scale 0.25), and the AU
adapter was trained together with the LoRA at that scale, so that is what it loads at: ``lora_strength``
1.0 means "as trained". (The official code loads no LoRA at all under its pinned diffusers 0.27.2 + peft
0.7.0, and the file at scale 1.0 under diffusers 0.29+: strengths 0 and 4.)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..families import FAMILIES, Family

HUB_REPO = "Tvaranka/fineface"
NO_LORA = "none"  # the Release Loader's LoRA choice for a release without one

# peft's default LoraConfig.lora_alpha, with which the official weights were trained ("α is set to default").
TRAINED_LORA_ALPHA = 8.0


@dataclass(frozen=True)
class Release:
    family_key: str  # a key of families.FAMILIES
    label: str  # how menus and messages name the release: "SD 2.1"
    encoder_file: str
    processors_file: str
    lora_file: str | None  # None: the release has no LoRA
    encoder_hidden: int  # the official pipeline hard-codes it
    lora_alpha: float | None = None  # the alpha training used; the file stores none
    hub_repo: str | None = HUB_REPO  # None: no hub release to download from

    @property
    def family(self) -> Family:
        return FAMILIES[self.family_key]

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.encoder_file, self.processors_file, self.lora_file) if f)

    def file_list(self, sep: str = ", ") -> str:
        return sep.join(self.files)

    @property
    def page(self) -> str | None:
        """The hub page the files are downloaded from (None without a hub release)."""
        return f"https://huggingface.co/{self.hub_repo}" if self.hub_repo else None

    def download_url(self, name: str) -> str | None:
        return f"{self.page}/resolve/main/{name}" if self.hub_repo else None

    @property
    def where(self) -> str:
        """Where the files come from, for messages: 'the Hugging Face repo Tvaranka/fineface'."""
        return f"the Hugging Face repo {self.hub_repo}" if self.hub_repo else f"the {self.label} release's publisher"

    def description(self) -> str:
        """'the SD 2.1 release (file, file, file)': what a message names for a model of this family."""
        return f"the {self.label} release ({self.file_list()})"


RELEASES: dict[str, Release] = {r.family_key: r for r in (
    Release("sd21", "SD 2.1", "au_encoder.ckpt", "attn_processors.ckpt", "pytorch_lora_weights.safetensors", 64,
            TRAINED_LORA_ALPHA),
    Release("sd15", "SD 1.5", "sd15_au_encoder.ckpt", "sd15_attn_processors.ckpt", None, 756),
)}

# Families FineFace supports but no official release exists for: family key -> what messages say instead.
NO_RELEASE: dict[str, str] = {
    "sdxl": ("no official FineFace release exists for SDXL: train FineFace for SDXL with training/ (training/README.md, "
             "'SDXL') and export it with `python -m training.export`; the exported .safetensors file loads here"),
}


def no_release_message(family_key: str) -> str | None:
    """Why there are no official files for this family (None where a release exists)."""
    return NO_RELEASE.get(family_key)


# The Release Loader's widgets: widget -> (what it holds, the Release field naming its file).
RELEASE_PARTS = {
    "au_encoder": ("the AU encoder", "encoder_file"),
    "attn_processors": ("the AU adapter", "processors_file"),
    "lora": ("the LoRA", "lora_file"),
}


def release_for(family_key: str) -> Release:
    return RELEASES[family_key]


def part_files(part: str) -> list[tuple[str, Release]]:
    """(file name, release) of one part (a RELEASE_PARTS key) in every release that has it, in table order."""
    field = RELEASE_PARTS[part][1]
    return [(getattr(r, field), r) for r in RELEASES.values() if getattr(r, field)]


def release_file_names() -> set[str]:
    """Every file name of every release (to tell a release file from a FineFace file in a folder listing)."""
    return {name for r in RELEASES.values() for name in r.files}


def download_source(name: str) -> str:
    """Where the release file ``name`` is downloaded from: its address and hub repo (for a name no release has,
    the hub's address for that name, as the shipped workflows' download links have it)."""
    owner = next((r for r in RELEASES.values() if name in r.files), None)
    if owner is not None and not owner.hub_repo:
        return owner.where
    hub = owner or next(r for r in RELEASES.values() if r.hub_repo)
    return f"{hub.download_url(name)}  (Hugging Face {hub.hub_repo})"


def weights_for(family_key: str) -> str:
    """What a message names as the weights that fit a model of this family."""
    release = RELEASES.get(family_key)
    if release:
        return release.description()
    name = FAMILIES[family_key].display_name
    if family_key in NO_RELEASE:
        return f"FineFace weights trained for {name} with training/ (no official {name} release exists)"
    return f"FineFace weights trained for {name}"


def all_releases_text(sep: str = "; ") -> str:
    """'a, b, c for SD 2.1; d, e for SD 1.5': what a user may point at, for messages."""
    return sep.join(f"{r.file_list()} for {r.label}" for r in RELEASES.values())
