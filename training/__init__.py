"""Train FineFace weights (AU encoder + AU adapter + LoRA) on a frozen Stable Diffusion 2.1 / 1.5
and export them as this project's single ``.safetensors`` file.

    accelerate launch -m training.train --train_data_dir DATA --output_dir runs/fineface
    python -m training.export runs/fineface/checkpoint-20000 models/fineface/my_fineface.safetensors

See ``training/README.md``.
"""
