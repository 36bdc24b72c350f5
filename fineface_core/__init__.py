"""FineFace in plain torch: action units, AU encoders, weight files and a diffusers reference.

This package never imports ComfyUI; the node layer in ``nodes/`` is glue around it.
"""
