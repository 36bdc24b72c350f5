"""Running the shipped exact-edit workflows on a real photo (scikit-image's astronaut in a larger striped frame),
with the photo's VAE round trip decoded in the same prompt: what tests/test_exact_edit_workflows.py and
tests/test_exact_edit_headless.py compare the edits with."""
import numpy as np
import torch
from PIL import Image

from workflows.api_format import workflow_to_prompt
from workflows.overrides import set_input

from tests.support import comfy_env
from tests.support.shipped_runs import SPEED_OVERRIDES
from tests.support.shipped_workflows import load_shipped

HEAD = (slice(100, 356), slice(380, 636))  # where the head sits; Face Crop's square lies around it
CROP = 128  # the crop side the runs use (SPEED_OVERRIDES): AU From Image still finds the face in it


def framed_photo(path, models_dir) -> np.ndarray:
    """Writes the photo to ``path`` and a random LibreFace AU model to models_dir/libreface; returns the photo."""
    from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint

    write_libreface_checkpoint(str(models_dir / "libreface" / "resnet.pt"), seed=4)
    photo = np.full((480, 720, 3), 90, np.uint8)
    photo[::7] = 200  # stripes: what a whole-image re-render would change
    photo[HEAD] = skimage_photo("astronaut.png")[:256, 96:352]
    Image.fromarray(photo).save(path)
    return photo


def away_from_the_face(image, photo):
    """The pixels of both away from the head (Face Crop's square with its margin lies inside this box)."""
    keep = np.ones(photo.shape[:2], bool)
    keep[60:400, 330:690] = False
    return image[keep].astype(int), photo[keep].astype(int)


def prompt_with_round_trip(name, node_info, extra=()):
    """The shipped graph as sent, at test speed, plus the photo's latent decoded (``rt_crop``) and pasted (``rt_save``)."""
    prompt = workflow_to_prompt(load_shipped(name), node_info)
    for node_name, field, value in list(SPEED_OVERRIDES[name]) + list(extra):
        set_input(prompt, node_name, field, value)
    ids = {v["class_type"]: k for k, v in prompt.items()}
    ckpt, crop, photo = ids["CheckpointLoaderSimple"], ids["FineFaceFaceCrop"], ids["LoadImage"]
    prompt["rt_decode"] = {"class_type": "VAEDecode", "inputs": {"samples": [ids["VAEEncode"], 0], "vae": [ckpt, 2]}}
    prompt["rt_paste"] = {"class_type": "FineFaceFacePaste", "inputs": {"images": [photo, 0], "crop": ["rt_decode", 0],
                                                                       "face_crop": [crop, 1], "feather": 0.1}}
    prompt["rt_crop"] = {"class_type": "SaveImage", "inputs": {"images": ["rt_decode", 0], "filename_prefix": "rt_crop"}}
    prompt["rt_save"] = {"class_type": "SaveImage", "inputs": {"images": ["rt_paste", 0], "filename_prefix": "rt"}}
    return prompt


def run_with_round_trip(prompt):
    """(the workflow's saved image, the pasted round trip, the round trip of the crop), as int arrays. ComfyUI's VAE
    Encode samples the latent distribution (the test VAE's is wide): the global seed is set first."""
    torch.manual_seed(0)
    outputs = comfy_env.run_prompt(prompt)
    main = next(k for k, v in prompt.items() if v["class_type"] == "SaveImage" and not k.startswith("rt"))

    def image(node):
        (path,) = outputs[node]
        return np.asarray(Image.open(path).convert("RGB")).astype(int)

    return image(main), image("rt_save"), image("rt_crop")
