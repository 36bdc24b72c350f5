"""The headless runner's --image as ComfyUI's Load Image will read it: the file checked for what Load Image
misreads, and the name it is handed under.

Load Image reads a name ending in " [output]", " [input]" or " [temp]" as a file in that folder (so a photo
named "photo.png [output]" rendered another photo from the output folder), turns 16-bit grayscale white
(it converts to RGB without scaling), and makes a batch of every frame of an animation. PIL itself refuses
images over its decompression-bomb limit and PNG text chunks that inflate past its limit, each with its own
exception. Each is refused here, before ComfyUI starts, with what the file is and what to do.
"""
from __future__ import annotations

import re

SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def comfy_name(path: str) -> str:
    """The name the copied image gets in the runner's own input folder: the file's name with every character but
    letters, digits, '.', '_' and '-' made '_', so that ComfyUI reads no folder or annotation into it."""
    import os

    name = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(path)).lstrip(".")
    return name or "image"


def image_problem(path: str) -> tuple[str | None, bool]:
    """(why Load Image cannot read ``path`` as the one image meant, or None; whether it has transparent pixels)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            frames = getattr(im, "n_frames", 1)
            kind = f"{im.format or 'image'} {im.width}x{im.height}, mode {im.mode}"
            if frames > 1:
                return (f"is an animation ({im.format}, {frames} frames); ComfyUI's Load Image would make a batch of "
                        "its frames. Save the frame to edit as a PNG and give that"), False
            if im.mode in SIXTEEN_BIT or im.mode == "F":
                return (f"is a {'16-bit grayscale' if im.mode != 'F' else 'floating-point'} image ({kind}), which "
                        "ComfyUI's Load Image turns white. Save it as an 8-bit PNG or JPEG (e.g. in an image editor, "
                        "or PIL: Image.open(f).point(lambda v: v / 257).convert('L').save(...))"), False
            im.load()  # decodes it all: a truncated file fails here, not in ComfyUI
            transparent = "A" in im.getbands() or "transparency" in im.info
            if transparent:
                transparent = im.convert("RGBA").getchannel("A").getextrema()[0] < 255
            return None, transparent
    except Image.DecompressionBombError as e:
        return (f"is larger than PIL opens ({e}): refused as a possible decompression bomb. Scale the picture down "
                "(ComfyUI's Load Image refuses it too)"), False
    except UnidentifiedImageError:
        return "not an image file PIL can read (PNG, JPEG, WebP ...)", False
    except ValueError as e:  # PIL's limit on PNG text chunks ("Decompressed Data Too Large") and other damage
        return (f"cannot be read: {e}. Its metadata (a PNG text chunk) is larger than PIL reads, a damaged or hostile "
                "file: save the picture again without its metadata"), False
    except (OSError, SyntaxError) as e:  # truncated, damaged (PIL raises SyntaxError for some broken chunks)
        return f"cannot be read ({e})", False
