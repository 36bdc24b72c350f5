"""ComfyUI nodes: thin glue that validates inputs and calls fineface_core."""
from . import model_folders
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
from .node_errors import name_errors
from .release_loader import FineFaceReleaseLoader

# One row per node: (class id, class, display name). A new node is one more row; ComfyUI's two maps
# below are made from it.
NODES = (
    ("FineFaceModelLoader", FineFaceModelLoader, "FineFace Model Loader"),
    ("FineFaceReleaseLoader", FineFaceReleaseLoader, "FineFace Release Loader"),
    ("FineFaceAUVector", FineFaceAUVector, "AU Vector (Expression & Emotion)"),
    ("FineFaceAUEncoder", FineFaceAUEncoder, "AU Encoder"),
    ("FineFaceApplyAdapter", FineFaceApplyAdapter, "Apply FineFace Adapter"),
    ("FineFaceAUSweep", FineFaceAUSweep, "AU Intensity Sweep"),
    ("FineFaceAUBatchLatent", FineFaceAUBatchLatent, "AU Batch Latent"),
    ("FineFaceAUGrid", FineFaceAUGrid, "AU Label Grid"),
    ("FineFaceAUFromImage", FineFaceAUFromImage, "AU From Image"),
    ("FineFaceAUKeyframes", FineFaceAUKeyframes, "AU Keyframes"),
    ("FineFaceFaceMask", FineFaceFaceMask, "Face Mask"),
    ("FineFaceFaceCrop", FineFaceFaceCrop, "Face Crop"),
    ("FineFaceFacePaste", FineFaceFacePaste, "Face Paste"),
    ("FineFaceInvertPhoto", FineFaceInvertPhoto, "Invert Photo (FineFace)"),
    ("FineFaceRegenerateEdit", FineFaceRegenerateEdit, "Regenerate Exact Edit (FineFace)"),
    ("FineFaceExactEditSampler", FineFaceExactEditSampler, "Exact Edit Sampler (FineFace)"),
)
NODE_CLASS_MAPPINGS = {class_id: cls for class_id, cls, _ in NODES}
NODE_DISPLAY_NAME_MAPPINGS = {class_id: name for class_id, _, name in NODES}
for _, _cls, _name in NODES:
    name_errors(_cls, _name)  # ComfyUI's error dialog shows the class id: the message starts with the node's name

from .sample_photos import install_when_serving  # noqa: E402
from .web_routes import register_with_running_server  # noqa: E402

model_folders.register()
register_with_running_server()
install_when_serving()
