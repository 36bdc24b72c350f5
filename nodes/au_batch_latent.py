from .shared_noise import repeat_with_shared_noise
from .types import AU_VECTOR, CATEGORY


class FineFaceAUBatchLatent:
    DESCRIPTION = (
        "Repeats a one-image latent once per AU vector, every copy with the same noise: a batch that compares "
        "expressions (several spec lines of AU Vector) changes only the AUs between images. Use a non-ancestral "
        "sampler (euler, dpmpp_2m, ddim) so that no fresh noise enters while sampling."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "latent": ("LATENT", {"tooltip": "A latent with one image (Empty Latent Image with batch size 1, or an encoded portrait)."}),
            "aus": (AU_VECTOR, {"tooltip": "The AU vectors of the batch; the latent is repeated once per vector."}),
        }}

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The latent repeated once per AU vector, all copies with one noise.",)
    FUNCTION = "repeat"
    CATEGORY = CATEGORY

    def repeat(self, latent, aus):
        return (repeat_with_shared_noise(latent, len(aus)),)
