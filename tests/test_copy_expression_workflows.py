"""The copy-expression workflows: the SD 2.1 one run through ComfyUI's executor on a small generated checkpoint,
FineFace weights and LibreFace model (a real photo as the expression photo); the FaceID one checked against
ComfyUI_IPAdapter_plus' own declarations."""
import inspect
import os
import uuid

import numpy as np
import pytest
from PIL import Image

from fineface_core.faces import detect as fd
from fineface_core.faces.libreface import load_estimator
from fineface_core.aus import ACTION_UNITS, format_aus
from fineface_core.faces.photo_aus import read_expressions
from tests.support import comfy_env
from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint
from tests.support.shipped_runs import TEST_SIZE, TEST_STEPS, images_of
from tests.support.shipped_workflows import check_prompt_against_declarations, load_shipped, photo_name
from workflows.api_format import workflow_to_prompt
from workflows.overrides import input_value, set_input

SPEED = [("EmptyLatentImage", "width", TEST_SIZE), ("EmptyLatentImage", "height", TEST_SIZE), ("KSampler", "steps", TEST_STEPS)]


@pytest.fixture
def photo_dirs(comfy_dirs, models_dir):
    """comfy_dirs, with models/libreface/resnet.pt (random weights, LibreFace's layout) and the expression photo
    the workflow names (scikit-image's astronaut) in the input folder."""
    path = models_dir / "libreface" / "resnet.pt"
    if not path.exists():
        write_libreface_checkpoint(str(path), seed=11)
    Image.fromarray(skimage_photo("astronaut.png")).save(comfy_dirs / "input" / photo_name("copy"))
    return comfy_dirs


def prompt_of(name, node_info, extra=()):
    prompt = workflow_to_prompt(load_shipped(name), node_info)
    for node_name, field, value in list(SPEED) + list(extra):
        set_input(prompt, node_name, field, value)
    return prompt


def ids_by_type(prompt):
    return {v["class_type"]: k for k, v in prompt.items()}


def test_copy_expression_workflow_is_basic_with_the_aus_from_the_photo(node_info, node_outputs):
    wf = load_shipped("copy")
    prompt = workflow_to_prompt(wf, node_info)
    check_prompt_against_declarations(prompt, node_info, node_outputs)
    ids = ids_by_type(prompt)
    read = prompt[ids["FineFaceAUFromImage"]]["inputs"]
    assert read["estimator"] == "resnet.pt" and read["which_face"] == "largest" and read["no_face"] == "error"
    assert prompt[read["images"][0]]["_meta"]["title"] == "Expression photo"
    vector = prompt[ids["FineFaceAUVector"]]["inputs"]
    assert vector["base"] == [ids["FineFaceAUFromImage"], 0]  # the AUs read; the sliders add to them
    assert all(vector[au] == 0.0 for au in ("AU1", "AU4", "AU6", "AU12", "AU26")) and vector["spec"] == ""
    assert prompt[ids["FineFaceAUEncoder"]]["inputs"]["aus"] == [ids["FineFaceAUVector"], 0]
    preview = next(v for v in prompt.values() if v["_meta"]["title"] == "Face read")
    assert preview["inputs"]["images"] == [ids["FineFaceAUFromImage"], 2]
    basic = workflow_to_prompt(load_shipped("basic"), node_info)
    for node, field in (("KSampler", "cfg"), ("KSampler", "steps"), ("KSampler", "sampler_name"),
                        ("CheckpointLoaderSimple", "ckpt_name"), ("FineFaceReleaseLoader", "au_encoder"),
                        ("FineFaceReleaseLoader", "lora")):
        assert input_value(prompt, node, field) == input_value(basic, node, field)
    assert len(prompt) == len(basic) + 3  # + Load Image, AU From Image, Face read


