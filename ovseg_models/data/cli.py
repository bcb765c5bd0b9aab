"""``ovseg-prepare DATASET``: convert a benchmark's official download into the layout ``ovseg-eval`` and
``ovseg-train`` read (the official ``datasets/prepare_*.py`` of MaskFormer / Mask2Former / FC-CLIP / CAT-Seg and
cityscapesScripts, see :mod:`ovseg_models.data.prepare`).

    ovseg-prepare ade20k_847 --root $DETECTRON2_DATASETS
    ovseg-prepare cityscapes_panoptic --split val
    ovseg-prepare all                 # every dataset whose raw files are present

``--root`` is the datasets folder (default ``$DETECTRON2_DATASETS``, else ``./datasets``); ``--split`` takes the
short names ``val``/``train`` (ADE20K and Mapillary folder names ``validation``/``training`` are derived).
Existing outputs are kept unless ``--overwrite``. The exit status is 1 when a requested dataset fails.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from . import prepare

__all__ = ["PREPARERS", "build_parser", "main"]

_LONG = {"val": "validation", "train": "training"}


def _long(split: str) -> str:
    return _LONG.get(split, split)


#: dataset -> (what it writes, function(root, split, overwrite) -> #files written)
PREPARERS: dict[str, tuple[str, Callable[[Path, str, bool], int]]] = {
    "ade20k_150": (
        "ADEChallengeData2016/annotations_detectron2/<split> (A-150 labels)",
        lambda r, s, o: prepare.prepare_ade20k_150(root=r, split=_long(s), overwrite=o),
    ),
    "ade20k_150_panoptic": (
        "ADEChallengeData2016/ade20k_panoptic_<split>{.json,/}",
        lambda r, s, o: prepare.prepare_ade20k_panoptic(root=r, split=_long(s), overwrite=o),
    ),
    "ade20k_847": (
        "ADE20K_2021_17_01/{images,annotations}_detectron2/<split> (A-847)",
        lambda r, s, o: prepare.prepare_ade20k_847(root=r, split=_long(s), overwrite=o),
    ),
    "cityscapes": (
        "cityscapes/gtFine/<split>/*/*_gtFine_labelTrainIds.png",
        lambda r, s, o: prepare.prepare_cityscapes(root=r / "cityscapes", split=s, overwrite=o),
    ),
    "cityscapes_panoptic": (
        "cityscapes/gtFine/cityscapes_panoptic_<split>{.json,/}",
        lambda r, s, o: prepare.prepare_cityscapes_panoptic(root=r / "cityscapes", split=s, overwrite=o),
    ),
    "pascal_voc": (
        "VOCdevkit/VOC2012/annotations_detectron2{,_bg}/<split> (PAS-20, PAS-20b/21)",
        lambda r, s, o: prepare.prepare_pascal_voc(root=r, split=s, overwrite=o),
    ),
    "pascal_context": (
        "VOCdevkit/VOC2010/annotations_detectron2/pc{59,459}_<split> (PC-59, PC-459)",
        lambda r, s, o: prepare.prepare_pascal_context(root=r, split=s, overwrite=o),
    ),
    "mapillary_panoptic": (
        "mapillary_vistas/<split>/v1.2/panoptic (only when the shipped files are missing)",
        lambda r, s, o: prepare.prepare_mapillary_panoptic(root=r, split=_long(s), overwrite=o),
    ),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovseg-prepare",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="datasets:\n" + "\n".join(f"  {k:<20} {v[0]}" for k, v in PREPARERS.items()),
    )
    p.add_argument(
        "datasets",
        nargs="+",
        metavar="DATASET",
        choices=[*PREPARERS, "all"],
        help="one or more of: " + ", ".join(PREPARERS) + ", or all",
    )
    p.add_argument("--root", help="datasets folder (default: $DETECTRON2_DATASETS or ./datasets)")
    p.add_argument("--split", default="val", help="split (default val; train for the training sets)")
    p.add_argument("--overwrite", action="store_true", help="rewrite existing outputs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = Path(args.root or os.environ.get("DETECTRON2_DATASETS") or "datasets")
    names = list(PREPARERS) if "all" in args.datasets else list(dict.fromkeys(args.datasets))
    failed = []
    for name in names:
        try:
            n = PREPARERS[name][1](root, args.split, args.overwrite)
            print(f"{name}: {n} file(s) written ({PREPARERS[name][0]})")
        except FileNotFoundError as e:
            if "all" in args.datasets:  # "all": the datasets whose raw files are absent are not an error
                print(f"{name}: not present ({e})")
                continue
            failed.append(name)
            print(f"ovseg-prepare: {name} failed: {e}", file=sys.stderr)
        except Exception as e:  # noqa: BLE001 - report every dataset, then fail
            failed.append(name)
            print(f"ovseg-prepare: {name} failed: {type(e).__name__}: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
