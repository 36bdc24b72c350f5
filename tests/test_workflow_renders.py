"""The shipped workflows run through ComfyUI's executor (marked slow), on a small SD 2.1-architecture checkpoint and
FineFace weights made here (the ``models_dir`` fixture of tests/conftest.py); the runs change only resolution and
steps in the shipped files (SPEED_OVERRIDES, tests/support/shipped_runs.py)."""

import numpy as np
import pytest
import torch
from PIL import Image

from workflows.api_format import workflow_to_prompt
from workflows.overrides import input_value, set_input

from tests.support import comfy_env
from tests.support.shipped_runs import SPEED_OVERRIDES, TEST_SIZE, images_of, run_shipped
from tests.support.shipped_workflows import load_shipped, photo_name


@pytest.mark.slow
def test_basic_workflow_renders(comfy_dirs, node_info):
    wf, prompt, outputs = run_shipped("basic", node_info)
    images = images_of(outputs, prompt, "SaveImage")
    assert len(images) == 1 and images[0].shape == (TEST_SIZE, TEST_SIZE, 3)
    assert images[0].std() > 1  # not a blank image


@pytest.mark.slow
def test_sweep_workflow_renders_a_labelled_grid_of_distinct_cells(comfy_dirs, node_info):
    wf, prompt, outputs = run_shipped("sweep", node_info)
    (grid,) = images_of(outputs, prompt, "SaveImage")
    cells = images_of(outputs, prompt, "PreviewImage", "Cells")
    assert len(cells) == 6 and all(c.shape == (TEST_SIZE, TEST_SIZE, 3) for c in cells)
    pad = 4  # fineface_core.grid.labelled_grid's default padding
    assert grid.shape[1] == 6 * TEST_SIZE + 7 * pad
    band = grid.shape[0] - TEST_SIZE - 2 * pad
    assert band >= 10, "no label band under the cells"
    for i, cell in enumerate(cells):
        x = pad + i * (TEST_SIZE + pad)
        crop = grid[pad:pad + TEST_SIZE, x:x + TEST_SIZE].astype(int)
        assert np.abs(crop - cell.astype(int)).max() <= 1  # the grid holds the cells, in order
        label = grid[pad + TEST_SIZE:, x:x + TEST_SIZE]
        assert (label.max(axis=2) < 100).sum() > 10, f"no dark label text under cell {i}"
    # only the AU changes between cells, and it changes each of them
    for i in range(6):
        for j in range(i + 1, 6):
            assert np.abs(cells[i].astype(int) - cells[j].astype(int)).mean() > 0.5, (i, j)
    # the sweep node's labels output, from the same inputs
    sweep_inputs = next(v["inputs"] for v in prompt.values() if v["class_type"] == "FineFaceAUSweep")
    labels = sweep_labels(comfy_dirs, sweep_inputs)
    assert labels == ["AU12@0", "AU12@1", "AU12@2", "AU12@3", "AU12@4", "AU12@5"]


def sweep_labels(_, inputs):
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS["FineFaceAUSweep"]
    args = {k: v for k, v in inputs.items() if not isinstance(v, list)}
    _, latent, labels = getattr(cls(), cls.FUNCTION)(latent={"samples": torch.zeros(1, 4, 8, 8)}, **args)
    assert latent["batch_index"] == [0] * 6  # one noise for every cell
    return labels.split("\n")


def test_sweep_labels_name_the_au_in_every_cell(comfy, node_info):
    inputs = workflow_to_prompt(load_shipped("sweep"), node_info)
    sweep_inputs = next(v["inputs"] for v in inputs.values() if v["class_type"] == "FineFaceAUSweep")
    assert sweep_labels(None, sweep_inputs) == ["AU12@0", "AU12@1", "AU12@2", "AU12@3", "AU12@4", "AU12@5"]


@pytest.mark.slow
def test_expression_grid_workflow_renders_every_expression_from_one_noise(comfy_dirs, node_info):
    wf, prompt, outputs = run_shipped("grid", node_info)
    (grid,) = images_of(outputs, prompt, "SaveImage")
    cells = images_of(outputs, prompt, "PreviewImage", "Cells")
    lines = input_value(prompt, "Expressions", "spec").split("\n")
    assert lines[:3] == ["neutral", "happiness", "sadness"] and len(cells) == len(lines) == 8
    pad, columns = 4, input_value(prompt, "FineFaceAUGrid", "columns")
    assert columns == 4 and grid.shape[1] == columns * TEST_SIZE + (columns + 1) * pad
    assert grid.shape[0] > 2 * (TEST_SIZE + pad) + 10  # two rows, each with a label band
    for i in range(8):
        for j in range(i + 1, 8):
            assert np.abs(cells[i].astype(int) - cells[j].astype(int)).mean() > 0.5, (i, j)
    # the same expression twice on the shared noise gives the same image: only the AUs differ between cells
    twice = [("Expressions", "spec", "happiness\nhappiness")]
    _, prompt, outputs = run_shipped("grid", node_info, twice)
    a, b = images_of(outputs, prompt, "PreviewImage", "Cells")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.slow
