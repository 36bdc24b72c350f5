"""Face Crop and Face Paste: edit one face of a large photo at 512 px and put it back (fineface_core.faces.crop)."""
import torch

from fineface_core.faces.crop import CROP_CHOICES, SIZES, face_crops, paste_faces
from fineface_core.faces.detect import MAX_FACE_INDEX

from .shown_text import with_text
from .types import CATEGORY, FACE_CROP


class FineFaceFaceCrop:
    DESCRIPTION = (
        "Cuts the square around one face out of each image, in the photo's own pixels, and resizes it to 'size' "
        "(512 for SD 2.1 / 1.5): a face of a large photo is then redrawn at the resolution FineFace was trained at. "
        "Edit the crop (VAE Encode -> KSampler with FineFace at denoise 0.5-0.7 -> VAE Decode), then Face Paste "
        "puts it back. Offline face detector (OpenCV), no model file."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The photo (any size); one crop per image of the batch (with 'every face', one per face)."}),
            "which_face": (list(CROP_CHOICES), {"default": "largest", "tooltip": "Which face: the largest, leftmost, ..., 'by index' (the index below, 0 = leftmost), or 'every face': one crop per face, left to right, so that an AU Vector with one line per face gives each person their own expression."}),
            "index": ("INT", {"default": 0, "min": 0, "max": MAX_FACE_INDEX, "tooltip": "With which_face = 'by index': which face, counted from the left from 0."}),
            "grow": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05, "tooltip": "The square's side is the face box's (brows to chin) grown by this fraction: 1.0 doubles it, taking in hair and chin, which gives the model the context to redraw the face in place."}),
            "size": ("INT", {"default": 512, "min": SIZES[0], "max": SIZES[1], "step": 64, "tooltip": "The crop's side in pixels: 512 for SD 2.1 base and SD 1.5 (what FineFace was trained at; smaller loses detail). A multiple of 64."}),
        }}

    RETURN_TYPES = ("IMAGE", FACE_CROP, "MASK", "STRING")
    RETURN_NAMES = ("crop", "face_crop", "face_mask", "faces_found")
    OUTPUT_TOOLTIPS = (
        "The face's square at size x size (a batch: one per image, or per face with 'every face'): edit this.",
        "Where each crop came from; Face Paste needs it to put the edited crop back.",
        "The face within the crop (its box grown by 0.3): for Set Latent Noise Mask, so only the face is redrawn.",
        "What was found in each image and which square was cut.",
    )
    FUNCTION = "crop"
    CATEGORY = CATEGORY

    def crop(self, images, which_face="largest", index=0, grow=1.0, size=512):
        crops, squares, masks, report = face_crops(images.detach().float().cpu().numpy(), which_face, index, grow, size)
        found = "\n".join(report)
        return with_text((torch.from_numpy(crops), squares, torch.from_numpy(masks), found), found)


class FineFaceFacePaste:
    DESCRIPTION = (
        "Puts edited face crops back into the photo Face Crop cut them from: each crop is resized to its square "
        "and blended in with a soft edge. Pixels outside the squares stay exactly as they were."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The photo Face Crop was given (the same size and batch)."}),
            "crop": ("IMAGE", {"tooltip": "The edited crops (e.g. VAE Decode's output), as many as Face Crop cut."}),
            "face_crop": (FACE_CROP, {"tooltip": "Face Crop's face_crop output: where each crop goes."}),
            "feather": ("FLOAT", {"default": 0.1, "min": 0.0, "max": 0.5, "step": 0.01, "tooltip": "The soft edge, as a fraction of the square's side: the edit fades into the photo over it (0 = a hard edge)."}),
        }}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The photo with each edited face in place.",)
    FUNCTION = "paste"
    CATEGORY = CATEGORY

    def paste(self, images, crop, face_crop, feather=0.1):
        pasted = paste_faces(images.detach().float().cpu().numpy(), crop.detach().float().cpu().numpy(), face_crop, feather)
        return (torch.from_numpy(pasted),)
