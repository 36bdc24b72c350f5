"""The exact edit with what exists, as graphs through ComfyUI's executor on the tiny checkpoint CheckpointLoaderSimple
detects as SD 2.1: a real photo of two faces (scikit-image's astronaut and its mirror image, 256 x 128 px) is
read by LibreFace (the suite's random-weight file), Face Crop -> invert -> regenerate -> Face Paste with pixels
outside the crop square bit-equal, neutral and relative targets, two faces with two edits under their masks;
and bad input refused with an error naming the node, before anything is rendered wrongly.
"""
import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from fineface_core.faces.crop import face_crops
from tests.support import comfy_env
from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint
from workflows.executor import ExecutionFailed

CKPT = "v2-1_512-ema-pruned.safetensors"  # tests/conftest.py's models_dir
SLIDERS = {f"AU{n}": 0.0 for n in (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)}
STEPS, START = 10, 2


def two_faces() -> np.ndarray:
    one = np.asarray(Image.fromarray(skimage_photo("astronaut.png")).resize((128, 128), Image.LANCZOS))
    return np.concatenate([one, one[:, ::-1]], axis=1)  # 256 x 128, two faces


@pytest.fixture
def dirs(comfy_dirs, models_dir):
    estimator = models_dir / "libreface" / "resnet.pt"
    if not estimator.exists():
        os.makedirs(estimator.parent, exist_ok=True)
        write_libreface_checkpoint(str(estimator), seed=11)
    Image.fromarray(two_faces()).save(comfy_dirs / "input" / "two.png")
    return comfy_dirs


class Graph:
    """An API prompt built node by node; ``add`` returns the node's id."""

    def __init__(self):
        self.p = {}

    def add(self, id, class_type, **inputs):
        self.p[id] = {"class_type": class_type, "inputs": inputs}
        return id

    def aus(self, id, spec, base=None):
        inputs = dict(SLIDERS, spec=spec, **({"base": base} if base else {}))
        return self.add(id, "FineFaceAUVector", **inputs)

    def patched(self, id, aus, model=("ckpt", 0), mask=None):
        self.add(f"{id}e", "FineFaceAUEncoder", fineface=["ff", 0], aus=aus)
        extra = {"mask": mask} if mask else {}
        return self.add(id, "FineFaceApplyAdapter", model=list(model), fineface=["ff", 0], au_embedding=[f"{id}e", 0],
                        weight=1.0, lora_strength=1.0, start_at=0.0, end_at=1.0, **extra)

    def invert(self, id, model, latent, steps=STEPS, start=START):
        return self.add(id, "FineFaceInvertPhoto", model=[model, 0], positive=["pos", 0], negative=["neg", 0],
                        latent_image=latent, cfg=7.5, steps=steps, scheduler="karras", start_step=start, seed=3)

    def regenerate(self, id, model, inversion, latent):
        return self.add(id, "FineFaceRegenerateEdit", model=[model, 0], positive=["pos", 0], negative=["neg", 0],
                        inversion=[inversion, 0], cfg=7.5, latent_image=latent)

    def pasted(self, id, latent):
        """Decode a crop's latent, paste it into the photo, save."""
        self.add(f"{id}d", "VAEDecode", samples=latent, vae=["ckpt", 2])
        self.add(f"{id}p", "FineFaceFacePaste", images=["img", 0], crop=[f"{id}d", 0], face_crop=["crop", 1], feather=0.1)
        return self.add(id, "SaveImage", images=[f"{id}p", 0], filename_prefix=id)


def base_graph() -> Graph:
    g = Graph()
    g.add("ckpt", "CheckpointLoaderSimple", ckpt_name=CKPT)
    g.add("ff", "FineFaceModelLoader", weights="fineface_sd21.safetensors")
    g.add("pos", "CLIPTextEncode", text="a closeup photo of an astronaut", clip=["ckpt", 1])
    g.add("neg", "CLIPTextEncode", text="blurry", clip=["ckpt", 1])
    g.add("img", "LoadImage", image="two.png")
    # Face Crop of the left face at 64 px (an 8x8 latent); the face within the crop as the noise mask
    g.add("crop", "FineFaceFaceCrop", images=["img", 0], which_face="by index", index=0, grow=1.0, size=64)
    g.add("enc", "VAEEncode", pixels=["crop", 0], vae=["ckpt", 2])
    g.add("masked", "SetLatentNoiseMask", samples=["enc", 0], mask=["crop", 2])
    # the photo's own AUs, read by LibreFace off the left face
    g.add("read", "FineFaceAUFromImage", images=["img", 0], estimator="resnet.pt", which_face="by index", index=0,
          no_face="error", intensities="FineFace training labels")
    g.patched("src", ["read", 0])
    g.invert("inv", "src", ["masked", 0])
    return g