def test_expression_edit_workflow_rerenders_the_input_image(comfy_dirs, node_info):
    portrait = np.zeros((80, 64, 3), np.uint8)  # taller than wide: the scale keeps the aspect ratio
    portrait[..., 0] = np.linspace(0, 255, 64)[None, :]
    portrait[..., 1] = np.linspace(0, 255, 80)[:, None]
    Image.fromarray(portrait).save(comfy_dirs / "input" / photo_name("redraw"))
    wf, prompt, outputs = run_shipped("redraw", node_info)
    (image,) = images_of(outputs, prompt, "SaveImage")
    assert image.shape == (80, 64, 3)  # width 64, height 64 * 80 / 64, both multiples of 8
    # denoise 0.6 on a random model: not the input any more, but not unrelated either
    diff = np.abs(image.astype(int) - portrait.astype(int)).mean()
    assert diff > 1


@pytest.mark.slow
def test_face_crop_workflow_gives_every_face_its_own_line_of_aus(comfy_dirs, node_info):
    """which_face = every face: the two faces of a photo are cropped as a batch of two, the AU Vector's two lines
    go one to each (one AU vector per latent image), and both are pasted back in their places."""
    from fineface_core.faces.crop import EVERY_FACE
    from tests.support.libreface_files import skimage_photo

    head = skimage_photo("astronaut.png")[:256, 96:352]
    photo = np.concatenate([head, head[:, ::-1]], axis=1)  # faces at x 78-176 and 335-432 (256 x 512)
    Image.fromarray(photo).save(comfy_dirs / "input" / photo_name("face_crop"))

    def rendered(spec):
        torch.manual_seed(0)  # ComfyUI's VAE Encode samples the latent distribution (the test VAE's is wide)
        _, prompt, outputs = run_shipped("face_crop", node_info, [("FineFaceFaceCrop", "which_face", EVERY_FACE),
                                                                  ("FineFaceAUVector", "spec", spec)])
        (image,) = images_of(outputs, prompt, "SaveImage")
        return image.astype(int)

    both = rendered("happiness@4\nsurprise@4")
    left_changed = rendered("happiness@4\nsadness@4")  # only the second (right) face's line differs
    assert both.shape == photo.shape
    changed = np.abs(both - photo).max(axis=2) > 0
    assert changed[:, :256].any() and changed[:, 256:].any() and not changed[:, 235:275].any()  # two squares
    differs = np.abs(left_changed - both).max(axis=2) > 0
    assert differs[:, 256:].any() and not differs[:, :256].any()  # the first face kept its line's expression


@pytest.mark.slow
def test_two_expressions_workflow_gives_each_half_its_own_aus(comfy_dirs, node_info):
    """Two chained Apply nodes, masks made with core mask nodes (left half, its inverse), one image."""
    wf, prompt, outputs = run_shipped("regions", node_info)
    (image,) = images_of(outputs, prompt, "SaveImage")
    assert image.shape == (TEST_SIZE, 96, 3) and image.std() > 1
    applies = {v["_meta"]["title"]: v["inputs"] for v in prompt.values() if v["class_type"] == "FineFaceApplyAdapter"}
    left, right = applies["Apply FineFace Adapter (left)"], applies["Apply FineFace Adapter (right)"]
    assert right["model"][0] == next(k for k, v in prompt.items() if v["_meta"]["title"] == "Apply FineFace Adapter (left)")
    assert prompt[left["mask"][0]]["class_type"] == "MaskComposite" and prompt[right["mask"][0]]["class_type"] == "InvertMask"
    # the same graph with the right face's AUs changed: the image changes, most on the right
    _, _, other = run_shipped("regions", node_info, extra=[("Right face", "spec", "AU1@5 + AU2@5 + AU26@5")])
    (changed,) = images_of(other, prompt, "SaveImage")
    diff = np.abs(changed.astype(float) - image.astype(float)).mean(axis=(0, 2))
    assert diff.sum() > 0


