from fineface_core.au_vector import sweep_vectors
from fineface_core.aus import ACTION_UNITS, SAFE_MAX, SAFE_MIN

from .au_vector import STEP
from .shared_noise import repeat_with_shared_noise
from .types import AU_VECTOR, CATEGORY

AU_CHOICES = [f"{au.code} {au.name}" for au in ACTION_UNITS]


class FineFaceAUSweep:
    DESCRIPTION = (
        "One AU from a start to an end intensity in N cells (optionally on top of a base vector). Outputs the AU "
        "vectors and the latent repeated N times with one noise index, so every cell starts from the same noise: "
        "only the AU changes between cells (use a non-ancestral sampler such as euler or dpmpp_2m)."
    )

    SEARCH_ALIASES = ["expression intensity", "emotion intensity", "expression sweep", "smile strength", "FACS", "FineFace"]

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "au": (AU_CHOICES, {"default": "AU12 Lip Corner Puller", "tooltip": "The AU to sweep."}),
                "start": ("FLOAT", {"default": 0.0, "min": SAFE_MIN, "max": SAFE_MAX, "step": STEP, "tooltip": "First intensity."}),
                "end": ("FLOAT", {"default": 5.0, "min": SAFE_MIN, "max": SAFE_MAX, "step": STEP, "tooltip": "Last intensity."}),
                "cells": ("INT", {"default": 6, "min": 2, "max": 64, "tooltip": "Number of cells (images) in the sweep; 6 from 0 to 5 gives whole intensities."}),
                "latent": ("LATENT", {"tooltip": "A latent with one image (e.g. Empty Latent Image, batch 1); it is repeated for every cell."}),
            },
            "optional": {
                "base": (AU_VECTOR, {"tooltip": "A single AU vector the swept AU is set on (default: neutral): each cell has the base's other AUs and the swept AU at the cell's intensity, not added to the base's."}),
            },
        }

    RETURN_TYPES = (AU_VECTOR, "LATENT", "STRING")
    RETURN_NAMES = ("aus", "latent", "labels")
    OUTPUT_TOOLTIPS = ("One AU vector per cell.", "The latent repeated once per cell, all with the same noise.", "The cells' labels, one per line.")
    FUNCTION = "sweep"
    CATEGORY = CATEGORY

    def sweep(self, au, start, end, cells, latent, base=None):
        vectors = sweep_vectors(au.split(" ", 1)[0], start, end, cells, base)
        return (vectors, repeat_with_shared_noise(latent, cells), vectors.text)
