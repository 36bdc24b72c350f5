"""LibreFace's AU intensity model: its architecture and input, its checkpoint layouts, and refusing every
other file (foreign, damaged, or a pickle that would run code) with nothing executed."""
import os

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from fineface_core.faces.libreface import (CROP_SIZE, IMAGENET_MEAN, IMAGENET_STD, LIBREFACE_AUS, estimate, load_estimator,
                                        normalise)
from fineface_core.aus import AU_ORDER
from fineface_core.errors import WeightFileError
from tests.support.libreface_files import random_state_dict, write_libreface_checkpoint


@pytest.fixture(scope="module")
def resnet_pt(tmp_path_factory):
    return write_libreface_checkpoint(str(tmp_path_factory.mktemp("lf") / "resnet.pt"), seed=3)


def libreface_as_published(sd):
    """The model as LibreFace's own code builds it (libreface/AU_Recognition/models/resnet18.py), independently."""
    trunk = torchvision.models.resnet18(weights=None)
    model = nn.Module()
    model.encoder = nn.Sequential(*list(trunk.children())[:-1])
    model.classifier = nn.Sequential(nn.Linear(512, 128), nn.ReLU(), nn.BatchNorm1d(num_features=128), nn.Dropout(p=0.1),
                                     nn.Linear(128, 12), nn.Sigmoid())
    model.load_state_dict(sd, strict=True)
    return model.eval()


def random_faces(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, CROP_SIZE, CROP_SIZE, 3, generator=g)


def test_the_au_order_is_fineface_s():
    assert LIBREFACE_AUS == AU_ORDER


def test_estimates_match_libreface_s_own_pipeline(resnet_pt):
    """The aligned face through LibreFace's transforms (Resize 256, CenterCrop 224, ToTensor, ImageNet
    Normalize) and its model, clamp(5 x out, 0, 5), equals estimate() on our 224 centre crop."""
    est = load_estimator(resnet_pt)
    aligned = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    transform = torchvision.transforms.Compose([
        torchvision.transforms.Resize(256), torchvision.transforms.CenterCrop(224), torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    x = transform(Image.fromarray(aligned))[None]
    sd = torch.load(resnet_pt, weights_only=True)["model"]
    model = libreface_as_published(sd)
    with torch.no_grad():  # its forward: encoder, reshape(batch, -1), classifier
        want = torch.clamp(model.classifier(model.encoder(x).reshape(1, -1)) * 5.0, 0.0, 5.0)
    crop = torch.from_numpy(aligned[16:240, 16:240].astype(np.float32) / 255.0)[None]
    got = estimate(est, crop)
    assert got.shape == (1, 12)
    assert torch.allclose(got, want, atol=1e-4), (got, want)
    # the network's input is the ImageNet-normalised crop, channels first
    assert torch.allclose(normalise(crop)[0], x[0], atol=1e-5)


def test_random_weights_give_twelve_finite_intensities_in_0_5_per_face(resnet_pt):
    est = load_estimator(resnet_pt)
    values = estimate(est, random_faces(3), batch_size=2)
    assert values.shape == (3, 12) and torch.isfinite(values).all()
    assert values.min() >= 0 and values.max() <= 5
    assert values.std(0).max() > 0  # the faces are read one by one, not all alike
    # batching does not change a face's values (batch norm in eval mode)
    one = estimate(est, random_faces(3)[2:3])
    assert torch.allclose(one[0], values[2], atol=1e-5)


def test_normalise_uses_imagenet_mean_and_std():
    crops = torch.ones(1, CROP_SIZE, CROP_SIZE, 3) * torch.tensor(IMAGENET_MEAN)
    assert normalise(crops).abs().max() < 1e-6
    crops = crops + torch.tensor(IMAGENET_STD)
    assert torch.allclose(normalise(crops), torch.ones(1, 3, CROP_SIZE, CROP_SIZE))
    with pytest.raises(ValueError, match="224"):
        normalise(torch.zeros(1, 256, 256, 3))


@pytest.mark.parametrize("wrap,prefix", [("model", ""), ("state_dict", ""), (None, ""), ("model", "module."), (None, "module.")])
def test_checkpoint_layouts_load_to_the_same_model(tmp_path, resnet_pt, wrap, prefix):
    path = write_libreface_checkpoint(str(tmp_path / "x.pt"), seed=3, wrap=wrap, prefix=prefix)
    got, want = load_estimator(path).model.state_dict(), load_estimator(resnet_pt).model.state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)


def test_combined_checkpoint_loads_and_its_detection_head_is_not_used(tmp_path):
    combined = random_state_dict(detection_head=True, seed=5)
    torch.save({"model": combined}, tmp_path / "combined_resnet.pt")
    torch.save({"model": {k: v for k, v in combined.items() if not k.startswith("classifier_2.")}}, tmp_path / "resnet.pt")
    est = load_estimator(str(tmp_path / "combined_resnet.pt"))
    assert est.has_detection_head and "detection head is not used" in est.description
    assert not load_estimator(str(tmp_path / "resnet.pt")).has_detection_head
    faces = random_faces(1)
    assert torch.equal(estimate(est, faces), estimate(load_estimator(str(tmp_path / "resnet.pt")), faces))


def test_safetensors_copy_of_the_checkpoint_loads(tmp_path, resnet_pt):
    from safetensors.torch import save_file

    sd = torch.load(resnet_pt, weights_only=True)["model"]
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "resnet.safetensors"))
    got = load_estimator(str(tmp_path / "resnet.safetensors")).model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in sd.items())


