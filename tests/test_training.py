"""training/: the trainer, its checkpoints and resume, the export, the dry run.

Everything runs on the CPU with a tiny SD 2.1-architecture model written to disk here
(tests/support/tiny_sd.py) and a synthetic dataset of 32 px images; nothing is downloaded.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from fineface_core.aus import AU_ORDER
from fineface_core.encoders import ENCODER_CHOICES
from fineface_core.weightfiles.loading import load_weights
from fineface_core.reference import attach_fineface
from fineface_core.weightfiles.single_file import load_fineface
from training import train as trainer
from training.checkpoints import REQUIRED_FILES, list_checkpoints, load_trainable, prune, resolve_resume, save_trainable
from training.config import RUN_CONFIG_FILE, TRAINABLE_FILE, parse_args
from training.export import export_checkpoint
from training.export import main as export_main
from training.model import attach_trainable, load_base_model
from training.smoothing import SmoothingConfig, smooth_aus

from tests.support.tiny_sd import write_tiny_sd
from tests.support.training_runs import run_two_processes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_IMAGES = 8


# -- fixtures (tiny_sd: tests/conftest.py) ----------------------------------------------------------

def _rows(n, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        aus = {au: float(round(v, 2)) for au, v in zip(AU_ORDER, rng.uniform(0, 5, 12) * (rng.random(12) < 0.4))}
        rows.append({"file": f"img_{i}.png", "caption": f"a photo of face {i}", **aus})
    return rows


def _write_images(folder, rows, seed=0):
    rng = np.random.default_rng(seed)
    for row in rows:
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(os.path.join(folder, row["file"]))


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory):
    from training.data.generic import write_metadata

    folder = str(tmp_path_factory.mktemp("data"))
    rows = _rows(N_IMAGES)
    _write_images(folder, rows)
    write_metadata(folder, rows)
    return folder


def _args(tiny_sd, data, out, *extra):
    return ["--pretrained_model_name_or_path", tiny_sd, "--train_data_dir", data, "--output_dir", str(out),
            "--resolution", "32", "--train_batch_size", "2", "--learning_rate", "1e-3", "--seed", "3",
            "--validation_steps", "0", "--report_to", "none", *[str(e) for e in extra]]


# -- distribution smoothing ---------------------------------------------------------------------------

def test_smoothing_defaults_are_the_papers():
    args = parse_args(["--train_data_dir", "x"])
    cfg = SmoothingConfig.from_args(args)
    assert (cfg.std, cfg.clip_min, cfg.clip_max, cfg.round_prob, cfg.per) == (0.2, 0.0, 5.0, 0.2, "batch")
    assert (args.learning_rate, args.lora_rank, args.lora_alpha, args.encoder, args.lambda_au) == (1e-4, 32, 8.0, "res_mlp64", 1.0)
    assert args.pretrained_model_name_or_path == "stabilityai/stable-diffusion-2-1-base"
    assert args.caption_dropout_prob == 0.0  # the paper does not drop captions


def test_smoothing_noise_std_and_clip():
    g = torch.Generator().manual_seed(0)
    aus = torch.full((4000, 12), 2.5)
    out = smooth_aus(aus, SmoothingConfig(std=0.2, round_prob=0.0), generator=g)
    assert abs((out - 2.5).std().item() - 0.2) < 0.005
    assert abs((out - 2.5).mean().item()) < 0.005
    assert not torch.equal(out, out.round())
    # Clipping to [0, 5]: labels at the edges never leave the range, half of them sit on it.
    edge = smooth_aus(torch.tensor([[0.0] * 6 + [5.0] * 6] * 2000), SmoothingConfig(std=0.5, round_prob=0.0),
                      generator=g)
    assert edge.min() >= 0.0 and edge.max() <= 5.0
    assert 0.4 < (edge[:, :6] == 0).float().mean() < 0.6 and 0.4 < (edge[:, 6:] == 5).float().mean() < 0.6
    # Other constants are options.
    wide = smooth_aus(torch.full((2000, 12), 2.5), SmoothingConfig(std=1.0, clip_min=2.0, clip_max=3.0, round_prob=0.0),
                      generator=g)
    assert wide.min() == 2.0 and wide.max() == 3.0
    # std 0 and no rounding: only the clip.
    same = smooth_aus(torch.tensor([[-1.0, 2.3, 7.0] + [1.0] * 9]), SmoothingConfig(std=0.0, round_prob=0.0), generator=g)
    assert same[0, :3].tolist() == pytest.approx([0.0, 2.3, 5.0])


def test_smoothing_rounding_probability():
    g = torch.Generator().manual_seed(1)
    aus = torch.full((8, 12), 2.5)
    rounded = 0
    trials = 2000
    for _ in range(trials):
        out = smooth_aus(aus, SmoothingConfig(std=0.2, round_prob=0.2, per="batch"), generator=g)
        is_int = torch.equal(out, out.round())
        rounded += is_int
        # Per batch: all samples rounded or none.
        assert is_int or (out != out.round()).all()
    assert abs(rounded / trials - 0.2) < 0.03
    per_sample = smooth_aus(torch.full((4000, 12), 2.5), SmoothingConfig(std=0.2, round_prob=0.2, per="sample"), generator=g)
    frac = (per_sample == per_sample.round()).all(dim=1).float().mean().item()
    assert abs(frac - 0.2) < 0.03
    always = smooth_aus(aus, SmoothingConfig(std=0.2, round_prob=1.0), generator=g)
    assert torch.equal(always, always.round()) and always.min() >= 0 and always.max() <= 5


def test_smoothing_is_reproducible_from_its_generator():
    a = smooth_aus(torch.rand(4, 12) * 5, generator=torch.Generator().manual_seed(7))
    b = smooth_aus(a.clone(), generator=torch.Generator().manual_seed(7))
    c = smooth_aus(a.clone(), generator=torch.Generator().manual_seed(7))
    assert torch.equal(b, c)
    with pytest.raises(ValueError):
        SmoothingConfig(round_prob=1.5)
    with pytest.raises(ValueError):
        SmoothingConfig(clip_min=3, clip_max=1)


# -- the model ------------------------------------------------------------------------------------------

def _fixed_batch(base, seed=0):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, 4, 4, 4, generator=g)
    noise = torch.randn(2, 4, 4, 4, generator=g)
    timesteps = torch.tensor([300, 700])
    ids = base.tokenizer(["a face", "a smiling face"], padding="max_length", max_length=base.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        text = base.text_encoder(ids)[0]
    aus = torch.rand(2, 12, generator=g) * 5
    return latents, text, aus, noise, timesteps


def _overfit(model, base, batch, steps, lr):
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = trainer.diffusion_loss(model, base.noise_scheduler, *batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return losses


def test_trainable_parts_and_frozen_base(tiny_sd):
    base = load_base_model(tiny_sd)
    model = attach_trainable(base.unet, base.family, lora_rank=4, lora_alpha=4, seed=0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(("au_encoder" in n) or (".au_to_k." in n) or (".au_to_v." in n) or ("lora_" in n)
                             for n in trainable)
    assert not any(p.requires_grad for p in base.vae.parameters())
    assert not any(p.requires_grad for p in base.text_encoder.parameters())
    procs = model.au_processors()
    assert len(procs) == 16
    for path, proc in procs.items():  # initialised from the layer's to_k / to_v (paper)
        attn = model.unet.get_submodule(path)
        assert torch.equal(proc.au_to_v.weight, attn.to_v.base_layer.weight)
        assert torch.equal(proc.au_to_k.weight, attn.to_k.base_layer.weight)
    counts = model.parameter_counts()
    assert counts["au_to_v"] == sum(m.to_v.base_layer.weight.numel() for m in (model.unet.get_submodule(p) for p in procs))
    assert counts["au_encoder"] == 12 * 64 + 64
    no_lora = attach_trainable(load_base_model(tiny_sd).unet, base.family, lora_rank=0)
    assert no_lora.parameter_counts()["lora"] == 0 and no_lora.lora_alpha is None


def test_loss_falls_on_a_fixed_batch(tiny_sd):
    """(b) One fixed batch (latents, noise, timesteps): the loss must drop clearly with a high lr."""
    base = load_base_model(tiny_sd)
    model = attach_trainable(base.unet, base.family, seed=0)
    losses = _overfit(model, base, _fixed_batch(base), steps=30, lr=3e-3)
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.5 * first, losses


def test_gradient_checkpointing_keeps_less_and_gives_the_same_gradients(tiny_sd):
    from training.model import measure_activations

    base = load_base_model(tiny_sd)
    model = attach_trainable(base.unet, base.family, lora_rank=4, lora_alpha=4, seed=0)
    kept_plain = measure_activations(model, base.family, 8)[0]
    kept_checkpointed = measure_activations(model, base.family, 8, gradient_checkpointing=True)[0]
    assert kept_checkpointed < 0.7 * kept_plain
    batch = _fixed_batch(base, seed=2)
    model.train()
    grads = []
    for checkpointing in (False, True):
        if checkpointing:
            model.unet.enable_gradient_checkpointing()
        model.zero_grad()
        trainer.diffusion_loss(model, base.noise_scheduler, *batch).backward()
        grads.append([p.grad.clone() for p in model.trainable_parameters()])
    for plain, checkpointed in zip(*grads):
        assert torch.allclose(plain, checkpointed, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("encoder", ENCODER_CHOICES)
def test_every_encoder_trains_without_lora(tiny_sd, encoder):
    """All six encoders of Table 2, adapter only (--lora_rank 0, as the SD 1.5 release): gradients
    reach the encoder and the adapter, and the loss goes down."""
    base = load_base_model(tiny_sd)
    model = attach_trainable(base.unet, base.family, encoder=encoder, lora_rank=0, seed=0)
    batch = _fixed_batch(base, seed=1)
    model.train()
    loss = trainer.diffusion_loss(model, base.noise_scheduler, *batch)
    loss.backward()
    for name, params in model.trainable_groups().items():
        for p in params:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert all(p.grad.abs().sum() > 0 for p in model.trainable_groups()["au_to_v"])
    assert all(p.grad.abs().sum() > 0 for p in model.trainable_groups()["au_encoder"])
    # Softmax over one AU key is 1: au_to_k gets no gradient at all (NOTES section 1).
    assert max(p.grad.abs().max().item() for p in model.trainable_groups()["au_to_k"]) < 1e-6
    model.zero_grad()
    losses = _overfit(model, base, batch, steps=12, lr=3e-3)
    assert losses[-1] < losses[0]


def test_v_prediction_target(tmp_path):
    folder = write_tiny_sd(str(tmp_path / "v"), "sd21", prediction_type="v_prediction")
    base = load_base_model(folder)
    assert base.noise_scheduler.config.prediction_type == "v_prediction"
    latents, _, _, noise, t = _fixed_batch(load_base_model(folder))
    target = trainer.training_target(base.noise_scheduler, latents, noise, t)
    assert torch.allclose(target, base.noise_scheduler.get_velocity(latents, noise, t))
    assert not torch.allclose(target, noise)


def test_family_is_detected_and_checked(tmp_path, tiny_sd):
    folder = write_tiny_sd(str(tmp_path / "sd15"), "sd15")
    base = load_base_model(folder)
    assert base.family.key == "sd15"
    model = attach_trainable(base.unet, base.family, encoder="res_mlp", lora_rank=0)
    assert model.au_encoder.width == 768 and model.au_encoder.hidden_dim == 756  # the SD 1.5 release's encoder
    with pytest.raises(ValueError, match="sd21"):
        load_base_model(folder, family="sd21")
    assert load_base_model(tiny_sd, family="sd21").family.key == "sd21"


def test_export_matches_the_trained_model(tiny_sd, tmp_path):
    """(d) The exported file, loaded with load_weights and attached to a fresh base UNet, predicts the
    same noise as the in-memory trained model."""
    from diffusers import UNet2DConditionModel

    base = load_base_model(tiny_sd)
    model = attach_trainable(base.unet, base.family, lora_rank=8, lora_alpha=4, seed=0)
    batch = _fixed_batch(base)
    _overfit(model, base, batch, steps=5, lr=3e-3)
    folder = tmp_path / "ckpt"
    save_trainable(model, str(folder), {"base_model": tiny_sd, "global_step": 5})
    out = export_checkpoint(str(folder), str(tmp_path / "export.safetensors"))

    weights = load_weights(out)
    assert weights.lora.rank == 8 and weights.lora.alpha == 4.0
    assert weights.encoder.config() == model.au_encoder.config()
    assert weights.family.key == "sd21" and not weights.au_to_k  # au_to_k left out of inference files
    assert "step 5" in weights.source

    fresh = UNet2DConditionModel.from_pretrained(tiny_sd, subfolder="unet")
    attach_fineface(fresh, weights)
    latents, text, aus, noise, t = batch
    noisy = base.noise_scheduler.add_noise(latents, noise, t)
    model.eval()
    with torch.no_grad():
        expected = model(noisy, t, text, aus)
        got = fresh(noisy, t, text, cross_attention_kwargs={"au_embedding": weights.encode(aus), "au_scale": 1.0}).sample
    rel = ((got - expected).norm() / expected.norm()).item()
    assert rel < 1e-5, rel
    # ... and so does the ComfyUI UNet of the same base weights, patched by the nodes from the exported file
    got_comfy = _comfy_noise_prediction(fresh_base_unet(tiny_sd), out, noisy, t, text, aus)
    rel_comfy = ((got_comfy - expected).norm() / expected.norm()).item()
    assert rel_comfy < 1e-4, rel_comfy
    # The checkpoint file itself (with au_to_k) loads back into a training model exactly.
    other = attach_trainable(load_base_model(tiny_sd).unet, base.family, lora_rank=8, lora_alpha=4, seed=1)
    load_trainable(other, str(folder))
    for a, b in zip(model.trainable_parameters(), other.trainable_parameters()):
        assert torch.equal(a, b)



def fresh_base_unet(tiny_sd):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(tiny_sd, subfolder="unet")


def _comfy_noise_prediction(base_unet, export_path, noisy, t, text, aus):
    """eps of a ComfyUI UNet holding ``base_unet``'s weights, patched by AU Encoder + Apply FineFace
    Adapter with the weights in ``export_path`` (loaded as FineFace Model Loader loads them)."""
    from fineface_core.conditioning import AUVectors
    from tests.support import comfy_env
    from tests.support.comfy_models import comfy_model

    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    import comfy.model_management
    import nodes

    patcher = comfy_model(base_unet, "sd21")
    fineface = load_weights(export_path)
    (emb,) = nodes.NODE_CLASS_MAPPINGS["FineFaceAUEncoder"]().encode(fineface, AUVectors(aus))
    (patched,) = nodes.NODE_CLASS_MAPPINGS["FineFaceApplyAdapter"]().apply(patcher, fineface, emb, 1.0, 1.0, 0.0, 1.0)
    comfy.model_management.load_model_gpu(patched)
    ms = patched.model.model_sampling
    sigma = ms.sigma(t.float())  # ComfyUI's sigma for the trainer's timestep: the UNet sees the same t
    scale = (sigma ** 2 + 1).sqrt()[:, None, None, None]
    x = noisy * scale  # ComfyUI divides by this before the UNet
    to = dict(patched.model_options["transformer_options"], cond_or_uncond=[0], sigmas=sigma)
    with torch.no_grad():
        denoised = patched.model.apply_model(x, sigma, c_crossattn=text, transformer_options=to)
    return (x - denoised) / sigma[:, None, None, None]

# -- the dry run ----------------------------------------------------------------------------------------

def test_dry_run_prints_the_models_parameter_counts(tiny_sd, capsys):
    """(f) --dry_run builds the model from the configs and prints per-part counts that match the model."""
    result = trainer.main(["--dry_run", "--pretrained_model_name_or_path", tiny_sd, "--resolution", "32",
                           "--train_batch_size", "2", "--dry_run_latent_sizes", "4,8", "--lora_rank", "16"])
    text = capsys.readouterr().out
    base = load_base_model(tiny_sd)
    expected = attach_trainable(base.unet, base.family, lora_rank=16).parameter_counts()

    def number(label):
        m = re.search(re.escape(label) + r"[^\n]*?:\s+([\d,]+)\n", text)
        assert m, (label, text)
        return int(m.group(1).replace(",", ""))

    assert number("AU encoder (res_mlp64)") == expected["au_encoder"]
    assert number("AU adapter au_to_k") == expected["au_to_k"]
    assert number("AU adapter au_to_v") == expected["au_to_v"]
    assert number("LoRA (rank 16, alpha 8)") == expected["lora"]
    assert number("total trainable") == sum(v for k, v in expected.items() if k != "frozen_unet")
    assert number("frozen UNet") == expected["frozen_unet"]
    assert "estimated, not measured on a GPU" in text
    for part in ("gradients", "AdamW states", "activations", "total (rough)"):
        assert part in text
    assert result["activation_bytes"] > 0 and result["flops_per_sample"] > 0


# -- checkpoint folders -----------------------------------------------------------------------------------

def test_checkpoint_listing_resume_and_pruning(tmp_path):
    for step in (2, 10, 4, 12):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        for name in REQUIRED_FILES:
            (d / name).write_bytes(b"x")
    os.rename(tmp_path / "checkpoint-12", tmp_path / "checkpoint-12.partial")  # an interrupted save is never picked
    (tmp_path / "checkpoint-11").mkdir()  # incomplete: no weights
    (tmp_path / "checkpoint-11" / TRAINABLE_FILE).write_bytes(b"x")  # nor optimizer state
    assert [s for s, _ in list_checkpoints(str(tmp_path))] == [2, 4, 10]
    assert resolve_resume("latest", str(tmp_path)).endswith("checkpoint-10")
    assert resolve_resume("checkpoint-4", str(tmp_path)).endswith("checkpoint-4")
    assert resolve_resume("latest", str(tmp_path / "nothing")) is None
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        resolve_resume("checkpoint-11", str(tmp_path))
    prune(str(tmp_path), 2)  # after a save: the newest 2 stay, leftovers of interrupted saves go
    assert [s for s, _ in list_checkpoints(str(tmp_path))] == [4, 10]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-10", "checkpoint-11", "checkpoint-4"]


# -- whole runs -------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def short_run(tiny_sd, dataset_dir, tmp_path_factory):
    """(a) A few steps with checkpoints, a limit on them, validation grids and TensorBoard."""
    out = tmp_path_factory.mktemp("run") / "out"
    result = trainer.main(_args(tiny_sd, dataset_dir, out, "--max_train_steps", 6, "--checkpointing_steps", 2,
                                "--checkpoints_total_limit", 2, "--validation_steps", 3,
                                "--validation_inference_steps", 2, "--validation_aus", "neutral; AU12@5 + AU6@3",
                                "--report_to", "tensorboard"))
    return out, result


def test_short_run_writes_checkpoints_validation_logs_and_export(short_run):
    out, result = short_run
    assert result["global_step"] == 6 and len(result["losses"]) == 6 and all(np.isfinite(result["losses"]))
    assert [s for s, _ in list_checkpoints(str(out))] == [4, 6]  # --checkpoints_total_limit 2
    ckpt = out / "checkpoint-6"
    names = set(os.listdir(ckpt))
    assert {TRAINABLE_FILE, RUN_CONFIG_FILE, "optimizer.bin", "scheduler.bin", "training_random_0.pt"} <= names
    # Only the trainable weights: no UNet / model file from accelerate.
    assert not any(n.startswith(("model", "pytorch_model", "diffusion_pytorch_model")) for n in names)
    assert all(not k.startswith("unet.") for k in load_file(str(ckpt / TRAINABLE_FILE)))
    with open(ckpt / RUN_CONFIG_FILE) as f:
        run = json.load(f)
    assert run["global_step"] == 6 and run["family"] == "sd21" and run["lora_rank"] == 32 and run["lora_alpha"] == 8.0
    assert sorted(os.listdir(out / "validation")) == ["step-000003.png", "step-000006.png"]
    assert Image.open(out / "validation" / "step-000006.png").size[0] >= 2 * 32
    events = [f for _, _, files in os.walk(out / "logs") for f in files if f.startswith("events.out.tfevents")]
    assert events
    log = (out / "train_log.txt").read_text()
    assert "trainable parameters" in log and "saved checkpoint" in log
    # The final export of the run.
    weights = load_weights(result["export"])
    assert weights.family.key == "sd21" and weights.lora.rank == 32 and weights.lora.alpha == 8.0
    assert weights.encoder.config() == {"kind": "res_mlp", "width": 1024, "hidden_dim": 64}


def test_export_cli(short_run, tmp_path, capsys):
    out, _ = short_run
    target = tmp_path / "ff.safetensors"
    assert export_main([str(out / "checkpoint-4"), str(target), "--dtype", "fp16"]) == 0
    printed = capsys.readouterr().out
    assert "rank 32, alpha 8" in printed and "Stable Diffusion 2.x" in printed
    weights = load_fineface(str(target))
    assert next(iter(weights.au_to_v.values())).dtype == torch.float16
    assert "step 4" in weights.source
    with pytest.raises(FileNotFoundError):
        export_checkpoint(str(tmp_path), str(tmp_path / "x.safetensors"))


@pytest.mark.slow
def test_mixed_precision_run_keeps_the_trainable_weights_in_float32(tiny_sd, dataset_dir, tmp_path):
    """bfloat16 (the CPU's mixed precision; fp16 needs a GPU) with gradient checkpointing: the frozen models
    run in bfloat16, FineFace's weights train and are saved in float32."""
    out = tmp_path / "bf16"
    args = _args(tiny_sd, dataset_dir, out, "--max_train_steps", 3, "--checkpointing_steps", 3,
                 "--mixed_precision", "bf16", "--gradient_checkpointing")
    # Its own process: accelerate keeps one precision per process, and other tests ran in float32.
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "training.train", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "finished at step 3" in (out / "train_log.txt").read_text()
    trained = _trainable_state(str(out / "checkpoint-3"))
    assert {t.dtype for t in trained.values()} == {torch.float32}
    assert all(torch.isfinite(t).all() for t in trained.values())
    init = attach_trainable(load_base_model(tiny_sd).unet, load_base_model(tiny_sd).family, seed=3)
    path = "down_blocks.0.attentions.0.transformer_blocks.0.attn2"
    start = init.au_processors()[path].au_to_v.weight
    assert not torch.allclose(trained[f"adapter.{path}.au_to_v.weight"], start)  # it trained
    assert load_weights(str(out / "fineface_sd21.safetensors")).family.key == "sd21"


def _trainable_state(folder):
    return load_file(os.path.join(folder, TRAINABLE_FILE))


def _optimizer_state(folder):
    return torch.load(os.path.join(folder, "optimizer.bin"), weights_only=False)


def _assert_same_state(a, b):
    wa, wb = _trainable_state(a), _trainable_state(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], rtol=1e-6, atol=1e-8), k
    oa, ob = _optimizer_state(a), _optimizer_state(b)
    assert oa["state"].keys() == ob["state"].keys()
    for i in oa["state"]:
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.allclose(oa["state"][i][key], ob["state"][i][key], rtol=1e-6, atol=1e-10), (i, key)
    assert oa["param_groups"][0]["lr"] == ob["param_groups"][0]["lr"]
    assert checkpoint_step_of(a) == checkpoint_step_of(b)


