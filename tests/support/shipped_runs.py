"""Running the shipped workflows through ComfyUI's executor on small generated models (the ``models_dir`` and
``comfy_dirs`` fixtures of tests/conftest.py): the only changes the runs make to the shipped files, the run itself,
the images a node saved, and the ComfyUI folder the headless command is given."""
import os

import numpy as np
from PIL import Image

from workflows.api_format import workflow_to_prompt
from workflows.overrides import set_input

from tests.support import comfy_env
from tests.support.shipped_workflows import load_shipped

# The only changes the runs make to the shipped files, for speed: resolution and steps.
TEST_SIZE, TEST_STEPS = 64, 3
SPEED_OVERRIDES = {
    "basic": [("EmptyLatentImage", "width", TEST_SIZE), ("EmptyLatentImage", "height", TEST_SIZE), ("KSampler", "steps", TEST_STEPS)],
    "sweep": [("EmptyLatentImage", "width", TEST_SIZE), ("EmptyLatentImage", "height", TEST_SIZE), ("KSampler", "steps", TEST_STEPS)],
    "redraw": [("ImageScale", "width", TEST_SIZE), ("KSampler", "steps", TEST_STEPS)],
    "grid": [("EmptyLatentImage", "width", TEST_SIZE), ("EmptyLatentImage", "height", TEST_SIZE), ("KSampler", "steps", TEST_STEPS)],
    # the masks at the image's size, as the workflow's note says
    "regions": [("EmptyLatentImage", "width", 96), ("EmptyLatentImage", "height", TEST_SIZE), ("KSampler", "steps", TEST_STEPS),
                ("Half-width rectangle", "width", 48), ("Half-width rectangle", "height", TEST_SIZE),
                ("Image-size black", "width", 96), ("Image-size black", "height", TEST_SIZE)],
    # the faces must stay large enough to be found: 256 px wide
    "regions_photo": [("ImageScale", "width", 256), ("KSampler", "steps", TEST_STEPS)],
    "face_crop": [("FineFaceFaceCrop", "size", TEST_SIZE), ("KSampler", "steps", TEST_STEPS)],
    # the exact edits: 6 steps from start step 2; the crop at 128 px, where AU From Image still finds the face in it
    **{name: [("FineFaceFaceCrop", "size", 128), ("FineFaceInvertPhoto", "steps", 6), ("FineFaceInvertPhoto", "start_step", 2)]
       for name in ("edit", "neutralize", "edit_sweep")},
}


def sd21_test_unet_config():
    """diffusers config of the UNet inside the detectable test checkpoint (ComfyUI's SD21 config with
    channel_mult [1, 1, 1, 1]: every width 320, 64-channel heads -> 5 heads)."""
    return dict(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 320, 320, 320),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=1024, attention_head_dim=(5, 5, 5, 5), use_linear_projection=True,
    )


def run_shipped(name, node_info, extra=()):
    wf = load_shipped(name)
    prompt = workflow_to_prompt(wf, node_info)
    for node_name, field, value in list(SPEED_OVERRIDES[name]) + list(extra):
        set_input(prompt, node_name, field, value)
    return wf, prompt, comfy_env.run_prompt(prompt)


def images_of(outputs, prompt, class_type, title=None):
    ids = [k for k, v in prompt.items() if v["class_type"] == class_type and (title is None or v["_meta"]["title"] == title)]
    assert len(ids) == 1, (class_type, title, ids)
    return [np.asarray(Image.open(p).convert("RGB")) for p in outputs.get(ids[0], [])]


def comfy_path():
    import folder_paths

    return os.path.dirname(os.path.abspath(folder_paths.__file__))
