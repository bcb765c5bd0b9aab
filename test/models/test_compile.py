"""``Segmenter.compile``: torch.compile of each family's stages, in place; outputs equal eager's.

On CPU this checks that every compile target traces (dynamo) and, for CAT-Seg, compiles with
inductor and runs; the speed is the GPU's business (``python -m ovseg_models.bench --compile``)."""

import numpy as np
import pytest
import torch
from tiny_models import tiny_catseg, tiny_fcclip
from torch._dynamo.utils import counters

from ovseg_models import create_segmenter

torch.set_num_threads(2)

IMAGE = np.random.default_rng(3).integers(0, 255, (120, 160, 3), dtype=np.uint8)
NAMES = ["cat", "dog", "wall", "floor"]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def _submodules(model):
    return {id(m) for m in model.modules()}


@pytest.mark.parametrize(
    "make, backend",
    [(tiny_fcclip, "eager"), (tiny_catseg, "eager"), (tiny_catseg, "inductor")],
    ids=["fcclip-eager", "catseg-eager", "catseg-inductor"],
)
def test_compiled_segmenter_equals_eager(make, backend):
    seg = make()
    seg.set_vocabulary(NAMES)
    eager = seg.predict(IMAGE)
    keys, model_key = list(seg.model.state_dict()), seg.model_key
    targets = seg.compile_targets()
    assert targets and all(id(m) in _submodules(seg.model) for m in targets)
    # each target is called as a module (what nn.Module.compile compiles), not only its methods
    called = set()
    hooks = [m.register_forward_pre_hook(lambda m, args: called.add(id(m))) for m in targets]
    seg.predict(IMAGE)
    for h in hooks:
        h.remove()
    assert called == {id(m) for m in targets}
    assert seg.compile(backend=backend) is seg and seg.compiled == backend
    compiled = seg.predict(IMAGE)
    # compiled in place: the weights keep their names, so checkpoints and model_key still match
    assert list(seg.model.state_dict()) == keys and seg.refresh_model_key() == model_key
    assert np.allclose(compiled.score, eager.score, atol=1e-5)
    assert (compiled.semantic == eager.semantic).mean() > 0.999
    # the compiled stages do not depend on the vocabulary: a switch compiles nothing new
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    for names in (NAMES[:3], [*NAMES, "sky", "tree"], [("person", "man", "woman"), "car"]):
        seg.set_vocabulary(names)
        again = seg.predict(IMAGE)
        assert again.semantic.max() < len(names)
    assert counters["stats"]["unique_graphs"] == graphs


def test_compile_refused_for_onnxruntime(tmp_path):
    with pytest.raises(ValueError, match="compile=True applies to the torch backend"):
        create_segmenter(
            "fcclip",
            variant="rn50",
            pretrained=False,
            backend="onnxruntime",
            onnx=str(tmp_path / "x.onnx"),
            compile=True,
        )
