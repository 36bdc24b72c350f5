"""Shipped ComfyUI workflows, their conversion to API prompts, and a headless runner.

``python -m workflows.run --help`` renders a shipped workflow without the editor.
"""
import os

WORKFLOWS_DIR = os.path.dirname(os.path.abspath(__file__))

# Short name -> shipped workflow file (the editor's format).
SHIPPED = {
    "basic": "fineface_basic.json",
    "sweep": "fineface_intensity_sweep.json",
    "faceid": "fineface_ipadapter_faceid.json",
    "edit": "fineface_expression_edit.json",
    "grid": "fineface_expression_grid.json",
    "copy": "fineface_copy_expression.json",
    "copy_faceid": "fineface_copy_expression_faceid.json",
    "regions": "fineface_two_expressions.json",
    "regions_photo": "fineface_two_expressions_photo.json",
    "face_crop": "fineface_face_crop_edit.json",
    "animation": "fineface_au_animation.json",
    "animatediff": "fineface_animatediff.json",
}


def workflow_path(name: str) -> str:
    return os.path.join(WORKFLOWS_DIR, SHIPPED.get(name, name))