# ---------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------

def refused(path, *patterns):
    with pytest.raises(WeightFileError) as err:
        load_estimator(str(path))
    for p in patterns:
        assert p in str(err.value), str(err.value)
    assert "Traceback" not in str(err.value)
    return str(err.value)


class WritesAFile:
    """Unpickled, this calls open(marker, "w"): a pickle that runs code when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    live, marker = tmp_path / "live.pt", tmp_path / "marker_live"
    evil, evil_marker = tmp_path / "resnet.pt", tmp_path / "marker"
    sd = random_state_dict(seed=1)
    torch.save({"model": sd, "extra": WritesAFile(str(marker))}, live)
    torch.save({"model": sd, "extra": WritesAFile(str(evil_marker))}, evil)
    # the pickle is live: an unrestricted load runs it and creates its marker
    torch.load(live, weights_only=False)
    assert marker.exists()
    message = refused(evil, "refused", "could run code", "Nothing from it was executed")
    assert not evil_marker.exists()
    assert "resnet.pt" in message


def test_truncated_empty_and_garbage_files_are_refused(tmp_path, resnet_pt):
    data = open(resnet_pt, "rb").read()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    refused(tmp_path / "half.pt", "truncated", "Download it again")
    (tmp_path / "empty.pt").write_bytes(b"")
    refused(tmp_path / "empty.pt", "empty (0 bytes)")
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    refused(tmp_path / "noise.pt", "cannot read", "Download it again")
    (tmp_path / "text.pt").write_text("<html>Google Drive: quota exceeded</html>")
    refused(tmp_path / "text.pt", "is a web page (HTML), not weights")
    (tmp_path / "pointer.pt").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 45000000\n")
    refused(tmp_path / "pointer.pt", "is a Git LFS pointer", "git lfs pull")
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    refused(tmp_path / "broken.safetensors", "not a readable .safetensors")
    refused(tmp_path / "absent.pt", "not found", "resnet.pt")
    os.makedirs(tmp_path / "folder.pt")
    refused(tmp_path / "folder.pt", "not a file")


def test_damaged_values_are_refused(tmp_path):
    sd = random_state_dict(seed=2)
    sd["encoder.4.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    torch.save({"model": sd}, tmp_path / "nan.pt")
    refused(tmp_path / "nan.pt", "NaN or infinite", "encoder.4.0.conv1.weight")


def test_finite_weights_that_compute_nan_are_named_as_the_file_s_fault(tmp_path):
    """Every value finite, yet the model computes NaN: refused naming the file, not later as a mistyped AU."""
    sd = random_state_dict(seed=2)
    sd["classifier.2.running_var"].fill_(-1.0)  # the batch norm takes the square root of a negative number
    torch.save({"model": sd}, tmp_path / "damaged.pt")
    estimator = load_estimator(str(tmp_path / "damaged.pt"))
    with pytest.raises(WeightFileError, match=r"damaged.pt computes NaN AU intensities \(for 2 of 2 faces\): its "
                                              r"weights are damaged. Download it again. Use LibreFace's"):
        estimate(estimator, random_faces(2))


def test_foreign_files_are_refused_with_what_they_are(tmp_path):
    def save(name, obj):
        torch.save(obj, tmp_path / name)
        return tmp_path / name

    refused(save("imagenet.pt", torchvision.models.resnet18(weights=None).state_dict()), "plain ResNet")
    fer = random_state_dict(seed=0)
    fer["classifier.4.weight"], fer["classifier.4.bias"] = torch.zeros(8, 128), torch.zeros(8)
    refused(save("fer.pt", {"model": fer}), "8 outputs", "facial expression")
    refused(save("repvgg.pt", {"model": {"encoder.stem.rbr_dense.conv.weight": torch.zeros(48, 3, 3, 3),
                                         "classifier.0.weight": torch.zeros(128, 512)}}), "RepVGG")
    refused(save("fineface.pt", {"au_encoder.weight": torch.zeros(64, 12), "au_encoder.bias": torch.zeros(64)}),
            "no encoder.* / classifier.*", "au_encoder.bias")
    partial = random_state_dict(seed=0)
    del partial["encoder.7.1.bn2.weight"]
    refused(save("partial.pt", {"model": partial}), "1 weights missing", "encoder.7.1.bn2.weight")
    wide = random_state_dict(seed=0)
    wide["classifier.0.weight"] = torch.zeros(256, 512)
    refused(save("wide.pt", {"model": wide}), "shapes differ", "classifier.0.weight [256, 512] (expected [128, 512])")
    extra = dict(random_state_dict(seed=0), **{"classifier_3.0.weight": torch.zeros(128, 512)})
    refused(save("extra.pt", {"model": extra}), "unexpected", "classifier_3.0.weight")
    refused(save("list.pt", [torch.zeros(1)]), "holds no state dict", "list")
    refused(save("nested.pt", {"model": {"epoch": 3}, "optimizer": {}}), "holds no state dict", "'model'")
