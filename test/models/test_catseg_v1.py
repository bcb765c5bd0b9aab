"""CAT-Seg as in the paper's first version (arXiv v1; official code @ af4fa0b): ViT-B/16 + ResNet-101
and ViT-L/14 + Swin-B.

The ResNet-101 variant is checked against the shared v1 reference case (official code, name-seeded
weights). The Swin-B variant has no reference case: its checkpoint layout is checked against the
keys and shapes v1's ``D2SwinTransformer`` constructs, and its backbone forward against a plain
transcription of that module's computation (window attention with relative position bias, cyclic
shift with the -100 mask, patch merging at the end of a stage, one LayerNorm per output).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from shared_data import shared_path

from ovseg_models.catseg import CATSeg, CATSegTextEncoder, CheckpointError, get_config, set_trainable
from ovseg_models.catseg.checkpoint import load_official_state_dict, match_official_keys, to_official_state_dict
from ovseg_models.catseg.feature_backbone import ResNetGuidance, SwinGuidance

NO_PROBLEMS = {"missing": [], "unexpected": [], "shape_mismatch": []}


def CASE_V1() -> Path:  # noqa: N802 (names of the files they find)
    return shared_path("reference", "cases", "catseg_v1_vitb_r101_case0.npz")


def MANIFEST_V1() -> Path:
    return shared_path("reference", "manifests", "catseg_v1_vitb_r101.json.gz")


def MANIFEST_L() -> Path:
    return shared_path("reference", "manifests", "catseg_vitl14_336.json.gz")


@pytest.fixture(autouse=True, scope="module")
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def _manifest(path):
    from ovseg_models.parity.weights import load_manifest

    return load_manifest(path)


# -- ViT-B/16 + ResNet-101: the shared v1 case ------------------------------------------------------
@pytest.mark.slow
def test_v1_parity_shared_case_sliding_and_nosliding():
    from ovseg_models.parity import run_case

    comparisons = run_case(CASE_V1())  # the manifest is found from the case's variant
    by_name = {c.name: c for c in comparisons}
    for required in (
        "text_embeds",
        "cost_volume",
        "agg_logits",
        "sem_seg",
        "nosliding/cost_volume",
        "nosliding/agg_logits",
        "nosliding/sem_seg",
    ):
        assert required in by_name, required
        assert by_name[required].tolerance <= 1e-4
    bad = [str(c) for c in comparisons if not c.ok]
    assert not bad, "\n".join(bad)


def test_v1_manifest_state_dict_loads_key_for_key():
    from ovseg_models.parity.weights import build_state_dict

    manifest = _manifest(MANIFEST_V1())
    model = CATSeg(get_config("vitb16_r101_384"))
    official = to_official_state_dict(model)
    assert sorted(official) == sorted(e["key"] for e in manifest["entries"])  # v1 layout, fused in_proj
    sd = build_state_dict(manifest, constructed=official)  # sha256-checked name-seeded weights
    assert len(sd) == manifest["num_entries"] == 898
    assert sum(k.startswith("backbone.") for k in sd) == 470

    with pytest.raises(CheckpointError, match=r"backbone\.res5\.0\.conv1\.weight"):  # res5 is not built
        load_official_state_dict(model, {**sd, "backbone.res5.0.conv1.weight": torch.zeros(512, 1024, 1, 1)})
    with pytest.raises(CheckpointError, match=r"backbone\.layer1\.0\.bn1\.weight"):  # timm's name is not v1's
        load_official_state_dict(model, {**sd, "backbone.layer1.0.bn1.weight": torch.zeros(64)})
    partial = {k: v for k, v in sd.items() if k != "backbone.res2.0.conv1.norm.weight"}
    with pytest.raises(CheckpointError, match=r"guidance_backbone\.body\.layer1\.0\.bn1\.weight"):
        load_official_state_dict(model, partial)

    load_official_state_dict(model, sd)  # strict: every key consumed, nothing missing
    assert len(model.state_dict()) == 946  # 24 fused in_proj_weight -> 72 q/k/v weights
    body = model.guidance_backbone.body
    assert torch.equal(body.layer1[0].bn1.weight, sd["backbone.res2.0.conv1.norm.weight"])  # FrozenBN buffer
    assert torch.equal(body.layer3[22].conv3.weight, sd["backbone.res4.22.conv3.weight"])
    assert torch.equal(body.layer2[0].downsample[1].running_var, sd["backbone.res3.0.shortcut.norm.running_var"])
    assert torch.equal(body.conv1.weight, sd["backbone.stem.conv1.weight"])
    attn = model.clip_model.visual.transformer.resblocks[11].attn
    fused = sd["sem_seg_head.predictor.clip_model.visual.transformer.resblocks.11.attn.in_proj_weight"]
    assert torch.equal(torch.cat([attn.q_proj_weight, attn.k_proj_weight, attn.v_proj_weight]), fused)
    assert not any("padding_" in k for k in model.state_dict())  # v1 does not pad the classes

    # the official fine-tuning flags of v1 (CLIP_FINETUNE attention: image-tower attention and position)
    set_trainable(model, "attention")
    flags: dict[str, set] = {}
    for name, p in model.named_parameters():
        flags.setdefault(_official_name(model, name), set()).add(p.requires_grad)
    expected = {e["key"]: e["requires_grad_in_official_code"] for e in manifest["entries"] if e["kind"] == "parameter"}
    assert {k: v == {True} for k, v in flags.items()} == expected


def _official_name(model, name: str) -> str:
    """The v1 checkpoint name of parameter ``name`` (q/k/v weights -> their fused ``in_proj_weight``)."""
    if name.startswith("guidance_backbone."):
        return "backbone." + model.guidance_backbone.to_official_key(name[len("guidance_backbone.") :])
    if name.startswith("aggregator."):
        return "sem_seg_head.predictor.transformer." + name[len("aggregator.") :]
    for part in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
        if name.endswith(part):
            name = name[: -len(part)] + "in_proj_weight"
    return "sem_seg_head.predictor." + name


def test_resnet_names_roundtrip_and_batchnorm_frozen():
    manifest = _manifest(MANIFEST_V1())
    names = [e["key"][len("backbone.") :] for e in manifest["entries"] if e["key"].startswith("backbone.")]
    local = [ResNetGuidance.from_official_key(k) for k in names]
    assert len(set(local)) == len(names) == 470
    assert [ResNetGuidance.to_official_key(k) for k in local] == names
    for bad in ("res2.0.conv1.bias", "res5.0.conv1.weight", "stem.conv1.norm.num_batches_tracked", "fc.weight"):
        with pytest.raises(KeyError):
            ResNetGuidance.from_official_key(bad)

    torch.manual_seed(0)
    net = ResNetGuidance()
    assert sorted(net.state_dict()) == sorted(local)  # no num_batches_tracked: FrozenBatchNorm
    with torch.no_grad():
        for n, b in net.named_buffers():
            b.copy_(torch.rand_like(b) + 0.5 if n.endswith("running_var") else torch.randn_like(b) * 0.1)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = net.eval()(x)
        before = {n: b.clone() for n, b in net.named_buffers()}
        out = net.train()(x)  # detectron2's FrozenBatchNorm ignores the mode: statistics stay fixed
    assert [tuple(t.shape) for t in out] == [(2, 256, 16, 16), (2, 512, 8, 8), (2, 1024, 4, 4)]
    assert all(torch.equal(a, b) for a, b in zip(ref, out, strict=False))
    assert all(torch.equal(before[n], b) for n, b in net.named_buffers())


# -- ViT-L/14 + Swin-B: layout and backbone numerics against the v1 construction ---------------------
def _v1_swin_shapes(embed=128, depths=(2, 2, 18), heads=(4, 8, 16), window=12) -> dict[str, tuple]:
    """Keys and shapes of v1's ``D2SwinTransformer`` (``cat_seg/modeling/backbone/swin.py``) for
    ``configs/vitl_swinb_384.yaml``: patch embedding with norm, per stage ``blocks`` (relative position
    table and its persistent index buffer, fused qkv), ``downsample`` (PatchMerging, no bias) at the
    end of every stage but the last, and an output norm ``norm{i}`` per stage."""
    out = {
        "patch_embed.proj.weight": (embed, 3, 4, 4),
        "patch_embed.proj.bias": (embed,),
        "patch_embed.norm.weight": (embed,),
        "patch_embed.norm.bias": (embed,),
    }
    for i, (depth, h) in enumerate(zip(depths, heads, strict=False)):
        d = embed * 2**i
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            out.update(
                {
                    p + "norm1.weight": (d,),
                    p + "norm1.bias": (d,),
                    p + "attn.relative_position_bias_table": ((2 * window - 1) ** 2, h),
                    p + "attn.relative_position_index": (window * window, window * window),
                    p + "attn.qkv.weight": (3 * d, d),
                    p + "attn.qkv.bias": (3 * d,),
                    p + "attn.proj.weight": (d, d),
                    p + "attn.proj.bias": (d,),
                    p + "norm2.weight": (d,),
                    p + "norm2.bias": (d,),
                    p + "mlp.fc1.weight": (4 * d, d),
                    p + "mlp.fc1.bias": (4 * d,),
                    p + "mlp.fc2.weight": (d, 4 * d),
                    p + "mlp.fc2.bias": (d,),
                }
            )
        if i < len(depths) - 1:
            out.update(
                {
                    f"layers.{i}.downsample.reduction.weight": (2 * d, 4 * d),
                    f"layers.{i}.downsample.norm.weight": (4 * d,),
                    f"layers.{i}.downsample.norm.bias": (4 * d,),
                }
            )
        out.update({f"norm{i}.weight": (d,), f"norm{i}.bias": (d,)})
    return out


def test_swin_variant_layout_matches_v1_construction():
    """Every key of the v1 ViT-L + Swin-B model: CLIP ViT-L/14@336px in v1's fused layout (from the
    CVPR ViT-L manifest, same OpenAI model), the v1 aggregator (from the v1 ResNet manifest, with the
    four shapes ``vitl_swinb_384.yaml`` changes) and the Swin-B backbone as v1 builds it."""
    shapes = {}
    for e in _manifest(MANIFEST_L())["entries"]:
        k = e["key"]
        if k.startswith("sem_seg_head.predictor.clip_model."):
            if k.endswith("q_proj_weight"):
                shapes[k.replace("q_proj_weight", "in_proj_weight")] = (3 * e["shape"][0], e["shape"][1])
            elif not k.endswith(("k_proj_weight", "v_proj_weight")):
                shapes[k] = tuple(e["shape"])
    for e in _manifest(MANIFEST_V1())["entries"]:
        if e["key"].startswith("sem_seg_head.predictor.transformer."):
            shapes[e["key"]] = tuple(e["shape"])
    agg = "sem_seg_head.predictor.transformer."
    shapes.update(
        {
            agg + "guidance_projection.0.weight": (128, 512, 3, 3),  # APPEARANCE_GUIDANCE_DIM 512
            agg + "text_guidance_projection.0.weight": (128, 768),  # TEXT_GUIDANCE_DIM 768
            agg + "decoder_guidance_projection.0.0.weight": (32, 256, 3, 3),  # DECODER_GUIDANCE_DIMS
            agg + "decoder_guidance_projection.1.0.weight": (16, 128, 3, 3),
        }
    )
    shapes.update({"backbone." + k: s for k, s in _v1_swin_shapes().items()})

    with torch.device("meta"):
        model = CATSeg(get_config("vitl14_swinb_384"))
    assert match_official_keys(model, shapes) == NO_PROBLEMS
    official = to_official_state_dict(model)
    assert sorted(official) == sorted(shapes)
    assert {k: tuple(v.shape) for k, v in official.items()} == shapes
    assert len([k for k in shapes if k.startswith("backbone.")]) == 4 + 22 * 14 + 2 * 3 + 3 * 2
    # a CVPR-layout guidance key is refused by name
    bad = {**shapes, "backbone.layers.2.downsample.reduction.weight": (1024, 2048)}
    problems = match_official_keys(model, bad)
    assert "backbone.layers.2.downsample.reduction.weight" in problems["unexpected"][0], problems


def _v1_swin_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, *, depths, heads, window: int) -> list[torch.Tensor]:
    """v1 ``D2SwinTransformer.forward`` on official-named weights, transcribed in plain torch ops."""

    def ln(t, p):
        return F.layer_norm(t, t.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], 1e-5)

    def partition(t):  # (B, H, W, C) -> (nW*B, ws*ws, C)
        b, h, w, c = t.shape
        t = t.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
        return t.reshape(-1, window * window, c)

    x = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=4)
    b, _, hh, ww = x.shape
    x = ln(x.flatten(2).transpose(1, 2), "patch_embed.norm")
    outs = []
    for i, depth in enumerate(depths):
        shift = window // 2
        img = torch.zeros(1, hh, ww, 1)
        cnt = 0
        for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                img[:, hs, ws, :] = cnt
                cnt += 1
        mw = partition(img)[..., 0]
        mask = (mw.unsqueeze(1) - mw.unsqueeze(2)).ne(0).float() * -100.0
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            s = shift if j % 2 else 0
            short = x
            t = ln(x, p + "norm1").view(b, hh, ww, -1)
            if s:
                t = torch.roll(t, (-s, -s), (1, 2))
            win = partition(t)
            n, length, dim = win.shape
            nh = heads[i]
            qkv = F.linear(win, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
            q, k, v = qkv.reshape(n, length, 3, nh, dim // nh).permute(2, 0, 3, 1, 4)
            attn = (q * (dim // nh) ** -0.5) @ k.transpose(-2, -1)
            bias = sd[p + "attn.relative_position_bias_table"][sd[p + "attn.relative_position_index"].view(-1)]
            attn = attn + bias.view(length, length, nh).permute(2, 0, 1)[None]
            if s:
                nw = mask.shape[0]
                attn = (attn.view(n // nw, nw, nh, length, length) + mask[None, :, None]).view(n, nh, length, length)
            o = (attn.softmax(-1) @ v).transpose(1, 2).reshape(n, length, dim)
            o = F.linear(o, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
            o = o.view(b, hh // window, ww // window, window, window, dim).permute(0, 1, 3, 2, 4, 5)
            o = o.reshape(b, hh, ww, dim)
            if s:
                o = torch.roll(o, (s, s), (1, 2))
            x = short + o.reshape(b, hh * ww, dim)
            h1 = F.gelu(F.linear(ln(x, p + "norm2"), sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]))
            x = x + F.linear(h1, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        outs.append(ln(x, f"norm{i}").view(b, hh, ww, -1).permute(0, 3, 1, 2))
        if i < len(depths) - 1:  # PatchMerging at the end of the stage
            t = x.view(b, hh, ww, -1)
            t = torch.cat([t[:, 0::2, 0::2], t[:, 1::2, 0::2], t[:, 0::2, 1::2], t[:, 1::2, 1::2]], -1)
            hh, ww = hh // 2, ww // 2
            t = ln(t.view(b, hh * ww, -1), f"layers.{i}.downsample.norm")
            x = F.linear(t, sd[f"layers.{i}.downsample.reduction.weight"])
    return outs


def test_swin_guidance_matches_v1_swin_forward():
    """The timm-built Swin-B with v1-named weights computes what v1's Swin computes (two blocks per
    stage instead of 2-2-18 to keep the test short: the per-stage layout is the same)."""
    depths, heads = (2, 2, 2), (4, 8, 16)
    torch.manual_seed(0)
    net = SwinGuidance(embed_dim=128, depths=depths, num_heads=heads, window_size=12, img_size=384).eval()
    with torch.no_grad():  # non-trivial norms and position biases (timm initialises them to 1/0/0.02)
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    sd = {net.to_official_key(k): v for k, v in net.state_dict().items()}
    sd.update({net.to_official_key(k): v for k, v in net.relative_position_indices().items()})
    assert sorted(sd) == sorted(_v1_swin_shapes(depths=depths))
    x = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        ours = net(x)
        ref = _v1_swin_forward(sd, x, depths=depths, heads=heads, window=12)
    assert [tuple(t.shape) for t in ours] == [(1, 128, 96, 96), (1, 256, 48, 48), (1, 512, 24, 24)]
    for a, b in zip(ours, ref, strict=False):
        assert (a - b).abs().max().item() < 1e-4 * max(1.0, b.abs().max().item())


def test_v1_text_protocol_averages_synonyms_per_template():
    """80 ImageNet templates, one cost-volume channel each; "a, b" classes average the normalised
    embeddings of a and b per template (the CVPR code keeps only a)."""
    from ovseg_models.catseg.configs import CLIPConfig

    clip = CLIPConfig(
        embed_dim=32,
        image_resolution=224,
        vision_layers=2,
        vision_width=64,
        vision_patch_size=16,
        vision_heads=2,
        text_width=32,
        text_heads=2,
        text_layers=2,
        dense_residual="full",
    )
    cfg = get_config("vitb16_r101_384", clip=dict(vars(clip)), text_guidance_dim=32)
    torch.manual_seed(0)
    model = CATSeg(cfg).eval()
    enc = CATSegTextEncoder(model)
    assert enc.synonyms == "mean" and len(enc.templates) == 80
    with torch.no_grad():
        both, first, second = enc.encode([["coffee", "espresso"]]), enc.encode(["coffee"]), enc.encode(["espresso"])
    assert both.shape == (1, 80, 32)
    mean = first + second
    assert torch.allclose(both, mean / mean.norm(dim=-1, keepdim=True), atol=1e-6)
    assert (
        CATSegTextEncoder(
            CATSeg(get_config("vitb16_384", clip=dict(vars(clip)), text_guidance_dim=32, appearance_guidance_dim=64))
        ).synonyms
        == "first"
    )
    assert math.isclose(float(both.norm(dim=-1).mean()), 1.0, rel_tol=1e-5)