def checkpoint_step_of(folder):
    with open(os.path.join(folder, RUN_CONFIG_FILE)) as f:
        return json.load(f)["global_step"]


@pytest.mark.slow
def test_resume_from_a_mid_epoch_checkpoint_equals_the_uninterrupted_run(tiny_sd, dataset_dir, tmp_path):
    """(c) 8 images, batch 2, accumulation 2: 2 optimizer steps per epoch; the checkpoint at step 3
    is in the middle of an epoch. Resuming from it ends exactly where the uninterrupted run ends."""
    extra = ("--max_train_steps", 6, "--checkpointing_steps", 3, "--gradient_accumulation_steps", 2,
             "--lr_scheduler", "linear", "--lr_warmup_steps", 2)
    full = trainer.main(_args(tiny_sd, dataset_dir, tmp_path / "full", *extra))
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-3", resumed_dir / "checkpoint-3")
    resumed = trainer.main(_args(tiny_sd, dataset_dir, resumed_dir, *extra, "--resume_from_checkpoint", "latest"))
    assert resumed["global_step"] == full["global_step"] == 6
    assert resumed["losses"] == pytest.approx(full["losses"][3:], rel=1e-6)  # the same batches, noise, timesteps
    _assert_same_state(str(tmp_path / "full" / "checkpoint-6"), str(resumed_dir / "checkpoint-6"))
    # Resuming a finished run does nothing more.
    again = trainer.main(_args(tiny_sd, dataset_dir, resumed_dir, *extra, "--resume_from_checkpoint", "latest"))
    assert again["global_step"] == 6 and again["losses"] == []


