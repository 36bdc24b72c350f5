"""The exact edit on SD 1.5 with IP-Adapter (FaceID's attn2 chaining as the suite reproduces IPAdapter_plus' protocol,
tests/support/ipadapter_protocol.py): the IP-Adapter-patched model carries FineFace under the photo's AUs for the
inversion and under the target AUs for the regeneration. The photo comes back bit for bit, other AUs edit it, and
the IP-Adapter acts in both passes. With IPADAPTER_PLUS_PATH the chaining itself is tested against the real pack
in tests/test_patch_equals_reference.py and tests/test_regional.py.
"""
from types import SimpleNamespace

import pytest
import torch

from tests.support import ipadapter_protocol
from tests.support.comfy_env import pack_module
from tests.support.exact_edit import SOURCE, TARGET, Fam, exact_edit_nodes, rel
from tests.support.patched_unet import ip_layers


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    return Fam(exact_edit_nodes(), "sd15", tmp_path_factory.mktemp("sd15"))


@pytest.mark.parametrize("order", ["ip_first", "fineface_first"])
def test_ip_adapter_faceid_and_the_exact_edit(sd15, order):
    g = torch.Generator().manual_seed(9)
    ip_cond, ip_uncond = torch.randn(1, 4, 768, generator=g), torch.randn(1, 4, 768, generator=g)
    ordered, _ = ip_layers(SimpleNamespace(comfy_model=pack_module("nodes.comfy_model")),
                           SimpleNamespace(model=sd15.model, context_dim=768))
    plain = sd15.model
    photo = sd15.photo["samples"]
    without_ip = sd15.invert(7.5, 12, "karras", start_step=2)
    try:
        if order == "ip_first":  # IP-Adapter, then FineFace on top (the shipped FaceID workflow's order)
            sd15.model = ipadapter_protocol.apply_ip_adapter(plain, ordered, ip_cond, ip_uncond, weight=0.8)
            source, target = sd15.patched(SOURCE), sd15.patched(TARGET)
        else:  # FineFace first, IP-Adapter chained onto its attn2 patches
            source, target = (ipadapter_protocol.apply_ip_adapter(sd15.patched(a), ordered, ip_cond, ip_uncond, weight=0.8)
                              for a in (SOURCE, TARGET))
        invert, regenerate = sd15.pack.invert, sd15.pack.regenerate
        record, _ = invert(source, sd15.pos, sd15.neg, sd15.photo, 7.5, 12, "karras", 2, 1)
        assert rel(record.means, without_ip.means) > 1e-3  # the IP-Adapter acts in the inversion
        same = regenerate(source, sd15.pos, sd15.neg, record, 7.5, sd15.photo)[0]["samples"]
        assert torch.equal(same, photo)  # the photo's own AUs under the same IP-Adapter: bit for bit
        edit = regenerate(target, sd15.pos, sd15.neg, record, 7.5, sd15.photo)[0]["samples"]
        assert rel(edit, photo) > 1e-2
    finally:
        sd15.model = plain
