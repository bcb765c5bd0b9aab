"""The segmentation node: camera in, label images and panoptic segments out, vocabulary by service.

:class:`SegmentationNode` is a lifecycle node (``rclpy.lifecycle.Node``):

- *configure* reads and validates the parameters, builds the model (``ovseg_models``), encodes
  the default vocabulary (a built-in or a file from ``vocabulary.directories``, see
  :func:`ovseg_ros.messages.load_vocabulary`), creates the publishers and publishes the
  vocabulary (transient-local);
- *activate* subscribes to the camera and starts the worker thread; *deactivate* undoes that;
- *cleanup* answers a pending ``set_vocabulary`` "cancelled", destroys publishers and the model;
- *shutdown* does the same, and ``run`` then ends the process.

The vocabulary services exist for the node's whole life (unconfigured: "not configured"), so no
transition destroys a service that still owes an answer; every request is answered (see
:mod:`ovseg_ros.encoding`). DDS sample-lost and incompatible-QoS events of the input are counted
in the diagnostics. Each semantic image is preceded by an ``ovseg/SemanticInfo`` on
``semantic/info`` with the same header and its vocabulary version.

Names (relative, in the node's namespace, ``/segmentation`` by default; all remappable):
``image`` (or ``image/compressed`` with ``input.transport: compressed``) in; ``semantic``,
``semantic/info``, ``panoptic``, ``overlay``, ``vocabulary``, ``set_vocabulary``, ``get_vocabulary`` out;
diagnostics on ``/diagnostics``.

Frames go through a latest-frame-wins slot to one worker thread; malformed frames are refused in
the callback with a warning, exceptions while processing a frame are logged and counted, and
nothing stops the node. The worker reads the active vocabulary once per frame and publishes the
frame's outputs only if that vocabulary is still the active one, under the same lock the
vocabulary switch takes, so no output mixes two vocabularies and semantic images are never
published after the vocabulary that made them was replaced.

``main`` (``ovseg_node``) configures and activates at once; ``lifecycle_main``
(``ovseg_lifecycle_node``) waits for a lifecycle manager (or ``autostart: true``).
"""

from __future__ import annotations

import collections
import inspect
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
import rclpy.task
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
    qos_profile_system_default,
)
from sensor_msgs.msg import CompressedImage, Image

from ovseg.msg import PanopticSegmentation, SemanticInfo
from ovseg.msg import Vocabulary as VocabularyMsg
from ovseg.srv import GetVocabulary, SetVocabulary
from ovseg_models.segmenter import EncodedVocabulary
from ovseg_models.segments import segments_from_semantic
from ovseg_models.vocabulary import VocabularyError

from . import conversions, messages
from .encoding import EncodingJob, VocabularyEncoder
from .overlay import palette_for, render_overlay
from .params import (
    PARAMETERS,
    RUNTIME_PARAMETERS,
    ConfigError,
    NodeConfig,
    build_segmenter,
    declare_parameters,
    read_config,
    validate_parameter,
)
from .versions import VersionCounter
from .worker import FrameRecord, FrameWorker, LatestSlot, Stats

__all__ = ["SegmentationNode", "bring_up", "lifecycle_main", "main"]

DEFAULT_NAME = "ovseg"
DEFAULT_NAMESPACE = "/segmentation"
#: how many recent output stamps are remembered to keep stamp -> vocabulary version unambiguous
STAMP_MEMORY = 256


@dataclass(frozen=True)
class ActiveVocabulary:
    """What one frame is processed with: immutable, swapped as a whole."""

    encoded: EncodedVocabulary
    version: int
    msg: Any  # ovseg/Vocabulary
    names: tuple[str, ...]
    palette: np.ndarray


@dataclass
class Frame:
    msg: Any
    received: float  # time.monotonic() in the callback
    compressed: bool


def _accepts_cancel(fn) -> bool:
    """Whether ``fn`` (a segmenter's encode_vocabulary) takes a ``cancel`` event."""
    try:
        return "cancel" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _declare_vocabulary_directories(node) -> tuple[list[str], list[str]]:
    """Declare the read-only ``vocabulary.directories``; (directories, files) vocabularies may come from.

    Fixed at start-up: the parameter's value, and the file ``vocabulary.default`` names at start-up
    (the operator's own choice); a value set later may only name built-ins or files in these.
    """
    from rcl_interfaces.msg import ParameterDescriptor, ParameterType

    from .resources import share_file

    config_dir = share_file("config")
    default = [str(config_dir)] if config_dir is not None else [""]
    if not node.has_parameter("vocabulary.directories"):
        node.declare_parameter(
            "vocabulary.directories",
            default,
            ParameterDescriptor(
                description="directories vocabulary files may be read from (read-only: fixed at start-up); "
                "default: the package's config folder. Built-in names and the file vocabulary.default "
                "names at start-up are always allowed",
                type=ParameterType.PARAMETER_STRING_ARRAY,
                read_only=True,
            ),
        )
    dirs = [d for d in node.get_parameter("vocabulary.directories").value if d]
    start = str(node.get_parameter("vocabulary.default").value).strip()
    start = start[5:] if start.startswith("file:") else start
    files = [os.path.realpath(os.path.expanduser(start))] if start and os.path.isfile(os.path.expanduser(start)) else []
    return dirs, files


