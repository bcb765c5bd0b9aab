"""Run the segmentation node inside this process, spun on a thread of its own as ``ovseg_node``
spins it, next to the caller's own nodes: for tests, the benchmark and the bag evaluator.

    with running_node(context, tiny.params(**{"vocabulary.default": "ade20k_150"})) as node:
        ...  # publish to /segmentation/image, read node.stats

``create_node`` builds a :class:`~ovseg_ros.node.SegmentationNode` from a dict of parameters
(and params files); ``start_node`` also configures, activates and spins it (:class:`RunningNode`);
:class:`Spinner` spins any rclpy node on a thread; ``wait_until`` polls without spinning. The
node module (and with it torch) is imported only by the functions that build the node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

if TYPE_CHECKING:
    from .node import SegmentationNode

__all__ = ["RunningNode", "Spinner", "create_node", "running_node", "start_node", "wait_until"]


class Spinner:
    """``node`` spun by its own executor (``executor``, by default a :class:`SingleThreadedExecutor`
    as in ovseg_node) on a daemon thread; ``error``: what ended the spin with an exception (None
    while it spins or after a clean shutdown)."""

    def __init__(self, context, node, executor=None):
        self.executor = executor if executor is not None else SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except BaseException as e:  # noqa: BLE001 - kept for the caller, who decides
            self.error = e

    def close(self, timeout: float = 5.0) -> None:
        self.executor.shutdown(timeout_sec=timeout)
        self.thread.join(timeout)


def create_node(
    context,
    params: dict[str, Any] | None = None,
    *,
    params_files: Sequence[str | Path] = (),
    segmenter_factory: Callable | None = None,
    name: str | None = None,
    namespace: str | None = None,
) -> SegmentationNode:
    """An unconfigured node with ``params_files`` loaded in order, then ``params`` (dotted names)
    over them; the process's command line is not read. ``name`` and ``namespace`` default to
    ovseg_node's."""
    from .node import DEFAULT_NAME, DEFAULT_NAMESPACE, SegmentationNode

    args = ["--ros-args"]
    for f in params_files:
        args += ["--params-file", str(f)]
    return SegmentationNode(
        name or DEFAULT_NAME,
        namespace=namespace or DEFAULT_NAMESPACE,
        context=context,
        segmenter_factory=segmenter_factory,
        cli_args=args if params_files else None,
        use_global_arguments=False,
        parameter_overrides=[Parameter(k, value=v) for k, v in (params or {}).items()],
    )


class RunningNode:
    """A node spun on its own thread (:func:`start_node`); ``close()`` stops the spin and destroys it."""

    def __init__(self, context, node: SegmentationNode):
        self.node = node
        self.spinner = Spinner(context, node)

    @property
    def error(self) -> BaseException | None:
        return self.spinner.error

    def close(self, timeout: float = 5.0) -> None:
        self.spinner.close(timeout)
        self.node.destroy_node()


def start_node(
    context,
    params: dict[str, Any] | None = None,
    *,
    configure: bool = True,
    activate: bool = True,
    **create: Any,
) -> RunningNode:
    """:func:`create_node` (``create``: its keyword arguments), configured and activated as asked,
    then spun. A failed transition raises :class:`RuntimeError` saying why (the node destroyed)."""
    from .node import bring_up

    node = create_node(context, params, **create)
    try:
        if configure and activate:
            bring_up(node)
        elif configure and node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError(f"could not configure: {node.configure_error}")
    except BaseException:
        node.destroy_node()
        raise
    return RunningNode(context, node)


@contextmanager
def running_node(context, params: dict[str, Any] | None = None, **start: Any) -> Iterator[SegmentationNode]:
    """:func:`start_node` (``start``: its keyword arguments) for a ``with`` block; the node."""
    running = start_node(context, params, **start)
    try:
        yield running.node
    finally:
        running.close()


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``predicate`` (without spinning: the nodes spin on their own threads) until it is true
    or ``timeout`` seconds pass; its last value as a bool."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(interval)
    return True
