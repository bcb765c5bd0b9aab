"""FC-CLIP: parity with the official code, checkpoint conversion, segmenter API."""

import io
import pickle
import warnings

import numpy as np
import pytest
import torch
from conftest import shared_file

from ovseg_models.fcclip import (
    FCCLIP,
    CheckpointError,
    PretrainedWeightsUnavailable,
    build_model,
    convert_official_state_dict,
    get_config,
    load_checkpoint_file,
)
from ovseg_models.fcclip.backbone import load_open_clip_state_dict
from ovseg_models.fcclip.checkpoint import is_text_tower_key
from ovseg_models.parity.weights import load_manifest

torch.set_num_threads(2)


# -- parity (through the public CLI) --------------------------------------------------------------
def _run_cli(capsys, *argv):
    from ovseg_models.parity.__main__ import main

    rc = main([*map(str, argv), "--threads", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    return rc, lines


def test_parity_postprocess_synthetic(reference_dir, capsys):
    case = shared_file(reference_dir, "cases/fcclip_postprocess_synthetic.npz")
    rc, lines = _run_cli(capsys, case)
    assert rc == 0, "\n".join(lines)
    results = [l for l in lines if "max_abs_diff" in l]
    assert {l.split(":")[0] for l in results} >= {"sem_seg", "panoptic_seg", "panoptic_segments", "instances"}
    assert all(l.rstrip().split("  (")[0].endswith("ok") for l in results), "\n".join(lines)


@pytest.mark.slow
def test_parity_rn50_case0(reference_dir, capsys):
    case = shared_file(reference_dir, "cases/fcclip_rn50_case0.npz")
    shared_file(reference_dir, "manifests/fcclip_rn50.json.gz")
    rc, lines = _run_cli(capsys, case)
    assert rc == 0, "\n".join(lines)
    names = {l.split(":")[0] for l in lines if "max_abs_diff" in l}
    assert names >= {
        "pred_logits",
        "in_vocab_probs",
        "out_vocab_probs[valid]",
        "mask_cls_final_logprobs",
        "sem_seg",
        "panoptic_seg",
        "instances",
        "text_classifier",
        "model_input",
    }


# -- checkpoint conversion ------------------------------------------------------------------------
def _meta_state_dict(manifest):
    return {
        e["key"]: torch.empty(e["shape"], dtype=getattr(torch, e["dtype"]), device="meta") for e in manifest["entries"]
    }


@pytest.fixture(scope="module")
def rn50_meta(reference_dir):
    manifest = load_manifest(shared_file(reference_dir, "manifests/fcclip_rn50.json.gz"))
    return FCCLIP.from_config(get_config("rn50"), device="meta"), manifest


def test_convnext_large_manifest_fully_consumed(reference_dir):
    manifest = load_manifest(shared_file(reference_dir, "manifests/fcclip_convnext_large_d_320.json.gz"))
    model = FCCLIP.from_config(get_config("convnext_large_d_320"), device="meta")
    official = _meta_state_dict(manifest)
    converted = convert_official_state_dict(official, model)  # strict: raises on any unused/missing key
    target = model.state_dict()
    assert set(converted) == set(target)
    for k, v in converted.items():
        assert tuple(v.shape) == tuple(target[k].shape), k
    # every manifest key is consumed except the training-only criterion weight
    assert len(converted) == manifest["num_entries"] - 1
    assert sum(v.numel() for v in converted.values()) == manifest["total_param_numel"]


def test_converter_names_missing_unexpected_and_mismatched_keys(rn50_meta):
    model, manifest = rn50_meta
    sd = _meta_state_dict(manifest)
    del sd["sem_seg_head.predictor.query_feat.weight"]
    sd["sem_seg_head.predictor.extra_head.weight"] = torch.empty(3, device="meta")
    sd["sem_seg_head.pixel_decoder.mask_features.bias"] = torch.empty(7, device="meta")
    with pytest.raises(CheckpointError) as e:
        convert_official_state_dict(sd, model)
    msg = str(e.value)
    assert "sem_seg_head.predictor.extra_head.weight" in msg and "unexpected" in msg
    assert "transformer_decoder.query_feat.weight" in msg and "missing" in msg
    assert "sem_seg_head.pixel_decoder.mask_features.bias" in msg and "(7,)" in msg


def test_corrupt_checkpoint_files(tmp_path):
    bad = tmp_path / "fcclip_cocopan.pth"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint_file(bad)
    good = io.BytesIO()
    torch.save({"model": {"a": torch.ones(3)}}, good)
    trunc = tmp_path / "truncated.pth"
    trunc.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint_file(trunc)
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"model": {"a": np.ones(2)}, "x": print}))
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint_file(pkl)
    ok = tmp_path / "ok.pkl"
    ok.write_bytes(pickle.dumps({"model": {"a": np.ones(2, dtype=np.float32)}, "__author__": "x"}))
    assert torch.equal(load_checkpoint_file(ok)["a"], torch.ones(2))
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint_file(tmp_path / "missing.pth")


def test_text_tower_taken_from_open_clip_source(rn50_meta):
    model, manifest = rn50_meta
    sd = _meta_state_dict(manifest)
    text_keys = [e["key"] for e in manifest["entries"] if e.get("clip_tower") == "text"]
    assert text_keys and all(is_text_tower_key(k) for k in text_keys)
    for k in text_keys:
        del sd[k]
    source = {
        k[len("backbone.clip_model.") :]: torch.full(sd_shape, 0.5)
        for k, sd_shape in ((e["key"], e["shape"]) for e in manifest["entries"] if e["key"] in text_keys)
    }
    converted = convert_official_state_dict(sd, model, text_tower_source=lambda: source)
    assert set(converted) == set(model.state_dict())
    assert torch.equal(converted["backbone.clip_model.ln_final.weight"], source["ln_final.weight"])
    with pytest.raises(CheckpointError, match="text-tower"):
        convert_official_state_dict(sd, model)  # no source given


