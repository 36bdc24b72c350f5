"""A tiny BLIP-2 (the paper's captioner) on disk, random weights, built offline from transformers' configs:
a byte-level BPE tokenizer whose vocabulary is written here (single characters, "yes", "no"), BLIP's image
processor, and the model saved as safetensors. ``answer`` makes a model that answers every question with that
word (real weights, chosen: see ``_always``), for the photo check."""
from __future__ import annotations

import json
import os
import string

import torch

WORDS = ("yes", "no")


def _tokenizer(folder: str):
    from transformers import GPT2Tokenizer

    os.makedirs(folder, exist_ok=True)
    space = "\u0120"  # byte-level BPE's mark of a leading space
    chars = list(string.ascii_lowercase + string.digits + ".,!?:'-")
    tokens = ["</s>", "<pad>", *chars, *(space + c for c in chars), space, *WORDS, *(space + w for w in WORDS)]
    merges = []
    for w in WORDS:  # "yes" = y+e -> ye, ye+s; the same after a space
        for lead in ("", space):
            merges += [f"{lead}{w[0]} {w[1]}"] + ([f"{lead}{w[:2]} {w[2]}"] if len(w) == 3 else [])
            tokens += [lead + w[:2]] if len(w) == 3 else []
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(folder, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return GPT2Tokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"), bos_token="</s>",
                         eos_token="</s>", pad_token="<pad>", unk_token="</s>", model_max_length=64)


def write_tiny_blip2(folder: str, seed: int = 0, answer: str | None = None) -> str:
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor

    tokenizer = _tokenizer(folder)
    processor = Blip2Processor(BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer, num_query_tokens=4)
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    torch.manual_seed(seed)
    config = Blip2Config(
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        qformer_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                            encoder_hidden_size=16, vocab_size=len(tokenizer)),
        text_config=dict(model_type="opt", hidden_size=16, ffn_dim=32, num_hidden_layers=1, num_attention_heads=2,
                         word_embed_proj_dim=16, vocab_size=len(tokenizer), max_position_embeddings=128,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        num_query_tokens=4, image_token_index=image_token)
    model = Blip2ForConditionalGeneration(config).eval()
    if answer is not None:
        _always(model, tokenizer, answer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@torch.no_grad()
def _always(model, tokenizer, word: str):
    """Every next token is `` word``: the decoder's final norm is made to output one constant vector v at every
    position (weight 0, bias v), and the output layer's rows are 0 but v for that word, so its logit is |v|^2 and
    every other 0."""
    norm = model.language_model.model.decoder.final_layer_norm if hasattr(model.language_model, "model") \
        else model.language_model.decoder.final_layer_norm
    v = torch.randn(norm.weight.shape[0])
    norm.weight.zero_()
    norm.bias.copy_(v)
    head = model.get_output_embeddings().weight
    head.zero_()
    head[tokenizer.convert_tokens_to_ids("\u0120" + word)] = v
