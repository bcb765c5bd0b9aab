"""Deployment without PyTorch in the loop: the per-frame networks as ONNX, run by ONNX Runtime.

    from ovseg_models import create_segmenter
    from ovseg_models.export import export_onnx, use_onnxruntime

    seg = create_segmenter("fcclip", variant="rn50", checkpoint="fcclip_cocopan_r50.pth")
    export_onnx(seg, "fcclip_rn50_480x640.onnx", image_size=(480, 640))
    use_onnxruntime(seg, "fcclip_rn50_480x640.onnx")  # same Segmenter API, same outputs
    seg.set_vocabulary(["floor", "wall", "person"])   # any vocabulary, switched at run time
    result = seg.predict(rgb)

What is exported: a family's image network, everything between the normalised image batch and
the tensors post-processing reads (FC-CLIP: backbone, pixel decoder, transformer decoder,
in/out-of-vocabulary classifiers and the geometric ensemble -> ``mask_cls``, ``pred_masks``,
``pooled_clip_feature``; CAT-Seg: the CLIP image encoder and the cost aggregator -> per-class
logits and the dense CLIP features). The vocabulary's text embeddings are graph *inputs* with a
dynamic class (and synonym) dimension, so an exported model still switches vocabularies at run
time. Image shapes are static, stated in the file: FC-CLIP at one network input size (the padded,
resized frame of one camera resolution: ``image_size=(480, 640)`` is exported as the 800x1088
input the test resize makes of it), CAT-Seg at its fixed 384x384 views (any camera resolution);
the batch dimension is dynamic.

What stays in PyTorch, and why: text encoding (it runs once per vocabulary switch, not per frame,
and keeping it keeps one tokenizer, one template set and one embedding cache) and the pre- and
post-processing, which the PyTorch path shares unchanged: :func:`use_onnxruntime` only replaces the
segmenter's ``network`` (what ``predict`` calls between them).

Checks, with errors that name the file: the file's family, variant and weights (a digest of the
exported weights, stored in the file's metadata) must be the segmenter's; a frame whose network
input is not the exported shape is refused with both shapes; a corrupt or non-ovseg file is refused
on load. Execution providers: CPU here; CUDA / TensorRT where onnxruntime has them
(``providers=``); TensorRT builds an fp16 engine from the file and caches it beside it
(:func:`tensorrt_options`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..segmenter import Segmenter
from ..segmenter import text_tower_digest as weights_digest  # a digest of any module's weights

__all__ = [
    "EXPORT_FORMAT",
    "ExportError",
    "ExportInfo",
    "OnnxNetwork",
    "export_onnx",
    "default_providers",
    "read_export_info",
    "tensorrt_options",
    "use_onnxruntime",
    "use_pytorch",
]

#: version of the graph interface below (inputs, outputs, metadata); bumped when it changes
EXPORT_FORMAT = 1
OPSET = 18


class ExportError(ValueError):
    """An ONNX file that cannot serve this segmenter or this input; the message says why."""


@dataclass(frozen=True)
class ExportInfo:
    """What an exported file holds (its ``ovseg`` metadata)."""

    path: Path
    family: str
    variant: str
    weights: str  #: digest of the exported weights
    input_shape: tuple[int, int]  #: static (H, W) of the network input
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    options: dict[str, Any]  #: family-specific constants baked into the graph (e.g. CAT-Seg pooling)
    format: int = EXPORT_FORMAT

    def metadata(self) -> dict[str, str]:
        return {
            "ovseg.format": str(self.format),
            "ovseg.family": self.family,
            "ovseg.variant": self.variant,
            "ovseg.weights": self.weights,
            "ovseg.input_shape": json.dumps(list(self.input_shape)),
            "ovseg.inputs": json.dumps(list(self.inputs)),
            "ovseg.outputs": json.dumps(list(self.outputs)),
            "ovseg.options": json.dumps(self.options),
        }


def _variant(segmenter: Segmenter) -> str:
    model = segmenter.model
    cfg = getattr(model, "cfg", None) or getattr(segmenter, "config", None)
    if segmenter.family == "fcclip" and cfg is not None:  # FC-CLIP configs carry no name of their own
        from ..fcclip.config import variant_name

        return variant_name(cfg)
    return str(getattr(cfg, "name", None) or getattr(cfg, "variant", None) or "unknown")


def _family_export(segmenter: Segmenter):
    """The family's export module (its ``graph``, ``exportable``, ``adapter`` and ``OUTPUTS``)."""
    import importlib

    if segmenter.family not in ("fcclip", "catseg"):
        raise ExportError(f"no ONNX export for model family {segmenter.family!r}")
    return importlib.import_module(f"{__name__}.{segmenter.family}")


