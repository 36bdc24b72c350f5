"""FineFace in plain torch: action units, AU encoders, weight files and a diffusers reference.

This package never imports ComfyUI; the node layer in ``nodes/`` is glue around it.

The AU vocabulary: aus (the 12 AUs, presets, spec parsing), au_vector (what AU Vector and its face show),
conditioning (AU vectors per image, cond/uncond embeddings), keyframes (AU animation text).
The model: families (SD 2.x / SD 1.x facts), encoders (the AU encoders), weights (FineFace's weights in
memory), regional (masks onto attention tokens), reference (FineFace on a diffusers UNet), pipeline
(prompt + AUs -> images on diffusers).
Sub-packages: weightfiles (every file format, like diffusers' loaders), files (safe reading and writing),
faces (detection, crops, masks, LibreFace), evaluation (the paper's protocol), editing (exact edits of a
photo's expression: edit-friendly DDPM inversion and its replay).
Also: errors (the exception types), grid (labelled image grids); entry points ``python -m fineface_core``
(convert / inspect) and ``python -m fineface_core.evaluate``.
"""
