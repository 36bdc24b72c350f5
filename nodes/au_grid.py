import torch

from fineface_core.errors import FineFaceError
from fineface_core.grid import labelled_grid

from .types import AU_VECTOR, CATEGORY


class FineFaceAUGrid:
    DESCRIPTION = "Arranges a batch of images in a grid with each image's AU label under it (for sweeps and comparisons)."

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "One image per AU vector, in the same order."}),
                "aus": (AU_VECTOR, {"tooltip": "The AU vectors the images were made with; their labels go under the cells (a preset's name, as written, over its AUs)."}),
                "columns": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "Cells per row (never more than there are images); 0 = up to 6."}),
            },
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("grid",)
    OUTPUT_TOOLTIPS = ("One image: the cells in rows, each with its AU label underneath.",)
    FUNCTION = "grid"
    CATEGORY = CATEGORY

    def grid(self, images, aus, columns=0):
        if images.shape[0] != len(aus):
            raise FineFaceError(f"{images.shape[0]} images but {len(aus)} AU vectors; connect the images made from these AU vectors")
        grid = labelled_grid(images.float().cpu().numpy(), list(aus.captions), columns=columns)
        return (torch.from_numpy(grid)[None],)
