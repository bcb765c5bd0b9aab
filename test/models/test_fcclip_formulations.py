"""FC-CLIP's fast formulations against the reference formulations they replace, on random inputs."""

import pytest
import torch

from ovseg_models.fcclip.pixel_decoder import ms_deform_attn, ms_deform_attn_gather
from ovseg_models.fcclip.transformer_decoder import MaskedTransformerDecoder

torch.set_num_threads(2)

SHAPES = [(5, 7), (10, 13), (19, 26)]  # odd sizes: both axes' scales differ per level


def _msda_inputs(dtype, *, n=2, lq=37, m=4, d=8, points=3, requires_grad=False, on_grid=True):
    g = torch.Generator().manual_seed(0)
    s = sum(h * w for h, w in SHAPES)
    value = torch.randn(n, s, m, d, generator=g, dtype=dtype)
    # locations partly outside [0, 1] (zero padding) and exactly on pixel centres and borders
    loc = torch.rand(n, lq, m, len(SHAPES), points, 2, generator=g, dtype=dtype) * 1.4 - 0.2
    if on_grid:  # forward only: bilinear sampling has no unique gradient on pixel centres
        loc[0, 0, 0, :, 0] = 0.0
        loc[0, 1, 0, :, 0] = 1.0
        loc[0, 2, 0, 0, 0] = torch.tensor([0.5 / 7, 0.5 / 5], dtype=dtype)
    attn = torch.rand(n, lq, m, len(SHAPES), points, generator=g, dtype=dtype)
    attn = attn / attn.sum((-1, -2), keepdim=True)
    return [t.requires_grad_(requires_grad) for t in (value, loc, attn)]


def test_gathered_deformable_attention_equals_grid_sample_float64():
    value, loc, attn = _msda_inputs(torch.float64)
    ref = ms_deform_attn(value, SHAPES, loc, attn)
    out = ms_deform_attn_gather(value, SHAPES, loc, attn)
    assert out.shape == ref.shape == (2, 37, 4 * 8)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_gathered_deformable_attention_equals_grid_sample_float32():
    value, loc, attn = _msda_inputs(torch.float32)
    ref = ms_deform_attn(value, SHAPES, loc, attn)
    out = ms_deform_attn_gather(value, SHAPES, loc, attn)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_gathered_deformable_attention_gradients_equal_grid_sample():
    grads = []
    for f in (ms_deform_attn, ms_deform_attn_gather):
        value, loc, attn = _msda_inputs(torch.float64, requires_grad=True, on_grid=False)
        (f(value, SHAPES, loc, attn) * torch.linspace(-1, 1, 32, dtype=torch.float64)).sum().backward()
        grads.append([value.grad, loc.grad, attn.grad])
    for ref, out in zip(*grads, strict=False):
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)


def test_attention_masks_from_resized_features_equal_resized_masks():
    """block_masks="features" == "masks" (float64, so that no attention-mask pixel sits within
    rounding of the threshold), final and intermediate outputs."""
    torch.manual_seed(0)
    dec = (
        MaskedTransformerDecoder(
            in_channels=32,
            hidden_dim=32,
            num_queries=10,
            nheads=4,
            dim_feedforward=64,
            dec_layers=4,
            mask_dim=32,
            clip_embedding_dim=16,
        )
        .double()
        .eval()
    )
    feats = [torch.randn(1, 32, h, w, dtype=torch.float64) for h, w in ((3, 5), (6, 9), (11, 17))]
    mask_features = torch.randn(1, 32, 22, 34, dtype=torch.float64)
    classifier = torch.nn.functional.normalize(torch.randn(5, 16, dtype=torch.float64), dim=-1)  # 4 synonyms + void
    outs = {}
    for mode in ("masks", "features"):
        dec.block_masks = mode
        with torch.no_grad():
            outs[mode] = dec(feats, mask_features, classifier, [1, 2, 1], aux_outputs=True)
    ref, out = outs["masks"], outs["features"]
    torch.testing.assert_close(out["pred_masks"], ref["pred_masks"], rtol=0, atol=1e-9)
    torch.testing.assert_close(out["pred_logits"], ref["pred_logits"], rtol=0, atol=1e-9)
    for a, b in zip(out["aux_outputs"], ref["aux_outputs"], strict=False):
        torch.testing.assert_close(a["pred_masks"], b["pred_masks"], rtol=0, atol=1e-9)
    # the masks really constrain the attention here (otherwise the test could not tell them apart)
    dec.block_masks = "masks"
    with torch.no_grad():
        blocked = dec._heads(dec.query_feat.weight[None], mask_features, (6, 9), classifier, [1, 2, 1])[2]
    assert 0.2 < blocked.float().mean() < 0.8
    dec.block_masks = "bogus"
    with pytest.raises(ValueError, match="block_masks"):
        dec(feats, mask_features, classifier, [1, 2, 1])


@pytest.mark.parametrize(
    "sizes",
    [
        ((200, 304), (800, 1216), (800, 1203), (300, 451)),  # the reference case: pad, crop, downscale
        ((13, 17), (52, 68), (50, 61), (50, 61)),  # output at the image size: no second resize
        ((13, 17), (52, 68), (47, 60), (95, 121)),  # upscale after the crop
    ],
)
def test_separable_mask_resize_equals_the_official_steps(sizes):
    from ovseg_models.fcclip.postprocess import resize_masks

    mask_hw, padded, image, output = sizes
    masks = torch.randn(5, *mask_hw, dtype=torch.float64) * 10
    ref = resize_masks(masks, padded, image, output, separable=False)
    out = resize_masks(masks, padded, image, output)
    assert out.shape == ref.shape == (5, *output)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_panoptic_owner_in_query_chunks_equals_one_chunk_with_ties():
    from ovseg_models.fcclip.postprocess import panoptic_inference

    g = torch.Generator().manual_seed(0)
    q, k, h, w = 40, 6, 30, 40
    mask_cls = torch.randn(q, k + 1, generator=g) * 3
    # blocky regions, one per query, with noisy logits: most queries keep a segment
    region = torch.randint(0, q, (h // 5, w // 5), generator=g).repeat_interleave(5, 0).repeat_interleave(5, 1)
    masks = torch.where(region == torch.arange(q).view(q, 1, 1), 6.0, -6.0) + torch.randn(q, h, w, generator=g)
    masks[7] = masks[3]  # query 7 ties query 3 everywhere: the first one wins its pixels
    mask_cls[7] = mask_cls[3]
    is_thing = [True, False, True, False, True, False]
    outs = [panoptic_inference(mask_cls, masks, is_thing, chunk=c) for c in (1, 7, 64)]
    for out in outs[1:]:
        assert torch.equal(out.panoptic_seg, outs[0].panoptic_seg)
        assert out.segments == outs[0].segments
    assert len(outs[0].segments) > 2 and not any(s["query"] == 7 for s in outs[0].segments)
