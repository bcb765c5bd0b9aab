"""A third model family is one ``register_family(...)`` call: the factory, the ROS node's parameters
and the evaluation CLI take it without edits of their own."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import ovseg_models
from ovseg_models.families import ModelFamily, NodeOption, get_family, list_families, register_family, unregister_family
from ovseg_models.segmenter import SegmentationResult, Segmenter

#: the dummy family's variants: how many brightness levels one class covers
DUMMY_VARIANTS = {"tiny": {"levels": 256}, "small": {"levels": 128}}


class DummySegmenter(Segmenter):
    """Labels each pixel with the index of its brightest channel (``invert``: the darkest), modulo
    the vocabulary's size; the score is that channel's value in [0, 1]."""

    family = "dummy"
    model_key = "dummy:fixed"

    def __init__(self, *, variant: str, device: str, precision: str, invert: bool = False, templates=None):
        super().__init__(torch.nn.Identity(), device=device, precision=precision)
        self.variant, self.invert, self.templates = variant, invert, templates

    def _encode_vocabulary(self, vocabulary, *, cancel=None):
        return {"classes": len(vocabulary)}

    def _predict(self, image, encoded, timer, **options):
        rgb = image.numpy().astype(np.int32)
        channel = (rgb.argmin if self.invert else rgb.argmax)(axis=-1)
        value = np.take_along_axis(rgb, channel[..., None], axis=-1)[..., 0]
        return SegmentationResult(
            semantic=(channel % encoded.tensors["classes"]).astype(np.int32),
            score=(value / 255.0).astype(np.float32),
        )


def build_dummy(*, variant=None, checkpoint=None, pretrained=True, device="cpu", precision="fp32", **options):
    return DummySegmenter(variant=variant or "tiny", device=device, precision=precision, **options)


def _dummy_family() -> ModelFamily:
    return ModelFamily(
        name="dummy",
        build_segmenter=build_dummy,
        variants=DUMMY_VARIANTS,
        default_variant="tiny",
        node_options={"invert": NodeOption("invert", False, "dummy: label by the darkest channel")},
    )


@pytest.fixture
def dummy():
    family = register_family(_dummy_family())
    yield family
    unregister_family("dummy")


def _image() -> np.ndarray:
    img = np.zeros((4, 6, 3), np.uint8)
    img[:, :3, 0] = 200  # left half red, right half blue
    img[:, 3:, 2] = 100
    img[..., 1] = 50
    return img


def test_factory_builds_and_predicts(dummy):
    assert "dummy" in ovseg_models.list_models()
    assert ovseg_models.list_variants("dummy") == ["small", "tiny"]
    seg = ovseg_models.create_segmenter("dummy", variant="small", pretrained=False)
    assert isinstance(seg, DummySegmenter) and seg.variant == "small"
    seg.set_vocabulary(["red thing", "green thing", "blue thing"])
    result = seg.predict(_image())
    expected = np.zeros((4, 6), np.int32)
    expected[:, 3:] = 2
    np.testing.assert_array_equal(result.semantic, expected)
    np.testing.assert_allclose(result.score[0], [200 / 255] * 3 + [100 / 255] * 3, rtol=1e-6)
    assert result.vocabulary_version == 1 and result.timings["total"] >= 0
    # a family option reaches the builder
    inverted = ovseg_models.create_segmenter("dummy", invert=True)
    inverted.set_vocabulary(["a", "b", "c"])
    semantic = inverted.predict(_image()).semantic
    assert (semantic[:, :3] == 2).all() and (semantic[:, 3:] == 0).all()  # the darkest: blue, then red


def test_ros_parameters_take_the_family(dummy):
    from ovseg_ros import params

    params.validate_parameter("model", "dummy")
    params.validate_parameter("variant", "small")
    assert params.parameters()["dummy.invert"] == (False, "dummy: label by the darkest channel")
    params.validate_parameter("dummy.invert", True)
    with pytest.raises(params.ConfigError, match="must be a bool"):
        params.validate_parameter("dummy.invert", 1)
    cfg = params.config_from_dict(
        {"model": "dummy", "variant": "small", "allow_random_weights": True, "device": "cpu", "dummy.invert": True}
    )
    assert cfg.model == "dummy" and cfg.variant == "small"
    # only the dummy's own settings: no FC-CLIP outputs/resize, no CAT-Seg sliding window
    assert params.segmenter_options(cfg) == {"invert": True}
    seg = params.build_segmenter(cfg)
    assert isinstance(seg, DummySegmenter) and seg.variant == "small" and seg.invert
    with_templates = params.config_from_dict(
        {"model": "dummy", "allow_random_weights": True, "device": "cpu", "prompt_templates": ["a photo of a {}."]}
    )
    assert params.segmenter_options(with_templates) == {"invert": False, "templates": ["a photo of a {}."]}
    with pytest.raises(params.ConfigError, match="unknown dummy variant 'rn50'"):
        params.config_from_dict({"model": "dummy", "variant": "rn50", "allow_random_weights": True, "device": "cpu"})


def test_ros_seen_flags_follow_the_family(dummy):
    from ovseg_models.vocabulary import Vocabulary
    from ovseg_ros.messages import resolve_seen

    vocab = Vocabulary.create(["person", "zebra crossing"])
    assert resolve_seen(vocab, "fcclip") == [True, False]  # COCO panoptic has persons
    assert resolve_seen(vocab, "catseg") == [True, False]  # COCO-Stuff too
    assert resolve_seen(vocab, "dummy") == [True, False]  # no training vocabulary: COCO panoptic's


def test_ros_parameter_module_needs_no_rclpy():
    code = (
        "import sys; from ovseg_ros import params, messages; "
        "params.config_from_dict({'allow_random_weights': True, 'device': 'cpu'}); "
        "assert 'rclpy' not in sys.modules, 'rclpy imported'"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr


def test_evaluation_cli_takes_the_family(dummy):
    from ovseg_models.evaluation import cli

    assert cli.build_parser().parse_args(["--model", "dummy"]).model == "dummy"
    assert cli.eval_options("dummy", "ade20k_150") == {}  # neither a test resize nor windows
    assert cli.eval_options("fcclip", "cityscapes") == {"min_size": 1024, "max_size": 2560}
    assert cli.eval_options("catseg", "ade20k_150", {"pooling_size": [2, 2]}) == {
        "sliding_window": None,
        "pooling_size": (2, 2),
    }
    seg = cli.build_segmenter_for_eval(
        "dummy", variant="small", checkpoint=None, pretrained=False, device="cpu", precision="fp32"
    )
    assert isinstance(seg, DummySegmenter)


def test_evaluation_cli_refuses_an_unregistered_model(capsys):
    from ovseg_models.evaluation import cli

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--model", "dummy"])
    assert "invalid choice: 'dummy'" in capsys.readouterr().err


def test_duplicate_name_is_refused(dummy):
    with pytest.raises(ValueError, match="model family 'dummy' is already registered"):
        register_family(_dummy_family())
    with pytest.raises(ValueError, match="model family 'fcclip' is already registered"):
        register_family(ModelFamily("fcclip", build_dummy, DUMMY_VARIANTS, "tiny"))
    assert get_family("dummy") is dummy


def test_bad_descriptors_are_refused():
    with pytest.raises(ValueError, match="use lower-case letters and digits, e.g. 'mymodel'"):
        register_family(ModelFamily("My-Model", build_dummy, DUMMY_VARIANTS, "tiny"))
    with pytest.raises(ValueError, match="default variant 'huge' not in its variants"):
        register_family(ModelFamily("other", build_dummy, DUMMY_VARIANTS, "huge"))
    assert "other" not in list_families() and "mymodel" not in list_families()


def test_unknown_name_lists_the_registered_families(dummy):
    with pytest.raises(ValueError, match=r"unknown model 'nope'; choose one of \['catseg', 'dummy', 'fcclip'\]"):
        ovseg_models.create_segmenter("nope")
    with pytest.raises(ValueError, match=r"choose one of \['catseg', 'dummy', 'fcclip'\]"):
        ovseg_models.list_variants("nope")
    from ovseg_ros import params

    with pytest.raises(params.ConfigError, match=r"to one of \['catseg', 'dummy', 'fcclip'\]"):
        params.validate_parameter("model", "nope")


def test_unregistered_family_is_gone(dummy):
    unregister_family("dummy")
    assert "dummy" not in ovseg_models.list_models()
    with pytest.raises(ValueError, match="unknown model 'dummy'"):
        ovseg_models.create_segmenter("dummy")


@pytest.mark.parametrize("name", ["fcclip", "catseg"])
def test_builtin_families_share_one_public_api(name):
    import importlib
    import inspect

    package = importlib.import_module(f"ovseg_models.{name}")
    family = get_family(name)
    assert package.VARIANTS is family.variants and package.DEFAULT_VARIANT == family.default_variant
    assert not hasattr(package, "CONFIGS")
    assert list(inspect.signature(package.convert_official_state_dict).parameters)[:2] == ["official", "model"]
    for builder in (package.build_model, package.build_segmenter):
        assert inspect.signature(builder).parameters["pretrained"].default is True, builder
