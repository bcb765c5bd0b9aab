"""The node on the onnxruntime backend over real DDS: the tiny FC-CLIP exported by ovseg_models.export,
its outputs equal to the PyTorch model's for the same frames and vocabularies (a switch included),
a frame the export does not fit refused with the reason while the node goes on."""

from __future__ import annotations

import numpy as np
import pytest
from node_harness import Probe, rgb_image, running_node, tiny_params, write_vocab_file
from ros_test_utils import spin_until

from ovseg_ros import conversions, messages, tiny

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

from ovseg_models.export import export_onnx  # noqa: E402
from ovseg_ros.params import ConfigError, config_from_dict  # noqa: E402

H, W = 48, 64


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny_fcclip_48x64.onnx"
    seed = tiny.params()["seed"]  # the weights the node builds from config/tiny_random.yaml
    export_onnx(tiny.segmenter(seed), path, image_size=(H, W))
    return path


def test_node_runs_the_exported_model(ros_context, executor, tmp_path, onnx_file):
    vocab = write_vocab_file(tmp_path)
    params = tiny_params(vocab, backend="onnxruntime", onnx=str(onnx_file))
    reference = tiny.segmenter(tiny.params()["seed"])  # PyTorch, the same weights
    with running_node(ros_context, params, factory=None) as node:
        assert node.segmenter.backend == "onnxruntime"
        probe = Probe(ros_context, executor, overlay=False)
        probe.wait_connected()
        for i, classes in enumerate((None, ["floor", "person", "cup"])):
            if classes is not None:  # a vocabulary switch: the graph takes any class count
                assert probe.set_vocabulary(classes).success
            img = rgb_image(10 + i, H, W)
            sem = probe.send_and_wait(conversions.numpy_to_image(img, "rgb8"))
            offline = reference.predict(img, vocabulary=reference.encode_vocabulary(node.vocabulary.encoded.vocabulary))
            expect = messages.semantic_labels(offline, node.cfg.semantic_score_threshold)
            assert np.array_equal(conversions.image_to_numpy(sem), expect)
        # a frame whose network input is not the exported one: refused with the reason, node goes on
        errors = node.stats.errors
        probe.pub.publish(probe.next_header(conversions.numpy_to_image(rgb_image(1, 24, 128), "rgb8")))
        assert spin_until(executor, lambda: node.stats.errors > errors, 20)
        assert any("exported for a" in w for w in list(node.recent_warnings)[-3:]), list(node.recent_warnings)[-3:]
        sem = probe.send_and_wait(conversions.numpy_to_image(rgb_image(2, H, W), "rgb8"))
        assert sem.height == H


def test_backend_parameters_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="needs 'onnx'"):
        config_from_dict(tiny.params(backend="onnxruntime"))
    with pytest.raises(ConfigError, match="does not exist: export one with ovseg-export"):
        config_from_dict(tiny.params(backend="onnxruntime", onnx=str(tmp_path / "missing.onnx")))
    with pytest.raises(ConfigError, match="backend 'tensorrt': use one of"):
        config_from_dict(tiny.params(backend="tensorrt"))