def test_faceid_copy_expression_workflow_uses_ipadapter_plus_as_declared(node_info, node_outputs):
    """Checked against ComfyUI_IPAdapter_plus' own INPUT_TYPES (its source, or the snapshot made from it)."""
    prompt = workflow_to_prompt(load_shipped("copy_faceid"), node_info)
    check_prompt_against_declarations(prompt, node_info, node_outputs)
    by_type = {v["class_type"]: v["inputs"] for v in prompt.values()}
    assert by_type["IPAdapterModelLoader"]["ipadapter_file"] == "ip-adapter-faceid-portrait-v11_sd15.bin"
    assert by_type["IPAdapterInsightFaceLoader"] == {"provider": "CPU", "model_name": "buffalo_l"}
    faceid = by_type["IPAdapterFaceID"]
    assert faceid["weight"] == 0.9
    assert by_type["CheckpointLoaderSimple"]["ckpt_name"] == "Realistic_Vision_V4.0_noVAE.safetensors"
    assert by_type["FineFaceReleaseLoader"] == {"au_encoder": "sd15_au_encoder.ckpt", "attn_processors": "sd15_attn_processors.ckpt",
                                                "lora": "none"}
    ids = ids_by_type(prompt)
    # identity from one photo, expression from the other
    assert prompt[faceid["image"][0]]["_meta"]["title"] == "Face photo"
    read = by_type["FineFaceAUFromImage"]
    assert prompt[read["images"][0]]["_meta"]["title"] == "Expression photo" and faceid["image"] != read["images"]
    assert by_type["FineFaceAUVector"]["base"] == [ids["FineFaceAUFromImage"], 0]
    assert by_type["FineFaceAUEncoder"]["aus"] == [ids["FineFaceAUVector"], 0]
    # FineFace patches the model IP-Adapter patched: KSampler <- FineFace <- IPAdapterFaceID <- checkpoint
    assert by_type["KSampler"]["model"][0] == ids["FineFaceApplyAdapter"]
    assert by_type["FineFaceApplyAdapter"]["model"][0] == ids["IPAdapterFaceID"]
    assert faceid["model"][0] == ids["CheckpointLoaderSimple"]
    faceid_basic = workflow_to_prompt(load_shipped("faceid"), node_info)
    for k in ("weight", "weight_type", "combine_embeds", "start_at", "end_at", "embeds_scaling"):
        assert faceid[k] == next(v["inputs"][k] for v in faceid_basic.values() if v["class_type"] == "IPAdapterFaceID")


def validate(prompt):
    import execution

    validate = execution.validate_prompt
    result = validate(str(uuid.uuid4()), prompt, None) if len(inspect.signature(validate).parameters) >= 3 else validate(prompt)
    return comfy_env._wait(result)


def test_without_the_libreface_file_comfyui_says_where_it_goes_before_anything_runs(photo_dirs, models_dir, node_info):
    import folder_paths

    prompt = prompt_of("copy", node_info, [("FineFaceAUFromImage", "estimator", "combined_resnet.pt")])
    _, _, _, node_errors = validate(prompt)
    ids = ids_by_type(prompt)
    assert set(node_errors) == {ids["FineFaceAUFromImage"]}  # (the 2024 tree checks nodes behind optional inputs
    text = str(node_errors[ids["FineFaceAUFromImage"]])      # only for the outputs they feed by required ones)
    folder = os.path.join(str(models_dir), "libreface")
    assert "'combined_resnet.pt' not found in " + folder in text and "docs/copy_expression.md" in text
    assert folder_paths.get_folder_paths("libreface")[0] == folder


@pytest.mark.slow
def test_copy_expression_workflow_renders_the_expression_read_off_the_photo(photo_dirs, models_dir, node_info):
    prompt = prompt_of("copy", node_info)
    outputs = comfy_env.run_prompt(prompt)
    (image,) = images_of(outputs, prompt, "SaveImage")
    assert image.shape == (TEST_SIZE, TEST_SIZE, 3) and image.std() > 1
    (face,) = images_of(outputs, prompt, "PreviewImage", "Face read")
    (found,) = fd.find_faces(skimage_photo("astronaut.png"))  # what AU From Image read: the aligned face
    want = fd.centre_crop(fd.aligned_face(skimage_photo("astronaut.png"), found.quad()))
    assert face.shape == (224, 224, 3) and np.abs(face.astype(int) - want).max() <= 1
    # the same render as the basic workflow (same prompt, seed, sampler) given the AUs read off the photo as a spec
    photo = np.asarray(Image.open(photo_dirs / "input" / photo_name("copy")))[None].astype(np.float32) / 255
    values = read_expressions(photo, load_estimator(str(models_dir / "libreface" / "resnet.pt"))).aus.values[0]
    spec = format_aus(values, precision=6)
    assert spec.count("+") >= 5  # an expression, not neutral
    zero = [("FineFaceAUVector", au.code, 0.0) for au in ACTION_UNITS]
    basic = prompt_of("basic", node_info, zero + [("FineFaceAUVector", "spec", spec)])
    (same,) = images_of(comfy_env.run_prompt(basic), basic, "SaveImage")
    assert np.abs(same.astype(int) - image.astype(int)).max() <= 1
    # ... which the AUs decide: without them (neutral) the render is another one
    neutral = prompt_of("basic", node_info, zero + [("FineFaceAUVector", "spec", "neutral")])
    (other,) = images_of(comfy_env.run_prompt(neutral), neutral, "SaveImage")
    assert np.abs(other.astype(int) - image.astype(int)).mean() > 0.5