@pytest.mark.slow
def test_killed_subprocess_run_resumes_to_the_same_state(tiny_sd, dataset_dir, tmp_path):
    """(c) A real `python -m training.train` killed (SIGKILL) after its first checkpoint, resumed with
    --resume_from_checkpoint latest, ends in the state of an uninterrupted run."""
    killed = tmp_path / "killed"
    args = _args(tiny_sd, dataset_dir, killed, "--max_train_steps", 200, "--checkpointing_steps", 1)
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "training.train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not list_checkpoints(str(killed)):
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.time() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    done = [s for s, _ in list_checkpoints(str(killed))]
    assert done and done[-1] < 200
    target = done[-1] + 2
    resumed = trainer.main(_args(tiny_sd, dataset_dir, killed, "--max_train_steps", target, "--checkpointing_steps", 1,
                                 "--resume_from_checkpoint", "latest"))
    assert resumed["global_step"] == target and len(resumed["losses"]) == 2
    reference = trainer.main(_args(tiny_sd, dataset_dir, tmp_path / "reference", "--max_train_steps", target,
                                   "--checkpointing_steps", target))
    assert reference["global_step"] == target
    _assert_same_state(str(killed / f"checkpoint-{target}"), str(tmp_path / "reference" / f"checkpoint-{target}"))


