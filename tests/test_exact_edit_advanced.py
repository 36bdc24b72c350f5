"""Exact Edit Sampler in SamplerCustomAdvanced (DisableNoise, CFGGuider, the inversion's SAMPLER and SIGMAS), on the
tiny SD 2.1 UNet patched by the pack's nodes. SamplerCustomAdvanced is newer than the 2024 tree the suite runs on:
this file skips there, and runs with COMFYUI_PATH=/work/trees/comfy-0.8.0 (its venv's python).
"""
import pytest

from tests.support.exact_edit import SOURCE, TARGET, Fam, exact_edit_nodes, rel


@pytest.fixture(scope="module")
def fam(tmp_path_factory):
    pack = exact_edit_nodes()
    if "SamplerCustomAdvanced" not in pack.registry:
        pytest.skip("this ComfyUI tree has no SamplerCustomAdvanced (added after the 2024 tree); "
                    "run with COMFYUI_PATH set to a newer tree")
    return Fam(pack, "sd21", tmp_path_factory.mktemp("adv"))


def call(registry, name, **inputs):
    """A core node, classic (FUNCTION) or v3 (classmethod execute) alike; its outputs as a tuple."""
    cls = registry[name]
    if hasattr(cls, "FUNCTION") and isinstance(getattr(cls, "FUNCTION", None), str):
        return getattr(cls(), cls.FUNCTION)(**inputs)
    out = cls.execute(**inputs)
    return tuple(getattr(out, "result", out))


def advanced(fam, record, aus, cfg=7.5, latent=None):
    r = fam.pack.registry
    sampler, sigmas = fam.pack.sampler(record)
    noise, = call(r, "DisableNoise")
    guider, = call(r, "CFGGuider", model=fam.patched(aus), positive=fam.pos, negative=fam.neg, cfg=cfg)
    out = call(r, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
               latent_image=latent or fam.photo)
    return out[0]["samples"]


@pytest.mark.parametrize("cfg", [1.0, 7.5])
def test_sampler_custom_advanced_replays_the_inversion(fam, cfg):
    record = fam.invert(cfg, 20, "karras", start_step=4)
    photo = fam.photo["samples"]
    assert rel(advanced(fam, record, SOURCE, cfg), photo) <= 1e-5  # the photo, to ComfyUI's latent scaling round trip
    assert rel(advanced(fam, record, TARGET, cfg), photo) > 1e-2  # other AUs edit it


def test_fresh_noise_in_sampler_custom_advanced_is_refused(fam):
    from fineface_core.errors import FineFaceError

    record = fam.invert(7.5, 10, "normal", start_step=2)
    r = fam.pack.registry
    sampler, sigmas = fam.pack.sampler(record)
    noise, = call(r, "RandomNoise", noise_seed=0)
    guider, = call(r, "CFGGuider", model=fam.patched(SOURCE), positive=fam.pos, negative=fam.neg, cfg=7.5)
    fam.calls[0] = 0
    with pytest.raises(FineFaceError, match="not the photo that was inverted.*Disable Noise in SamplerCustomAdvanced"):
        call(r, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas, latent_image=fam.photo)
    assert fam.calls[0] == 0
