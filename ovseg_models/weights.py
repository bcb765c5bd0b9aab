"""The official releases by name, in the spirit of torchvision's weight enums.

Each :class:`Weights` says where a released checkpoint is published, its file name, the model and variant it
belongs to, the vocabulary it was trained on (``categories``, a key of :func:`ovseg_models.data.class_names
.get_categories`), the CLIP weights it needs (open_clip name/tag and their Hugging Face repository) and the
metrics its authors report. ``create_segmenter(model, weights="catseg_vitb16_cocostuff")`` (or
``weights=OfficialWeights.CATSEG_VITB16_COCOSTUFF``) fetches the file and builds the matching model.

Fetching (:meth:`Weights.fetch`), in this order:

1. ``<weights dir>/<file name>`` when present (``$OVSEG_WEIGHTS_DIR``, default ``~/.cache/ovseg/weights``): a file
   downloaded by hand;
2. releases published on the Hugging Face Hub: ``huggingface_hub.hf_hub_download`` (its cache,
   ``$HF_HOME``/``HF_HUB_CACHE``; offline with ``HF_HUB_OFFLINE=1`` when the file is cached there).

A release that cannot be obtained (no network, ``HF_HUB_OFFLINE``, or published only on Google Drive, which
the Hub client cannot fetch, as FC-CLIP's) raises :class:`WeightsNotAvailableError` naming the file, where it is
published, and where to put it.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CLIPWeights",
    "HubFile",
    "OfficialWeights",
    "Weights",
    "WeightsNotAvailableError",
    "get_weights",
    "list_weights",
    "weights_dir",
]


class WeightsNotAvailableError(FileNotFoundError):
    """A released checkpoint is neither local nor fetchable now; the message says what to download and where."""


@dataclass(frozen=True)
class HubFile:
    """A file on the Hugging Face Hub (``repo_type`` ``"model"`` or ``"space"``)."""

    repo_id: str
    filename: str
    repo_type: str = "model"
    revision: str | None = None

    @property
    def url(self) -> str:
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"https://huggingface.co/{prefix}{self.repo_id}/resolve/{self.revision or 'main'}/{self.filename}"


@dataclass(frozen=True)
class CLIPWeights:
    """The CLIP a release was trained from: open_clip model name and pretrained tag (open_clip downloads them
    through the Hub repository ``hf_hub``). A released checkpoint that contains the fine-tuned CLIP (CAT-Seg)
    needs them only for the tokenizer and configuration."""

    open_clip_name: str
    pretrained: str
    hf_hub: str


@dataclass(frozen=True)
class Weights:
    """One official release (see the module docstring)."""

    name: str
    model: str
    variant: str
    filename: str
    published: str  # where the authors publish it (a URL)
    categories: str  # training vocabulary: a get_categories() key
    clip: CLIPWeights
    metrics: dict = field(default_factory=dict)  # benchmark key -> {metric: percent}
    source: str = ""  # where the metrics come from
    hub: HubFile | None = None  # None: not on the Hugging Face Hub

    def local_path(self) -> Path:
        """Where a hand-downloaded copy is looked for (and should be put)."""
        return weights_dir() / self.filename

    def fetch(self, *, local_files_only: bool = False) -> Path:
        """The checkpoint file (see the module docstring); :class:`WeightsNotAvailableError` when it cannot be
        obtained now. ``local_files_only``: the weights folder and the Hugging Face cache only, no download."""
        local = self.local_path()
        if local.is_file():
            return local
        if self.hub is None:
            raise WeightsNotAvailableError(
                f"{self.name}: {self.filename} is published at {self.published}, which huggingface_hub cannot "
                f"fetch; download it and put it at {local} (or set OVSEG_WEIGHTS_DIR to its folder)"
            )
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

        try:
            return Path(
                hf_hub_download(
                    self.hub.repo_id,
                    self.hub.filename,
                    repo_type=self.hub.repo_type,
                    revision=self.hub.revision,
                    local_files_only=local_files_only,
                )
            )
        except (LocalEntryNotFoundError, OfflineModeIsEnabled, OSError) as e:
            offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
            raise WeightsNotAvailableError(
                f"{self.name}: {self.filename} is not in the Hugging Face cache {constants.HF_HUB_CACHE} and could "
                f"not be downloaded{offline}: {type(e).__name__}. Download {self.hub.url} and put it at {local}, "
                f"or fetch it into the cache on a connected machine (huggingface-cli download {self.hub.repo_id} "
                f"{self.hub.filename} --repo-type {self.hub.repo_type})"
            ) from e


def weights_dir() -> Path:
    """``$OVSEG_WEIGHTS_DIR``, default ``~/.cache/ovseg/weights``."""
    return Path(os.environ.get("OVSEG_WEIGHTS_DIR") or Path.home() / ".cache" / "ovseg" / "weights").expanduser()


_CONVNEXT_L = CLIPWeights(
    "convnext_large_d_320", "laion2b_s29b_b131k_ft_soup", "laion/CLIP-convnext_large_d_320.laion2B-s29B-b131K-ft-soup"
)
_VIT_B16 = CLIPWeights("ViT-B-16", "openai", "timm/vit_base_patch16_clip_224.openai")
_VIT_L14_336 = CLIPWeights("ViT-L-14-336", "openai", "timm/vit_large_patch14_clip_336.openai")


def _sem(*values: float) -> dict:
    keys = ("ade20k_847", "pascal_context_459", "ade20k_150", "pascal_context_59", "pascal_voc_20", "pascal_voc_21")
    return {k: {"mIoU": v} for k, v in zip(keys, values, strict=False)}


class OfficialWeights(enum.Enum):
    """Every official release this project loads (value: its :class:`Weights`)."""

    FCCLIP_CONVNEXT_LARGE_COCO = Weights(
        name="fcclip_convnext_large_coco",
        model="fcclip",
        variant="convnext_large_d_320",
        filename="fcclip_cocopan.pth",
        published="https://drive.google.com/file/d/1-91PIns86vyNaL3CzMmDD39zKGnPMtvj/view?usp=sharing",
        categories="coco_panoptic",
        clip=_CONVNEXT_L,
        metrics={
            "ade20k_150": {"PQ": 26.8, "AP": 16.8, "mIoU": 34.1},
            "cityscapes": {"PQ": 44.0, "AP": 26.8, "mIoU": 56.2},
            "mapillary_vistas": {"PQ": 18.3, "mIoU": 27.8},
            "ade20k_847": {"mIoU": 14.8},
            "pascal_context_59": {"mIoU": 58.4},
            "pascal_context_459": {"mIoU": 18.2},
            "pascal_voc_21": {"mIoU": 81.8},
            "pascal_voc_20": {"mIoU": 95.4},
            "coco_panoptic": {"PQ": 54.4, "AP": 44.6, "mIoU": 63.7},
        },
        source="bytedance/fc-clip README model zoo (FC-CLIP, NeurIPS 2023)",
    )
    CATSEG_VITB16_COCOSTUFF = Weights(
        name="catseg_vitb16_cocostuff",
        model="catseg",
        variant="vitb16_384",
        filename="model_base.pth",
        published="https://huggingface.co/spaces/hamacojr/CAT-Seg-weights/resolve/main/model_base.pth",
        categories="coco_stuff_171",
        clip=_VIT_B16,
        metrics=_sem(12.0, 19.0, 31.8, 57.5, 94.6, 77.3),
        source="cvlab-kaist/CAT-Seg README model zoo (CVPR 2024)",
        hub=HubFile("hamacojr/CAT-Seg-weights", "model_base.pth", repo_type="space"),
    )
    CATSEG_VITL14_COCOSTUFF = Weights(
        name="catseg_vitl14_cocostuff",
        model="catseg",
        variant="vitl14_336",
        filename="model_large.pth",
        published="https://huggingface.co/spaces/hamacojr/CAT-Seg-weights/resolve/main/model_large.pth",
        categories="coco_stuff_171",
        clip=_VIT_L14_336,
        metrics=_sem(16.0, 23.8, 37.9, 63.3, 97.0, 82.5),
        source="cvlab-kaist/CAT-Seg README model zoo (CVPR 2024)",
        hub=HubFile("hamacojr/CAT-Seg-weights", "model_large.pth", repo_type="space"),
    )
    # The seed paper's (arXiv v1) models, released with the v1 code; their README reports A-847 8.9 / 11.4
    # where the v1 paper has 8.4 / 10.8 (configs catseg_v1_* carry the paper's numbers).
    CATSEG_V1_VITB16_R101_COCOSTUFF = Weights(
        name="catseg_v1_vitb16_r101_cocostuff",
        model="catseg",
        variant="vitb16_r101_384",
        filename="model_final_base.pth",
        published="https://huggingface.co/hamacojr/CAT-Seg/blob/main/model_final_base.pth",
        categories="coco_stuff_171",
        clip=_VIT_B16,
        metrics=_sem(8.9, 16.6, 27.2, 57.5, 93.7, 78.3),
        source="CAT-Seg v1 README model zoo",
        hub=HubFile("hamacojr/CAT-Seg", "model_final_base.pth"),
    )
    CATSEG_V1_VITL14_SWINB_COCOSTUFF = Weights(
        name="catseg_v1_vitl14_swinb_cocostuff",
        model="catseg",
        variant="vitl14_swinb_384",
        filename="model_final_large.pth",
        published="https://huggingface.co/hamacojr/CAT-Seg/blob/main/model_final_large.pth",
        categories="coco_stuff_171",
        clip=_VIT_L14_336,
        metrics=_sem(11.4, 20.4, 31.5, 62.0, 96.6, 81.8),
        source="CAT-Seg v1 README model zoo",
        hub=HubFile("hamacojr/CAT-Seg", "model_final_large.pth"),
    )


def list_weights(model: str | None = None) -> list[str]:
    """Names of the official releases (of one model family when ``model`` is given)."""
    return [w.value.name for w in OfficialWeights if model is None or w.value.model == model]


def get_weights(name: str | OfficialWeights | Weights) -> Weights:
    """A release by name (``"catseg_vitb16_cocostuff"``, the enum member name, or the released file name)."""
    if isinstance(name, Weights):
        return name
    if isinstance(name, OfficialWeights):
        return name.value
    key = str(name).strip()
    for w in OfficialWeights:
        if key in (w.value.name, w.name, w.value.filename):
            return w.value
    raise KeyError(f"unknown weights {name!r}; known: {', '.join(list_weights())}")
