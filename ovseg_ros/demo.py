"""``ovseg``: the main job. End to end on an embedded default, in about a minute on a CPU.

1. builds a small rosbag2 bag from real photos shipped by scikit-image (astronaut, cat, coffee,
   rocket, motorcycle, camera man), a few frames per photo with a slow camera pan, in several
   encodings (rgb8, bgr8, mono8);
2. replays it through the segmentation node over real DDS (``ovseg-bag-eval``), recording every
   output into a new bag and writing the overlays (label names drawn) into a folder;
3. prints a summary: frames, latency, labels found, where everything went.

Weights: a checkpoint file when one is given (``--checkpoint`` or ``OVSEG_CHECKPOINT``); an official
release by name (``--weights`` or ``OVSEG_WEIGHTS``, see ``ovseg_models.weights``), fetched through
``huggingface_hub`` (cached; offline, an error names the file and where to put it); else the first
official release already on this machine (the weights folder or the Hugging Face cache, no download);
otherwise, and loudly, a small randomly initialised FC-CLIP (the outputs then show that the pipeline
works, not what is in the photos).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["build_demo_bag", "main"]

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "camera")
RANDOM_BANNER = """
################################################################################
#  RANDOM WEIGHTS: no checkpoint was given or found on this machine ({why}).
#  The demo runs a small randomly initialised FC-CLIP: every stage (bag, DDS,
#  node, model, outputs) is real, but the labels are meaningless.
#  For real results: ovseg --weights catseg_vitb16_cocostuff (Hugging Face), or
#  ovseg --checkpoint /path/to/fcclip_cocopan.pth
################################################################################
"""


def _photo(name: str) -> np.ndarray:
    import skimage.data as data

    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


def _fit(img: np.ndarray, width: int) -> np.ndarray:
    from PIL import Image as PILImage

    h, w = img.shape[:2]
    height = max(2, round(h * width / w))
    return np.asarray(PILImage.fromarray(img).resize((width, height), PILImage.BILINEAR))


def build_demo_bag(
    path: Path, *, frames_per_photo: int = 5, fps: float = 10.0, width: int = 320, storage: str = "sqlite3"
) -> int:
    """Write the demo bag; the number of frames. Topic ``/camera/image_raw``, frame ``camera``."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from .conversions import numpy_to_image

    store = get_typestore(Stores.ROS2_KILTED)
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    t0 = 1_700_000_000_000_000_000
    n = 0
    crop_w, crop_h = width, width * 3 // 4
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conn = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
        for p, name in enumerate(PHOTOS):
            img = _photo(name)
            big = _fit(img, width + 8 * frames_per_photo)
            if big.shape[0] < crop_h:
                big = _fit(img, int((width + 8 * frames_per_photo) * crop_h / big.shape[0]) + 1)
            for f in range(frames_per_photo):
                x = 8 * f
                y = (big.shape[0] - crop_h) // 2
                view = np.ascontiguousarray(big[y : y + crop_h, x : x + crop_w])
                if view.ndim == 2:
                    msg = numpy_to_image(view, "mono8")
                elif p % 3 == 1:
                    msg = numpy_to_image(np.ascontiguousarray(view[:, :, ::-1]), "bgr8")
                else:
                    msg = numpy_to_image(view, "rgb8")
                t = t0 + int(n * 1e9 / fps)
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t, 1_000_000_000)
                msg.header.frame_id = "camera"
                writer.write(conn, t, serialize_message(msg))
                n += 1
    return n


def _find_checkpoint(args) -> tuple[Path | None, tuple[str, str], str]:
    """(checkpoint, (model, variant), why none): given, fetched by release name, or already on this machine."""
    from ovseg_models.weights import OfficialWeights, WeightsNotAvailableError, get_weights

    given = args.checkpoint or os.environ.get("OVSEG_CHECKPOINT")
    if given:
        p = Path(given).expanduser()
        if not p.is_file():
            raise SystemExit(f"ovseg: checkpoint {p} does not exist")
        by_file = {w.value.filename: w.value for w in OfficialWeights}
        release = by_file.get(p.name)
        return p, (release.model, release.variant) if release else (args.model, args.variant), ""
    name = args.weights or os.environ.get("OVSEG_WEIGHTS")
    if name:
        try:
            release = get_weights(name)
            return release.fetch(), (release.model, release.variant), ""
        except KeyError as e:
            raise SystemExit(f"ovseg: {e.args[0]}") from None
        except WeightsNotAvailableError as e:
            raise SystemExit(f"ovseg: {e}") from None
    for w in OfficialWeights:  # a release already downloaded: use it, download nothing
        try:
            return w.value.fetch(local_files_only=True), (w.value.model, w.value.variant), ""
        except WeightsNotAvailableError:
            continue
    return None, ("", ""), "none given, no official release in the weights folder or the Hugging Face cache"