@pytest.mark.slow
def test_exported_file_loads_and_applies_through_the_comfyui_nodes(short_run, tmp_path):
    """The run's export in models/fineface: FineFace Model Loader lists and loads it, AU Encoder encodes
    with it, Apply FineFace Adapter fits it to a ComfyUI UNet of the tiny architecture (every
    cross-attention layer patched, every LoRA layer landed)."""
    from tests.support import comfy_env
    from workflows import run as headless

    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    import folder_paths
    import nodes

    out, result = short_run
    models = tmp_path / "models"
    (models / "fineface").mkdir(parents=True)
    shutil.copy(result["export"], models / "fineface" / "trained.safetensors")
    state = headless.snapshot_folders(folder_paths)
    try:
        headless.use_models_dir(folder_paths, str(models))
        loader = nodes.NODE_CLASS_MAPPINGS["FineFaceModelLoader"]
        assert "trained.safetensors" in loader.INPUT_TYPES()["required"]["weights"][0]
        fineface, info = loader().load("trained.safetensors")
    finally:
        headless.restore_folders(folder_paths, state)
    assert "rank 32, alpha 8" in info and "'kind': 'res_mlp'" in info
    aus, _ = nodes.NODE_CLASS_MAPPINGS["FineFaceAUVector"]().build(spec="AU12@4 + AU6@2", **{a: 0.0 for a in AU_ORDER})
    (emb,) = nodes.NODE_CLASS_MAPPINGS["FineFaceAUEncoder"]().encode(fineface, aus)
    reference = load_weights(result["export"])
    assert torch.allclose(emb.cond, reference.encode(aus.values))

    from tests.support.comfy_models import comfy_model

    patcher = comfy_model(None, "sd21")  # the tiny architecture of tests/support/tiny_unets.py
    (patched,) = nodes.NODE_CLASS_MAPPINGS["FineFaceApplyAdapter"]().apply(patcher, fineface, emb)
    attn2 = patched.model_options["transformer_options"]["patches_replace"]["attn2"]
    assert len(attn2) == 16
    assert len(patched.patches) == len(reference.lora.down)


