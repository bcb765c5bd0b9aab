"""ONNX export and the ONNX Runtime backend (ovseg_models.export) on the tiny models and a real
photo: the exported network equals the PyTorch one for vocabularies it was not traced with (the
class dimension is an input), behind the same Segmenter API; bad files and inputs are refused
with errors that name the file and what differs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from shared_data import shared_path
from tiny_models import tiny_catseg, tiny_fcclip

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

from ovseg_models import create_segmenter  # noqa: E402
from ovseg_models.export import ExportError, export_onnx, read_export_info, use_onnxruntime, use_pytorch  # noqa: E402
from ovseg_models.export.cli import compare_backends  # noqa: E402
from ovseg_models.vocabulary import Vocabulary  # noqa: E402

SIZE = (48, 64)
VOCABULARIES = {
    "2 classes": ["floor", "person"],
    "7 classes": ["wall", "floor", "person", "cup", "tree", "sky", "car"],
    "ADE-150 (synonyms)": "ade20k_150",
}


def _photo(size=SIZE) -> np.ndarray:
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((size[1], size[0]), Image.BILINEAR))


def _vocabulary(v):
    return Vocabulary.from_dataset(v) if isinstance(v, str) else v


@pytest.fixture(scope="module")
def fcclip_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "fcclip_tiny.onnx"
    info = export_onnx(tiny_fcclip(0), path, image_size=SIZE)
    return path, info


@pytest.fixture(scope="module")
def catseg_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {s: export_onnx(tiny_catseg(0, sliding_window=s), folder / f"catseg_{s}.onnx").path for s in (False, True)}


def test_export_metadata(fcclip_file):
    path, info = fcclip_file
    back = read_export_info(path)
    assert back.family == "fcclip" and back.input_shape == info.input_shape and back.weights == info.weights
    from ovseg_models.fcclip.config import variant_name

    assert back.variant == variant_name(tiny_fcclip(0).config) != "unknown"
    assert back.inputs == ("images", "text_classifier", "synonym_class", "seen")
    assert back.outputs == ("mask_cls", "pred_masks", "pooled_clip_feature")
    from ovseg_models.export.fcclip import network_input_shape

    # the padded network input of a 48x64 frame under the test resize
    assert back.input_shape == network_input_shape(tiny_fcclip(0), SIZE)
    h, w = back.input_shape
    assert h % 32 == 0 and w % 32 == 0 and h >= SIZE[0]


@pytest.mark.parametrize("vocabulary", list(VOCABULARIES))
def test_fcclip_onnxruntime_equals_torch(fcclip_file, vocabulary):
    path, _ = fcclip_file
    seg = tiny_fcclip(0)
    seg.set_vocabulary(_vocabulary(VOCABULARIES[vocabulary]))
    image = _photo()
    ref = seg.predict(image, embeddings=True)
    res = compare_backends(seg, path, image)
    assert seg.backend == "onnxruntime"
    # the network outputs (logits, masks, CLIP features) within 1e-4, no decision flips
    assert max(res["max_abs_diff"].values()) <= 1e-4, res["max_abs_diff"]
    out = seg.predict(image, embeddings=True)
    assert res["semantic_flips"] == 0 and np.array_equal(out.semantic, ref.semantic)
    np.testing.assert_allclose(out.score, ref.score, atol=1e-5)
    assert np.array_equal(out.panoptic, ref.panoptic)
    assert [(s.id, s.category, s.queries) for s in out.segments] == [
        (s.id, s.category, s.queries) for s in ref.segments
    ]
    torch.testing.assert_close(out.query_embeddings, ref.query_embeddings, atol=1e-5, rtol=0, equal_nan=True)
    # the whole image's embedding is not in the exported graph: PyTorch only, never a stale one
    assert ref.image_embedding is not None and out.image_embedding is None
    use_pytorch(seg)
    assert seg.backend == "torch" and np.array_equal(seg.predict(image).semantic, ref.semantic)


@pytest.mark.parametrize("sliding", [False, True])
def test_catseg_onnxruntime_equals_torch(catseg_files, sliding):
    seg = tiny_catseg(0, sliding_window=sliding)
    image = _photo((120, 160))
    for v in list(VOCABULARIES.values())[: 2 if sliding else 3]:  # ADE-150 on one view (5 views: a minute)
        use_pytorch(seg)
        seg.set_vocabulary(_vocabulary(v))
        ref = seg.predict(image, embeddings=True)
        res = compare_backends(seg, catseg_files[sliding], image)
        assert max(res["max_abs_diff"].values()) <= 1e-4, res["max_abs_diff"]
        out = seg.predict(image, embeddings=True)
        # labels can only differ where two classes tie to float rounding: reported, at most 1e-3
        assert res["semantic_flips"] <= 1e-3
        np.testing.assert_allclose(out.score, ref.score, atol=1e-5)
        torch.testing.assert_close(out.dense_embeddings, ref.dense_embeddings, atol=1e-5, rtol=0)
        assert ref.image_embedding is not None and out.image_embedding is None


def test_create_segmenter_backend(fcclip_file):
    path, _ = fcclip_file
    from ovseg_ros import tiny

    seg = tiny.segmenter(0, backend="onnxruntime", onnx=str(path))
    assert seg.backend == "onnxruntime"
    with pytest.raises(ValueError, match="needs onnx="):
        create_segmenter("fcclip", variant="rn50", pretrained=False, backend="onnxruntime")
    with pytest.raises(ValueError, match="backend must be"):
        create_segmenter("fcclip", variant="rn50", pretrained=False, backend="tensorflow")


def test_onnxruntime_session_gets_pytorchs_thread_count(fcclip_file):
    # with ONNX Runtime's own default, the PyTorch post-processing after each run went at one
    # thread's speed on a 2-core machine
    from ovseg_models.export import OnnxNetwork, read_export_info

    info = read_export_info(fcclip_file[0])
    assert OnnxNetwork(info).session.get_session_options().intra_op_num_threads == torch.get_num_threads()
    assert OnnxNetwork(info, threads=1).session.get_session_options().intra_op_num_threads == 1


def test_bad_files_and_inputs_are_refused_with_the_reason(fcclip_file, catseg_files, tmp_path):
    import onnx

    path, info = fcclip_file
    seg = tiny_fcclip(0)
    seg.set_vocabulary(VOCABULARIES["2 classes"])
    use_onnxruntime(seg, path)
    # a frame whose network input is not the exported one
    from ovseg_models.export.fcclip import network_input_shape

    assert network_input_shape(seg, (24, 128)) != info.input_shape
    with pytest.raises(ExportError, match=rf"exported for a {info.input_shape[0]}x{info.input_shape[1]} network input"):
        seg.predict(_photo((24, 128)))
    # missing, corrupt, not an ovseg export
    with pytest.raises(ExportError, match="does not exist"):
        read_export_info(tmp_path / "nope.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ExportError, match=rf"{broken}.*not a readable ONNX file"):
        use_onnxruntime(tiny_fcclip(0), broken)
    plain = tmp_path / "plain.onnx"
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.save(proto, str(plain))
    with pytest.raises(ExportError, match="not an ovseg export"):
        use_onnxruntime(tiny_fcclip(0), plain)
    # another variant of the family (the file's metadata says ConvNeXt-L)
    other = tmp_path / "convnext.onnx"
    proto = onnx.load(str(path))
    for prop in proto.metadata_props:
        if prop.key == "ovseg.variant":
            prop.value = "convnext_large_d_320"
    onnx.save(proto, str(other))
    with pytest.raises(
        ExportError,
        match=rf"{other} was exported from variant 'convnext_large_d_320', the segmenter is '{info.variant}'",
    ):
        use_onnxruntime(tiny_fcclip(0), other)
    # another family, other weights
    with pytest.raises(ExportError, match="is a catseg export, the segmenter is fcclip"):
        use_onnxruntime(tiny_fcclip(0), catseg_files[False])
    with pytest.raises(ExportError, match="other weights"):
        use_onnxruntime(tiny_fcclip(1), path)
    # CAT-Seg: more classes than the graph holds; pooling of the other sliding setting
    cat = tiny_catseg(0, sliding_window=False)
    use_onnxruntime(cat, catseg_files[False])
    most = read_export_info(catseg_files[False]).options["max_classes"]
    cat.set_vocabulary([f"class {i}" for i in range(most + 1)])
    with pytest.raises(ExportError, match=f"at most {most} classes"):
        cat.predict(_photo((120, 160)))
    cat.set_vocabulary(VOCABULARIES["2 classes"])
    baked = tuple(read_export_info(catseg_files[False]).options["pooling_size"])
    other = tuple(read_export_info(catseg_files[True]).options["pooling_size"])
    if baked != other:
        with pytest.raises(ExportError, match="class-attention pooling"):
            cat.predict(_photo((120, 160)), sliding_window=True)


def test_ovseg_export_command(tmp_path, monkeypatch, capsys):
    """The command as a user runs it, the model build replaced by the tiny model (the export, the
    parity check and the report are the real ones)."""
    import ovseg_models
    from ovseg_models.export import cli

    tiny = tiny_fcclip(0)  # built before the patch: it is built through create_segmenter itself
    monkeypatch.setattr(ovseg_models, "create_segmenter", lambda model, **kw: tiny)
    out = tmp_path / "tiny.onnx"
    assert cli.main(["fcclip", "--image-size", "48x64", "-o", str(out), "--vocabulary", "floor,person,cup"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}: fcclip" in text and "semantic decision flips 0.0000%" in text and "parity ok" in text
    assert "pred_masks: max_abs_diff=" in text and "of the largest magnitude" in text
    assert read_export_info(out).options["image_size"] == [48, 64]
    assert cli.main(["fcclip", "-o", str(tmp_path / "x.onnx")]) == 2  # FC-CLIP needs the frame size
    with pytest.raises(SystemExit):
        cli.main(["fcclip", "--image-size", "480by640", "-o", str(out)])


def test_export_check_holds_each_query_to_the_tolerance_and_allows_a_few_moved_queries():
    from ovseg_models.export.cli import ROW_OUTLIER_CAP, ROW_OUTLIERS, compare_outputs

    g = torch.Generator().manual_seed(0)
    ref = {
        "pred_masks": torch.randn(1, 10, 8, 8, generator=g) * 30,  # magnitude ~100: the tolerance scales
        "mask_cls": torch.randn(1, 10, 5, generator=g).log_softmax(-1),
    }
    ref["mask_cls"][0, 0, 0] = -math.inf  # a probability of 0 in both
    scale = float(ref["pred_masks"].abs().max())

    def check(**moved):
        other = {k: v.clone() for k, v in ref.items()}
        for name, changes in moved.items():
            for q, delta in changes:
                other[name][0, q] += delta
        return {c.name: c for c in compare_outputs(ref, other, tolerance=1e-3)}

    same = check()
    assert all(c.ok and c.max_abs_diff == 0 for c in same.values()), same
    small = check(pred_masks=[(q, 0.5e-3 * scale) for q in range(10)])  # every query within 1e-3 of the scale
    assert small["pred_masks"].ok and not small["pred_masks"].flips
    few = check(pred_masks=[(3, 0.05 * scale), (7, 0.02 * scale)])  # two queries' masks moved: reported, ok
    assert few["pred_masks"].ok and len(few["pred_masks"].flips) == ROW_OUTLIERS
    many = check(pred_masks=[(q, 0.05 * scale) for q in range(ROW_OUTLIERS + 1)])
    assert not many["pred_masks"].ok
    finite = ref["mask_cls"][torch.isfinite(ref["mask_cls"])]
    too_far = check(
        mask_cls=[(2, 2 * ROW_OUTLIER_CAP * max(1.0, float(finite.abs().max())))]
    )  # one query, beyond the cap
    assert not too_far["mask_cls"].ok
    everywhere = check(pred_masks=[(q, 2e-3 * scale) for q in range(10)])  # a wrong export moves all queries
    assert not everywhere["pred_masks"].ok
    subset = compare_outputs(ref, {"pred_masks": ref["pred_masks"]})  # the file's outputs are compared
    assert [(c.name, c.ok) for c in subset] == [("pred_masks", True)]
    extra = compare_outputs({"pred_masks": ref["pred_masks"]}, ref)
    assert [c.ok for c in extra] == [True, False] and "not among PyTorch's outputs" in extra[1].note


@pytest.mark.slow
def test_full_size_export_holds_parity_on_the_reference_case(capsys):
    """The RN50 reference case (official name-seeded weights, 800x1216 input) exported and run by
    ONNX Runtime: class log-probabilities within 1e-4 of PyTorch's and of the official code's,
    mask logits within 1e-4 of their magnitude, semantic scores within 2e-4, the same panoptic
    segments and instances (``python -m ovseg_models.parity CASE --backend onnxruntime``)."""
    from ovseg_models.parity.__main__ import main

    case = shared_path("reference", "cases", "fcclip_rn50_case0.npz")
    rc = main([str(case), "--backend", "onnxruntime", "--threads", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0, "\n".join(lines)
    ort = {l.split(":")[0]: l for l in lines if l.startswith("onnxruntime/")}
    assert set(ort) >= {
        "onnxruntime/mask_cls_vs_pytorch",
        "onnxruntime/pred_masks_vs_pytorch",
        "onnxruntime/mask_cls_final_logprobs",
        "onnxruntime/sem_seg",
        "onnxruntime/panoptic_segments",
        "onnxruntime/instances",
    }, "\n".join(lines)
    assert all(" ok" in l for l in ort.values()), "\n".join(lines)


def test_ovseg_export_names_a_missing_checkpoint_without_a_traceback(tmp_path, capsys):
    from ovseg_models.export import cli

    missing = tmp_path / "nope.pth"
    assert cli.main(["catseg", "--checkpoint", str(missing), "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert f"ovseg-export: error: checkpoint not found: {missing}" in err and "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()


def test_the_tensorrt_provider_gets_fp16_and_an_engine_cache_beside_the_file(tmp_path):
    from ovseg_models.export import _with_options, tensorrt_options

    path = tmp_path / "fcclip_rn50.onnx"
    providers = _with_options(["TensorrtExecutionProvider", "CPUExecutionProvider"], path)
    assert providers[1] == "CPUExecutionProvider"
    name, options = providers[0]
    assert name == "TensorrtExecutionProvider" and options["trt_fp16_enable"] == "True"
    assert (
        options["trt_engine_cache_path"] == str(tmp_path / "fcclip_rn50.onnx.trt")
        and (tmp_path / "fcclip_rn50.onnx.trt").is_dir()
    )
    assert tensorrt_options(path, fp16=False)["trt_fp16_enable"] == "False"
    assert _with_options([("TensorrtExecutionProvider", {"x": "1"})], path) == [
        ("TensorrtExecutionProvider", {"x": "1"})
    ]


@pytest.mark.gpu
def test_a_tensorrt_fp16_engine_built_from_the_exported_file_agrees_with_pytorch(tmp_path):
    import onnxruntime as ort

    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no TensorRT execution provider (onnxruntime-gpu with TensorRT, on a GPU)")
    seg = tiny_fcclip(0)
    seg.set_vocabulary(["floor", "person", "cup", "wall"])
    image = _photo((120, 160))
    ref = seg.predict(image)
    path = export_onnx(seg, tmp_path / "tiny.onnx", image_size=(120, 160)).path
    use_onnxruntime(seg, path, providers=["TensorrtExecutionProvider", "CPUExecutionProvider"])
    assert seg.network.network.providers[0] == "TensorrtExecutionProvider"
    out = seg.predict(image)
    assert np.abs(out.score - ref.score).max() < 2e-2  # fp16 kernels
    assert (out.semantic == ref.semantic).mean() > 0.99
    assert any((tmp_path / "tiny.onnx.trt").iterdir())  # the engine, cached for the next start
