"""FC-CLIP's registry descriptor."""

from ..families import ModelFamily, register_family
from . import DEFAULT_VARIANT, VARIANTS, build_segmenter


def _test_size(dataset: str) -> tuple[int, int]:
    from ..evaluation.cli import fcclip_test_size

    return fcclip_test_size(dataset)


FAMILY = register_family(
    ModelFamily(
        name="fcclip",
        build_segmenter=build_segmenter,
        variants=VARIANTS,
        default_variant=DEFAULT_VARIANT,
        panoptic=True,
        training_vocabulary="coco_panoptic",
        checkpoint_hint="fcclip_cocopan.pth from the FC-CLIP repository",
        eval_extra_datasets=("cityscapes", "mapillary_vistas", "coco_panoptic"),
        test_size=_test_size,
        ignored_options=("sliding_window", "pooling_size"),
        bench_target="ovseg_models.bench:fcclip_target",
        parity_runners={
            "fcclip_postprocess": "ovseg_models.parity.fcclip:run_postprocess_case",
            "fcclip": "ovseg_models.parity.fcclip:run_case",
        },
    )
)