@pytest.mark.slow
def test_two_expressions_photo_workflow_masks_the_faces_it_finds_left_to_right(comfy_dirs, node_info):
    """A real photo of two people (the astronaut and its mirror image): Face Mask 0 and 1 drive the two Apply nodes
    and the noise mask. Changing the right face's AUs changes the sampled latent on the right face more than on the
    left one, and not at all away from the faces (the VAE decoder's attention spreads any change over the pixels,
    so the latent is compared)."""
    from safetensors.torch import load_file

    from fineface_core.faces.masks import face_masks
    from tests.support.libreface_files import skimage_photo

    head = skimage_photo("astronaut.png")[:256, 96:352]
    photo = np.concatenate([head, head[:, ::-1]], axis=1)
    Image.fromarray(photo).save(comfy_dirs / "input" / photo_name("regions_photo"))

    def sampled(extra=()):
        prompt = workflow_to_prompt(load_shipped("regions_photo"), node_info)
        for node_name, field, value in list(SPEED_OVERRIDES["regions_photo"]) + list(extra):
            set_input(prompt, node_name, field, value)
        ksampler = next(k for k, v in prompt.items() if v["class_type"] == "KSampler")
        prompt["save_latent"] = {"class_type": "SaveLatent", "inputs": {"samples": [ksampler, 0], "filename_prefix": "t"},
                                  "_meta": {"title": "Save Latent"}}
        torch.manual_seed(0)  # ComfyUI's VAE Encode samples the latent distribution (the test VAE's is wide)
        outputs = comfy_env.run_prompt(prompt)
        (image,) = images_of(outputs, prompt, "SaveImage")
        return prompt, image, load_file(outputs["save_latent"][0])["latent_tensor"][0].numpy()

    prompt, image, latent = sampled()
    assert image.shape == (128, 256, 3) and image.std() > 1
    by_title = {v["_meta"]["title"]: v for v in prompt.values()}
    left, right = by_title["Apply FineFace Adapter (left)"]["inputs"], by_title["Apply FineFace Adapter (right)"]["inputs"]
    assert prompt[left["mask"][0]]["_meta"]["title"] == "Face Mask (left)" and prompt[left["mask"][0]]["inputs"]["index"] == 0
    assert prompt[right["mask"][0]]["_meta"]["title"] == "Face Mask (right)" and prompt[right["mask"][0]]["inputs"]["index"] == 1
    _, _, other = sampled([("Right face", "spec", "AU1@5 + AU2@5 + AU26@5")])
    diff = np.abs(other - latent).sum(0)  # [16, 32]: latent cells of the 128 x 256 image
    masks, _ = face_masks(photo[None].astype(np.float32) / 255.0, "by index", 0, grow=0.3)
    masks = np.concatenate([masks, face_masks(photo[None].astype(np.float32) / 255.0, "by index", 1, grow=0.3)[0]])
    cells = masks.reshape(2, 16, 16, 32, 16).max(axis=(2, 4))  # the photo is 2x the image, a latent cell 8 px
    near = np.zeros_like(cells[0], bool)  # a cell next to a face (the resized noise mask's edge) may change too
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(np.roll(cells.max(0) > 0, dy, 0), dx, 1)
    assert (~near).sum() > 100 and diff[~near].max() == 0  # away from the faces: untouched
    assert diff[cells[1] > 0].mean() > 2 * diff[cells[0] > 0].mean() > 0  # the right face changed most


@pytest.mark.slow
def test_face_crop_workflow_redraws_the_face_square_and_leaves_the_rest_of_the_photo(comfy_dirs, node_info):
    """A face small in a large photo: Face Crop cuts its square, the graph redraws it at the crop's size with the
    AUs, Face Paste puts it back. Every pixel outside the square is the photo's; the AUs change the square."""
    from tests.support.libreface_files import skimage_photo

    photo = np.full((480, 720, 3), 90, np.uint8)
    photo[::7] = 200  # stripes: something outside the face that a whole-image re-render would change
    photo[100:356, 380:636] = skimage_photo("astronaut.png")[:256, 96:352]
    Image.fromarray(photo).save(comfy_dirs / "input" / photo_name("face_crop"))

    def rendered(spec):
        torch.manual_seed(0)  # ComfyUI's VAE Encode samples the latent distribution (the test VAE's is wide)
        _, prompt, outputs = run_shipped("face_crop", node_info, [("FineFaceAUVector", "spec", spec)])
        (image,) = images_of(outputs, prompt, "SaveImage")
        return image

    smile, frown = rendered("AU6@4 + AU12@5"), rendered("AU4@5 + AU15@4")
    assert smile.shape == photo.shape
    changed = np.abs(smile.astype(int) - photo.astype(int)).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 1000
    top, left, side = ys.min(), xs.min(), max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    assert 380 <= left and xs.max() < 636 and 100 <= top and ys.max() < 356  # only inside the face's square
    assert side < 256 and bool((np.abs(frown.astype(int) - smile.astype(int)) > 0).any())  # the AUs act there
