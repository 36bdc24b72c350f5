import os

import torch

from fineface_core.faces.libreface import AUEstimator, load_estimator
from fineface_core.errors import WeightFileError
from fineface_core.faces.detect import CHOICES, MAX_FACE_INDEX
from fineface_core.faces.photo_aus import NO_FACE, SCALES, read_expressions

from .shown_text import with_text
from .libreface_paths import estimator_menu, estimator_path, missing_message
from .types import AU_VECTOR, CATEGORY

_LOADED: dict[tuple, AUEstimator] = {}  # the last estimator, by file, size, mtime and device


def _device():
    import comfy.model_management

    return comfy.model_management.get_torch_device()


def cached_estimator(path: str) -> AUEstimator:
    stat = os.stat(path)
    device = _device()
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, str(device))
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_estimator(path, device)
    return _LOADED[key]


class FineFaceAUFromImage:
    DESCRIPTION = (
        "Reads the 12 AUs off the face in each image with LibreFace's AU intensity model (the estimator the FineFace "
        "paper used, DISFA, 0-5): copy an expression from a photo. Faces are found offline with OpenCV; the crop is "
        "aligned as LibreFace's training faces (eyes level, face centred). Feed aus to AU Encoder, or to AU Vector's "
        "base to adjust it with the sliders."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Photos with a frontal face (about 100 px or more across); one AU vector per image of the batch."}),
            "estimator": (estimator_menu(), {"tooltip": "LibreFace's AU intensity model in models/libreface: resnet.pt, or combined_resnet.pt (its AU detection head is not used). Where to get it: docs/copy_expression.md. USC research license, non-commercial."}),
            "which_face": (list(CHOICES), {"default": "largest", "tooltip": "Which face to read when an image has several: the largest, the leftmost, ..., or 'by index' (the index below, counted from the left)."}),
            "index": ("INT", {"default": 0, "min": 0, "max": MAX_FACE_INDEX, "tooltip": "With which_face = 'by index': which face, 0 = the leftmost."}),
            "no_face": (list(NO_FACE), {"default": "error", "tooltip": "An image without a face found: stop with an error naming it, or read the whole image (its centre square) instead."}),
            "intensities": (list(SCALES), {"default": SCALES[0], "tooltip": "FineFace training labels: LibreFace's readings corrected as the paper corrected them to make FineFace's AffectNet labels (AU1, AU4 lowered; AU15, AU17, AU20 raised; under 1 set to 0). LibreFace raw: as the estimator reads them."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, estimator):
        # The menu lists LibreFace's file names before they are downloaded: say where they go, before anything runs.
        return True if isinstance(estimator, str) and estimator_path(estimator) else missing_message(estimator)

    RETURN_TYPES = (AU_VECTOR, "STRING", "IMAGE", "MASK", "MASK", "STRING")
    RETURN_NAMES = ("aus", "label", "face", "mask", "all_masks", "faces_found")
    OUTPUT_TOOLTIPS = (
        "One AU vector per image (0-5, FineFace's 12 AUs), labelled with its AUs.",
        "The AUs read, one line per image.",
        "What the estimator read: the aligned face crops, 224 x 224, one per image.",
        "Where it read, one mask per image at the image's size (1 inside the face square).",
        "Every face found, one mask each, image by image and left to right (images without a face read whole: "
        "their whole-image square); for masking several faces.",
        "Which face was read in each image, and its box.",
    )
    FUNCTION = "read"
    CATEGORY = CATEGORY

    def read(self, images, estimator, which_face="largest", index=0, no_face="error", intensities=SCALES[0]):
        path = estimator_path(estimator)
        if path is None:
            raise WeightFileError(missing_message(estimator))
        reading = read_expressions(images.detach().float().cpu().numpy(), cached_estimator(path), which_face, index,
                                   no_face, intensities)
        found = "\n".join(reading.report)
        return with_text((reading.aus, reading.aus.text, torch.from_numpy(reading.crops), torch.from_numpy(reading.masks),
                          torch.from_numpy(reading.all_masks), found), reading.aus.text, found, aus=reading.aus)
