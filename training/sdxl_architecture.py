"""The real SDXL base architecture, as published configs (stabilityai/stable-diffusion-xl-base-1.0's
unet/, text_encoder/, text_encoder_2/ and vae/ config.json), so that the dry run can build it with random
weights and measure it without downloading anything.
"""
from __future__ import annotations

SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
    use_linear_projection=True, norm_num_groups=32, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)
# CLIP ViT-L/14's text tower and OpenCLIP ViT-bigG/14's (with the projection whose output is the pooled embedding).
SDXL_TEXT_ENCODER = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                         num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
SDXL_TEXT_ENCODER_2 = dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                           num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu", projection_dim=1280)
SDXL_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                layers_per_block=2, sample_size=1024, scaling_factor=0.13025)
# The SDXL VAE overflows in float16 (NaN images); this fine-tune of it does not, and is what the diffusers SDXL
# training examples point --pretrained_vae_model_name_or_path at. Without it the trainer keeps the VAE in float32.
FP16_SAFE_VAE = "madebyollin/sdxl-vae-fp16-fix"
RESOLUTION = 1024


def sdxl_unet(device: str = "meta"):
    """The SDXL base UNet, random weights (on the meta device: shapes only, no memory)."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device(device):
        return UNet2DConditionModel(**SDXL_UNET)