def export_onnx(
    segmenter: Segmenter,
    path: str | Path,
    *,
    image_size: tuple[int, int] | None = None,
    opset: int = OPSET,
) -> ExportInfo:
    """Export ``segmenter``'s image network to ``path`` (ONNX, weights inside).

    ``image_size``: (height, width) of the camera frames it will see (FC-CLIP: required, its
    network input depends on it; CAT-Seg: ignored, its views are a fixed size). Returns what was
    written (:class:`ExportInfo`); :func:`read_export_info` reads it back.
    """
    import onnx

    fam = _family_export(segmenter)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph, example, dynamic, input_shape, options = fam.graph(segmenter, image_size)
    names = tuple(dynamic)
    # The TorchScript exporter: torch.export's decomposition step fails on these models in this
    # torch (IndexError in set_missing_meta_vals, torch 2.14), so dynamo=True is not used yet.
    with torch.no_grad(), fam.exportable(segmenter), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation and tracer warnings, checked by the parity tests
        torch.onnx.export(
            graph,
            example,
            str(path),
            input_names=list(names),
            output_names=list(fam.OUTPUTS),
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
        )
    info = ExportInfo(
        path=path,
        family=segmenter.family,
        variant=_variant(segmenter),
        weights=weights_digest(segmenter.model),
        input_shape=tuple(input_shape),
        inputs=names,
        outputs=tuple(fam.OUTPUTS),
        options=options,
    )
    proto = onnx.load(str(path))
    for out in proto.graph.output:
        # the tracer's output shapes can hold a traced example's constants (onnxruntime then warns
        # on every run that they differ): the outputs' shapes are stated by the family instead
        out.type.tensor_type.ClearField("shape")
    del proto.graph.value_info[:]  # and the intermediate shapes it inferred from the example
    for k, v in info.metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(path))
    return info


def read_export_info(path: str | Path) -> ExportInfo:
    """The ``ovseg`` metadata of an exported file; :class:`ExportError` for a missing, corrupt or
    non-ovseg file (the message names it)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"ONNX file {path} does not exist")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - onnx raises several types for a damaged file
        raise ExportError(f"{path} is not a readable ONNX file ({type(e).__name__}: {e})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if "ovseg.format" not in meta:
        raise ExportError(f"{path} is an ONNX file but not an ovseg export (no ovseg metadata)")
    if int(meta["ovseg.format"]) != EXPORT_FORMAT:
        raise ExportError(
            f"{path} has export format {meta['ovseg.format']}, this ovseg reads {EXPORT_FORMAT}: export it again"
        )
    return ExportInfo(
        path=path,
        family=meta["ovseg.family"],
        variant=meta["ovseg.variant"],
        weights=meta["ovseg.weights"],
        input_shape=tuple(json.loads(meta["ovseg.input_shape"])),
        inputs=tuple(json.loads(meta["ovseg.inputs"])),
        outputs=tuple(json.loads(meta["ovseg.outputs"])),
        options=json.loads(meta["ovseg.options"]),
    )


def default_providers() -> list[str]:
    """TensorRT, then CUDA, then CPU: those of them this onnxruntime build has."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    order = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    return [p for p in order if p in have] or have