def crop_edit_graph() -> Graph:
    g = base_graph()
    g.aus("neutral", "neutral")
    g.aus("relative", "AU12@2 + AU4@2", base=["read", 0])  # AU12 +2 and AU4 +2 on what the photo shows
    g.patched("tneutral", ["neutral", 0])
    g.patched("trelative", ["relative", 0])
    for name, model in (("same", "src"), ("neutral", "tneutral"), ("relative", "trelative")):
        g.regenerate(f"r_{name}", model, "inv", ["masked", 0])
        g.pasted(f"paste_{name}", [f"r_{name}", 0])
        g.add(f"lat_{name}", "SaveLatent", samples=[f"r_{name}", 0], filename_prefix=f"latents/{name}")
    g.pasted("paste_round_trip", ["enc", 0])
    g.add("lat_photo", "SaveLatent", samples=["enc", 0], filename_prefix="latents/photo")
    g.add("aus_read", "SaveImage", images=["read", 2], filename_prefix="aus_read")  # the face LibreFace read
    return g


def pixels(files, id):
    assert len(files[id]) == 1
    return np.asarray(Image.open(files[id][0]).convert("RGB")).astype(np.int16)


def latent(files, id):
    assert len(files[id]) == 1
    return load_file(files[id][0])["latent_tensor"]


@pytest.mark.slow
def test_face_crop_invert_regenerate_paste_changes_nothing_outside_the_square(dirs):
    files = comfy_env.run_prompt(crop_edit_graph().p)
    photo = two_faces().astype(np.int16)
    square, = face_crops(photo[None].astype(np.float32) / 255.0, "by index", 0, 1.0, 64)[1]
    inside = np.zeros(photo.shape[:2], dtype=bool)
    inside[square.y:square.y + square.side, square.x:square.x + square.side] = True
    # the photo's own AUs (as LibreFace read them): the crop's latent back bit for bit, the paste = the round trip's
    assert torch.equal(latent(files, "lat_same"), latent(files, "lat_photo"))
    assert np.array_equal(pixels(files, "paste_same"), pixels(files, "paste_round_trip"))
    for name in ("neutral", "relative"):
        edit = pixels(files, f"paste_{name}")
        assert edit.shape == photo.shape
        assert np.array_equal(edit[~inside], photo[~inside])  # outside the crop square: the photo's pixels, bit-equal
        assert np.abs(edit[inside] - pixels(files, "paste_round_trip")[inside]).mean() > 0.5  # the face was edited
        assert not torch.equal(latent(files, f"lat_{name}"), latent(files, "lat_photo"))
    assert not torch.equal(latent(files, "lat_neutral"), latent(files, "lat_relative"))
    assert pixels(files, "aus_read").shape == (224, 224, 3)  # LibreFace found and aligned the face


@pytest.mark.slow
def test_two_faces_two_edits_under_their_masks_and_nothing_moves_outside(dirs):
    g = Graph()
    g.p = {k: v for k, v in base_graph().p.items() if k in ("ckpt", "ff", "pos", "neg", "img")}
    g.add("enc", "VAEEncode", pixels=["img", 0], vae=["ckpt", 2])
    for i in (0, 1):
        g.add(f"mask{i}", "FineFaceFaceMask", images=["img", 0], which_face="by index", index=i, grow=0.3, feather=0.0,
              no_face="error")
    g.add("both", "MaskComposite", destination=["mask0", 0], source=["mask1", 0], x=0, y=0, operation="add")
    g.add("masked", "SetLatentNoiseMask", samples=["enc", 0], mask=["both", 0])
    g.aus("src_aus", "AU6@2 + AU12@3")
    g.patched("src", ["src_aus", 0])
    g.invert("inv", "src", ["masked", 0])
    g.aus("left", "AU4@4 + AU15@3")
    g.aus("right", "AU1@4 + AU2@4 + AU26@4")
    g.patched("tleft", ["left", 0], mask=["mask0", 0])
    g.patched("tboth", ["right", 0], model=("tleft", 0), mask=["mask1", 0])
    g.regenerate("edit", "tboth", "inv", ["masked", 0])
    g.add("lat_edit", "SaveLatent", samples=["edit", 0], filename_prefix="latents/edit")
    g.add("lat_photo", "SaveLatent", samples=["enc", 0], filename_prefix="latents/photo")
    g.add("save_mask", "MaskToImage", mask=["both", 0])
    g.add("mask_img", "SaveImage", images=["save_mask", 0], filename_prefix="mask")
    files = comfy_env.run_prompt(g.p)
    edit, photo = latent(files, "lat_edit"), latent(files, "lat_photo")
    assert edit.shape == photo.shape == (1, 4, 16, 32)
    mask = torch.from_numpy(pixels(files, "mask_img")[..., 0] > 0)
    # a latent cell no mask pixel touches: the photo's latent, bit for bit
    cells = ~mask.reshape(16, 8, 32, 8).any(dim=3).any(dim=1)
    assert 0 < int(cells.sum()) < 16 * 32
    assert torch.equal(edit[..., cells], photo[..., cells])
    # each face moved under its own edit
    for half in (slice(0, 16), slice(16, 32)):
        face = (~cells)[:, half]
        assert float((edit[..., half] - photo[..., half])[..., face].abs().mean()) > 1e-3


