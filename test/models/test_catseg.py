"""CAT-Seg: parity with the official code, checkpoint conversion, training hooks, segmenter API.

Shared reference data is read from ``../shared/reference`` (relative to the repository root);
tests that need it are skipped with the reason when it is absent.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from shared_data import shared_path
from tiny_models import tiny_catseg_config as tiny_config

from ovseg_models.catseg import (
    CATSeg,
    CATSegSegmenter,
    CheckpointError,
    build_segmenter,
    count_trainable_parameters,
    get_config,
    load_checkpoint,
    save_checkpoint,
    set_trainable,
)
from ovseg_models.catseg.checkpoint import (
    load_clip_weights,
    load_official_state_dict,
    match_official_keys,
    to_official_state_dict,
)
from ovseg_models.catseg.inference import InferenceOptions, run_inference
from ovseg_models.segmenter import ImageError
from ovseg_models.vocabulary import VocabularyError


def CASE() -> Path:  # noqa: N802 (names of the files they find)
    return shared_path("reference", "cases", "catseg_vitb16_case0.npz")


def MANIFEST_B() -> Path:
    return shared_path("reference", "manifests", "catseg_vitb16_384.json.gz")


def MANIFEST_L() -> Path:
    return shared_path("reference", "manifests", "catseg_vitl14_336.json.gz")


@pytest.fixture(autouse=True, scope="module")
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = CATSeg(tiny_config()).eval()
    with torch.no_grad():  # non-trivial padding tokens and guidance (zeros at construction)
        for p in model.parameters():
            if p.dim() == 3:
                p.normal_(0, 0.5)
    return model


def _manifest(path):
    from ovseg_models.parity.weights import load_manifest

    return load_manifest(path)


# -- parity -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_parity_shared_case_sliding_and_nosliding():
    from ovseg_models.parity import run_case

    comparisons = run_case(CASE())
    names = {c.name for c in comparisons}
    for required in ("cost_volume", "sem_seg", "nosliding/cost_volume", "nosliding/sem_seg"):
        assert required in names
    bad = [str(c) for c in comparisons if not c.ok]
    assert not bad, "\n".join(bad)
    tol = {c.name: c.tolerance for c in comparisons}
    assert tol["cost_volume"] <= 1e-5 and tol["sem_seg"] <= 1e-4
    assert tol["nosliding/cost_volume"] <= 1e-5 and tol["nosliding/sem_seg"] <= 1e-4


# -- checkpoint layout --------------------------------------------------------------------------
def test_vitl_manifest_every_key_consumed_with_matching_shapes():
    manifest = _manifest(MANIFEST_L())
    with torch.device("meta"):
        model = CATSeg(get_config("vitl14_336"))
    shapes = {e["key"]: e["shape"] for e in manifest["entries"]}
    result = match_official_keys(model, shapes)
    assert result == {"missing": [], "unexpected": [], "shape_mismatch": []}
    assert len(shapes) == manifest["num_entries"] == len(model.state_dict())
    # the vendored CLIP stores q/k/v separately; an OpenAI/open_clip fused in_proj maps too
    fused = {}
    for k, s in shapes.items():
        if k.endswith("q_proj_weight"):
            fused[k.replace("q_proj_weight", "in_proj_weight")] = [3 * s[0], s[1]]
        elif not (k.endswith("k_proj_weight") or k.endswith("v_proj_weight")):
            fused[k] = s
    assert match_official_keys(model, fused) == {"missing": [], "unexpected": [], "shape_mismatch": []}


def test_vitb_manifest_keys_and_swin_masks_sha256():
    from ovseg_models.parity.weights import tensor_sha256

    manifest = _manifest(MANIFEST_B())
    model = CATSeg(get_config("vitb16_384"))
    official = to_official_state_dict(model)
    assert sorted(e["key"] for e in manifest["entries"]) == sorted(official)  # same keys
    for e in manifest["entries"]:
        assert list(official[e["key"]].shape) == e["shape"], e["key"]
        if e["init"] == "kept_buffer":  # constructed Swin shifted-window masks equal the official ones
            assert tensor_sha256(official[e["key"]]) == e["sha256_le_bytes"], e["key"]


def test_match_official_keys_skips_normalisation_constants(tiny_model):
    # exports may keep the (non-persistent) pixel_mean/std buffers; loading ignores them, so does the key check
    shapes = {k: list(v.shape) for k, v in to_official_state_dict(tiny_model).items()}
    shapes.update({"pixel_mean": [3, 1, 1], "clip_pixel_std": [3, 1, 1]})
    assert match_official_keys(tiny_model, shapes) == {"missing": [], "unexpected": [], "shape_mismatch": []}
    shapes["upsample1.bias"] = [7]
    assert match_official_keys(tiny_model, shapes)["shape_mismatch"] == [
        f"upsample1.bias: (7,) vs {tuple(tiny_model.upsample1.bias.shape)}"
    ]


def _small_official_state_dict(model):
    return {k: v.clone() for k, v in to_official_state_dict(model).items()}


def test_converter_roundtrip_and_errors(tiny_model, tmp_path):
    sd = _small_official_state_dict(tiny_model)
    fresh = CATSeg(tiny_config())
    load_official_state_dict(fresh, sd)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, tiny_model.state_dict()[k]), k

    missing = dict(sd)
    del missing["sem_seg_head.predictor.transformer.head.bias"]
    with pytest.raises(CheckpointError, match=r"missing key\(s\): aggregator\.head\.bias"):
        load_official_state_dict(fresh, missing)

    unexpected = dict(sd, **{"sem_seg_head.predictor.transformer.extra.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\): aggregator\.extra\.weight"):
        load_official_state_dict(fresh, unexpected)

    foreign = dict(sd, **{"criterion.empty_weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"criterion\.empty_weight"):
        load_official_state_dict(fresh, foreign)

    wrong = dict(sd)
    wrong["upsample1.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError, match=r"shape mismatch\(es\): upsample1\.bias"):
        load_official_state_dict(fresh, wrong)

    # detectron2 file layout ({"model": ...}) through the file reader
    path = tmp_path / "model_final.pth"
    torch.save({"model": sd, "iteration": 10}, path)
    assert load_checkpoint(fresh, path) == "official"

    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(fresh, corrupt)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(fresh, garbage)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(fresh, tmp_path / "absent.pth")

    own = tmp_path / "own.pth"
    save_checkpoint(tiny_model, own, variant="tiny")
    assert load_checkpoint(fresh, own) == "ovseg"


def test_own_save_rebuilds_its_configuration_through_the_factory(tiny_model, tmp_path):
    """``save_checkpoint`` records the configuration: ``create_segmenter`` rebuilds the tiny network
    (not the ViT-B/16 default) and predicts exactly as the saved model."""
    from ovseg_models import create_segmenter

    own = tmp_path / "own.pth"
    save_checkpoint(tiny_model, own)
    seg = create_segmenter("catseg", checkpoint=str(own), sliding_window=False)
    assert seg.model.cfg == tiny_model.cfg
    ref = CATSegSegmenter(tiny_model, sliding_window=False)
    image = (np.arange(96 * 128 * 3) % 251).astype(np.uint8).reshape(96, 128, 3)
    for s in (seg, ref):
        s.set_vocabulary(["cup", "table", "wall"])
    assert np.array_equal(seg.predict(image).semantic, ref.predict(image).semantic)
    with pytest.raises(CheckpointError, match="vitl14_336"):
        create_segmenter("catseg", variant="vitl14_336", checkpoint=str(own))


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"hidden_dim": 32}, r"hidden_dim=32 must exceed decoder_guidance_proj_dims\[0\]=32"),
        ({"decoder_dims": (16, 32)}, r"decoder_dims\[0\]=16 must exceed decoder_guidance_proj_dims\[1\]=16"),
        ({"decoder_dims": (64, 40), "decoder_guidance_proj_dims": (32, 8)}, None),
        ({"decoder_dims": (64, 50)}, r"decoder_dims\[1\]=50: the decoder's GroupNorm"),
    ],
)
def test_decoder_channel_constraints_checked_at_construction(overrides, field):
    """A decoder stage whose transposed convolution would keep no channel (``hidden_dim`` not above the
    projected guidance) would fail inside oneDNN at the first forward ("could not create a primitive
    descriptor for the deconvolution forward propagation primitive"); it is a configuration error that
    names the fields."""
    cfg = tiny_config(**overrides)
    if field is None:
        CATSeg(cfg)
        return
    with pytest.raises(ValueError, match=field):
        CATSeg(cfg)


def test_clip_openai_and_open_clip_formats(tiny_model):
    clip_sd = {k: v.clone() for k, v in tiny_model.clip_model.state_dict().items()}
    fused = {}
    for k, v in clip_sd.items():
        if k.endswith("q_proj_weight"):
            base = k[: -len("q_proj_weight")]
            fused[base + "in_proj_weight"] = torch.cat(
                [v, clip_sd[base + "k_proj_weight"], clip_sd[base + "v_proj_weight"]]
            )
        elif not k.endswith(("k_proj_weight", "v_proj_weight")):
            fused[k] = v
    openai = dict(
        fused, input_resolution=torch.tensor(224), context_length=torch.tensor(77), vocab_size=torch.tensor(49408)
    )
    for sd in (openai, fused):  # OpenAI format (with metadata entries), open_clip format
        fresh = CATSeg(tiny_config())
        load_clip_weights(fresh.clip_model, sd)
        for k, v in fresh.clip_model.state_dict().items():
            assert torch.equal(v, clip_sd[k]), k
    bad = dict(fused)
    bad.pop("ln_final.weight")
    with pytest.raises(CheckpointError, match="ln_final.weight"):
        load_clip_weights(CATSeg(tiny_config()).clip_model, bad)


# -- training hooks -----------------------------------------------------------------------------
@pytest.mark.parametrize("manifest_path", [MANIFEST_B, MANIFEST_L], ids=["vitb", "vitl"])
def test_trainable_selection_matches_official_flags(manifest_path):
    manifest = _manifest(manifest_path())
    variant = "vitb16_384" if "vitb16" in manifest["variant"] else "vitl14_336"
    with torch.device("meta"):
        model = CATSeg(get_config(variant))
    n = set_trainable(model, "attention")
    inv = {
        "clip_model.": "sem_seg_head.predictor.clip_model.",
        "aggregator.": "sem_seg_head.predictor.transformer.",
        "upsample1.": "upsample1.",
        "upsample2.": "upsample2.",
    }
    flags = {}
    for name, p in model.named_parameters():
        for dst, src in inv.items():
            if name.startswith(dst):
                flags[src + name[len(dst) :]] = p.requires_grad
    expected = {e["key"]: e["requires_grad_in_official_code"] for e in manifest["entries"] if e["kind"] == "parameter"}
    assert flags == expected
    assert n == sum(
        e["numel"] for e in manifest["entries"] if e["kind"] == "parameter" and e["requires_grad_in_official_code"]
    )
    groups = count_trainable_parameters(model, by_group=True)
    assert set(groups) == {"clip_model", "aggregator", "upsample1", "upsample2"}
    # paper variant: every attention parameter and position embeddings; full; frozen
    set_trainable(model, "attention_all")
    clip = dict(model.clip_model.named_parameters())
    assert clip["visual.positional_embedding"].requires_grad and clip["positional_embedding"].requires_grad
    assert clip["visual.transformer.resblocks.0.attn.k_proj_weight"].requires_grad
    assert clip["transformer.resblocks.0.attn.out_proj.weight"].requires_grad
    assert not clip["visual.transformer.resblocks.0.mlp.c_fc.weight"].requires_grad
    full = set_trainable(model, "full")
    assert full == sum(p.numel() for p in model.parameters())
    frozen = set_trainable(model, "frozen")
    assert frozen == sum(p.numel() for n_, p in model.named_parameters() if not n_.startswith("clip_model."))
    with pytest.raises(ValueError, match="unknown fine-tuning mode"):
        set_trainable(model, "prompt")


# -- vocabulary and chunking --------------------------------------------------------------------
def test_vocabulary_switch_encodes_only_new_names(tiny_model):
    seg = CATSegSegmenter(tiny_model)
    enc = seg.text_encoder
    first = seg.encode_vocabulary(["cup", "table", "wall, brick wall"])
    assert enc.encoded_names == 3
    second = seg.encode_vocabulary(["table", "chair", "cup"])
    assert enc.encoded_names == 4  # only "chair" was new
    assert torch.equal(first.tensors["text"][0], second.tensors["text"][2])
    assert second.version > first.version
    # a different template set is a different cache entry
    seg.encode_vocabulary(__import__("ovseg_models").Vocabulary.create(["cup"], templates=["a photo of a {}."]))
    assert enc.encoded_names == 5
    text = first.tensors["text"]
    assert text.shape == (3, 1, 32)
    assert torch.allclose(text.norm(dim=-1), torch.ones(3, 1), atol=1e-5)


def test_chunked_large_vocabulary_matches_unchunked(tiny_model):
    cfg = tiny_model.cfg
    model = CATSeg(dataclasses.replace(cfg, pad_len=16)).eval()
    model.load_state_dict(tiny_model.state_dict())
    torch.manual_seed(1)
    text = torch.nn.functional.normalize(torch.randn(40, 1, 32), dim=-1)  # 40 classes > pad_len: selection
    image = torch.randint(0, 255, (200, 300, 3), dtype=torch.uint8)
    with torch.inference_mode():
        outs = []
        for chunk in (None, 3):
            for sliding in (True, False):
                inter = {}
                acc = run_inference(
                    model,
                    image,
                    text,
                    InferenceOptions(sliding_window=sliding, chunk_classes=chunk),
                    intermediates=inter,
                )
                outs.append((acc, inter))
    for i in (0, 1):
        a, b = outs[i], outs[i + 2]
        assert a[1]["selected"] is not None and a[1]["selected"].shape[-1] == 16
        assert torch.equal(a[1]["selected"].sort().values, b[1]["selected"].sort().values)
        assert (a[1]["logits"] - b[1]["logits"]).abs().max() < 1e-4
        assert (a[0].scores - b[0].scores).abs().max() < 1e-5
        assert torch.equal(a[0].label, a[0].scores.argmax(0))
    # the constant-score shortcut for classes unselected in every view equals the full computation
    from ovseg_models.catseg.inference import _score_chunks, prepare_views, score_chunks

    logits = outs[0][1]["logits"]
    img = outs[0][1]["model_input"].permute(2, 0, 1).float()
    _, _, geom = prepare_views(img, cfg, InferenceOptions(sliding_window=True))
    fast = torch.cat([m for _, m in score_chunks(logits, geom, 200, 300, chunk=7)])
    full = torch.cat([m for _, m in _score_chunks(logits, geom, 200, 300, chunk=7)])
    assert (fast - full).abs().max() < 1e-30
    # unselected classes get the official -100 logit
    sel = outs[0][1]["selected"]
    unselected = torch.ones(40, dtype=torch.bool)
    unselected[sel[0]] = False
    assert torch.all(logits[0, unselected] == -100.0)


def test_padding_shortcut_equals_materialised_padding(tiny_model):
    """The class layer with the padding term folded in equals explicit pad_len-token attention."""
    layer = tiny_model.aggregator.layers[0].attention
    torch.manual_seed(2)
    b, n, h, w, c = 2, 5, 4, 4, 128
    x, g = torch.randn(b, n, h, w, c), torch.randn(b, n, 128)
    with torch.inference_mode():
        got = layer(x, g, pooling_size=(1, 1))
        # explicit official computation
        pad_len = layer.pad_len
        xp = torch.cat([x, layer.padding_tokens.reshape(1, 1, 1, 1, c).expand(b, pad_len - n, h, w, c)], 1)
        gp = torch.cat([g, layer.padding_guidance.reshape(1, 1, -1).expand(b, pad_len - n, -1)], 1)
        tokens = xp.permute(0, 2, 3, 1, 4).reshape(b * h * w, pad_len, c)
        guid = gp[:, None, None].expand(b, h, w, pad_len, -1).reshape(b * h * w, pad_len, -1)
        a = layer.attention
        xn = layer.norm1(tokens)
        q = a.q(torch.cat([xn, guid], -1)).reshape(b * h * w, pad_len, a.nheads, -1)
        k = a.k(torch.cat([xn, guid], -1)).reshape(b * h * w, pad_len, a.nheads, -1)
        v = a.v(xn).reshape(b * h * w, pad_len, a.nheads, -1) / pad_len
        qf, kf = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
        kv = torch.einsum("nshd,nshv->nhdv", kf, v)
        z = 1 / (torch.einsum("nlhd,nhd->nlh", qf, kf.sum(1)) + 1e-6)
        att = torch.einsum("nlhd,nhdv,nlh->nlhv", qf, kv, z).reshape(b * h * w, pad_len, c) * pad_len
        y = tokens + att
        y = y + layer.MLP(layer.norm2(y))
        ref = x + y[:, :n].reshape(b, h, w, n, c).permute(0, 3, 1, 2, 4)
    assert (got - ref).abs().max() < 1e-4


@pytest.mark.parametrize("chunk_classes", [None, 1, 4])
def test_fused_upsampling_and_cpu_chunks_equal_the_official_order_in_float64(tiny_model, chunk_classes):
    """The decoder's fused upsampling (one transposed convolution per class, the guidance's share
    once per image) and the cache-sized chunks equal the official order of operations (upsample,
    concatenate, convolve; everything in one chunk) up to float64 rounding."""
    from ovseg_models.catseg.aggregator import Up

    agg = copy.deepcopy(tiny_model.aggregator).double()
    torch.manual_seed(3)
    with torch.no_grad():
        for prm in agg.parameters():
            prm.add_(torch.randn_like(prm) * 0.05)  # non-zero biases of the transposed convolutions
    b, n = 2, 5
    h, w = agg.feature_resolution
    feats = torch.randn(b, tiny_model.cfg.text_guidance_dim, h, w, dtype=torch.float64)
    text = torch.nn.functional.normalize(torch.randn(n, 1, feats.shape[1], dtype=torch.float64), dim=-1)
    guidance = [
        torch.randn(b, m.in_channels, s * h, s * w, dtype=torch.float64) for m, s in ((agg.guidance_projection[0], 1),)
    ] + [
        torch.randn(b, proj[0].in_channels, s * h, s * w, dtype=torch.float64)
        for proj, s in zip(agg.decoder_guidance_projection, (2, 4), strict=True)
    ]
    with torch.no_grad():
        fast = agg(feats, text, guidance, chunk_classes=chunk_classes)
        ref_ups = [copy.copy(agg.decoder1), copy.copy(agg.decoder2)]
        for up in ref_ups:
            up.fused = False
        agg.decoder1, agg.decoder2 = ref_ups
        ref = agg(feats, text, guidance, chunk_classes=1 << 30, max_chunk_bytes=1 << 40)
    assert isinstance(agg.decoder1, Up) and Up.fused and not agg.decoder1.fused
    assert fast.shape == ref.shape == (b, n, 4 * h, 4 * w)
    assert (fast - ref).abs().max() < 1e-12 * ref.abs().max()


# -- segmenter API ------------------------------------------------------------------------------
def test_segmenter_api_real_image_and_bad_inputs(tiny_model):
    image = np.load(CASE())["image"]
    seg = CATSegSegmenter(tiny_model)
    vocab = seg.set_vocabulary(["cup", "spoon", "table", "coffee, espresso"])
    result = seg.predict(image)
    h, w = image.shape[:2]
    assert result.semantic.shape == (h, w) and result.semantic.dtype == np.int32
    assert result.score.shape == (h, w) and result.score.dtype == np.float32
    assert result.class_scores.shape == (4, h, w)
    assert np.array_equal(result.semantic, result.class_scores.argmax(0).numpy())
    assert np.allclose(result.score, result.class_scores.max(0).values.numpy())
    assert result.panoptic is None and result.segments == []
    assert result.vocabulary_version == vocab.version and result.vocabulary_digest == vocab.vocabulary.digest
    for stage in ("clip_image", "cost_volume", "aggregation", "decoder", "total"):
        assert stage in result.timings
    fast = seg.predict(image, sliding_window=False, class_scores=False)
    assert fast.class_scores is None and fast.semantic.shape == (h, w)
    # tensor CHW input gives the same answer as HWC numpy
    chw = seg.predict(torch.from_numpy(image).permute(2, 0, 1).contiguous(), sliding_window=False)
    assert np.array_equal(chw.semantic, fast.semantic)

    with pytest.raises(ImageError, match="uint8"):
        seg.predict(image.astype(np.float32))
    with pytest.raises(ImageError, match="channels|3"):
        seg.predict(image[..., :2])
    with pytest.raises(ImageError, match="empty"):
        seg.predict(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(TypeError, match="unknown CAT-Seg option"):
        seg.predict(image, sliding=True)
    with pytest.raises(VocabularyError):
        seg.set_vocabulary([])
    with pytest.raises(VocabularyError, match="duplicate"):
        seg.encode_vocabulary(["cup", "Cup"])
    other = CATSegSegmenter(CATSeg(tiny_config(name="tiny2")))
    with pytest.raises(VocabularyError, match="encoded for"):
        other.predict(image, vocabulary=vocab)


def test_factory_builds_catseg_without_weights():
    from ovseg_models import create_segmenter, list_variants

    assert {"vitb16_384", "vitl14_336", "vith14", "vitg14"} <= set(list_variants("catseg"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seg = build_segmenter(variant="vitb16_384", pretrained=False)
    assert any("randomly initialised" in str(w.message) for w in caught)
    assert isinstance(seg, CATSegSegmenter) and seg.model_key.startswith("catseg:")
    with pytest.raises(ValueError, match="unknown CAT-Seg variant"):
        build_segmenter(variant="vitx", pretrained=False)
    with pytest.raises(CheckpointError, match="not found"):
        create_segmenter("catseg", variant="vitb16_384", checkpoint="/nonexistent/model_base.pth")


def test_separate_timm_guidance_backbone_runs():
    """The paper's variant: guidance from a timm backbone (ResNet here, small for speed)."""
    cfg = tiny_config(
        name="tiny_timm",
        guidance="timm",
        guidance_layers=(),
        timm_backbone="resnet18",
        timm_out_indices=(1, 2, 3),
        appearance_guidance_dim=256,
        decoder_guidance_dims=(128, 64),
        prompt_ensemble_type="imagenet_select",
        prompt_channel=8,
    )
    model = CATSeg(cfg).eval()
    assert model.upsample1 is None and any(k.startswith("guidance_backbone.body.") for k in model.state_dict())
    seg = CATSegSegmenter(model)
    enc = seg.encode_vocabulary(["cup", "table"])
    assert enc.tensors["text"].shape == (2, 8, 32)  # one cost-volume channel per template
    image = np.full((120, 160, 3), 127, np.uint8)
    for sliding in (True, False):
        r = seg.predict(image, vocabulary=enc, sliding_window=sliding)
        assert r.class_scores.shape == (2, 120, 160) and torch.isfinite(r.class_scores).all()
    single = CATSegSegmenter(CATSeg(tiny_config()), templates=("a photo of a {}.", "a {} in the scene"))
    assert single.encode_vocabulary(["cup"]).tensors["text"].shape == (1, 1, 32)  # ensemble averaged


