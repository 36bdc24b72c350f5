"""Small editor graphs ("UI format", version 0.4) written by hand, for the converter's tests; no ComfyUI needed.

``INFO`` stands in for node definitions (class name -> INPUT_TYPES): a loader, a sampler with a seed, a latent,
a text node, a save node, LoadImage.
"""
from __future__ import annotations

SAMPLER_INFO = {"required": {
    "model": ("MODEL",),
    "seed": ("INT", {"default": 0, "min": 0}),
    "steps": ("INT", {"default": 20}),
    "cfg": ("FLOAT", {"default": 8.0}),
    "sampler_name": (["euler", "ddim"],),
    "latent": ("LATENT",),
}, "optional": {"denoise": ("FLOAT", {"default": 1.0}), "extra": ("MASK",)}}

INFO = {
    "Loader": {"required": {"name": (["a.safetensors", "b.safetensors"],)}},
    "Sampler": SAMPLER_INFO,
    "Latent": {"required": {"width": ("INT", {"default": 512}), "height": ("INT", {"default": 512})}},
    "Mask": {"required": {"samples": ("LATENT",), "mask": ("MASK",)}},
    "Text": {"required": {"text": ("STRING", {"multiline": True}), "label": ("STRING", {"default": "x"})}},
    "Save": {"required": {"images": ("LATENT",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}},
    "LoadImage": {"required": {"image": (["face.png", "other.png"], {"image_upload": True})}},
    "LoadImageMask": {"required": {"image": (["face.png"], {"image_upload": True}),
                                   "channel": (["alpha", "red"],)}, "optional": {"x": ("INT", {})}},
}


def node(id, type, inputs=(), outputs=(), values=None, mode=0, title=None, **extra):
    n = {"id": id, "type": type, "pos": [0, 0], "size": [100, 100], "flags": {}, "order": id, "mode": mode,
         "inputs": [dict(i) for i in inputs], "outputs": [dict(o) for o in outputs], "properties": {}}
    if values is not None:
        n["widgets_values"] = values
    if title:
        n["title"] = title
    n.update(extra)
    return n


def inp(name, type, link=None, widget=False):
    d = {"name": name, "type": type, "link": link}
    if widget:
        d["widget"] = {"name": name}
    return d


def out(name, type, links=()):
    return {"name": name, "type": type, "links": list(links)}


def graph(*nodes, links=()):
    return {"last_node_id": 99, "last_link_id": 99, "nodes": list(nodes), "links": [list(l) for l in links],
            "groups": [], "config": {}, "extra": {}, "version": 0.4}


def sampler_graph(sampler_values, sampler_inputs=None, extra_nodes=(), extra_links=()):
    """Loader (1) -> Sampler (2) <- Latent (3)."""
    links = [(1, 1, 0, 2, 0, "MODEL"), (2, 3, 0, 2, 1, "LATENT")] + list(extra_links)
    loader = node(1, "Loader", outputs=[out("MODEL", "MODEL", [1])], values=["b.safetensors"])
    latent = node(3, "Latent", outputs=[out("LATENT", "LATENT", [2])], values=[64, 48])
    sampler = node(2, "Sampler", inputs=sampler_inputs or [inp("model", "MODEL", 1), inp("latent", "LATENT", 2)],
                   outputs=[out("LATENT", "LATENT")], values=sampler_values)
    return graph(loader, sampler, latent, *extra_nodes, links=links)
