"""``python -m ovseg_models.bench --table``: the official-comparison settings printed beside the
official figures (figures are printed, not asserted: no timed tests)."""

import pytest

from ovseg_models import bench


@pytest.mark.slow
def test_table_row_prints_stages_cold_peak_and_official_reference(reference_dir, capsys):
    rc = bench.main(
        [
            "--table",
            "--rows",
            "catseg_case0_resize",
            "--repeat",
            "1",
            "--warmup",
            "0",
            "--threads",
            "2",
            "--cases",
            str(reference_dir / "cases"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "2026-12 on a 2-core x86_64 CPU, fp32, 2 threads" in out
    assert "CAT-Seg ViT-B/16 case0, no sliding [catseg_case0_resize]" in out
    for stage in ("clip_image", "aggregation", "postprocess"):
        assert stage in out
    assert "official (reference, steady) min / median 2.00 / 2.07 s -> ratio" in out
    assert "cold (text encoding included)" in out and "vs official 3.17 GB" in out


def test_table_rejects_unknown_rows():
    with pytest.raises(SystemExit, match="unknown table rows"):
        bench.main(["--table", "--rows", "nope"])


def test_catseg_case_without_a_known_manifest_asks_for_one(tmp_path):
    from argparse import Namespace

    from ovseg_models.catseg.bench import bench_target

    args = Namespace(variant=None, case=str(tmp_path / "my_case.npz"), manifest=None, device="cpu", precision="fp32")
    with pytest.raises(ValueError, match="no reference manifest is known for .*my_case.npz; pass --manifest"):
        bench_target(args)


@pytest.mark.parametrize("name", [n for n, spec in bench.OFFICIAL_TABLE.items() if spec.get("vocabulary")])
def test_every_table_vocabulary_builds_with_the_published_class_count(name):
    """A table row's vocabulary is the published list as the official code reads it (ADE-150
    repeats a name across classes, which an operator's vocabulary may not)."""
    from ovseg_models.data.class_names import get_categories

    spec = bench.OFFICIAL_TABLE[name]
    vocab = bench._table_vocabulary(spec["vocabulary"], joined_synonyms=spec.get("joined_synonyms", False))
    assert len(vocab) == len(get_categories(spec["vocabulary"])) == 150
