"""The node's parameters: declarations (with descriptions), reading, validation, model building.

Every parameter has a default here; ``config/ovseg.yaml`` repeats them with comments.

- Those in :data:`RUNTIME_PARAMETERS` take effect at once when set on a configured node.
- All others take effect at the next *configure*: set on an unconfigured node they are kept for
  it; set on a configured (inactive or active) node to another value they are refused with a
  reason saying to clean the node up first (nothing would change until then).

Every value is checked when it is set (:func:`validate_parameter`: type, range, choice, device
availability, files that must exist); what depends on several parameters (a checkpoint or
``allow_random_weights``, fp16 only on CUDA, the variant of the chosen model, CAT-Seg's template
count) is checked at configure (:func:`config_from_dict`). Failures raise :class:`ConfigError`
whose message says what to change.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError",
    "COMMON_PARAMETERS",
    "NodeConfig",
    "RUNTIME_PARAMETERS",
    "build_segmenter",
    "declare_parameters",
    "parameter_value",
    "parameters",
    "read_config",
    "config_from_dict",
    "parse_param",
    "read_params_file",
    "resolve_device",
    "segmenter_options",
    "validate_parameter",
]


def _models() -> list[str]:
    from ovseg_models.families import list_families

    return list_families()


DEVICES_HINT = "'auto', 'cpu', 'cuda' or 'cuda:N'"
QOS_PROFILES = ("sensor_data", "default", "system_default")
RELIABILITY = ("", "reliable", "best_effort")
TRANSPORTS = ("raw", "compressed")
TEMPLATE_SETS = ("default", "vild", "openai", "single")


class ConfigError(ValueError):
    """A parameter combination the node cannot run with; the message says what to do."""


#: the parameters of every model: name -> (default, description). Types follow the defaults (string
#: arrays are lists of str). Each family adds its own settings: see :func:`parameters`.
COMMON_PARAMETERS: dict[str, tuple[Any, str]] = {
    "model": ("fcclip", "segmentation model: a registered model family (ovseg_models.list_models())"),
    "variant": (
        "",
        "backbone/variant ('' = the model's default: fcclip convnext_large_d_320, "
        "catseg vitb16_384); see ovseg_models.list_variants(model)",
    ),
    "checkpoint": (
        "",
        "path of an official released checkpoint (FC-CLIP fcclip_cocopan.pth, CAT-Seg "
        "model_base.pth / model_large.pth) or one saved by ovseg; '' = none",
    ),
    "weights": (
        "",
        "an official release by name (ovseg_models.weights.list_weights(), e.g. "
        "'catseg_vitb16_cocostuff'), fetched through the Hugging Face cache; sets model variant; "
        "'' = none (use 'checkpoint')",
    ),
    "allow_random_weights": (
        False,
        "run without a checkpoint (randomly initialised head: outputs are meaningless; for tests and demos only)",
    ),
    "pretrained": (
        "default",
        "CLIP weights when no checkpoint provides them: 'default' (the variant's open_clip "
        "tag, from the cache or downloaded), 'none' (random), another tag, or a file",
    ),
    "backend": (
        "torch",
        "what runs the image network: 'torch', or 'onnxruntime' (the file in 'onnx', exported by "
        "ovseg-export from the same model and weights; text encoding stays in torch)",
    ),
    "onnx": ("", "the exported .onnx file of backend 'onnxruntime'"),
    "device": ("auto", "torch device: 'auto' (cuda if available), 'cpu', 'cuda', 'cuda:N'"),
    "precision": ("fp32", "'fp32', or autocast: 'bf16' (CUDA, or a CPU with AVX512-BF16 / AMX), 'fp16' (CUDA)"),
    "compile": (
        False,
        "torch.compile the network's stages (backend torch; pays on GPU). Each input size "
        "compiles at its first frame, so a camera's first frames take seconds to minutes",
    ),
    "seed": (-1, "torch seed before building the model (random weights reproducible); -1 = none"),
    "torch_threads": (0, "torch CPU threads (0 = torch's default)"),
    "model_options": (
        "",
        "JSON object of further create_segmenter options (FC-CLIP config fields such "
        "as num_queries, CAT-Seg options such as pooling_size)",
    ),
    "resize.max_side": (
        0,
        "compute the outputs at most this long (longer side) and expand the label maps to the "
        "frame's resolution; the model still sees the whole frame, resized once to its input "
        "size; 0 = outputs computed at the frame's resolution",
    ),
    "semantic_score_threshold": (
        0.0,
        "pixels whose class probability (0-1; FC-CLIP: mask-weighted mean over "
        "queries, CAT-Seg: sigmoid score) is below this are published unlabeled "
        "(65535)",
    ),
    "vocabulary.default": (
        "coco_panoptic",
        "default vocabulary: a built-in list ('coco_panoptic', "
        "'ade20k_150', ...) or a file (.txt lines 'name, synonym', "
        ".yaml/.json list)",
    ),
    "prompt_templates": (
        ["default"],
        "prompt templates, each with one '{}', or one set name: 'default' (the model's), 'vild', 'openai', 'single'",
    ),
    "cameras": (
        [],
        "camera names, one model for all: camera <name> reads '<name>/image' and publishes "
        "'<name>/semantic', ... (see cameras.<name>.* ); [] = one camera on 'image'",
    ),
    "input.transport": (
        "raw",
        "'raw' (sensor_msgs/Image on 'image') or 'compressed' (sensor_msgs/CompressedImage on '<image>/compressed')",
    ),
    "input.qos.profile": ("sensor_data", "input QoS profile: 'sensor_data', 'default', 'system_default'"),
    "input.qos.reliability": ("", "override the profile's reliability: '', 'reliable', 'best_effort'"),
    "input.qos.depth": (0, "override the profile's history depth (0 = the profile's)"),
    "output.qos.depth": (5, "history depth of the output topics"),
    "output.qos.reliability": ("reliable", "output reliability: 'reliable' or 'best_effort'"),
    "max_rate": (0.0, "maximum processing rate in Hz (0 = as fast as the model runs)"),
    "publish.semantic": (True, "publish 'semantic' (mono16 label image)"),
    "publish.panoptic": (True, "publish 'panoptic' (ovseg/PanopticSegmentation)"),
    "publish.overlay": (True, "publish 'overlay' (rgb8; computed only while someone subscribes)"),
    "publish.diagnostics": (True, "publish diagnostic_msgs/DiagnosticArray on /diagnostics"),
    "publish.label_info": (
        True,
        "publish 'label_info' (vision_msgs/LabelInfo, transient local: label values to class names) "
        "with every vocabulary",
    ),
    "publish.embeddings": (
        False,
        "publish 'segment_embeddings' (ovseg/SegmentEmbeddings: each segment's CLIP embedding in the "
        "text space, keyed by segment id) and answer 'query' for recent frames",
    ),
    "depth.enabled": (
        False,
        "subscribe to 'depth/image' (16UC1 mm or 32FC1 m, aligned to the colour image) and "
        "'depth/camera_info', paired with each colour frame; publish 'segments_3d' and 'points'",
    ),
    "depth.slop": (0.05, "largest stamp difference in seconds of a colour, depth and camera_info set"),
    "depth.queue_size": (10, "messages per stream the depth synchroniser keeps while pairing"),
    "depth.min": (0.1, "nearest valid depth in metres (nearer: invalid)"),
    "depth.max": (20.0, "farthest valid depth in metres (farther: invalid)"),
    "depth.stride": (
        2,
        "the 3D outputs use every stride-th depth pixel row and column (1 = every pixel, about 3x the "
        "time of 2 at 640x480)",
    ),
    "depth.min_points": (10, "fewest valid depth points for a segment's centroid and extent (else NaN)"),
    "points.max_points": (20000, "most points of the 'points' cloud (evenly subsampled); 0 = no cloud"),
    "embeddings.cache_frames": (
        30,
        "frames per camera whose segment embeddings the 'query' service keeps (the newest ones)",
    ),
    "overlay.alpha": (0.5, "overlay opacity of the class colours"),
    "overlay.draw_labels": (True, "draw class names on the overlay"),
    "diagnostics.period": (1.0, "diagnostics publishing period in seconds"),
    "autostart": (False, "ovseg_lifecycle_node: configure and activate at start-up"),
}


def _family_options() -> dict[str, Any]:
    """``"<family>.<setting>"`` -> :class:`ovseg_models.families.NodeOption`, over the registered families."""
    from ovseg_models.families import get_family

    out: dict[str, Any] = {}
    for name in _models():
        for setting, option in get_family(name).node_options.items():
            out[f"{name}.{setting}"] = option
    return out


def parameters() -> dict[str, tuple[Any, str]]:
    """Every parameter, name -> (default, description): :data:`COMMON_PARAMETERS` and each registered
    family's settings (its descriptor's ``node_options``) as ``<family>.<setting>``."""
    return {**COMMON_PARAMETERS, **{n: (o.default, o.description) for n, o in _family_options().items()}}


#: parameters applied at once on a configured node; all others take effect at configure
RUNTIME_PARAMETERS = (
    "max_rate",
    "semantic_score_threshold",
    "overlay.alpha",
    "overlay.draw_labels",
    "diagnostics.period",
)

_TYPE_NAMES = {
    bool: "a bool (true or false)",
    int: "an integer",
    float: "a double (a number with a decimal point, e.g. 5.0)",
    str: "a string",
    list: "a string array (e.g. ['default'])",
}


@dataclass
class NodeConfig:
    model: str = "fcclip"
    variant: str = ""
    checkpoint: str = ""
    weights: str = ""
    allow_random_weights: bool = False
    pretrained: str = "default"
    backend: str = "torch"
    onnx: str = ""
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    seed: int = -1
    torch_threads: int = 0
    model_options: dict = field(default_factory=dict)
    max_side: int = 0
    #: the model families' settings, by parameter name (``"fcclip.min_size"``); missing ones take defaults
    family_options: dict[str, Any] = field(default_factory=dict)
    semantic_score_threshold: float = 0.0
    default_vocabulary: str = "coco_panoptic"
    prompt_templates: tuple[str, ...] | None = None  # None = model default
    cameras: tuple[str, ...] = ()
    transport: str = "raw"
    input_qos_profile: str = "sensor_data"
    input_qos_reliability: str = ""
    input_qos_depth: int = 0
    output_qos_depth: int = 5
    output_qos_reliability: str = "reliable"
    max_rate: float = 0.0
    publish_semantic: bool = True
    publish_panoptic: bool = True
    publish_overlay: bool = True
    publish_diagnostics: bool = True
    publish_label_info: bool = True
    publish_embeddings: bool = False
    embeddings_cache_frames: int = 30
    depth_enabled: bool = False
    depth_slop: float = 0.05
    depth_queue_size: int = 10
    depth_min: float = 0.1
    depth_max: float = 20.0
    depth_stride: int = 2
    depth_min_points: int = 10
    points_max_points: int = 20000
    overlay_alpha: float = 0.5
    overlay_draw_labels: bool = True
    diagnostics_period: float = 1.0
    resolved_device: str = "cpu"


def _type_message(name: str, default: Any, value: Any = None) -> str:
    want = _TYPE_NAMES[type(default)]
    got = f", got {type(value).__name__} {value!r}" if value is not None else ""
    example = f": write {float(value)!r}" if isinstance(default, float) and isinstance(value, int) else ""
    return f"parameter '{name}' must be {want}{got}{example}"


def declare_parameters(node) -> None:
    """Declare every parameter; a value of the wrong type (``-p max_rate:=5``, an integer for a
    double) raises :class:`ConfigError` naming the parameter and the type it takes."""
    from rcl_interfaces.msg import ParameterDescriptor, ParameterType
    from rclpy.exceptions import InvalidParameterTypeException
    from rclpy.parameter import Parameter

    for name, (default, description) in parameters().items():
        if isinstance(default, list):
            desc = ParameterDescriptor(description=description, type=ParameterType.PARAMETER_STRING_ARRAY)
        else:
            desc = ParameterDescriptor(description=description)
        if not node.has_parameter(name):
            try:
                # an empty array names no type: declare the type (the value stays unset until given)
                node.declare_parameter(name, default if default != [] else Parameter.Type.STRING_ARRAY, desc)
            except InvalidParameterTypeException:
                given = getattr(node, "_parameter_overrides", {}).get(name)  # the value rclpy refused
                raise ConfigError(_type_message(name, default, getattr(given, "value", None))) from None


def _key(name: str) -> str:
    return {
        "resize.max_side": "max_side",
        "vocabulary.default": "default_vocabulary",
        "input.transport": "transport",
    }.get(name, name.replace(".", "_"))


def read_params_file(path: str | Path) -> dict[str, Any]:
    """The parameters a ROS 2 params file gives every node (its ``/**: ros__parameters:``), with
    nested groups flattened to the node's dotted names (``resize: {max_side: 64}`` ->
    ``resize.max_side``)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    try:
        tree = data["/**"]["ros__parameters"]
    except (KeyError, TypeError):
        raise ConfigError(f"{path}: no '/**: ros__parameters:' section") from None
    flat: dict[str, Any] = {}

    def walk(prefix: str, group: dict) -> None:
        for key, value in group.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                flat[prefix + key] = value

    walk("", tree)
    return flat


def parse_param(text: str) -> tuple[str, Any]:
    """A ``name:=value`` command-line parameter, the value read as YAML (as ``ros2 run -p`` does);
    for ``argparse`` ``type=``."""
    import argparse

    import yaml

    if ":=" not in text:
        raise argparse.ArgumentTypeError(f"parameter {text!r}: expected name:=value")
    name, value = text.split(":=", 1)
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        parsed = value
    if parsed is None or isinstance(parsed, dict):
        parsed = value
    return name.strip(), parsed


def read_config(node) -> NodeConfig:
    """Read and validate the node's parameters."""
    return config_from_dict({name: parameter_value(node, name) for name in parameters()})


def parameter_value(node, name: str) -> Any:
    """A declared parameter's value; its default while it is unset (an empty string array)."""
    from rclpy.exceptions import ParameterUninitializedException

    try:
        return node.get_parameter(name).value
    except ParameterUninitializedException:
        known = parameters()
        return known[name][0] if name in known else None


def resolve_device(device: str) -> str:
    """The torch device ``device`` names ('auto' resolved); :class:`ConfigError` if this machine has none."""
    import torch

    dev = str(device).strip().lower() or "auto"
    if dev == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cpu":
        return dev
    if dev != "cuda" and not (dev.startswith("cuda:") and dev[5:].isdigit()):
        raise ConfigError(f"device {device!r} is not {DEVICES_HINT}")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} requested but CUDA is not available to torch "
            f"{torch.__version__}: set 'device' to 'cpu' or 'auto', or install a torch build "
            "for this machine's CUDA driver (see README, 'Another CUDA version')"
        )
    if ":" in dev and int(dev[5:]) >= torch.cuda.device_count():
        raise ConfigError(
            f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s) "
            f"(cuda:0 to cuda:{torch.cuda.device_count() - 1}): set 'device' to one of them, "
            "'cuda' or 'auto'"
        )
    return dev


def _check_range(name: str, value: float, lo: float, hi: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{name} = {value} must be within [{lo}, {hi}]")
    return value


def _parse_model_options(value: Any) -> dict:
    if not value:
        return {}
    if isinstance(value, str):
        try:
            opts = json.loads(value)
        except json.JSONDecodeError as e:
            raise ConfigError(f"model_options is not valid JSON ({e}); example: '{{\"num_queries\": 100}}'") from None
    else:
        opts = value
    if not isinstance(opts, dict):
        raise ConfigError("model_options must be a JSON object, e.g. '{\"num_queries\": 100}'")
    return opts


def _parse_templates(value: Any) -> tuple[str, ...] | None:
    templates = [t for t in (value or []) if t != ""]
    if not templates or (len(templates) == 1 and templates[0].lower() == "default"):
        return None
    if len(templates) == 1 and templates[0].lower() in TEMPLATE_SETS:
        from ovseg_models.text import get_templates

        return tuple(get_templates(templates[0].lower()))
    from ovseg_models.vocabulary import VocabularyError, validate_templates

    try:
        return tuple(validate_templates(templates))
    except VocabularyError as e:
        raise ConfigError(f"prompt_templates: {e} (or give one set name: {list(TEMPLATE_SETS)})") from None


_CHOICES = {
    "backend": ("torch", "onnxruntime"),
    "precision": ("fp32", "fp16", "bf16"),
    "input.transport": TRANSPORTS,
    "input.qos.profile": QOS_PROFILES,
    "input.qos.reliability": RELIABILITY,
    "output.qos.reliability": RELIABILITY[1:],
}
_UNIT_RANGE = ("semantic_score_threshold", "overlay.alpha")
#: most frames per camera whose embeddings are kept for 'query'
MAX_CACHE_FRAMES = 1000
_NON_NEGATIVE = ("input.qos.depth", "torch_threads", "points.max_points")
_POSITIVE_INT = ("depth.queue_size", "depth.min_points", "depth.stride")


def _check_family_option(name: str, option: Any, value: Any) -> Any:
    """``value`` within the bounds of a family's setting ``option`` (parameter ``name``)."""
    if option.bounds is None or isinstance(value, bool):
        return value
    lo, hi = option.bounds
    if isinstance(option.default, float):
        value = float(value)
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{name} = {value} must be " + (f">= {lo}" if hi == math.inf else f"within [{lo}, {hi}]"))
    return value


def _unknown_model(value: Any) -> ConfigError:
    return ConfigError(f"unknown model {value!r}: set parameter 'model' to one of {_models()}")


def validate_parameter(name: str, value: Any) -> None:
    """Check one parameter's value on its own (type, range, choice, device, files); :class:`ConfigError`
    with what to set otherwise. What depends on other parameters is checked at configure."""
    known = parameters()
    if name not in known:
        raise ConfigError(f"unknown parameter {name!r}")
    default = known[name][0]
    if type(value) is not type(default) or (isinstance(default, list) and not all(isinstance(v, str) for v in value)):
        raise ConfigError(_type_message(name, default, value))
    family_option = _family_options().get(name)
    if family_option is not None:
        _check_family_option(name, family_option, value)
    elif name == "model":
        from ovseg_models.families import get_family

        try:
            get_family(value)
        except ValueError:
            raise _unknown_model(value) from None
    elif name == "variant":
        if value:
            from ovseg_models import list_variants

            known = {m: list_variants(m) for m in _models()}
            if not any(value in v for v in known.values()):
                raise ConfigError(
                    f"unknown variant {value!r}: use '' (the model's default) or one of "
                    + "; ".join(f"{m}: {', '.join(v)}" for m, v in known.items())
                )
    elif name == "checkpoint":
        if value and not Path(os.path.expanduser(value)).is_file():
            raise ConfigError(
                f"checkpoint {value!r} does not exist: give the path of a downloaded release "
                "(see README), or '' with allow_random_weights true for a test run"
            )
    elif name == "onnx":
        if value and not Path(os.path.expanduser(value)).is_file():
            raise ConfigError(f"onnx {value!r} does not exist: export one with ovseg-export (see README)")
    elif name == "device":
        resolve_device(value)
    elif name in _CHOICES:
        if value not in _CHOICES[name]:
            raise ConfigError(f"{name} {value!r}: use one of {list(_CHOICES[name])}")
    elif name == "seed":
        if value < -1:
            raise ConfigError("seed must be -1 (none) or >= 0")
    elif name in _NON_NEGATIVE:
        if value < 0:
            raise ConfigError(f"{name} must be >= 0")
    elif name == "resize.max_side":
        if value < 0 or 0 < value < 32:
            raise ConfigError(f"resize.max_side {value} is too small: use 0 (off) or >= 32")
    elif name == "output.qos.depth":
        if value < 1:
            raise ConfigError("output.qos.depth must be >= 1")
    elif name in _POSITIVE_INT:
        if value < 1:
            raise ConfigError(f"{name} must be >= 1")
    elif name in ("depth.slop", "depth.min", "depth.max"):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} {value} must be a finite number > 0 (seconds or metres, e.g. 0.05)")
    elif name == "embeddings.cache_frames":
        if not 1 <= value <= MAX_CACHE_FRAMES:
            raise ConfigError(f"embeddings.cache_frames {value} must be within [1, {MAX_CACHE_FRAMES}]")
    elif name in _UNIT_RANGE:
        _check_range(name, value, 0, 1)
    elif name == "max_rate":
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"max_rate {value} must be a finite number >= 0 (Hz; 0 = as fast as the model runs)")
    elif name == "diagnostics.period":
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"diagnostics.period {value} must be a finite number of seconds > 0 (e.g. 1.0)")
    elif name == "model_options":
        _parse_model_options(value)
    elif name == "prompt_templates":
        _parse_templates(value)
    elif name == "cameras":
        from .cameras import check_camera_names

        check_camera_names(value)


def config_from_dict(values: dict[str, Any]) -> NodeConfig:
    """Validate parameter values (names as in :func:`parameters`; missing ones take defaults)."""
    known = parameters()
    v = {name: values.get(name, default) for name, (default, _) in known.items()}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown parameter(s) {sorted(unknown)}")
    cfg = NodeConfig()
    family_options = _family_options()
    for name, value in v.items():
        k = _key(name)
        if name in family_options:
            cfg.family_options[name] = _check_family_option(name, family_options[name], value)
        elif hasattr(cfg, k):
            setattr(cfg, k, value)

    from .cameras import check_camera_names

    cfg.cameras = tuple(check_camera_names(list(cfg.cameras or ())))
    from ovseg_models import list_variants
    from ovseg_models.families import get_family

    try:
        family = get_family(str(cfg.model))
    except ValueError:
        raise _unknown_model(cfg.model) from None
    model = cfg.model = family.name

    if cfg.variant:
        try:
            if cfg.variant not in get_family(model).variants:
                raise ValueError(cfg.variant)
        except ValueError:
            raise ConfigError(
                f"unknown {model} variant {cfg.variant!r}: set 'variant' to one of "
                f"{list_variants(model)} (or '' for the default)"
            ) from None
    if (cfg.backend == "onnxruntime") != bool(cfg.onnx):
        raise ConfigError(
            "backend 'onnxruntime' needs 'onnx' (the file ovseg-export wrote), and 'onnx' needs backend 'onnxruntime'"
        )
    if cfg.checkpoint:
        p = Path(os.path.expanduser(cfg.checkpoint))
        if not p.is_file():
            raise ConfigError(
                f"checkpoint {cfg.checkpoint!r} does not exist: download the official release "
                f"({get_family(model).checkpoint_hint}) "
                "and give its path in 'checkpoint', or set checkpoint '' with "
                "allow_random_weights true for a test run"
            )
        cfg.checkpoint = str(p)
    if cfg.weights:
        from ovseg_models.weights import get_weights

        try:
            release = get_weights(cfg.weights)
        except KeyError as e:
            raise ConfigError(f"parameter 'weights': {e.args[0]}") from None
        if cfg.checkpoint or release.model != model or cfg.variant not in ("", release.variant):
            raise ConfigError(
                f"'weights' {release.name!r} is the {release.model} variant {release.variant!r}: "
                "leave 'checkpoint' empty and set 'model'/'variant' to match (or '')"
            )
        cfg.weights = release.name
    elif not cfg.checkpoint and not cfg.allow_random_weights:
        raise ConfigError(
            f"no checkpoint: set 'checkpoint' (a file) or 'weights' (a release name) to the {model} "
            "release you want to run, or set 'allow_random_weights' true to run with a randomly "
            "initialised head (outputs are meaningless)"
        )
    if cfg.compile and cfg.backend != "torch":
        raise ConfigError(
            f"compile true applies to backend 'torch' (the onnxruntime backend runs {cfg.onnx!r} as exported)"
        )
    dev = resolve_device(cfg.device)
    cfg.resolved_device = dev
    if cfg.precision not in ("fp32", "fp16", "bf16"):
        raise ConfigError(f"precision {cfg.precision!r}: use 'fp32', 'fp16' or 'bf16'")
    if cfg.precision == "fp16" and not dev.startswith("cuda"):
        raise ConfigError(f"precision 'fp16' needs a CUDA device; on {dev} use precision 'fp32' (or 'bf16')")
    if cfg.precision == "bf16" and dev == "cpu":
        from ovseg_models.segmenter import cpu_has_bf16

        if not cpu_has_bf16():
            raise ConfigError(
                "precision 'bf16' on this CPU: it has no native bf16 instructions (AVX512-BF16 or AMX), "
                "so bf16 would be slower than fp32; use precision 'fp32'"
            )
    cfg.model_options = _parse_model_options(cfg.model_options)
    for name, label in (("semantic_score_threshold", "semantic_score_threshold"), ("overlay_alpha", "overlay.alpha")):
        setattr(cfg, name, _check_range(label, getattr(cfg, name), 0, 1))
    for name in ("max_side", "input_qos_depth", "torch_threads"):
        if int(getattr(cfg, name)) < 0:
            raise ConfigError(f"{name} must be >= 0")
    if 0 < cfg.max_side < 32:
        raise ConfigError(f"resize.max_side {cfg.max_side} is too small: use 0 (off) or >= 32")
    if cfg.output_qos_depth < 1:
        raise ConfigError("output.qos.depth must be >= 1")
    if cfg.depth_min >= cfg.depth_max:
        raise ConfigError(f"depth.min {cfg.depth_min} must be below depth.max {cfg.depth_max}")
    if not 1 <= cfg.embeddings_cache_frames <= MAX_CACHE_FRAMES:
        raise ConfigError(
            f"embeddings.cache_frames {cfg.embeddings_cache_frames} must be within [1, {MAX_CACHE_FRAMES}]"
        )
    for name in ("max_rate", "diagnostics.period", "backend", "onnx"):
        value = getattr(cfg, _key(name))
        validate_parameter(name, float(value) if isinstance(value, (int, float)) else value)
    if cfg.transport not in TRANSPORTS:
        raise ConfigError(f"input.transport {cfg.transport!r}: use 'raw' or 'compressed'")
    if cfg.input_qos_profile not in QOS_PROFILES:
        raise ConfigError(f"input.qos.profile {cfg.input_qos_profile!r}: use one of {list(QOS_PROFILES)}")
    if cfg.input_qos_reliability not in RELIABILITY:
        raise ConfigError(f"input.qos.reliability {cfg.input_qos_reliability!r}: use '', 'reliable' or 'best_effort'")
    if cfg.output_qos_reliability not in RELIABILITY[1:]:
        raise ConfigError(f"output.qos.reliability {cfg.output_qos_reliability!r}: use 'reliable' or 'best_effort'")
    cfg.prompt_templates = _parse_templates(cfg.prompt_templates)
    if cfg.prompt_templates is not None and not family.takes_prompt_templates:
        raise ConfigError(f"{model} takes no prompt templates: set 'prompt_templates' to ['default']")
    check = family.check_templates
    if check is not None and cfg.prompt_templates is not None:
        try:
            check(cfg.variant or None, list(cfg.prompt_templates))
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return cfg


def segmenter_options(cfg: NodeConfig) -> dict[str, Any]:
    """The family's keyword options for ``create_segmenter``: its settings (``<family>.<setting>``
    parameters), ``outputs`` for a panoptic family, the prompt templates, then ``model_options``."""
    from ovseg_models.families import get_family

    family = get_family(cfg.model)
    opts: dict[str, Any] = {}
    for setting, option in family.node_options.items():
        value = cfg.family_options.get(f"{family.name}.{setting}", option.default)
        if option.unset is None or value != option.unset:
            opts[option.option] = value
    if family.panoptic:
        opts["outputs"] = ("semantic", "panoptic") if cfg.publish_panoptic else ("semantic",)
    if cfg.prompt_templates is not None:
        opts["templates"] = list(cfg.prompt_templates)
    opts.update(cfg.model_options)
    return opts


def build_segmenter(cfg: NodeConfig, *, create: Callable | None = None):
    """Build the segmenter ``cfg`` describes; failures become :class:`ConfigError` with a hint."""
    import warnings

    import torch

    if create is None:
        from ovseg_models import create_segmenter as create
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    if cfg.seed >= 0:
        torch.manual_seed(cfg.seed)
    pretrained: Any = cfg.pretrained
    if str(pretrained).lower() in ("default", "true", ""):
        pretrained = True
    elif str(pretrained).lower() in ("none", "false", "random"):
        pretrained = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the node says itself whether the head is random
            release = {"weights": cfg.weights} if cfg.weights else {}
            return create(
                cfg.model,
                variant=cfg.variant or None,
                checkpoint=cfg.checkpoint or None,
                pretrained=pretrained,
                device=cfg.resolved_device,
                precision=cfg.precision,
                **release,
                **({"backend": cfg.backend, "onnx": os.path.expanduser(cfg.onnx)} if cfg.onnx else {}),
                **({"compile": True} if cfg.compile else {}),
                **segmenter_options(cfg),
            )
    except TypeError as e:
        raise ConfigError(
            f"model option not understood by {cfg.model}: {e}; check 'model_options' and the {cfg.model}.* parameters"
        ) from None
    except FileNotFoundError as e:
        raise ConfigError(f"file not found while building {cfg.model}: {e}") from None
    except ImportError as e:
        raise ConfigError(f"could not build {cfg.model}: {e} (backend {cfg.backend!r} needs it installed)") from None
    except Exception as e:
        name = type(e).__name__
        hint = ""
        if "Pretrained" in name or "download" in str(e).lower() or "pretrained" in str(e).lower():
            hint = (
                " -- the CLIP weights could not be found: put them in the open_clip/Hugging Face cache, give "
                "a local file in 'pretrained', or set 'pretrained' to 'none' (random CLIP weights)"
            )
        elif "checkpoint" in name.lower() or "checkpoint" in str(e).lower():
            hint = (
                f" -- is {cfg.checkpoint!r} a {cfg.model} checkpoint for variant "
                f"{cfg.variant or 'default'}? Set 'variant' to the checkpoint's backbone"
            )
        raise ConfigError(f"could not build {cfg.model} ({name}: {e}){hint}") from e