def write_nan_latent(folder) -> str:
    samples = torch.randn(1, 4, 8, 8)
    samples[0, 1, 2, 3] = float("nan")
    save_file({"latent_tensor": samples, "latent_format_version_0": torch.tensor([])}, os.path.join(folder, "nan.latent"))
    return "nan.latent"


def bad_graph(case: str, input_dir) -> tuple[dict, str]:
    g = base_graph()
    if case == "other step count":  # SamplerCustom with a 12-step schedule for a 10-step inversion
        g.add("smp", "FineFaceExactEditSampler", inversion=["inv", 0])
        g.add("sched", "BasicScheduler", model=["src", 0], scheduler="karras", steps=12, denoise=1.0)
        g.add("custom", "SamplerCustom", model=["src", 0], add_noise=False, noise_seed=0, cfg=7.5, positive=["pos", 0],
              negative=["neg", 0], sampler=["smp", 0], sigmas=["sched", 0], latent_image=["masked", 0])
        g.add("out", "SaveLatent", samples=["custom", 0], filename_prefix="latents/bad")
        return g.p, r"SamplerCustom \(#custom\).*recorded for 8 steps \(steps 2\.\.9 of 10\), these sigmas have 12"
    if case == "other latent size":  # the whole photo's latent to a regeneration of the crop's inversion
        g.add("whole", "VAEEncode", pixels=["img", 0], vae=["ckpt", 2])
        g.regenerate("edit", "src", "inv", ["whole", 0])
        g.add("out", "SaveLatent", samples=["edit", 0], filename_prefix="latents/bad")
        return g.p, r"FineFaceRegenerateEdit \(#edit\).*holds a 4x8x8 latent \(64x64 px\), the latent given here is 4x16x32"
    if case == "NaN latent":
        g.add("nan", "LoadLatent", latent=write_nan_latent(input_dir))
        g.invert("inv", "src", ["nan", 0])
        g.regenerate("edit", "src", "inv", ["nan", 0])
        g.add("out", "SaveLatent", samples=["edit", 0], filename_prefix="latents/bad")
        return g.p, r"FineFaceInvertPhoto \(#inv\).*1 NaN or infinite values; encode the photo again"
    if case == "mask of another shape":  # a 64 x 32 mask on the 64 x 64 crop
        g.add("wide", "SolidMask", value=1.0, width=64, height=32)
        g.add("masked", "SetLatentNoiseMask", samples=["enc", 0], mask=["wide", 0])
        g.regenerate("edit", "src", "inv", ["masked", 0])
        g.add("out", "SaveLatent", samples=["edit", 0], filename_prefix="latents/bad")
        return g.p, r"FineFaceInvertPhoto \(#inv\).*the mask is 64x32 but the image is 64x64 px"
    raise AssertionError(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["other step count", "other latent size", "NaN latent", "mask of another shape"])
def test_bad_input_through_the_executor_names_the_node_and_renders_nothing(dirs, case):
    import folder_paths

    prompt, message = bad_graph(case, str(dirs / "input"))
    with pytest.raises(ExecutionFailed, match=message):
        comfy_env.run_prompt(prompt)
    written = [f for _, _, names in os.walk(folder_paths.get_output_directory()) for f in names]
    assert written == []  # nothing rendered
