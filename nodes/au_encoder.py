from fineface_core.conditioning import encode_aus

from .types import AU_EMBEDDING, AU_VECTOR, CATEGORY, FINEFACE


class FineFaceAUEncoder:
    DESCRIPTION = "Encodes AU vectors with the FineFace AU encoder: one token per image for cond, encoder(zeros) for uncond."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "fineface": (FINEFACE, {"tooltip": "From FineFace Model Loader; apply the same model afterwards."}),
            "aus": (AU_VECTOR, {"tooltip": "One AU vector for every image, or one per image of the latent batch."}),
        }}

    RETURN_TYPES = (AU_EMBEDDING,)
    RETURN_NAMES = ("au_embedding",)
    OUTPUT_TOOLTIPS = ("The AU tokens for cond and uncond; connect to Apply FineFace Adapter.",)
    FUNCTION = "encode"
    CATEGORY = CATEGORY

    def encode(self, fineface, aus):
        return (encode_aus(fineface, aus),)
