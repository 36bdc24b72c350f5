"""The animation the AnimateDiff tests share (tests/test_animatediff.py, tests/test_regional.py): eight frames' AU
specs, context windows of four in AnimateDiff's uniform schedules, and one UNet call through ComfyUI's model with
AnimateDiff's ``ad_params``."""
import torch

from tests.support.animatediff_protocol import static_windows

FRAMES = 8
TOL = 1e-4  # float32 rounding: the oracle encodes each window's vectors as a batch of its own
SPECS = ["neutral", "AU12@1", "AU12@2 + AU6@1", "happiness@4", "AU1@2 + AU2@2 + AU26@1", "surprise", "AU4@3 + AU15@2",
         "sadness@5"]
WINDOWS = {  # context length 4: the static schedule, strided and wrapped windows (AnimateDiff's uniform schedules)
    "static": static_windows(FRAMES, 4, 1),
    "strided": [[0, 2, 4, 6], [1, 3, 5, 7]],
    "wrapped": [[6, 7, 0, 1], [1, 2, 3, 4], [4, 5, 6, 7]],
}


def call(pack, patcher, x, sigma, ctx, layout, ad_params=None):
    pack.mm.load_model_gpu(patcher)
    b = x.shape[0]
    options = dict(patcher.model_options["transformer_options"], cond_or_uncond=list(layout),
                   sigmas=sigma.expand(b * len(layout)))
    if ad_params is not None:
        options["ad_params"] = ad_params
    with torch.no_grad():
        return patcher.model.apply_model(torch.cat([x] * len(layout)), sigma.expand(b * len(layout)),
                                         c_crossattn=torch.cat([ctx[k].expand(b, -1, -1) for k in layout]),
                                         transformer_options=options)