def tensorrt_options(path: str | Path, *, fp16: bool = True) -> dict[str, str]:
    """Options of ONNX Runtime's TensorRT execution provider for the exported file ``path``: it
    builds a TensorRT engine from the file at the session's first run (fp16 kernels where
    ``fp16``, as on a Jetson) and caches it in ``<file>.trt/`` beside the file, so a restart
    loads the engine instead of building it again (the cache is keyed by the file's contents)."""
    cache = Path(path).with_name(Path(path).name + ".trt")
    return {
        "trt_fp16_enable": "True" if fp16 else "False",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache),
    }


def _with_options(providers: Sequence, path: Path) -> list:
    """``providers`` as ONNX Runtime takes them, the TensorRT one with :func:`tensorrt_options`
    unless given its own as a (name, options) pair."""
    out: list = []
    for p in providers:
        if p == "TensorrtExecutionProvider":
            options = tensorrt_options(path)
            Path(options["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
            out.append((p, options))
        else:
            out.append(p)
    return out


class OnnxNetwork:
    """An exported network run by ONNX Runtime: numpy in, torch tensors out (on the CPU).

    Call :meth:`run` with the graph's inputs by name; the family adapters
    (:mod:`ovseg_models.export.fcclip`, :mod:`ovseg_models.export.catseg`) give it the
    signature of the PyTorch network they replace.
    """

    def __init__(self, info: ExportInfo, *, providers: Sequence[str] | None = None, threads: int | None = None):
        import onnxruntime as ort

        self.info = info
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only: not its per-run notes on dynamic output shapes
        # as many threads as PyTorch's (not ONNX Runtime's own default): with its default here, the
        # PyTorch post-processing after each run went at one thread's speed (FC-CLIP RN50 640x480:
        # 1.5-2.2 s against 0.95 s with the count given; the network's own time the same)
        opts.intra_op_num_threads = int(threads) if threads else torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(
                str(info.path), sess_options=opts, providers=_with_options(providers or default_providers(), info.path)
            )
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
            raise ExportError(f"onnxruntime cannot load {info.path}: {type(e).__name__}: {e}") from None
        self.providers = self.session.get_providers()

    def check_shape(self, images: torch.Tensor) -> None:
        shape = tuple(int(s) for s in images.shape[-2:])
        if shape != tuple(self.info.input_shape):
            raise ExportError(
                f"{self.info.path} was exported for a {self.info.input_shape[0]}x{self.info.input_shape[1]} "
                f"network input, this frame needs {shape[0]}x{shape[1]}: export it for this camera resolution "
                f"(ovseg-export ... --image-size HxW)"
            )

    def run(self, **inputs: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        feed = {
            k: (v.detach().cpu().contiguous().numpy() if isinstance(v, torch.Tensor) else np.ascontiguousarray(v))
            for k, v in inputs.items()
        }
        out = self.session.run(list(self.info.outputs), feed)
        return {k: torch.from_numpy(v) for k, v in zip(self.info.outputs, out, strict=True)}


def use_onnxruntime(
    segmenter: Segmenter,
    path: str | Path,
    *,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
) -> Segmenter:
    """Run ``segmenter``'s image network from the exported file ``path`` (checked against it:
    family, variant, weights); everything else (text encoding, pre- and post-processing) is
    unchanged. Returns the segmenter."""
    info = read_export_info(path)
    if info.family != segmenter.family:
        raise ExportError(f"{info.path} is a {info.family} export, the segmenter is {segmenter.family}")
    variant = _variant(segmenter)
    if info.variant != variant:
        raise ExportError(f"{info.path} was exported from variant {info.variant!r}, the segmenter is {variant!r}")
    digest = weights_digest(segmenter.model)
    if info.weights != digest:
        raise ExportError(
            f"{info.path} was exported from other weights than the segmenter's (digest {info.weights} vs "
            f"{digest}): export it from this checkpoint"
        )
    fam = _family_export(segmenter)
    segmenter.network = fam.adapter(OnnxNetwork(info, providers=providers, threads=threads), segmenter)
    return segmenter


def use_pytorch(segmenter: Segmenter) -> Segmenter:
    """Back to the PyTorch network."""
    segmenter.network = segmenter.model
    return segmenter
