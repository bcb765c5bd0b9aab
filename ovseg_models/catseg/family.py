"""CAT-Seg's registry descriptor."""

from ..families import ModelFamily, NodeOption, register_family
from . import DEFAULT_VARIANT, VARIANTS, build_segmenter, get_config
from .templates import check_template_count


def _check_templates(variant: str | None, templates: list[str]) -> None:
    check_template_count(templates, get_config(variant or None).prompt_channel, variant=variant or DEFAULT_VARIANT)


FAMILY = register_family(
    ModelFamily(
        name="catseg",
        build_segmenter=build_segmenter,
        variants=VARIANTS,
        default_variant=DEFAULT_VARIANT,
        training_vocabulary="coco_stuff_171",
        checkpoint_hint="model_base.pth or model_large.pth from the CAT-Seg repository",
        check_templates=_check_templates,
        background_cap_datasets=("pascal_voc_21",),
        sliding_window=True,
        ignored_options=("min_size", "max_size", "outputs"),
        node_options={
            "sliding_window": NodeOption(
                "sliding_window", False, "CAT-Seg: official sliding-window inference (slower, better)"
            ),
        },
        bench_target="ovseg_models.catseg.bench:bench_target",
        parity_runners={"catseg": "ovseg_models.parity.catseg:run_case"},
    )
)