def test_template_count_of_a_multi_channel_model_is_refused_before_encoding():
    """One rule (catseg.templates.check_template_count) for the segmenter, the vocabulary's templates and
    the family descriptor the node's parameters use."""
    from ovseg_models.catseg.family import FAMILY
    from ovseg_models.vocabulary import Vocabulary

    model = CATSeg(tiny_config(prompt_ensemble_type="imagenet_select", prompt_channel=8)).eval()
    with pytest.raises(VocabularyError, match="uses 8 prompt templates .* give exactly 8 .* got 1"):
        CATSegSegmenter(model, templates=["a photo of a {}."])
    seg = CATSegSegmenter(model)
    with pytest.raises(VocabularyError, match="give exactly 8 .* got 2"):
        seg.encode_vocabulary(Vocabulary.create(["cup"], templates=["a {}.", "the {}."]))
    assert seg.text_encoder.encoded_names == 0  # refused before the text tower ran
    assert seg.encode_vocabulary(["cup"]).tensors["text"].shape == (1, 8, 32)
    with pytest.raises(VocabularyError, match="CAT-Seg variant vitb16_r101_384 uses 80 prompt templates"):
        FAMILY.check_templates("vitb16_r101_384", ["a {}."])
    FAMILY.check_templates(None, ["a {}.", "the {}."])  # the released models: one channel, any number