def test_data_problems_are_skipped_and_counted_in_the_log(tiny_sd, tmp_path, capsys):
    """(e) A corrupt image and a bad metadata row: the run trains on the rest and says how many."""
    from training.data.generic import AUImageDataset, write_metadata

    folder = tmp_path / "data"
    folder.mkdir()
    rows = _rows(6, seed=1)
    _write_images(str(folder), rows, seed=1)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    rows.append({"file": "corrupt.png", "caption": "a corrupt file", **{au: 1.0 for au in AU_ORDER}})
    write_metadata(str(folder), rows)
    with open(folder / "metadata.jsonl", "a") as f:  # a row without AU labels
        f.write(json.dumps({"file": "img_0.png", "caption": "no labels"}) + "\n")

    dataset = AUImageDataset(str(folder), resolution=32)
    assert len(dataset) == 6
    summary = trainer.report_dataset(dataset)
    out = tmp_path / "out"
    result = trainer.main(_args(tiny_sd, str(folder), out, "--max_train_steps", 2, "--checkpointing_steps", 2))
    assert result["global_step"] == 2 and result["dataset_summary"] == summary
    console = capsys.readouterr().out
    log = (out / "train_log.txt").read_text()
    for text in (console, log):
        assert "6 usable samples" in text and summary in text


