"""ComfyUI type names and the category shared by FineFace nodes."""

CATEGORY = "FineFace"
FINEFACE = "FINEFACE"  # fineface_core.weights.FineFaceWeights
AU_VECTOR = "AU_VECTOR"  # fineface_core.conditioning.AUVectors
AU_EMBEDDING = "AU_EMBEDDING"  # fineface_core.conditioning.AUEmbedding
FACE_CROP = "FACE_CROP"  # tuple of fineface_core.faces.crop.FaceSquare, one per image