def test_training_prepares_images_as_resize_inference(tiny_model):
    """CATSegForTraining and resize inference share ``resized_inputs``: the same logits for an image whose
    sides are no multiple of ``size_divisibility`` (padded, then resized to the CLIP resolution)."""
    from ovseg_models.catseg.inference import prepare_views, resized_inputs
    from ovseg_models.training.tasks import CATSegForTraining

    cfg = tiny_model.cfg
    assert 100 % cfg.size_divisibility and 150 % cfg.size_divisibility
    image = torch.rand(3, 100, 150, generator=torch.Generator().manual_seed(0)) * 255
    text = CATSegSegmenter(tiny_model).encode_vocabulary(["cup", "wall"]).tensors["text"]
    clip, guide, geom = prepare_views(image, cfg, InferenceOptions(sliding_window=False))
    assert geom["mode"] == "resize" and clip.shape == (1, 3, cfg.clip_resolution, cfg.clip_resolution)
    mean, std = torch.tensor(cfg.clip_pixel_mean).view(-1, 1, 1), torch.tensor(cfg.clip_pixel_std).view(-1, 1, 1)
    padded = (image - mean) / std
    padded = torch.nn.functional.pad(padded, (0, (-150) % cfg.size_divisibility, 0, (-100) % cfg.size_divisibility))
    res = cfg.clip_resolution
    expected = torch.nn.functional.interpolate(padded[None], size=(res, res), mode="bilinear", align_corners=False)
    torch.testing.assert_close(clip, expected)
    torch.testing.assert_close(resized_inputs(image[None], cfg)[0], clip)
    training = CATSegForTraining(tiny_model, torch.zeros(2, 77, dtype=torch.long), 2, 1)
    training.text_embeddings = lambda: text
    with torch.no_grad():
        torch.testing.assert_close(training([image]), tiny_model(clip, text, guidance_images=guide))