def _torchrun(args):
    return run_two_processes("training.train", args, timeout=180, what="the two-process run")


@pytest.mark.slow
def test_two_process_run_checkpoints_and_resumes_exactly(tiny_sd, dataset_dir, tmp_path):
    """Distributed data parallel on two CPU processes (gloo): one set of trainable weights, a random
    stream per process in the checkpoint, and a resumed run that ends where the uninterrupted one does."""
    extra = ("--max_train_steps", 4, "--checkpointing_steps", 2, "--report_to", "none")
    log = _torchrun(_args(tiny_sd, dataset_dir, tmp_path / "full", *extra))
    assert "Num processes: 2" in log
    names = set(os.listdir(tmp_path / "full" / "checkpoint-2"))
    assert {"training_random_0.pt", "training_random_1.pt", TRAINABLE_FILE} <= names
    (tmp_path / "resumed").mkdir()
    shutil.copytree(tmp_path / "full" / "checkpoint-2", tmp_path / "resumed" / "checkpoint-2")
    _torchrun(_args(tiny_sd, dataset_dir, tmp_path / "resumed", *extra, "--resume_from_checkpoint", "latest"))
    _assert_same_state(str(tmp_path / "full" / "checkpoint-4"), str(tmp_path / "resumed" / "checkpoint-4"))