def _resize_indices(n_out: int, n_in: int) -> np.ndarray:
    """Nearest-neighbour source index for each output position (as PIL/torch 'nearest')."""
    return np.minimum((np.arange(n_out) * (n_in / n_out)).astype(np.intp), n_in - 1)


class SegmentationNode(LifecycleNode):
    """Open-vocabulary segmentation lifecycle node (see the module docstring)."""

    def __init__(
        self,
        node_name: str = DEFAULT_NAME,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        segmenter_factory: Callable | None = None,
        **kwargs,
    ):
        """``segmenter_factory``: replaces ``ovseg_models.create_segmenter`` (same signature); for embedding."""
        kwargs.setdefault("automatically_declare_parameters_from_overrides", False)
        # set before the rclpy node exists: destroy_node (also called by rclpy on a node whose
        # construction failed, e.g. a parameter of the wrong type) only needs these
        self._sub = None
        self._worker: FrameWorker | None = None
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._active = False
        self._encoder: VocabularyEncoder | None = None
        self._last_encoder_thread: threading.Thread | None = None
        self._finalized = threading.Event()
        self._ovseg_services: list = []
        super().__init__(node_name, namespace=namespace, **kwargs)
        declare_parameters(self)  # ConfigError naming the parameter for a value of the wrong type
        self._factory = segmenter_factory
        self.cfg: NodeConfig | None = None
        self.segmenter = None
        self.stats = Stats()
        self.configure_error: str = ""
        self.recent_warnings: collections.deque[str] = collections.deque(maxlen=50)
        self._warn_times: dict[str, float] = {}
        self._vocab: ActiveVocabulary | None = None
        self._versions = VersionCounter()  # never reset: a version never names two vocabularies
        self._publish_lock = threading.Lock()
        self._vocab_lock = threading.Lock()
        self._pubs: dict[str, Any] = {}
        self._reuse: dict[str, Any] = {}  # the last published output messages; worker thread only
        self._diag_timer = None
        self._state_label = "unconfigured"
        self._frames_group = MutuallyExclusiveCallbackGroup()
        # set_vocabulary answers from coroutines that wait for the encoder: a reentrant group lets
        # the executor take every request at once (none waits in the DDS queue, whose depth would
        # drop the oldest), and get_vocabulary never waits behind an encoding.
        self._services_group = ReentrantCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._published_stamps: collections.OrderedDict = collections.OrderedDict()  # stamp -> version
        self._vocabulary_files = _declare_vocabulary_directories(self)
        # The services live as long as the node (answering "not configured" while unconfigured):
        # a lifecycle cleanup never destroys a service that still owes a caller its answer.
        self._ovseg_services = [
            self.create_service(
                SetVocabulary,
                "set_vocabulary",
                self._on_set_vocabulary,
                qos_profile=QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
                callback_group=self._services_group,
            ),
            self.create_service(
                GetVocabulary, "get_vocabulary", self._on_get_vocabulary, callback_group=self._services_group
            ),
        ]
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # -- logging ----------------------------------------------------------------------------
    def _warn(self, key: str, text: str, period: float = 2.0) -> None:
        """Warn, at most once per ``period`` per ``key``; always remembered in ``recent_warnings``."""
        self.recent_warnings.append(text)
        now = time.monotonic()
        if now - self._warn_times.get(key, -1e9) >= period:
            self._warn_times[key] = now
            self.get_logger().warning(text)

    # -- lifecycle --------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        log = self.get_logger()
        self.configure_error = ""
        try:
            cfg = read_config(self)
            t0 = time.perf_counter()
            log.info(
                f"loading {cfg.model} (variant {cfg.variant or 'default'}) on {cfg.resolved_device}, "
                f"checkpoint {cfg.checkpoint or 'NONE'}"
            )
            segmenter = build_segmenter(cfg, create=self._factory)
            try:
                dirs, files = self._vocabulary_files
                vocabulary = messages.load_vocabulary(cfg.default_vocabulary, directories=dirs, files=files)
            except VocabularyError as e:
                raise ConfigError(f"vocabulary.default: {e}") from None
            if cfg.prompt_templates is not None:
                from ovseg_models.vocabulary import Vocabulary

                vocabulary = Vocabulary.create(
                    vocabulary.classes, templates=cfg.prompt_templates, trusted=vocabulary.trusted
                )
            encoded = segmenter.encode_vocabulary(vocabulary)
        except ConfigError as e:
            self.configure_error = str(e)
            log.error(f"configure failed: {e}")
            return TransitionCallbackReturn.FAILURE
        except Exception as e:  # noqa: BLE001
            self.configure_error = f"{type(e).__name__}: {e}"
            log.error(f"configure failed: {self.configure_error}\n{traceback.format_exc()}")
            return TransitionCallbackReturn.FAILURE
        if not cfg.checkpoint:
            log.warning(
                "RANDOM WEIGHTS: no checkpoint given (allow_random_weights is true); the segmentation "
                "head is randomly initialised and the outputs are meaningless"
            )
        self.cfg, self.segmenter = cfg, segmenter
        self._vocab = self._make_active(encoded)
        self._published_stamps.clear()
        self._encoder = VocabularyEncoder(
            lambda vocab, cancel, _seg=segmenter: self._encode(_seg, vocab, cancel),
            self._commit_vocabulary,
            current_version=lambda: self._vocab.version if self._vocab is not None else 0,
            on_error=lambda msg: self._warn("set_vocabulary", f"set_vocabulary {msg}", period=0.0),
        )
        self._create_outputs(cfg)
        self._state_label = "inactive"
        self._publish_vocabulary(self._vocab)
        log.info(
            f"configured in {time.perf_counter() - t0:.1f} s: {len(encoded)} classes "
            f"(vocabulary version {self._vocab.version})"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        cfg = self.cfg
        assert cfg is not None
        self.stats = Stats() if self.stats is None else self.stats
        qos = self._input_qos(cfg)
        if cfg.transport == "compressed":
            topic = self.resolve_topic_name("image") + "/compressed"
            self._sub = self.create_subscription(
                CompressedImage,
                topic,
                self._on_compressed,
                qos,
                callback_group=self._frames_group,
                event_callbacks=self._input_events(),
            )
        else:
            topic = "image"
            self._sub = self.create_subscription(
                Image,
                topic,
                self._on_image,
                qos,
                callback_group=self._frames_group,
                event_callbacks=self._input_events(),
            )
        self._worker = FrameWorker(self._slot, self._process, max_rate=cfg.max_rate, on_error=self._on_worker_error)
        self._active = True
        self._worker.start()
        self._state_label = "active"
        self.get_logger().info(f"active: segmenting {self._sub.topic_name}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._state_label = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._close_encoder()
        self._destroy_outputs()
        self._reuse.clear()
        self.segmenter = None
        self._vocab = None
        self._state_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._close_encoder()
        self._destroy_outputs()
        self.segmenter = None
        self._vocab = None
        self._state_label = "finalized"
        self._finalized.set()  # run() stops spinning once this transition has been answered
        return TransitionCallbackReturn.SUCCESS

    @property
    def finalized(self) -> bool:
        """The shutdown transition has run: the process hosting the node should exit."""
        return self._finalized.is_set()

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._close_encoder()
        self._destroy_outputs()
        self.segmenter = None
        self._state_label = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        self._stop_processing()
        self._close_encoder()
        for srv in self._ovseg_services:
            self.destroy_service(srv)
        self._ovseg_services = []
        super().destroy_node()

    def _close_encoder(self, timeout: float = 10.0) -> None:
        """Answer every pending set_vocabulary "cancelled" and wait (bounded) for the encoding thread."""
        encoder, self._encoder = self._encoder, None
        if encoder is not None:
            self._last_encoder_thread = encoder.thread
        if encoder is not None and not encoder.close(timeout):
            self.get_logger().warning(
                f"a vocabulary encoding did not stop within {timeout:.0f} s "
                "(the model has no way to cancel it); its result is discarded"
            )

    @property
    def encoding_thread(self) -> threading.Thread | None:
        """The thread of a vocabulary encoding still running, if any (run() waits for it before exiting)."""
        encoder = self._encoder
        t = encoder.thread if encoder is not None else self._last_encoder_thread
        return t if t is not None and t.is_alive() else None

    def _stop_processing(self) -> None:
        self._active = False
        if self._sub is not None:
            self.destroy_subscription(self._sub)
            self._sub = None
        if self._worker is not None:
            if not self._worker.stop(timeout=30.0):
                self.get_logger().warning("worker thread did not stop within 30 s (a frame is still running)")
            self._worker = None
        self._slot.clear()

    # -- set-up -----------------------------------------------------------------------------
    @staticmethod
    def _input_qos(cfg: NodeConfig) -> QoSProfile:
        base = {"sensor_data": qos_profile_sensor_data, "system_default": qos_profile_system_default}.get(
            cfg.input_qos_profile
        )
        if base is None:  # "default": reliable, keep last 10
            qos = QoSProfile(depth=10)
        else:
            qos = QoSProfile(
                history=base.history, depth=base.depth, reliability=base.reliability, durability=base.durability
            )
        if cfg.input_qos_depth:
            qos.history = HistoryPolicy.KEEP_LAST
            qos.depth = cfg.input_qos_depth
        if cfg.input_qos_reliability:
            qos.reliability = (
                ReliabilityPolicy.RELIABLE if cfg.input_qos_reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
            )
        return qos

    def _create_outputs(self, cfg: NodeConfig) -> None:
        out_qos = QoSProfile(
            depth=cfg.output_qos_depth,
            reliability=(
                ReliabilityPolicy.RELIABLE
                if cfg.output_qos_reliability == "reliable"
                else ReliabilityPolicy.BEST_EFFORT
            ),
        )
        if cfg.publish_semantic:
            self._pubs["semantic"] = self.create_publisher(Image, "semantic", out_qos)
            self._pubs["semantic_info"] = self.create_publisher(SemanticInfo, "semantic/info", out_qos)
        if cfg.publish_panoptic:
            self._pubs["panoptic"] = self.create_publisher(PanopticSegmentation, "panoptic", out_qos)
        if cfg.publish_overlay:
            self._pubs["overlay"] = self.create_publisher(Image, "overlay", out_qos)
        latched = QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
        )
        self._pubs["vocabulary"] = self.create_publisher(VocabularyMsg, "vocabulary", latched)
        if cfg.publish_diagnostics:
            self._pubs["diagnostics"] = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            self._diag_timer = self.create_timer(
                cfg.diagnostics_period, self._publish_diagnostics, callback_group=self._timer_group
            )

    def _destroy_outputs(self) -> None:
        with self._publish_lock:
            if self._diag_timer is not None:
                self.destroy_timer(self._diag_timer)
                self._diag_timer = None
            for pub in self._pubs.values():
                self.destroy_publisher(pub)
            self._pubs = {}

    def _on_set_parameters(self, params):
        """Check every value when it is set; apply RUNTIME_PARAMETERS at once; refuse changing the
        others on a configured node (they would only take effect at the next configure)."""
        from rcl_interfaces.msg import SetParametersResult

        configured = self.cfg is not None and self._state_label in ("inactive", "active")
        for p in params:
            if p.name not in PARAMETERS:  # rclpy's own (use_sim_time, ...)
                continue
            try:
                validate_parameter(p.name, p.value)
            except ConfigError as e:
                return SetParametersResult(successful=False, reason=str(e))
            if configured and p.name not in RUNTIME_PARAMETERS and p.value != self.get_parameter(p.name).value:
                fqn = self.get_fully_qualified_name()
                return SetParametersResult(
                    successful=False,
                    reason=(
                        f"{p.name} takes effect at configure and the node is {self._state_label}: clean it up first "
                        f"(ros2 lifecycle set {fqn} deactivate, then cleanup), set {p.name}, then configure and "
                        f"activate again. Applied at once: {', '.join(RUNTIME_PARAMETERS)}"
                    ),
                )
        cfg = self.cfg
        if cfg is not None:
            for p in params:
                if p.name not in RUNTIME_PARAMETERS:
                    continue
                setattr(cfg, p.name.replace(".", "_"), p.value)
                if p.name == "max_rate" and self._worker is not None:
                    self._worker.max_rate = p.value  # a wait for the old rate's next slot ends at once
                elif p.name == "diagnostics.period" and self._diag_timer is not None:
                    self.destroy_timer(self._diag_timer)
                    self._diag_timer = self.create_timer(
                        p.value, self._publish_diagnostics, callback_group=self._timer_group
                    )
        return SetParametersResult(successful=True)

    # -- vocabulary ------------------------------------------------------------------------
    def _make_active(self, encoded: EncodedVocabulary) -> ActiveVocabulary:
        version = self._versions.next()
        if self._versions.warning:
            self._warn("versions", self._versions.warning, period=3600.0)
        cfg = self.cfg
        default_templates = getattr(self.segmenter, "templates", ()) or ()
        if not isinstance(default_templates, (list, tuple)):
            default_templates = ()
        msg = messages.vocabulary_to_msg(
            encoded,
            version=version,
            model=cfg.model if cfg else "",
            stamp=self.get_clock().now().to_msg(),
            default_templates=default_templates,
        )
        names = tuple(encoded.vocabulary.names)
        return ActiveVocabulary(encoded, version, msg, names, palette_for(names))

    def _publish_vocabulary(self, active: ActiveVocabulary) -> None:
        pub = self._pubs.get("vocabulary")
        if pub is not None:
            pub.publish(active.msg)

    async def _on_set_vocabulary(self, request, response):
        """Validate at once, then encode off the executor; every request is answered.

        The answer is the new version, a refusal with the reason, "superseded" (a newer request
        arrived first: the newest request wins, and a superseded encoding never becomes active)
        or "cancelled" (cleanup or shutdown first). Validation runs here, so an invalid request
        never supersedes a valid one. The coroutine waits without blocking the executor.
        """
        job = self._vocabulary_job(request, response)
        if job is None:  # refused or answered already
            return response
        executor, encoder = self.executor, self._encoder
        if executor is None:  # not spun by an executor (called directly): do it here
            encoded = self._encode(self.segmenter, job.vocabulary, job.cancel)
            response.success, response.message, response.version = True, "", self._commit_vocabulary(encoded)
            return response
        done = rclpy.task.Future(executor=executor)
        # a done callback makes set_result wake the executor, which then resumes this coroutine
        done.add_done_callback(lambda _f: None)
        job.answer = lambda ok, message, version: done.set_result((ok, message, version))
        encoder.submit(job)
        response.success, response.message, version = await done
        response.version = version
        return response

    def _vocabulary_job(self, request, response) -> EncodingJob | None:
        """A job for a valid request; else None with ``response`` filled in (refusal)."""
        current = self._vocab
        response.version = current.version if current is not None else 0
        if current is None or self.segmenter is None or self._encoder is None:
            response.success = False
            response.message = "refused: the node is not configured: configure it first"
            return None
        try:
            vocabulary = messages.vocabulary_from_msgs(request.classes, request.prompt_templates)
        except VocabularyError as e:
            response.success, response.message = False, f"refused: {e}"
            self._warn("set_vocabulary", f"set_vocabulary {response.message}", period=0.0)
            return None
        return EncodingJob(vocabulary, answer=lambda *a: None)

    def _encode(self, segmenter, vocabulary, cancel: threading.Event) -> EncodedVocabulary:
        """Encode on the calling thread; ``cancel`` is passed on when the model can stop early."""
        t0 = time.perf_counter()
        if _accepts_cancel(segmenter.encode_vocabulary):
            encoded = segmenter.encode_vocabulary(vocabulary, cancel=cancel)
        else:
            encoded = segmenter.encode_vocabulary(vocabulary)
        if not cancel.is_set():
            self.get_logger().info(f"encoded {len(vocabulary)} classes in {time.perf_counter() - t0:.2f} s")
        return encoded

    def _commit_vocabulary(self, encoded: EncodedVocabulary) -> int:
        """Make ``encoded`` the active vocabulary and publish it; its version."""
        with self._publish_lock:  # atomic between frames
            active = self._make_active(encoded)
            self._vocab = active
            self._publish_vocabulary(active)
        self.get_logger().info(f"vocabulary version {active.version}: {len(active.names)} classes")
        return active.version

    def _on_get_vocabulary(self, request, response):
        active = self._vocab
        if active is not None:
            response.vocabulary = active.msg
        return response

    @property
    def vocabulary(self) -> ActiveVocabulary | None:
        return self._vocab

    # -- frames -----------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        now = time.monotonic()
        self.stats.add("received")
        self.stats.input_rate.tick(now)
        try:
            conversions.check_image(msg)
        except conversions.ImageConversionError as e:
            self.stats.add("invalid")
            self._warn("invalid", f"ignored a malformed image: {e}")
            return
        self._enqueue(Frame(msg, now, False))

    def _on_compressed(self, msg: CompressedImage) -> None:
        now = time.monotonic()
        self.stats.add("received")
        self.stats.input_rate.tick(now)
        if len(msg.data) == 0:
            self.stats.add("invalid")
            self._warn("invalid", "ignored a compressed image without data")
            return
        try:
            conversions._compressed_kind(msg.format)
        except conversions.ImageConversionError as e:
            self.stats.add("invalid")
            self._warn("invalid", f"ignored a compressed image: {e}")
            return
        self._enqueue(Frame(msg, now, True))

    def _enqueue(self, frame: Frame) -> None:
        if not self._active:
            return
        if self._slot.put(frame) is not None:
            self.stats.add("dropped")
        # Hand the GIL to the worker now: otherwise it waits until the executor's own Python
        # bookkeeping after this callback is done (about 0.4 ms per frame, measured).
        time.sleep(0)

    def _on_worker_error(self, e: BaseException) -> None:
        self.stats.add("errors")
        self.stats.last_error = f"{type(e).__name__}: {e}"
        self.recent_warnings.append(f"frame failed: {self.stats.last_error}")
        now = time.monotonic()
        if now - self._warn_times.get("error", -1e9) >= 2.0:
            self._warn_times["error"] = now
            self.get_logger().error(
                f"processing a frame failed (the node goes on): {self.stats.last_error}\n"
                + "".join(traceback.format_exception(e)[-6:])
            )

    def _decode(self, frame: Frame) -> np.ndarray:
        if frame.compressed:
            return conversions.compressed_to_rgb8(frame.msg)
        # a view into the message where no conversion is needed: the worker owns the frame
        return conversions.image_to_rgb8(frame.msg, copy=False)

    def _process(self, frame: Frame) -> None:
        """Worker thread: one frame, one vocabulary, all outputs."""
        vocab = self._vocab  # read once: this frame's vocabulary
        cfg, segmenter = self.cfg, self.segmenter
        if vocab is None or cfg is None or segmenter is None:
            return
        try:
            rgb = self._decode(frame)
        except conversions.ImageConversionError as e:
            self.stats.add("invalid")
            self._warn("invalid", f"ignored an image that could not be decoded: {e}")
            return
        h, w = rgb.shape[:2]
        small = rgb
        if cfg.max_side and max(h, w) > cfg.max_side:
            scale = cfg.max_side / max(h, w)
            sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
            from PIL import Image as PILImage

            small = np.array(PILImage.fromarray(rgb).resize((sw, sh), PILImage.BILINEAR))
        t0 = time.perf_counter()
        result = segmenter.predict(small, vocabulary=vocab.encoded)
        model_s = time.perf_counter() - t0
        if result.vocabulary_version != vocab.encoded.version:  # pragma: no cover - guarded by the API
            raise RuntimeError("the model answered with another vocabulary")
        header = frame.msg.header
        # Outputs are built into the previous frame's message buffers (see conversions.label_image)
        # and published one by one as soon as each is ready, so a subscriber already receives the
        # semantic image while the panoptic message is built. The publish lock is held from the
        # vocabulary check to the last output: a vocabulary switch waits for this frame's outputs,
        # and no output of it is published once another vocabulary is active.
        with self._publish_lock:
            if self._vocab is not vocab:  # switched while this frame ran: never publish it
                self.stats.add("stale")
                return
            if not self._active:
                return
            pubs = self._pubs
            if "semantic" in pubs and not self._claim_stamp(header.stamp, vocab.version):
                self.stats.add("ambiguous")
                self._warn(
                    "ambiguous",
                    "dropped a frame whose stamp an output of another vocabulary version "
                    "already carries (semantic images are paired with semantic/info by "
                    "stamp): give every camera frame its own header stamp",
                )
                return
            sem_msg, labels = conversions.label_image(h, w, header=header, msg=self._reuse.get("semantic"))
            if small is rgb:
                small_labels = messages.semantic_labels(result, cfg.semantic_score_threshold, out=labels)
                yi = xi = None
            else:
                yi, xi = _resize_indices(h, small.shape[0]), _resize_indices(w, small.shape[1])
                small_labels = messages.semantic_labels(result, cfg.semantic_score_threshold)
                labels[...] = small_labels[yi][:, xi]
            self._reuse["semantic"] = sem_msg
            if "semantic" in pubs:
                # the frame's vocabulary version first, then the image with the same header
                pubs["semantic_info"].publish(
                    SemanticInfo(header=header, vocabulary_version=vocab.version, num_classes=len(vocab.names))
                )
                pubs["semantic"].publish(sem_msg)
            segments = None
            if "panoptic" in pubs:
                if result.panoptic is not None:
                    ids, segments = result.panoptic, list(result.segments)
                else:  # semantic-only model: one segment per class present
                    ids, segments = segments_from_semantic(small_labels, result.score, vocab.encoded.vocabulary)
                if yi is not None:
                    segments = _upsample_segments(ids, segments, yi, xi)
                    ids = np.asarray(ids)[yi][:, xi]
                pan_msg = messages.panoptic_to_msg(
                    ids, segments, header, vocab.version, msg=self._reuse.get("panoptic")
                )
                pubs["panoptic"].publish(pan_msg)
                self._reuse["panoptic"] = pan_msg
            overlay_pub = pubs.get("overlay")
            if overlay_pub is not None and overlay_pub.get_subscription_count() > 0:
                texts = None
                if segments is not None and result.panoptic is not None:
                    texts = _segment_texts(segments, w * h) or None  # none: one label per class instead
                img = render_overlay(
                    rgb,
                    labels,
                    vocab.names,
                    alpha=cfg.overlay_alpha,
                    palette=vocab.palette,
                    texts=texts,
                    draw_labels=cfg.overlay_draw_labels,
                )
                overlay_pub.publish(conversions.numpy_to_image(img, "rgb8", header=header))
                self.stats.add("overlays")
        stamp = header.stamp
        self.stats.record(
            FrameRecord(
                stamp.sec * 1_000_000_000 + stamp.nanosec, model_s, time.monotonic() - frame.received, vocab.version
            )
        )

    def _claim_stamp(self, stamp, version: int) -> bool:
        """False if an output with this stamp but another vocabulary version was published recently."""
        key = (stamp.sec, stamp.nanosec)
        seen = self._published_stamps.get(key)
        if seen is not None and seen != version:
            return False
        self._published_stamps[key] = version
        self._published_stamps.move_to_end(key)
        while len(self._published_stamps) > STAMP_MEMORY:
            self._published_stamps.popitem(last=False)
        return True

    # -- losses below the callback ------------------------------------------------------------
    def _input_events(self) -> SubscriptionEventCallbacks:
        """DDS events of the input subscription: frames lost before the callback, QoS mismatches."""
        return SubscriptionEventCallbacks(
            message_lost=self._on_message_lost, incompatible_qos=self._on_incompatible_qos
        )

    def _on_message_lost(self, info) -> None:
        self.stats.add("lost", int(info.total_count_change))
        cfg = self.cfg
        best_effort = (
            cfg is not None
            and self._sub is not None
            and self._sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        )
        fix = (
            "the input is best effort: frames of this size do not get through whole; set "
            "input.qos.reliability: reliable (and publish reliable), use the shared-memory profile "
            "config/fastdds_shm.xml on both sides, or send smaller or compressed frames"
            if best_effort
            else "the subscriber falls behind: raise input.qos.depth or lower the camera rate"
        )
        self._warn("lost", f"{self.stats.lost} input frame(s) lost below the callback (DDS sample lost): {fix}")

    def _on_incompatible_qos(self, info) -> None:
        self.stats.add("incompatible_qos", int(info.total_count_change))
        from rclpy.qos import qos_policy_name_from_kind

        try:
            policy = qos_policy_name_from_kind(info.last_policy_kind)
        except Exception:  # noqa: BLE001
            policy = str(info.last_policy_kind)
        self._warn(
            "incompatible_qos",
            f"a publisher of the input topic offers a QoS this subscription cannot "
            f"accept ({policy}); none of its frames arrive: set input.qos.reliability: "
            "best_effort (or make the camera publish reliable)",
            period=0.0,
        )

    # -- diagnostics ------------------------------------------------------------------------
    def diagnostics(self) -> DiagnosticStatus:
        s = self.stats.snapshot()
        cfg = self.cfg
        status = DiagnosticStatus()
        status.name = f"{self.get_fully_qualified_name()}: segmentation"
        status.hardware_id = cfg.resolved_device if cfg else ""
        level, message = DiagnosticStatus.OK, "ok"
        if self._state_label != "active":
            level, message = DiagnosticStatus.OK, self._state_label
        elif s["received"] == 0 or s["input_rate_hz"] == 0:
            level, message = DiagnosticStatus.WARN, "no input images"
        elif s["errors"] and s["last_error"]:
            level, message = DiagnosticStatus.WARN, f"{s['errors']} frame(s) failed, last: {s['last_error']}"
        if self._state_label == "active" and (s["lost"] or s["incompatible_qos"]):
            level = DiagnosticStatus.WARN
            message = (
                f"{s['lost']} frame(s) lost below the callback" if s["lost"] else "a publisher with incompatible QoS"
            ) + f"; {message}"
        if cfg is not None and not cfg.checkpoint:
            message += " (RANDOM WEIGHTS)"
            level = max(level, DiagnosticStatus.WARN)
        status.level = level if isinstance(level, bytes) else bytes([level])
        status.message = message

        def ms(key, q):
            v = s[key]
            return f"{v[q]:.1f}" if v else "nan"

        vocab = self._vocab
        values = {
            "state": self._state_label,
            "model": f"{cfg.model}/{cfg.variant or 'default'}" if cfg else "",
            "device": cfg.resolved_device if cfg else "",
            "checkpoint": (cfg.checkpoint or "none (random weights)") if cfg else "",
            "vocabulary_version": str(vocab.version if vocab else 0),
            "vocabulary_classes": str(len(vocab.names) if vocab else 0),
            "input_rate_hz": f"{s['input_rate_hz']:.2f}",
            "processed_rate_hz": f"{s['processed_rate_hz']:.2f}",
            "received_frames": str(s["received"]),
            "processed_frames": str(s["processed"]),
            "dropped_frames": str(s["dropped"]),
            "invalid_frames": str(s["invalid"]),
            "failed_frames": str(s["errors"]),
            "stale_frames": str(s["stale"]),
            "lost_frames": str(s["lost"]),
            "incompatible_qos_events": str(s["incompatible_qos"]),
            "ambiguous_stamp_frames": str(s["ambiguous"]),
            "vocabulary_requests_answered": str(sum(self._encoder.answered.values()) if self._encoder else 0),
            "model_latency_ms_p50": ms("model_ms", "p50"),
            "model_latency_ms_p90": ms("model_ms", "p90"),
            "end_to_end_latency_ms_p50": ms("node_ms", "p50"),
            "end_to_end_latency_ms_p90": ms("node_ms", "p90"),
            "last_warning": self.recent_warnings[-1] if self.recent_warnings else "",
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status

    def _publish_diagnostics(self) -> None:
        pub = self._pubs.get("diagnostics")
        if pub is None:
            return
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [self.diagnostics()]
        pub.publish(arr)


def _upsample_segments(ids_small: np.ndarray, segments, yi: np.ndarray, xi: np.ndarray) -> list[dict]:
    """Exact areas and boxes of ``segments`` after nearest-neighbour upsampling by index maps ``yi``, ``xi``."""
    ids_small = np.asarray(ids_small)
    hs, ws = ids_small.shape
    ry = np.bincount(yi, minlength=hs).astype(np.float64)  # output rows per source row
    rx = np.bincount(xi, minlength=ws).astype(np.float64)
    weights = (ry[:, None] * rx[None, :]).ravel()
    n = int(ids_small.max()) + 1 if ids_small.size else 1
    areas = np.bincount(ids_small.ravel().astype(np.intp), weights=weights, minlength=n)
    first_y = np.searchsorted(yi, np.arange(hs), side="left")
    last_y = np.searchsorted(yi, np.arange(hs), side="right") - 1
    first_x = np.searchsorted(xi, np.arange(ws), side="left")
    last_x = np.searchsorted(xi, np.arange(ws), side="right") - 1
    out = []
    for s in segments:
        d = (
            s
            if isinstance(s, dict)
            else {k: getattr(s, k) for k in ("id", "category", "label", "score", "area", "bbox", "is_thing")}
        )
        d = dict(d)
        sid = int(d["id"])
        area = int(round(areas[sid])) if sid < len(areas) else 0
        if area == 0:
            continue  # the segment vanished (a source row/column no output pixel maps to)
        x, y, bw, bh = d["bbox"]
        rows = np.nonzero((ids_small[y : y + bh, x : x + bw] == sid).any(axis=1) & (ry[y : y + bh] > 0))[0] + y
        cols = np.nonzero((ids_small[y : y + bh, x : x + bw] == sid).any(axis=0) & (rx[x : x + bw] > 0))[0] + x
        y0, y1 = int(first_y[rows.min()]), int(last_y[rows.max()])
        x0, x1 = int(first_x[cols.min()]), int(last_x[cols.max()])
        d.update(area=area, bbox=(x0, y0, x1 - x0 + 1, y1 - y0 + 1))
        out.append(d)
    return out


def _segment_texts(segments, total_pixels: int) -> list[tuple[str, int, int]]:
    texts = []
    for s in segments:
        get = s.get if isinstance(s, dict) else (lambda k, _s=s: getattr(_s, k))
        if get("area") < 0.002 * total_pixels:
            continue
        x, y, w, h = get("bbox")
        texts.append((get("label"), x + w // 2, y + h // 2))
    return texts


# -- executables ----------------------------------------------------------------------------------


def _spin(node: SegmentationNode, executor, stop: threading.Event | None = None) -> None:
    """Spin until ``stop`` (Ctrl-C, SIGTERM), an external shutdown, or the lifecycle shutdown transition.

    Then answer what is pending: a vocabulary encoding is cancelled and its caller answered
    "cancelled" while the executor still runs, so no caller waits forever.
    """
    from rclpy.executors import ExternalShutdownException

    stop = stop or threading.Event()
    executor.add_node(node)
    try:
        # spin_once per callback: the loop ends right after the shutdown transition is answered
        while node.context.ok() and not node.finalized and not stop.is_set():
            executor.spin_once(timeout_sec=0.25)
        node._stop_processing()
        node._close_encoder()
        end = time.monotonic() + 0.5  # send the answers of the cancelled requests
        while node.context.ok() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def _install_signal_handlers(stop: threading.Event) -> None:
    """SIGINT/SIGTERM end the spin loop (a second SIGINT raises KeyboardInterrupt at once)."""
    import signal

    def handler(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def bring_up(node: SegmentationNode) -> None:
    """Configure and activate ``node``; :class:`RuntimeError` saying why when either fails."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        raise RuntimeError(f"could not configure: {node.configure_error}")
    if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        raise RuntimeError("could not activate")


def run(args=None, *, lifecycle: bool = False, segmenter_factory: Callable | None = None) -> int:
    """Create the node from the command line's ROS arguments and spin it; the exit status.

    Ctrl-C, SIGTERM and the lifecycle shutdown transition end it cleanly: frames and vocabulary
    encodings are stopped (a pending set_vocabulary is answered "cancelled") before the process
    exits. ``segmenter_factory``: as for :class:`SegmentationNode` (embedding, tests).
    """
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    # The node handles the signals itself: rclpy's handler would shut the context down at once,
    # before pending service calls are answered and while an encoding still runs.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    _install_signal_handlers(stop)
    node = None
    rc = 0
    try:
        try:
            node = SegmentationNode(segmenter_factory=segmenter_factory)
        except ConfigError as e:  # e.g. -p max_rate:=5: one line naming the parameter and its type
            rclpy.logging.get_logger(DEFAULT_NAME).fatal(str(e))
            return 2
        autostart = (not lifecycle) or bool(node.get_parameter("autostart").value)
        if autostart:
            try:
                bring_up(node)
            except RuntimeError as e:
                node.get_logger().fatal(str(e))
                rc = 1
        else:
            node.get_logger().info("waiting for a lifecycle manager (configure, then activate)")
        if rc == 0 and not stop.is_set():
            _spin(node, SingleThreadedExecutor(), stop)
    except KeyboardInterrupt:
        pass
    finally:
        lingering = None
        if node is not None:
            try:
                node.destroy_node()  # stops the frame worker, cancels and waits for an encoding
            except Exception:  # noqa: BLE001
                pass
            lingering = node.encoding_thread
        rclpy.try_shutdown()
    if lingering is not None:
        # A model that cannot cancel is still encoding in C++ on a daemon thread: letting the
        # interpreter finalise under it aborts the process ("terminate called without an active
        # exception"). Everything the node owns is released: leave without finalising.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc


def main(args=None) -> int:
    """``ovseg_node``: configure and activate straight away."""
    return run(args, lifecycle=False)


def lifecycle_main(args=None) -> int:
    """``ovseg_lifecycle_node``: managed by a lifecycle manager (``autostart: true`` to self-start)."""
    return run(args, lifecycle=True)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