def _params(args, checkpoint: Path | None, model_variant: tuple[str, str] = ("", "")) -> dict:
    common = {"device": args.device, "vocabulary.default": args.vocabulary, "publish.diagnostics": True}
    if checkpoint is None:
        from . import tiny

        # the tiny random FC-CLIP of config/tiny_random.yaml, larger (20 queries, two decoder
        # layers, 128 to 192 px instead of 64) so that the overlays of whole photos show shapes
        return tiny.params(
            **{
                "model_options": '{"num_queries": 20, "dec_layers": 2, "transformer_enc_layers": 1}',
                "fcclip.min_size": 128,
                "fcclip.max_size": 192,
                "resize.max_side": 192,
                **common,
            }
        )
    model, variant = model_variant
    return {
        **common,
        "model": args.model or model or "fcclip",
        "variant": args.variant or variant or "",
        "checkpoint": str(checkpoint),
        "resize.max_side": 640,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="ovseg",
        description="ovseg end to end on photos from scikit-image: "
        "bag -> node over DDS -> outputs, overlays and a summary",
    )
    ap.add_argument(
        "--output-dir",
        type=Path,
        default=Path("ovseg_demo"),
        help="where everything goes (default ./ovseg_demo; replaced on each run)",
    )
    ap.add_argument("--checkpoint", help="official released checkpoint (or env OVSEG_CHECKPOINT)")
    ap.add_argument(
        "--weights",
        help="an official release by name, fetched through huggingface_hub (or env "
        "OVSEG_WEIGHTS); names: ovseg_models.weights.list_weights()",
    )
    ap.add_argument("--model", default="", help="fcclip or catseg (default: from the checkpoint's name)")
    ap.add_argument("--variant", default="", help="model variant (default: from the checkpoint's name)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--vocabulary", default="coco_panoptic", help="default vocabulary (built-in name or file)")
    ap.add_argument("--frames-per-photo", type=int, default=5)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument(
        "--realtime",
        action="store_true",
        help="replay at the bag's timing (drops frames if the "
        "model is slower) instead of each frame when the previous is done",
    )
    args = ap.parse_args(argv)

    t_start = time.monotonic()
    checkpoint, model_variant, why = _find_checkpoint(args)
    if checkpoint is None:
        print(RANDOM_BANNER.format(why=why), file=sys.stderr, flush=True)
    else:
        print(f"checkpoint: {checkpoint}", flush=True)
    out = args.output_dir
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    bag = out / "photos_bag"
    n = build_demo_bag(bag, frames_per_photo=args.frames_per_photo, fps=args.fps)
    print(f"demo bag: {bag} ({n} frames of {', '.join(PHOTOS)} at {args.fps:g} Hz)", flush=True)

    from .bag_eval import EvalOptions, evaluate_bag, format_report

    params = _params(args, checkpoint, model_variant)
    opts = EvalOptions(
        bag=bag,
        output=out / "segmented_bag",
        fast=not args.realtime,
        params=params,
        overlay_dir=out / "overlays",
        report=out / "report.json",
    )
    try:
        report = evaluate_bag(opts, log=lambda s: print(s, file=sys.stderr))
    except RuntimeError as e:
        if checkpoint is None:
            raise
        # e.g. the checkpoint's CLIP text tower cannot be fetched offline: say so, then go on randomly
        print(f"\nthe checkpoint could not be used: {e}", file=sys.stderr)
        print(RANDOM_BANNER.format(why="the checkpoint failed to load"), file=sys.stderr, flush=True)
        checkpoint = None
        shutil.rmtree(out / "segmented_bag", ignore_errors=True)
        opts.params = _params(args, None)
        report = evaluate_bag(opts, log=lambda s: print(s, file=sys.stderr))

    print()
    print(format_report(report))
    labels = report.get("segments_per_label") or {}
    top = ", ".join(f"{k} ({v})" for k, v in list(labels.items())[:8])
    print(f"labels found (segments): {top or 'none'}")
    print(f"overlays: {out / 'overlays'} ({len(list((out / 'overlays').glob('*.png')))} PNGs)")
    print(f"report:   {out / 'report.json'}")
    print(f"weights:  {'checkpoint ' + str(checkpoint) if checkpoint else 'RANDOM (see the banner above)'}")
    print(f"done in {time.monotonic() - t_start:.0f} s")
    if checkpoint is None:
        print("NOTE: RANDOM WEIGHTS were used; the labels above are meaningless.", file=sys.stderr)
    return 0 if report["processed"] > 0 else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
