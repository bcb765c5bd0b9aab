"""FC-CLIP's registry descriptor."""

from ..families import ModelFamily, NodeOption, register_family
from . import DEFAULT_VARIANT, VARIANTS, build_segmenter

#: the paper's test resize (shortest edge, longest-edge cap); street scenes are tested larger
TEST_SIZE = (800, 1333)
TEST_SIZE_PER_DATASET = {"cityscapes": (1024, 2560), "mapillary_vistas": (1024, 2560)}


def test_size(dataset: str) -> tuple[int, int]:
    """FC-CLIP's test resize ``(shortest edge, max size)`` for ``dataset``."""
    return TEST_SIZE_PER_DATASET.get(dataset, TEST_SIZE)


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
        test_size=test_size,
        ignored_options=("sliding_window", "pooling_size"),
        node_options={
            "min_size": NodeOption(
                "min_size", 0, "FC-CLIP test resize, shortest edge (0 = model default 800)", (0, float("inf")), 0
            ),
            "max_size": NodeOption(
                "max_size", 0, "FC-CLIP test resize, longest-edge cap (0 = model default 1333)", (0, float("inf")), 0
            ),
            "alpha": NodeOption(
                "geometric_ensemble_alpha", 0.4, "FC-CLIP geometric ensemble weight for seen classes", (0, 1)
            ),
            "beta": NodeOption(
                "geometric_ensemble_beta", 0.8, "FC-CLIP geometric ensemble weight for unseen classes", (0, 1)
            ),
            "object_mask_threshold": NodeOption(
                "object_mask_threshold", 0.0, "FC-CLIP panoptic: minimum class probability of a mask", (0, 1)
            ),
            "overlap_threshold": NodeOption(
                "overlap_threshold", 0.8, "FC-CLIP panoptic: minimum kept fraction of a mask", (0, 1)
            ),
            "class_agnostic": NodeOption(
                "class_agnostic",
                False,
                "FC-CLIP prompt-free panoptic: one segment per mask query, scored by its objectness "
                "(1 - p(no object)), nothing merged by class (category: its best class); for mappers "
                "that label segments later from their embeddings",
            ),
        },
        bench_target="ovseg_models.bench:fcclip_target",
        parity_runners={
            "fcclip_postprocess": "ovseg_models.parity.fcclip:run_postprocess_case",
            "fcclip": "ovseg_models.parity.fcclip:run_case",
        },
    )
)
