"""The tiny random FC-CLIP of ``config/tiny_random.yaml``: its node parameters, its segmenter and
an ``ovseg_node`` command line running it.

The file is the only definition of the tiny model: the tests, the benchmark and the stress tool
read it here, and add their own settings (a vocabulary, thread counts, QoS) on top. Importing
this module does not import rclpy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .params import build_segmenter, config_from_dict, read_params_file
from .resources import config_file

__all__ = ["node_command", "params", "params_file", "segmenter"]


def params_file() -> Path:
    """The tiny model's params file, ``config/tiny_random.yaml``."""
    return config_file("tiny_random.yaml")


def params(**overrides: Any) -> dict[str, Any]:
    """The node parameters of ``config/tiny_random.yaml`` (dotted names), updated by ``overrides``."""
    p = read_params_file(params_file())
    p.update(overrides)
    return p


def segmenter(seed: int = 0, **options: Any):
    """The tiny model built as the node builds it from the file (``seed`` replacing the file's);
    ``options`` replace or add ``create_segmenter`` options."""
    from ovseg_models import create_segmenter

    def create(model, **kwargs):
        return create_segmenter(model, **{**kwargs, **options})

    return build_segmenter(config_from_dict(params(seed=seed)), create=create)


def node_command(vocabulary: str | Path, *ros_args: str) -> list[str]:
    """The command line of an ``ovseg_node`` process (this interpreter) with ``config/ovseg.yaml``
    and the tiny model's file, one torch thread and ``vocabulary`` as its default, plus further
    ``--ros-args`` (``-p name:=value``, ``-r from:=to``)."""
    return [
        sys.executable,
        "-m",
        "ovseg_ros.node",
        "--ros-args",
        "--params-file",
        str(config_file("ovseg.yaml")),
        "--params-file",
        str(params_file()),
        "-p",
        f"vocabulary.default:={vocabulary}",
        "-p",
        "torch_threads:=1",
        *ros_args,
    ]
