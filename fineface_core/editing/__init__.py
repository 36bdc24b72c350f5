"""Editing a face the user already has, exactly: edit-friendly DDPM inversion (Huberman-Spiegelglas,
Kulikov & Michaeli, CVPR 2024) in ComfyUI's sigma parametrization. Plain torch; never imports ComfyUI.

record: what an inversion holds (the drawn noisy latents and the step means), its memory, and the checks
that a regeneration replays it with the same model family, latent shape, step count and start step.
ddpm_inversion: the inversion (any denoiser ``(x, sigma) -> denoised``) and its replay under other
conditioning (other AUs), exact when nothing changed, with an optional mask outside which nothing moves.
diffusers_edit: the same inversion and replay on a diffusers UNet carrying FineFace (fineface_core.reference),
with ComfyUI's sigma -> timestep mapping, so the two paths agree number for number.
pipeline_edit: edit_photo, the whole edit on a FineFacePipeline in one call (encode, invert, replay, decode).
prompt_conditioning: the prompts' embeddings for the diffusers edit, with SDXL's pooled embedding and size ids.
memory: how many targets one regeneration can take, from the record's bytes and the device's free memory.
"""
