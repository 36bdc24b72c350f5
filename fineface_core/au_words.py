"""Plain words a newcomer types into an AU spec ("smile", "frown", "open mouth", "happy"), each with the AUs it
stands for, after FACS. Only words with one reading in FACS are here; words for movements the model was not
trained on ("blink", "squint", "smirk") are refused with what comes closest.

A word is used as a preset is: ``smile`` adds its AUs at FACS C (3), ``smile@4`` at 4, and the node's label
shows what it expanded to (``smile: AU12@3``).
"""
from __future__ import annotations

# word (as shown) -> (FACS notation of the AUs, or a preset's name; why, for tooltips and the README)
MOVEMENTS: dict[str, tuple[str, str]] = {
    # FACS calls AU12 the smile; with AU6 (the cheeks raised, eyes narrowed) it is the felt or Duchenne smile,
    # the preset happiness (EMFACS 6+12). "smile" is the movement alone: AU12.
    "smile": ("12", "AU12 Lip Corner Puller, the smile itself (add AU6, or use happiness, for a felt smile)"),
    "frown": ("4", "AU4 Brow Lowerer: the brows lowered and drawn together"),
    "open mouth": ("25+26", "AU25 Lips Part + AU26 Jaw Drop"),
    "raise brows": ("1+2", "AU1 Inner + AU2 Outer Brow Raiser"),
    "raised brows": ("1+2", "AU1 Inner + AU2 Outer Brow Raiser"),
    "raise eyebrows": ("1+2", "AU1 Inner + AU2 Outer Brow Raiser"),
    "raised eyebrows": ("1+2", "AU1 Inner + AU2 Outer Brow Raiser"),
    "lower brows": ("4", "AU4 Brow Lowerer"),
    "wide eyes": ("5", "AU5 Upper Lid Raiser"),
    "raise cheeks": ("6", "AU6 Cheek Raiser"),
    "wrinkle nose": ("9", "AU9 Nose Wrinkler"),
    "nose wrinkle": ("9", "AU9 Nose Wrinkler"),
    "lip corners down": ("15", "AU15 Lip Corner Depressor"),
    "raise chin": ("17", "AU17 Chin Raiser"),
    "stretch lips": ("20", "AU20 Lip Stretcher"),
    "part lips": ("25", "AU25 Lips Part"),
    "parted lips": ("25", "AU25 Lips Part"),
    "drop jaw": ("26", "AU26 Jaw Drop"),
    "jaw drop": ("26", "AU26 Jaw Drop"),
}

# The adjective of a preset's emotion.
ADJECTIVES: dict[str, str] = {
    "happy": "happiness", "sad": "sadness", "surprised": "surprise", "afraid": "fear", "scared": "fear",
    "fearful": "fear", "angry": "anger", "disgusted": "disgust",
}

# Words for movements the 12 AUs do not cover: refused with the nearest thing the model can do.
_EYES_SHUT = "FineFace has no eye-closing AU; a negative AU5 (e.g. AU5@-3) closes the eyes (paper Fig. 8)"
NOT_IN_MODEL: dict[str, str] = {
    "blink": _EYES_SHUT, "wink": _EYES_SHUT, "closed eyes": _EYES_SHUT, "close eyes": _EYES_SHUT,
    "eyes closed": _EYES_SHUT, "squint": _EYES_SHUT,
    "smirk": "a smirk is one-sided (AU12 or AU14 on one side); FineFace's AUs are symmetric: try smile@1",
    "contempt": "contempt is one-sided (AU12 + AU14 on one side); FineFace's AUs are symmetric and lack AU14",
    "pout": "a pout is AU18 Lip Pucker or AU22 Lip Funneler, which FineFace was not trained on; AU17 "
            "(Chin Raiser) pushes the lower lip up",
}
