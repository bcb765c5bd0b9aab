"""Per-segment CLIP embeddings and text queries (``predict(..., embeddings=True)``, ``encode_text``).

The embeddings are checked against what each model compares with the text on its own path:
FC-CLIP's out-of-vocabulary logits (pooled query features vs. classifier rows) and CAT-Seg's
cost volume (dense features vs. text embeddings), so they are the features the labels come from.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import tiny_catseg, tiny_fcclip

from ovseg_models import Vocabulary
from ovseg_models.embeddings import (
    MAX_QUERY_TEXT_CHARS,
    MAX_QUERY_TEXTS,
    pool_embeddings,
    segment_embeddings,
    similarities,
)
from ovseg_models.segments import segments_from_semantic

NAMES = ["cat", "wall", "floor", "mug", "chair"]


def _image(seed=0, h=96, w=128):
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2] = rng.integers(0, 255, 3)
    img[h // 2 :, : w // 2] = rng.integers(0, 255, 3)
    img[h // 2 :, w // 2 :] = rng.integers(0, 255, (h - h // 2, w - w // 2, 3))
    return img


@pytest.fixture(scope="module")
def fcclip():
    seg = tiny_fcclip(0)
    seg.set_vocabulary(NAMES)
    return seg


@pytest.fixture(scope="module")
def catseg():
    seg = tiny_catseg(0)
    seg.set_vocabulary(NAMES)
    return seg


def test_fcclip_segment_embeddings_are_the_out_of_vocabulary_features(fcclip):
    img = _image()
    r = fcclip.predict(img, embeddings=True)
    assert r.segments, "the tiny model should produce segments on this image"
    emb = segment_embeddings(r)
    assert emb.shape == (len(r.segments), fcclip.model.backbone.clip_model.text_projection.shape[1])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # the same image through the network directly: out-of-vocabulary logits of each query
    enc = fcclip.vocabulary.tensors
    batch, _ = fcclip.model.normalize_and_pad([fcclip.preprocess(torch.from_numpy(img))])
    with torch.inference_mode():
        out = fcclip.model(batch, enc["text_classifier"], enc["num_synonyms"], enc["seen"])
    scale = fcclip.model.backbone.clip_model.logit_scale.exp().item()
    text = fcclip.encode_text(NAMES)  # one synonym per class: the classifier's rows
    torch.testing.assert_close(text, enc["text_classifier"].float(), atol=1e-6, rtol=0)
    sims = similarities(emb, text)
    assert any(len(s.queries) == 1 for s in r.segments)
    for i, s in enumerate(r.segments):
        if len(s.queries) == 1:
            q = s.queries[0]
            np.testing.assert_allclose(
                sims[i] * scale, out["out_vocab_logits"][0, q, : len(NAMES)].numpy(), rtol=1e-4, atol=1e-4
            )


def test_fcclip_merged_stuff_segment_is_the_mean_of_its_queries(fcclip):
    stuff = fcclip.encode_vocabulary(Vocabulary.create(["wall", "floor", "sky"], is_thing=[False] * 3))
    r = fcclip.predict(_image(1), embeddings=True, vocabulary=stuff)
    assert any(len(s.queries) > 1 for s in r.segments), "no stuff segment merged several queries"
    q = r.query_embeddings / r.query_embeddings.norm(dim=-1, keepdim=True)
    emb = segment_embeddings(r)
    for i, s in enumerate(r.segments):
        want = q[list(s.queries)].mean(0)
        np.testing.assert_allclose(emb[i], (want / want.norm()).numpy(), atol=1e-6)


def test_embeddings_survive_output_resizing_and_batching(fcclip, catseg):
    img = _image(2, 120, 200)
    for seg in (fcclip, catseg):
        full = seg.predict(img, embeddings=True)
        small = seg.predict(img, embeddings=True, max_output_side=100)
        assert small.semantic.shape == img.shape[:2]
        batch = seg.predict_batch([img, _image(3, 120, 200)], embeddings=True)
        if seg is fcclip:
            torch.testing.assert_close(batch[0].query_embeddings, full.query_embeddings, atol=1e-4, rtol=1e-4)
            assert [s.queries for s in small.segments] == [
                s.queries for s in full.segments if s.id in {t.id for t in small.segments}
            ]
        else:
            torch.testing.assert_close(batch[0].dense_embeddings, full.dense_embeddings, atol=1e-4, rtol=1e-4)
    plain = fcclip.predict(img)
    assert plain.query_embeddings is None and plain.dense_embeddings is None
    with pytest.raises(ValueError, match="embeddings=True"):
        segment_embeddings(plain)


@pytest.mark.parametrize("sliding_window", [True, False])
def test_catseg_dense_embeddings_are_what_the_cost_volume_compares(catseg, sliding_window):
    img = _image(4)
    r = catseg.predict(img, embeddings=True, sliding_window=sliding_window)
    d = r.dense_embeddings
    assert d.shape[0] == catseg.model.cfg.clip.embed_dim
    torch.testing.assert_close(d.norm(dim=0), torch.ones(d.shape[1:]), atol=1e-5, rtol=0)
    text = catseg.encode_text(NAMES)
    enc = catseg.vocabulary.tensors["text"]  # (T, P, C)
    mean = enc.mean(1)
    torch.testing.assert_close(text, mean / mean.norm(dim=-1, keepdim=True), atol=1e-6, rtol=0)
    # the cost volume of the image's last view (its global view with the sliding window)
    from ovseg_models.catseg.inference import InferenceOptions, run_inference

    inter: dict = {}
    run_inference(
        catseg.model, torch.from_numpy(img), enc, InferenceOptions(sliding_window=sliding_window), intermediates=inter
    )
    corr = inter["cost_volume"][-1]  # (P, T, g, g)
    want = torch.einsum("chw,tpc->pthw", d, enc / enc.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(want, corr, atol=1e-4, rtol=1e-4)
    ids, segments = segments_from_semantic(r.semantic, r.score, catseg.vocabulary.vocabulary)
    emb = segment_embeddings(r, ids, segments)
    assert emb.shape == (len(segments), d.shape[0])
    np.testing.assert_allclose(emb, pool_embeddings(d, ids, [s.id for s in segments]))


def _plain_vit_image_embedding(visual, images: torch.Tensor) -> torch.Tensor:
    """CLIP's ``encode_image`` of a ViT written out plainly: every block's regular forward, then
    ``ln_post`` of the class token and ``proj`` (no dense variant anywhere)."""
    x = visual.conv1(images).flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.expand(x.shape[0], 1, -1), x], dim=1)
    x = visual.ln_pre(x + visual.position_embedding(x.shape[1]))
    for block in visual.transformer.resblocks:
        x = block(x)
    return visual.ln_post(x[:, 0]) @ visual.proj


def test_fcclip_image_embedding_is_clips_own_image_feature(fcclip):
    import open_clip

    from ovseg_models.fcclip.backbone import CLIPBackbone

    # RN50 (the tiny model's CLIP) at 224x224: 7x7 cells, CLIP's attention pooling as trained
    backbone = fcclip.model.backbone
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        dense = backbone(x, stem=False)["clip_vis_dense"]
        torch.testing.assert_close(
            backbone.image_embedding(dense, (7, 7)), backbone.clip_model.encode_image(x), atol=1e-6, rtol=1e-5
        )
        # cells beyond the image (padding) are left out: the image's own cells, its own position grid
        torch.testing.assert_close(
            backbone.image_embedding(dense, (5, 6)), backbone.image_embedding(dense[..., :5, :6], (5, 6))
        )
        assert (backbone.image_embedding(dense, (5, 6)) - backbone.image_embedding(dense, (7, 7))).abs().max() > 1e-4
        # computed beside the masks' pooling, the same numbers
        masks = torch.randn(2, 4, 7, 7, generator=torch.Generator().manual_seed(2))
        pooled, image = backbone.visual_prediction_forward(dense, masks, image_cells=(7, 7))
        torch.testing.assert_close(pooled, backbone.visual_prediction_forward(dense, masks), atol=0, rtol=0)
        torch.testing.assert_close(image, backbone.image_embedding(dense, (7, 7)), atol=0, rtol=0)
    # ConvNeXt (a small timm trunk with the head layout of FC-CLIP's convnext_large_d_320)
    torch.manual_seed(0)
    clip = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(timm_model_name="convnext_atto", timm_pool="", timm_proj="mlp", image_size=64),
        text_cfg=dict(width=32, heads=2, layers=1),
    ).eval()
    convnext = CLIPBackbone(clip, model_name="convnext_atto", backbone_type="convnext", feature_channels=(40,) * 5)
    x = torch.randn(2, 3, 96, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        dense = convnext(x, stem=False)["clip_vis_dense"]
        torch.testing.assert_close(convnext.image_embedding(dense, (3, 2)), clip.encode_image(x), atol=1e-6, rtol=1e-5)
    # through predict: CLIP's pooling of the cells the image covers (with size divisibility 32,
    # a padding of less than one cell: all of them); one image as in a batch
    img = _image(5, 90, 130)
    r = fcclip.predict(img, embeddings=True)
    assert r.image_embedding.shape == (backbone.dim_latent,)
    batch, sizes = fcclip.model.normalize_and_pad([fcclip.preprocess(torch.from_numpy(img))])
    with torch.inference_mode():
        dense = backbone(batch, stem=False)["clip_vis_dense"]
    cells = tuple(-(-n * c // p) for n, c, p in zip(sizes[0], dense.shape[-2:], batch.shape[-2:], strict=True))
    assert cells == tuple(dense.shape[-2:])
    want = backbone.image_embedding(dense, cells)[0]
    torch.testing.assert_close(r.image_embedding, want / want.norm(), atol=1e-5, rtol=0)
    both = fcclip.predict_batch([img, _image(6, 90, 130)], embeddings=True)
    torch.testing.assert_close(both[0].image_embedding, r.image_embedding, atol=1e-4, rtol=0)
    assert fcclip.predict(img).image_embedding is None


@pytest.mark.parametrize("sliding_window", [True, False])
def test_catseg_image_embedding_is_the_class_token_of_a_plain_clip_forward(catseg, sliding_window):
    from ovseg_models.catseg.inference import InferenceOptions, _mapped, prepare_views

    img = _image(7, 100, 150)
    r = catseg.predict(img, embeddings=True, sliding_window=sliding_window)
    cfg = catseg.model.cfg
    opts = InferenceOptions(sliding_window=sliding_window)
    views, _, _ = prepare_views(_mapped(torch.from_numpy(img), cfg, opts).permute(2, 0, 1).float(), cfg, opts)
    with torch.inference_mode():
        want = _plain_vit_image_embedding(catseg.model.clip_model.visual, views[-1:])[0]  # the global view
        torch.testing.assert_close(r.image_embedding, want / want.norm(), atol=1e-5, rtol=0)
        # asking for it leaves the dense features (what the labels come from) as they were
        visual = catseg.model.clip_model.visual
        plain, _ = visual.forward_dense(views)
        with_cls, _ = visual.forward_dense(views, class_token=True)
    torch.testing.assert_close(with_cls[:, 1:], plain[:, 1:], atol=0, rtol=0)
    assert catseg.predict(img, sliding_window=sliding_window).image_embedding is None


def test_pool_embeddings_weights_cells_by_covered_pixels():
    dense = torch.zeros(3, 2, 2)
    dense[:, 0, 0] = torch.tensor([1.0, 0, 0])
    dense[:, 0, 1] = torch.tensor([0, 1.0, 0])
    dense[:, 1, 0] = torch.tensor([0, 0, 1.0])
    dense[:, 1, 1] = torch.tensor([0, 1.0, 0])
    ids = np.zeros((4, 6), np.uint16)  # cells are 2x3 pixels
    ids[:2, :3] = 7  # all of cell (0, 0)
    ids[:2, 3] = 7  # 2 of the 6 pixels of cell (0, 1)
    ids[2:, :] = 9  # the bottom row of cells
    out = pool_embeddings(dense, ids, [7, 9, 5])
    want7 = np.array([6.0, 2.0, 0.0]) / np.linalg.norm([6.0, 2.0, 0.0])
    want9 = np.array([0.0, 1.0, 1.0]) / np.sqrt(2)
    np.testing.assert_allclose(out[0], want7, atol=1e-6)
    np.testing.assert_allclose(out[1], want9, atol=1e-6)
    np.testing.assert_array_equal(out[2], 0)  # no pixels: a zero row, no NaN


def test_query_ranks_the_segment_whose_embedding_a_text_has(catseg):
    """A text's own embedding, planted as a segment's, ranks that segment first."""
    text = catseg.encode_text(["a red mug", "a wooden chair", "the sky"]).numpy()
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(4, text.shape[1])).astype(np.float32)
    segs = noise / np.linalg.norm(noise, axis=1, keepdims=True)
    segs[2] = text[1]
    assert int(np.argmax(similarities(segs, text)[:, 1])) == 2


@pytest.mark.parametrize(
    ("texts", "match"),
    [
        ([], "at least one"),
        ("mug", "not one string"),
        (["mug", "  "], "text 1 is empty"),
        (["x" * (MAX_QUERY_TEXT_CHARS + 1)], "characters"),
        (["mug"] * (MAX_QUERY_TEXTS + 1), "at most"),
        ([3], "not a string"),
    ],
)
def test_encode_text_refuses_bad_texts(fcclip, texts, match):
    with pytest.raises(ValueError, match=match):
        fcclip.encode_text(texts)


def test_pool_embeddings_on_a_frame_samples_pixels_and_still_counts_tiny_segments():
    """640x480 over a 24x24 grid: counted on a pixel sample, close to counting every pixel; a
    one-pixel segment between the samples still gets its cell's feature."""
    rng = np.random.default_rng(0)
    dense = torch.nn.functional.normalize(torch.randn(16, 24, 24), dim=0)
    h, w = 480, 640
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ids = (1 + (ys * 7 // h) * 9 + ((xs + 13 * np.sin(ys / 17.0)).astype(int).clip(0, w - 1) * 9 // w)).astype(
        np.uint16
    )
    ids[rng.random((h, w)) < 0.05] = 0
    ids[0, 1] = 200  # a one-pixel segment off the sample grid (every 5th pixel from 2)
    seg_ids = [*np.unique(ids[ids > 0]).tolist()]
    got = pool_embeddings(dense, ids, seg_ids)
    exact = pool_embeddings(dense, ids, seg_ids, samples_per_cell_side=None)
    # exact: every pixel counted
    cell = (ys * 24 // h) * 24 + xs * 24 // w
    flat = dense.reshape(16, -1).T.numpy()
    for i, sid in enumerate(seg_ids):
        counts = np.bincount(cell[ids == sid], minlength=576).astype(np.float32)
        want = counts @ flat
        want /= np.linalg.norm(want)
        np.testing.assert_allclose(exact[i], want, atol=1e-5)
        assert float(got[i] @ want) > 0.95, f"segment {sid}"  # uncorrelated random cells: a worst case
    np.testing.assert_allclose(got[seg_ids.index(200)], flat[0], atol=1e-6)


def test_fcclip_class_agnostic_segments_are_queries_scored_by_objectness(fcclip):
    """Prompt-free: every kept query is its own segment (no stuff merging), scored 1 - p(no object)."""
    stuff = fcclip.encode_vocabulary(Vocabulary.create(["wall", "floor", "sky"], is_thing=[False] * 3))
    img = _image(1)
    assert any(len(s.queries) > 1 for s in fcclip.predict(img, vocabulary=stuff).segments)  # merged by class
    r = fcclip.predict(img, vocabulary=stuff, class_agnostic=True, embeddings=True)
    assert len({s.category for s in r.segments}) < len(r.segments)  # two segments of one class, not merged
    assert all(len(s.queries) == 1 and s.is_thing for s in r.segments)
    enc = stuff.tensors
    batch, _ = fcclip.model.normalize_and_pad([fcclip.preprocess(torch.from_numpy(img))])
    with torch.inference_mode():
        out = fcclip.model(batch, enc["text_classifier"], enc["num_synonyms"], enc["seen"])
    probs = out["mask_cls"][0].float().softmax(-1)
    for s in r.segments:
        q = s.queries[0]
        assert s.score == pytest.approx(float(1 - probs[q, -1]), abs=1e-5)
        assert s.category == int(probs[q, :-1].argmax())
    assert segment_embeddings(r).shape == (len(r.segments), r.query_embeddings.shape[1])
