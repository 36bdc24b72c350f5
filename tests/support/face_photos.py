"""A folder of real photographs, as a user's collection would be, made offline from registry packages' data:
scikit-image's astronaut (one face) and chelsea (a cat: no face), matplotlib's Grace Hopper (one face), the two
people side by side (two faces), and the hard cases of real collections: a photo stored sideways with an EXIF
orientation, a CMYK JPEG, a 16-bit grayscale PNG, a JPEG cut short, a file named .jpg that is text, a PNG of
144 megapixels that is a few KB (a decompression bomb), and a file that is no photo by its name."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .libreface_files import skimage_photo


def grace_hopper() -> np.ndarray:
    import matplotlib

    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two photos on one canvas, the same height: a photo of two people."""
    h = max(left.shape[0], right.shape[0])
    canvas = np.full((h, left.shape[1] + right.shape[1], 3), 110, np.uint8)
    canvas[:left.shape[0], :left.shape[1]] = left
    canvas[:right.shape[0], left.shape[1]:] = right
    return canvas


def write_good_photos(folder: str) -> list[str]:
    """The photos with faces (and the cat), in subfolders as collections have them; their relative paths."""
    os.makedirs(os.path.join(folder, "people"), exist_ok=True)
    os.makedirs(os.path.join(folder, "pets"), exist_ok=True)
    astronaut, hopper = skimage_photo("astronaut.png"), grace_hopper()
    Image.fromarray(astronaut).save(os.path.join(folder, "people", "astronaut.png"))
    Image.fromarray(hopper).save(os.path.join(folder, "people", "hopper.jpg"), quality=95)
    Image.fromarray(side_by_side(hopper, astronaut)).save(os.path.join(folder, "people", "two.png"))
    Image.fromarray(skimage_photo("chelsea.png")).save(os.path.join(folder, "pets", "chelsea.png"))
    return ["people/astronaut.png", "people/hopper.jpg", "people/two.png", "pets/chelsea.png"]


def write_hard_photos(folder: str) -> dict[str, str]:
    """The files a real collection holds besides good photos: relative path -> what it is."""
    os.makedirs(os.path.join(folder, "odd"), exist_ok=True)
    astronaut, hopper = skimage_photo("astronaut.png"), grace_hopper()
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(astronaut)))  # stored turned left ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... and tagged "rotate 90 clockwise to view"
    sideways.save(os.path.join(folder, "odd", "exif_rotated.jpg"), quality=95, exif=exif.tobytes())
    Image.fromarray(hopper).convert("CMYK").save(os.path.join(folder, "odd", "cmyk.jpg"), quality=95)
    gray16 = (astronaut.mean(2) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(os.path.join(folder, "odd", "gray16.png"))
    with open(os.path.join(folder, "people", "hopper.jpg"), "rb") as f:
        whole = f.read()
    with open(os.path.join(folder, "odd", "truncated.jpg"), "wb") as f:
        f.write(whole[:len(whole) // 3])
    with open(os.path.join(folder, "odd", "not_an_image.jpg"), "w") as f:
        f.write("this is a text file with a photo's name\n")
    Image.new("1", (12000, 12000)).save(os.path.join(folder, "odd", "bomb.png"))
    with open(os.path.join(folder, "odd", "notes.txt"), "w") as f:
        f.write("shot on a Tuesday\n")
    return {"odd/exif_rotated.jpg": "exif", "odd/cmyk.jpg": "cmyk", "odd/gray16.png": "16-bit",
            "odd/truncated.jpg": "truncated_image", "odd/not_an_image.jpg": "not_an_image",
            "odd/bomb.png": "too_many_pixels", "odd/notes.txt": "not a photo by name"}