def test_text_tower_offline_error_names_file(rn50_meta, monkeypatch):
    model, manifest = rn50_meta
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedWeightsUnavailable) as e:
        load_open_clip_state_dict("RN50", "openai")
    assert "resnet50_clip.openai" in str(e.value) and "pretrained=" in str(e.value)
    sd = {k: v for k, v in _meta_state_dict(manifest).items() if not is_text_tower_key(k)}
    cfg = get_config("rn50", num_queries=250)
    with pytest.raises(PretrainedWeightsUnavailable, match="resnet50_clip.openai"):
        build_model(config=cfg, checkpoint=sd, pretrained=True)


# -- segmenter API --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_segmenter():
    import ovseg_models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = ovseg_models.create_segmenter(
            "fcclip",
            variant="rn50",
            pretrained=False,
            num_queries=20,
            dec_layers=3,
            transformer_enc_layers=1,
            min_size=256,
            outputs=("semantic", "panoptic", "instance"),
        )
    torch.manual_seed(0)
    with torch.no_grad():  # larger query embeddings so that some segments survive the overlap test
        seg.model.transformer_decoder.query_feat.weight.normal_(0, 1)
    return seg


@pytest.fixture(scope="module")
def photo(reference_dir):
    return np.load(shared_file(reference_dir, "cases/fcclip_rn50_case0.npz"))["image"]


def test_segmenter_outputs_at_input_resolution(small_segmenter, photo):
    seg = small_segmenter
    enc = seg.set_vocabulary(["cat, kitty", "dog", "wall", "floor, carpet"])
    assert enc.tensors["text_classifier"].shape == (6, 1024)
    r = seg.predict(photo)
    h, w = photo.shape[:2]
    assert r.semantic.shape == (h, w) and r.semantic.dtype == np.int32
    assert r.score.shape == (h, w) and np.isfinite(r.score).all()
    assert r.semantic.min() >= 0 and r.semantic.max() < 4
    assert r.panoptic.shape == (h, w)
    ids = set(np.unique(r.panoptic)) - {0}
    assert ids == {s.id for s in r.segments}
    for s in r.segments:
        assert s.area == int((r.panoptic == s.id).sum()) and 0 <= s.category < 4
        x, y, bw, bh = s.bbox
        assert 0 <= x < w and 0 <= y < h and bw > 0 and bh > 0
    assert r.instances["masks"].shape[1:] == (h, w)
    for k in ("backbone", "pixel_decoder", "transformer_decoder", "classifiers", "postprocess", "total"):
        assert r.timings[k] >= 0
    assert r.vocabulary_version == enc.version and r.vocabulary_digest == enc.vocabulary.digest
    # CHW tensors are accepted too and give the same result
    r2 = seg.predict(torch.from_numpy(photo).permute(2, 0, 1))
    assert np.array_equal(r2.semantic, r.semantic)


def test_vocabulary_switch_encodes_only_new_names(small_segmenter):
    seg = small_segmenter
    seg.text_cache.clear()
    calls0 = seg.text_encoder.calls
    sent0 = seg.text_cache.encoded_sentences
    seg.encode_vocabulary(["cat", "dog, puppy"])
    assert seg.text_cache.encoded_sentences - sent0 == 3 * 14
    seg.encode_vocabulary(["dog, puppy", "radiator", "cat"])
    assert seg.text_cache.encoded_sentences - sent0 == 4 * 14  # only "radiator"
    assert seg.text_encoder.calls - calls0 == 2
    seg.encode_vocabulary(["cat"])
    assert seg.text_encoder.calls - calls0 == 2  # nothing new: no encoder call


def test_seen_flags(small_segmenter):
    enc = small_segmenter.encode_vocabulary(["cat, cats", "tabby cat", "whiskers"])
    assert enc.tensors["seen"].tolist() == [True, False, False]
    from ovseg_models.vocabulary import Vocabulary

    enc = small_segmenter.encode_vocabulary(Vocabulary.create(["tabby cat"], seen=[True]))
    assert enc.tensors["seen"].tolist() == [True]


def test_bad_inputs(small_segmenter, photo):
    from ovseg_models import ImageError, VocabularyError

    seg = small_segmenter
    seg.set_vocabulary(["cat", "dog"])
    with pytest.raises(ImageError, match="uint8"):
        seg.predict(photo.astype(np.float32))
    with pytest.raises(ImageError, match="channels"):
        seg.predict(photo[..., :2])
    with pytest.raises(ImageError, match="HxWx3"):
        seg.predict(photo[..., 0])
    with pytest.raises(ImageError, match="degenerate"):
        seg.predict(np.zeros((1, 900, 3), np.uint8))
    with pytest.raises(ImageError):
        seg.predict([[1, 2, 3]])
    with pytest.raises(VocabularyError, match="empty"):
        seg.set_vocabulary([])
    with pytest.raises(TypeError, match="unknown predict options"):
        seg.predict(photo, bogus=1)
    with pytest.raises(ValueError, match="unknown FC-CLIP variant"):
        get_config("vit-h")
