"""Small diffusers UNets with the SD2.1 / SD1.5 layouts (16 cross-attention layers each).

They stand in for the real checkpoints, which tests cannot download. Widths follow the
ComfyUI "tiny" recipe (model_channels 32, channel_mult [1, 2, 4, 4]) so that the same
weights can be mapped onto a ComfyUI UNet built from its own SD20 / SD15 configs.
"""
import torch
from diffusers import UNet2DConditionModel

TINY_CHANNELS = (32, 64, 128, 128)


def tiny_unet_config(family: str) -> dict:
    if family == "sd21":
        # ComfyUI's SD20 forces num_head_channels=... per config; diffusers' attention_head_dim
        # counts heads per block (SD2 naming quirk): width / 8 channels per head.
        heads = tuple(c // 8 for c in TINY_CHANNELS)
        context_dim, linear = 1024, True
    elif family == "sd15":
        heads = 8
        context_dim, linear = 768, False
    else:
        raise ValueError(family)
    return dict(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=TINY_CHANNELS,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=context_dim,
        attention_head_dim=heads,
        use_linear_projection=linear,
        norm_num_groups=32,
    )


def tiny_unet(family: str = "sd21", seed: int = 0, config: dict | None = None) -> UNet2DConditionModel:
    """A randomly initialised tiny UNet (``family``'s layout, or ``config``); every weight (norms and biases too)
    is random."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**(config or tiny_unet_config(family)))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            # diffusers zero-initialises some layers; random values everywhere make
            # mapping mistakes visible in output comparisons.
            noise = torch.randn(p.shape, generator=g)
            if p.ndim >= 2:
                p.copy_(noise / (p[0].numel() ** 0.5))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            else:
                p.copy_(0.1 * noise)
    return unet.eval()
