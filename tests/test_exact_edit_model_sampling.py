"""An exact edit on a model whose sampling is patched by core ModelSamplingDiscrete (v_prediction: how an SD 2.1
768-v checkpoint is often loaded): the inversion and the regeneration both read the patch, whether or not that MODEL
is the one ComfyUI has loaded. On the 2024 tree a patched model read while unloaded said eps and, once loaded,
v-prediction, so its own inversion was refused by its own regeneration."""
import pytest
import torch

from fineface_core.errors import FineFaceError
from tests.support.exact_edit import SOURCE, TARGET, Fam, exact_edit_nodes, rel


@pytest.fixture(scope="module")
def sd21(tmp_path_factory):
    return Fam(exact_edit_nodes(), "sd21", tmp_path_factory.mktemp("msd"))


def sampled_as(fam, sampling):
    node = fam.pack.registry["ModelSamplingDiscrete"]()
    return getattr(node, node.FUNCTION)(fam.model, sampling, False)[0]


def patched(fam, model, spec):
    emb, = fam.pack.encode(fam.weights, fam.aus(spec))
    return fam.pack.apply(model, fam.weights, emb, 1.0, 1.0, 0.0, 1.0)[0]


def test_a_v_prediction_patch_is_read_in_both_passes_and_other_samplings_are_refused(sd21):
    p, photo = sd21.pack, sd21.photo
    v_model, eps = sampled_as(sd21, "v_prediction"), patched(sd21, sd21.model, SOURCE)
    source, target = patched(sd21, v_model, SOURCE), patched(sd21, v_model, TARGET)
    eps_record, _ = p.invert(eps, sd21.pos, sd21.neg, photo, 7.5, 10, "karras", 0, 1)  # the unpatched model loaded last
    record, _ = p.invert(source, sd21.pos, sd21.neg, photo, 7.5, 10, "karras", 0, 1)
    assert (record.prediction, eps_record.prediction) == ("V_PREDICTION", "EPS")
    assert not torch.allclose(record.means, eps_record.means)  # the model did sample as v-prediction
    assert torch.equal(p.regenerate(source, sd21.pos, sd21.neg, record, 7.5, photo)[0]["samples"], photo["samples"])
    assert rel(p.regenerate(target, sd21.pos, sd21.neg, record, 7.5, photo)[0]["samples"], photo["samples"]) > 1e-2
    with pytest.raises(FineFaceError, match=r"made with a v-prediction model, the regeneration's model uses noise \(eps\)"):
        p.regenerate(eps, sd21.pos, sd21.neg, record, 7.5, photo)
    with pytest.raises(FineFaceError, match=r"made with a noise \(eps\) prediction model, the regeneration's model uses v-pred"):
        p.regenerate(source, sd21.pos, sd21.neg, eps_record, 7.5, photo)
