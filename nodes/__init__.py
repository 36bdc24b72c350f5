"""ComfyUI nodes: thin glue that validates inputs and calls fineface_core."""
from .apply_adapter import FineFaceApplyAdapter
from .au_batch_latent import FineFaceAUBatchLatent
from .au_encoder import FineFaceAUEncoder
from .au_from_image import FineFaceAUFromImage
from .au_grid import FineFaceAUGrid
from .au_keyframes import FineFaceAUKeyframes
from .au_sweep import FineFaceAUSweep
from .au_vector import FineFaceAUVector
from .exact_edit import (
    FineFaceExactEditSampler,
    FineFaceInvertPhoto,
    FineFaceRegenerateEdit,
)
from .face_crop import FineFaceFaceCrop, FineFaceFacePaste
from .face_mask import FineFaceFaceMask
from .model_loader import FineFaceModelLoader
from .release_loader import FineFaceReleaseLoader

NODE_CLASS_MAPPINGS = {
    "FineFaceModelLoader": FineFaceModelLoader,
    "FineFaceReleaseLoader": FineFaceReleaseLoader,
    "FineFaceAUVector": FineFaceAUVector,
    "FineFaceAUEncoder": FineFaceAUEncoder,
    "FineFaceApplyAdapter": FineFaceApplyAdapter,
    "FineFaceAUSweep": FineFaceAUSweep,
    "FineFaceAUBatchLatent": FineFaceAUBatchLatent,
    "FineFaceAUGrid": FineFaceAUGrid,
    "FineFaceAUFromImage": FineFaceAUFromImage,
    "FineFaceAUKeyframes": FineFaceAUKeyframes,
    "FineFaceFaceMask": FineFaceFaceMask,
    "FineFaceFaceCrop": FineFaceFaceCrop,
    "FineFaceFacePaste": FineFaceFacePaste,
    "FineFaceInvertPhoto": FineFaceInvertPhoto,
    "FineFaceRegenerateEdit": FineFaceRegenerateEdit,
    "FineFaceExactEditSampler": FineFaceExactEditSampler,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "FineFaceModelLoader": "FineFace Model Loader",
    "FineFaceReleaseLoader": "FineFace Release Loader",
    "FineFaceAUVector": "AU Vector",
    "FineFaceAUEncoder": "AU Encoder",
    "FineFaceApplyAdapter": "Apply FineFace Adapter",
    "FineFaceAUSweep": "AU Intensity Sweep",
    "FineFaceAUBatchLatent": "AU Batch Latent",
    "FineFaceAUGrid": "AU Label Grid",
    "FineFaceAUFromImage": "AU From Image",
    "FineFaceAUKeyframes": "AU Keyframes",
    "FineFaceFaceMask": "Face Mask",
    "FineFaceFaceCrop": "Face Crop",
    "FineFaceFacePaste": "Face Paste",
    "FineFaceInvertPhoto": "Invert Photo (FineFace)",
    "FineFaceRegenerateEdit": "Regenerate Exact Edit (FineFace)",
    "FineFaceExactEditSampler": "Exact Edit Sampler (FineFace)",
}

from .web_routes import register_with_running_server  # noqa: E402

register_with_running_server()
