"""Official releases by name (``ovseg_models.weights``): the registry, fetching through huggingface_hub's cache
(a cache built by hand in the Hub's documented layout, as no network exists here), the offline error, and a
present file loaded through the real loading path (a tiny random CAT-Seg saved in the release's format)."""

import pytest
import torch
from test_catseg import tiny_config

from ovseg_models import create_segmenter
from ovseg_models.catseg import CATSeg
from ovseg_models.catseg.checkpoint import to_official_state_dict
from ovseg_models.weights import OfficialWeights, WeightsNotAvailableError, get_weights, list_weights


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, offline (as HF_HUB_OFFLINE=1), and an empty hand-download folder."""
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("OVSEG_WEIGHTS_DIR", str(tmp_path / "weights"))
    return cache


def _put_in_cache(cache, *, repo_id, repo_type, filename, payload: dict):
    """The Hub cache layout: <type>s--<owner>--<name>/refs/main holds the commit; snapshots/<commit>/<file>."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    torch.save(payload, repo / "snapshots" / commit / filename)
    return repo / "snapshots" / commit / filename


def test_registry_describes_every_official_release():
    assert set(list_weights("catseg")) >= {"catseg_vitb16_cocostuff", "catseg_vitl14_cocostuff"}
    assert list_weights("fcclip") == ["fcclip_convnext_large_coco"]
    b = get_weights("catseg_vitb16_cocostuff")
    assert (b.filename, b.variant, b.categories) == ("model_base.pth", "vitb16_384", "coco_stuff_171")
    assert (b.hub.repo_id, b.hub.repo_type) == ("hamacojr/CAT-Seg-weights", "space")
    assert b.metrics["ade20k_150"]["mIoU"] == 31.8 and b.clip.open_clip_name == "ViT-B-16"
    assert get_weights("model_large.pth").variant == "vitl14_336"
    fc = get_weights(OfficialWeights.FCCLIP_CONVNEXT_LARGE_COCO)
    assert fc.filename == "fcclip_cocopan.pth" and fc.hub is None and "drive.google.com" in fc.published
    assert fc.clip.pretrained == "laion2b_s29b_b131k_ft_soup" and fc.metrics["coco_panoptic"]["PQ"] == 54.4
    with pytest.raises(KeyError, match="known"):
        get_weights("nope")


def test_offline_error_names_the_file_and_where_to_put_it(hf_cache, tmp_path):
    with pytest.raises(WeightsNotAvailableError) as e:
        get_weights("catseg_vitb16_cocostuff").fetch()
    msg = str(e.value)
    assert "model_base.pth" in msg and str(hf_cache) in msg and "HF_HUB_OFFLINE" in msg
    assert str(tmp_path / "weights" / "model_base.pth") in msg
    assert "huggingface.co/spaces/hamacojr/CAT-Seg-weights/resolve/main/model_base.pth" in msg
    with pytest.raises(WeightsNotAvailableError) as e:  # Google Drive only: never fetched, the error says so
        create_segmenter("fcclip", weights="fcclip_convnext_large_coco", pretrained=False)
    assert "fcclip_cocopan.pth" in str(e.value) and str(tmp_path / "weights" / "fcclip_cocopan.pth") in str(e.value)


def test_hand_downloaded_file_is_used(hf_cache, tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "fcclip_cocopan.pth").write_bytes(b"x")
    assert get_weights("fcclip_convnext_large_coco").fetch() == tmp_path / "weights" / "fcclip_cocopan.pth"


def test_cached_release_loads_through_the_real_path(hf_cache):
    torch.manual_seed(0)
    cfg = tiny_config()
    model = CATSeg(cfg).eval()
    path = _put_in_cache(
        hf_cache,
        repo_id="hamacojr/CAT-Seg-weights",
        repo_type="space",
        filename="model_base.pth",
        payload={"model": to_official_state_dict(model), "iteration": 79999},
    )
    assert get_weights("catseg_vitb16_cocostuff").fetch() == path  # a cache hit, offline
    seg = create_segmenter(
        "catseg", weights="catseg_vitb16_cocostuff", config=cfg, pretrained=False, sliding_window=False
    )
    for k, v in model.state_dict().items():
        assert torch.equal(seg.model.state_dict()[k], v), k
    with pytest.raises(ValueError, match="variant"):
        create_segmenter("catseg", weights="catseg_vitb16_cocostuff", variant="vitl14_336")
    with pytest.raises(ValueError, match="catseg release"):
        create_segmenter("fcclip", weights="catseg_vitb16_cocostuff")


def test_node_parameter_weights(hf_cache):
    from ovseg_ros.params import ConfigError, build_segmenter, config_from_dict

    cfg = config_from_dict({"model": "catseg", "weights": "catseg_vitb16_cocostuff", "device": "cpu"})
    assert cfg.weights == "catseg_vitb16_cocostuff" and not cfg.checkpoint  # no allow_random_weights needed
    calls = []
    build_segmenter(cfg, create=lambda model, **kw: calls.append((model, kw)))
    assert calls[0][0] == "catseg" and calls[0][1]["weights"] == "catseg_vitb16_cocostuff"
    # offline and not cached: configure fails with the message that names the file and where to put it
    with pytest.raises(ConfigError, match="model_base.pth"):
        build_segmenter(cfg)
    with pytest.raises(ConfigError, match="known"):
        config_from_dict({"model": "catseg", "weights": "no_such_release"})
    with pytest.raises(ConfigError, match="variant"):
        config_from_dict({"model": "fcclip", "weights": "catseg_vitb16_cocostuff"})


def test_eval_cli_weights_offline_error(hf_cache, tmp_path, capsys):
    from ovseg_models.evaluation import cli

    rc = cli.main(
        ["--weights", "catseg_vitb16_cocostuff", "--root", str(tmp_path), "--output", str(tmp_path / "r.json")]
    )
    assert rc == 2 and "model_base.pth" in capsys.readouterr().err
