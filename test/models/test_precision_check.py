"""``python -m ovseg_models.parity.precision``: runs against the CPU fp32 run, flips told from near-ties.

The GPU precisions themselves need a CUDA device (the prepared ``tools/gpu-check.sh``); here the
comparison is checked on known differences and the command on a reference case on the CPU."""

import copy

import numpy as np
import pytest
import torch
from shared_data import shared_path
from tiny_models import tiny_catseg, tiny_fcclip

from ovseg_models.parity.precision import _CLASS_SCORES, compare_results, main
from ovseg_models.segmenter import check_precision, cpu_has_bf16

torch.set_num_threads(2)


def test_flips_are_counted_and_near_ties_told_apart():
    seg = tiny_catseg(class_scores=True)
    seg.set_vocabulary(["cat", "dog", "wall", "floor"])
    ref = seg.predict(np.random.default_rng(1).integers(0, 255, (64, 96, 3), dtype=np.uint8))
    scores = ref.class_scores.numpy()
    top2 = np.sort(scores, axis=0)[-2:]
    margins = top2[1] - top2[0]
    near = np.argwhere(margins < 1e-3)[:3]
    clear = np.argwhere(margins > 1e-2)[:5]
    assert len(clear) == 5
    other = copy.copy(ref)
    other.semantic = ref.semantic.copy()
    other.score = ref.score.copy()
    for y, x in [*near, *clear]:
        other.semantic[y, x] = (ref.semantic[y, x] + 1) % 4
    other.score[0, 0] += 0.25
    out = compare_results(ref, other)
    assert out["flips"] == len(near) + 5 and out["clear_flips"] == 5
    assert out["score_max_abs"] == pytest.approx(0.25, abs=1e-6)
    assert out["pixels"] == ref.semantic.size and out["segments"] is None
    assert compare_results(ref, ref)["flips"] == 0


def test_the_command_compares_a_reference_case_with_its_cpu_fp32_run(capsys):
    case = shared_path("reference", "cases", "catseg_vitb16_case0.npz")
    assert main([str(case), "--device", "cpu", "--precisions", "fp32"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("catseg_vitb16_case0")]
    assert len(line) == 1 and "cpu fp32" in line[0]
    assert "flips 0/98304" in line[0] and "score max |diff| 0.00e+00" in line[0]


def test_a_file_that_is_not_a_model_case_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="not a model case"):
        main([str(tmp_path / "other.npz"), "--device", "cpu"])


@pytest.mark.parametrize("make, family", [(tiny_fcclip, "fcclip"), (tiny_catseg, "catseg")], ids=["fcclip", "catseg"])
def test_bf16_on_this_cpu_runs_close_to_fp32_or_is_refused_with_the_reason(make, family):
    image = np.random.default_rng(2).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    if not cpu_has_bf16():
        with pytest.raises(ValueError, match="no native bf16 instructions"):
            make(precision="bf16")
        return
    fp32, bf16 = make(), make(precision="bf16")
    outputs = []
    for seg in (fp32, bf16):
        seg.set_vocabulary(["cat", "dog", "wall", "floor"])
        outputs.append(seg.predict(image, **_CLASS_SCORES[family]))
    assert bf16.precision == "bf16" and outputs[1].score.dtype == np.float32
    # random weights score the classes alike (many near-ties): bf16 may decide those, no others
    diff = compare_results(outputs[0], outputs[1], margin=2e-2)
    assert diff["score_max_abs"] < 2e-2 and diff["clear_flips"] == 0, diff


def test_fp16_is_refused_off_cuda():
    with pytest.raises(ValueError, match="fp16 autocast is supported on CUDA"):
        check_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="precision must be fp32, fp16 or bf16"):
        check_precision("fp8", "cpu")
