"""Face Mask: the mask of one detected face per image, for Apply FineFace Adapter's ``mask``."""
import torch

from fineface_core.faces.detect import CHOICES, MAX_FACE_INDEX
from fineface_core.faces.masks import NO_FACE, face_masks

from .types import CATEGORY


class FineFaceFaceMask:
    DESCRIPTION = (
        "Finds the faces in each image (offline, OpenCV) and gives the mask of one of them: 'by index' counts from "
        "the left, so index 0 and index 1 mask the two people of a photo. Feed it to Apply FineFace Adapter's mask "
        "to give that face its own expression. Needs no model file."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The image whose faces to mask (the one you sample from, at its size); one mask per image of the batch."}),
            "which_face": (list(CHOICES), {"default": "by index", "tooltip": "Which face: 'by index' (the index below, 0 = leftmost), or the largest, leftmost, ..."}),
            "index": ("INT", {"default": 0, "min": 0, "max": MAX_FACE_INDEX, "tooltip": "With which_face = 'by index': which face, counted from the left from 0."}),
            "grow": ("FLOAT", {"default": 0.3, "min": -0.5, "max": 3.0, "step": 0.05, "tooltip": "Grow the face box (brows to chin, cheek to cheek) by this fraction of its size, about its centre. The UNet sees the mask on a grid down to 64x coarser than the image: a mask a little larger than the face keeps every layer acting on all of it."}),
            "feather": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 256.0, "step": 1.0, "tooltip": "Soft edge width in pixels (0 = a hard edge). A soft mask scales the expression between full and none."}),
            "no_face": (list(NO_FACE), {"default": "error", "tooltip": "An image without a face (or without the face asked for): stop with an error naming it, or give an empty mask (the expression acts nowhere in that image)."}),
        }}

    RETURN_TYPES = ("MASK", "STRING")
    RETURN_NAMES = ("mask", "faces_found")
    OUTPUT_TOOLTIPS = ("One mask per image at the image's size: 1 on the chosen face, 0 elsewhere.",
                       "What was found in each image and which face was masked.")
    FUNCTION = "mask"
    CATEGORY = CATEGORY

    def mask(self, images, which_face="by index", index=0, grow=0.3, feather=0.0, no_face="error"):
        masks, report = face_masks(images.detach().float().cpu().numpy(), which_face, index, grow, feather, no_face)
        return torch.from_numpy(masks), "\n".join(report)
