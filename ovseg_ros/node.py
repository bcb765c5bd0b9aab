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
``semantic/info``, ``panoptic``, ``overlay``, ``label_info``, ``segment_embeddings``, ``vocabulary`` out;
services ``set_vocabulary``, ``get_vocabulary``, ``encode_text``, ``query`` (see
:mod:`ovseg_ros.embeddings`; these two run the text tower on a thread of their own, so a long
list never holds back frames or the other services); diagnostics on ``/diagnostics``.

Frames go through a latest-frame-wins slot to one worker thread; malformed frames are refused in
the callback with a warning, exceptions while processing a frame are logged and counted, and
nothing stops the node. The worker reads the active vocabulary once per frame and publishes the
frame's outputs only if that vocabulary is still the active one, under the same lock the
vocabulary switch takes, so no output mixes two vocabularies and semantic images are never
published after the vocabulary that made them was replaced.

One frame's way: the subscription callback checks the message (:mod:`ovseg_ros.conversions`) and
puts it in the slot; the worker decodes it, runs ``segmenter.predict`` (which does all resizing
and answers at the frame's resolution), builds the outputs (:mod:`ovseg_ros.outputs`) and
publishes them. QoS comes from :mod:`ovseg_ros.qos`, parameters from :mod:`ovseg_ros.params`,
vocabulary encoding from :mod:`ovseg_ros.encoding`, diagnostics from :mod:`ovseg_ros.diagnostics`.

``main`` (``ovseg_node``) configures and activates at once; ``lifecycle_main``
(``ovseg_lifecycle_node``) waits for a lifecycle manager (or ``autostart: true``).
"""

from __future__ import annotations

import collections
import concurrent.futures
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
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.qos import (
    QoSProfile,
    ReliabilityPolicy,
)
from sensor_msgs.msg import CompressedImage, Image

from ovseg.msg import PanopticSegmentation, SegmentEmbeddings, Segments3D, SemanticInfo
from ovseg.msg import Vocabulary as VocabularyMsg
from ovseg.srv import EncodeText, GetVocabulary, QuerySegments, SetVocabulary
from ovseg_models.segmenter import EncodedVocabulary
from ovseg_models.vocabulary import VocabularyError

from . import conversions, embeddings, messages
from .cameras import Camera, camera_parameters, cameras_from_parameters
from .diagnostics import segmentation_status
from .encoding import CallWorker, EncodingJob, VocabularyEncoder
from .overlay import palette_for
from .params import (
    RUNTIME_PARAMETERS,
    ConfigError,
    NodeConfig,
    build_segmenter,
    declare_parameters,
    parameter_value,
    parameters,
    read_config,
    validate_parameter,
)
from .qos import LATCHED, input_qos, output_qos
from .versions import VersionCounter
from .worker import CameraSlots, FrameRecord, FrameWorker, Stats

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
    camera: Camera
    depth: Any = None  #: with depth.enabled: the paired depth image and camera_info
    camera_info: Any = None


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


#: the answer of an encode_text / query request the node stopped before running
TEXT_CANCELLED = "cancelled: the node is shutting down"


class SegmentationNode(LifecycleNode):
    """Open-vocabulary segmentation lifecycle node (see the module docstring)."""

    #: the text thread of encode_text and query (set in ``__init__``; None before and once closed,
    #: so a node whose parameters were refused during construction destroys cleanly)
    _text_worker: CallWorker | None = None
    _last_text_thread: threading.Thread | None = None

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
        self._cameras: list[Camera] = []
        self._worker: FrameWorker | None = None
        self._slot: CameraSlots[Frame] = CameraSlots()
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
        self._diag_timer = None
        self._state_label = "unconfigured"
        self._frames_group = MutuallyExclusiveCallbackGroup()
        # set_vocabulary answers from coroutines that wait for the encoder: a reentrant group lets
        # the executor take every request at once (none waits in the DDS queue, whose depth would
        # drop the oldest), and get_vocabulary never waits behind an encoding.
        self._services_group = ReentrantCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._published_stamps: collections.OrderedDict = collections.OrderedDict()  # (camera, stamp) -> version
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
            self.create_service(EncodeText, "encode_text", self._on_encode_text, callback_group=self._services_group),
            self.create_service(QuerySegments, "query", self._on_query, callback_group=self._services_group),
        ]
        self._embedding_cache: embeddings.EmbeddingCache | None = None
        # encode_text and query run the text tower here, off the executor (_answer_off_executor)
        self._text_worker = CallWorker("ovseg-text")
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
            cameras = self._configure_cameras(cfg)
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
        if len(cameras) == 1 and not cameras[0].name:
            cameras[0].stats = self.stats  # one camera: its counters are the node's
        self._cameras = cameras
        self._slot.set_cameras([c.name for c in cameras], {c.name: c.max_rate for c in cameras})
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
        for cam in self._cameras:
            cam.sub = self._subscribe(cam, cfg)
        self._worker = FrameWorker(self._slot, self._process, max_rate=cfg.max_rate, on_error=self._on_worker_error)
        self._active = True
        self._worker.start()
        self._state_label = "active"
        self.get_logger().info(f"active: segmenting {', '.join(c.sub.topic_name for c in self._cameras)}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._state_label = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._close_encoder()
        self._destroy_outputs()
        self._cameras = []
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
        self._close_text_worker()
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

    def _close_text_worker(self) -> None:
        """Answer the waiting encode_text / query requests "cancelled"; a running one ends on its own."""
        worker = self._text_worker
        if worker is not None:
            self._last_text_thread = worker.thread
            self._text_worker = None
            worker.close()

    @property
    def text_thread(self) -> threading.Thread | None:
        """The text thread while it still runs an encode_text / query (run() does not wait for it)."""
        t = self._text_worker.thread if self._text_worker is not None else self._last_text_thread
        return t if t is not None and t.is_alive() else None

    @property
    def encoding_thread(self) -> threading.Thread | None:
        """The thread of a vocabulary encoding still running, if any (run() waits for it before exiting)."""
        encoder = self._encoder
        t = encoder.thread if encoder is not None else self._last_encoder_thread
        return t if t is not None and t.is_alive() else None

    def _stop_processing(self) -> None:
        self._active = False
        for cam in self._cameras:
            if cam.sub is not None:
                self.destroy_subscription(cam.sub)
                cam.sub = None
            for sub in cam.depth_subs:
                self.destroy_subscription(sub)
            cam.depth_subs, cam.sync = [], None
        if self._worker is not None:
            if not self._worker.stop(timeout=30.0):
                self.get_logger().warning("worker thread did not stop within 30 s (a frame is still running)")
            self._worker = None
        self._slot.clear()

    # -- set-up -----------------------------------------------------------------------------
    def _configure_cameras(self, cfg: NodeConfig) -> list[Camera]:
        """Declare the per-camera parameters of ``cameras`` and read them (see :mod:`.cameras`)."""
        from rcl_interfaces.msg import ParameterDescriptor
        from rclpy.exceptions import InvalidParameterTypeException

        values = {}
        for name in cfg.cameras:
            for key, (default, description) in camera_parameters(name).items():
                if not self.has_parameter(key):
                    try:
                        self.declare_parameter(key, default, ParameterDescriptor(description=description))
                    except InvalidParameterTypeException:
                        raise ConfigError(f"parameter '{key}' must be of the type of {default!r}") from None
                values[key] = self.get_parameter(key).value
        return cameras_from_parameters(list(cfg.cameras), values, cfg)

    def _subscribe(self, cam: Camera, cfg: NodeConfig):
        qos = input_qos(cfg)
        if cam.reliability:
            qos.reliability = (
                ReliabilityPolicy.RELIABLE if cam.reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
            )
        if cam.transport == "compressed":
            msg_type, topic = CompressedImage, self.resolve_topic_name(cam.topic) + "/compressed"
            callback = lambda msg, _cam=cam: self._on_compressed(_cam, msg)  # noqa: E731
        else:
            msg_type, topic = Image, cam.topic
            callback = lambda msg, _cam=cam: self._on_image(_cam, msg)  # noqa: E731
        if cfg.depth_enabled:
            self._subscribe_depth(cam, cfg, qos)
        return self.create_subscription(
            msg_type, topic, callback, qos, callback_group=self._frames_group, event_callbacks=self._input_events(cam)
        )

    def _subscribe_depth(self, cam: Camera, cfg: NodeConfig, qos) -> None:
        """``depth/image`` and ``depth/camera_info`` of the camera, paired with its colour frames by
        stamp: message_filters' ApproximateTimeSynchronizer where it is installed (as on a robot),
        else :class:`ovseg_ros.sync.ApproximateSync` (the same pairing, tested against it). Either
        way an :class:`ApproximateSync` counts pairs, drops and the offset of streams that do not pair."""
        from sensor_msgs.msg import CameraInfo

        from .sync import ApproximateSync, message_filters_available

        def paired(image, depth, info, _cam=cam):
            self._count(_cam, "depth_pairs")
            self._enqueue(Frame(image, time.monotonic(), _cam.transport == "compressed", _cam, depth, info))

        if message_filters_available():
            import message_filters

            inputs = [message_filters.SimpleFilter() for _ in range(3)]
            mf = message_filters.ApproximateTimeSynchronizer(inputs, cfg.depth_queue_size, cfg.depth_slop)
            mf.registerCallback(paired)
            counter = ApproximateSync(cfg.depth_slop, cfg.depth_queue_size, lambda *m: None)  # its counters only

            def add(index: int, msg) -> None:
                counter.add(index, msg)
                inputs[index].signalMessage(msg)

            cam.sync, cam.sync_stats = add, counter.stats
        else:  # one synchroniser pairs and counts
            own = ApproximateSync(cfg.depth_slop, cfg.depth_queue_size, paired)
            cam.sync, cam.sync_stats = own.add, own.stats
        cam.depth_subs = [
            self.create_subscription(
                msg_type,
                cam.prefix + name,
                lambda m, _c=cam, _i=index: self._on_depth(_c, _i, m),
                qos,
                callback_group=self._frames_group,
            )
            for index, (msg_type, name) in enumerate(((Image, "depth/image"), (CameraInfo, "depth/camera_info")), 1)
        ]

    def _on_depth(self, cam: Camera, index: int, msg) -> None:
        if self._active and cam.sync is not None:
            cam.sync(index, msg)

    def _create_outputs(self, cfg: NodeConfig) -> None:
        out_qos = output_qos(cfg)
        for cam in self._cameras:
            p = cam.prefix
            if cfg.publish_semantic:
                cam.pubs["semantic"] = self.create_publisher(Image, p + "semantic", out_qos)
                cam.pubs["semantic_info"] = self.create_publisher(SemanticInfo, p + "semantic/info", out_qos)
            if cfg.publish_panoptic:
                cam.pubs["panoptic"] = self.create_publisher(PanopticSegmentation, p + "panoptic", out_qos)
            if cfg.publish_overlay:
                cam.pubs["overlay"] = self.create_publisher(Image, p + "overlay", out_qos)
            if cfg.publish_embeddings:
                cam.pubs["segment_embeddings"] = self.create_publisher(
                    SegmentEmbeddings, p + "segment_embeddings", out_qos
                )
            if cfg.depth_enabled:
                from sensor_msgs.msg import PointCloud2

                cam.pubs["segments_3d"] = self.create_publisher(Segments3D, p + "segments_3d", out_qos)
                cam.pubs["points"] = self.create_publisher(PointCloud2, p + "points", out_qos)
            if cfg.publish_label_info:
                types = embeddings.label_info_type()
                if types is None:
                    self._warn(
                        "label_info",
                        "publish.label_info is true but vision_msgs is not installed: no label_info "
                        "(install ros-$ROS_DISTRO-vision-msgs, or run tools/setup.sh, which builds it)",
                        period=3600.0,
                    )
                else:
                    cam.pubs["label_info"] = self.create_publisher(types[0], p + "label_info", LATCHED)
        self._embedding_cache = (
            embeddings.EmbeddingCache(cfg.embeddings_cache_frames) if cfg.publish_embeddings else None
        )
        self._pubs["vocabulary"] = self.create_publisher(VocabularyMsg, "vocabulary", LATCHED)
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
            for cam in self._cameras:
                for pub in cam.pubs.values():
                    self.destroy_publisher(pub)
                cam.pubs = {}
            self._embedding_cache = None

    def _on_set_parameters(self, params):
        """Check every value when it is set; apply RUNTIME_PARAMETERS at once; refuse changing the
        others on a configured node (they would only take effect at the next configure)."""
        from rcl_interfaces.msg import SetParametersResult

        configured = self.cfg is not None and self._state_label in ("inactive", "active")
        known = parameters()
        for p in params:
            if p.name.startswith("cameras.") and configured and p.value != parameter_value(self, p.name):
                return SetParametersResult(
                    successful=False, reason=f"{p.name} takes effect at configure: clean the node up first"
                )
            if p.name not in known:  # rclpy's own (use_sim_time, ...)
                continue
            try:
                validate_parameter(p.name, p.value)
            except ConfigError as e:
                return SetParametersResult(successful=False, reason=str(e))
            if configured and p.name not in RUNTIME_PARAMETERS and p.value != parameter_value(self, p.name):
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
                if p.name == "semantic_score_threshold":
                    with self._publish_lock:
                        self._publish_label_info(self._vocab)  # LabelInfo states the threshold
                elif p.name == "max_rate" and self._worker is not None:
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
        msg = messages.vocabulary_to_msg(
            encoded, version=version, model=cfg.model if cfg else "", stamp=self.get_clock().now().to_msg()
        )
        names = tuple(encoded.vocabulary.names)
        return ActiveVocabulary(encoded, version, msg, names, palette_for(names))

    def _publish_vocabulary(self, active: ActiveVocabulary) -> None:
        pub = self._pubs.get("vocabulary")
        if pub is not None:
            pub.publish(active.msg)
        self._publish_label_info(active)

    def _publish_label_info(self, active: ActiveVocabulary | None) -> None:
        """vision_msgs/LabelInfo of ``active`` on every camera's label_info (the labels' names and
        the score threshold below which pixels are unlabeled)."""
        cfg = self.cfg
        if active is None or cfg is None:
            return
        pubs = [cam.pubs["label_info"] for cam in self._cameras if "label_info" in cam.pubs]
        if pubs:  # one message for every camera: the vocabulary is shared
            msg = embeddings.label_info_msg(
                active.names, threshold=cfg.semantic_score_threshold, stamp=active.msg.stamp
            )
            for pub in pubs:
                pub.publish(msg)

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

    async def _on_encode_text(self, request, response):
        return await self._answer_off_executor(embeddings.answer_encode_text, self.segmenter, request, response)

    async def _answer_off_executor(self, answer: Callable, *args):
        """``answer(*args)`` on the text thread, awaited without blocking the executor.

        The text tower takes seconds for a long list with a large model on a CPU: run on the
        executor it would hold back frames, get_vocabulary and the diagnostics. One thread takes
        the requests in turn; each request is answered, with "cancelled: ..." when the node is
        destroyed first. ``args[-1]`` is the response to fill in."""
        executor, worker = self.executor, self._text_worker
        if executor is None:  # not spun by an executor (called directly): do it here
            return answer(*args)
        response = args[-1]
        if worker is None:  # closed: the node is stopping
            response.success, response.message = False, TEXT_CANCELLED
            return response
        done: rclpy.task.Future = rclpy.task.Future(executor=executor)
        done.add_done_callback(lambda _f: None)  # makes set_result wake the executor

        def finished(job: concurrent.futures.Future) -> None:
            if job.cancelled() or job.exception() is not None:
                response.success = False
                response.message = (
                    TEXT_CANCELLED
                    if job.cancelled()
                    else f"failed: {type(job.exception()).__name__}: {job.exception()}"
                )
                done.set_result(response)
            else:
                done.set_result(job.result())

        try:
            worker.submit(answer, *args).add_done_callback(finished)
        except RuntimeError:  # the worker was closed in between
            response.success, response.message = False, TEXT_CANCELLED
            return response
        return await done

    async def _on_query(self, request, response):
        return await self._answer_off_executor(
            embeddings.answer_query,
            self.segmenter,
            self._embedding_cache,
            [c.name for c in self._cameras],
            request,
            response,
        )

    def _on_get_vocabulary(self, request, response):
        active = self._vocab
        if active is not None:
            response.vocabulary = active.msg
        return response

    @property
    def vocabulary(self) -> ActiveVocabulary | None:
        return self._vocab

    # -- state for embedding code (bag evaluation, benchmarks, tests) --------------------------
    @property
    def busy(self) -> bool:
        """The worker is processing a frame."""
        worker = self._worker
        return worker is not None and worker.busy.is_set()

    @property
    def outputs(self) -> frozenset[str]:
        """The outputs published in this state: "vocabulary", "diagnostics" and each camera's
        "semantic", "semantic_info", "panoptic", "overlay", "label_info", "segment_embeddings" (prefixed
        "<camera>/" with ``cameras``)."""
        return frozenset(self._output_publishers())

    def _output_publishers(self) -> dict[str, Any]:
        pubs = dict(self._pubs)
        for cam in self._cameras:
            pubs.update({cam.prefix + k: v for k, v in cam.pubs.items()})
        return pubs

    def subscriber_count(self, output: str) -> int:
        """Subscribers of one of :attr:`outputs` (0 if it is not published)."""
        pub = self._output_publishers().get(output)
        return pub.get_subscription_count() if pub is not None else 0

    @property
    def cameras(self) -> tuple[Camera, ...]:
        """The configured cameras (one, named '', without the ``cameras`` parameter)."""
        return tuple(self._cameras)

    @property
    def input_subscriptions(self) -> list:
        """The camera subscriptions while active (camera order), else empty."""
        return [c.sub for c in self._cameras if c.sub is not None]

    # -- frames -----------------------------------------------------------------------------
    def _count(self, cam: Camera, key: str, n: int = 1) -> None:
        """Count on the node's and, with several cameras, on the camera's own statistics."""
        self.stats.add(key, n)
        if cam.stats is not self.stats:
            cam.stats.add(key, n)

    def _received(self, cam: Camera) -> float:
        now = time.monotonic()
        self._count(cam, "received")
        self.stats.input_rate.tick(now)
        if cam.stats is not self.stats:
            cam.stats.input_rate.tick(now)
        return now

    def _invalid(self, cam: Camera, text: str) -> None:
        self._count(cam, "invalid")
        where = f" from camera '{cam.name}'" if cam.name else ""
        self._warn(f"invalid{cam.name}", f"ignored {text}{where}")

    def _on_image(self, cam: Camera, msg: Image) -> None:
        now = self._received(cam)
        try:
            conversions.check_image(msg)
        except conversions.ImageConversionError as e:
            self._invalid(cam, f"a malformed image: {e}")
            return
        self._enqueue(Frame(msg, now, False, cam))

    def _on_compressed(self, cam: Camera, msg: CompressedImage) -> None:
        now = self._received(cam)
        if len(msg.data) == 0:
            self._invalid(cam, "a compressed image without data")
            return
        try:
            conversions.compressed_kind(msg.format)
        except conversions.ImageConversionError as e:
            self._invalid(cam, f"a compressed image: {e}")
            return
        self._enqueue(Frame(msg, now, True, cam))

    def _enqueue(self, frame: Frame) -> None:
        if not self._active:
            return
        cam = frame.camera
        if cam.sync is not None and frame.depth is None:  # with depth: the colour frame waits for its pair
            cam.sync(0, frame.msg)
            return
        if self._slot.put(frame.camera.name, frame) is not None:
            self._count(frame.camera, "dropped")
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

    def _process(self, batch: list[tuple[str, Frame]]) -> None:
        """Worker thread: the newest frame of every camera that has one, one vocabulary, one
        batched forward pass, each camera's outputs."""
        vocab = self._vocab  # read once: the whole batch's vocabulary
        cfg, segmenter = self.cfg, self.segmenter
        if vocab is None or cfg is None or segmenter is None:
            return
        frames, images = [], []
        for _, frame in batch:
            try:
                images.append(self._decode(frame))
                frames.append(frame)
            except conversions.ImageConversionError as e:  # this camera's frame only
                self._invalid(frame.camera, f"an image that could not be decoded: {e}")
        if not frames:
            return
        t0 = time.perf_counter()
        # the segmenter resizes (once in, once out) and answers at each frame's resolution
        extra = {"embeddings": True} if cfg.publish_embeddings else {}
        if len(images) == 1:
            results = [segmenter.predict(images[0], vocabulary=vocab.encoded, max_output_side=cfg.max_side, **extra)]
        else:
            results = segmenter.predict_batch(images, vocabulary=vocab.encoded, max_output_side=cfg.max_side, **extra)
        model_s = time.perf_counter() - t0
        if any(r.vocabulary_version != vocab.encoded.version for r in results):  # pragma: no cover - API guard
            raise RuntimeError("the model answered with another vocabulary")
        # Outputs are built into the previous frame's message buffers (see conversions.label_image)
        # and published one by one as soon as each is ready, so a subscriber already receives the
        # semantic image while the panoptic message is built. The publish lock is held from the
        # vocabulary check to the last output: a vocabulary switch waits for this batch's outputs,
        # and no output of it is published once another vocabulary is active.
        with self._publish_lock:
            if self._vocab is not vocab:  # switched while this batch ran: never publish it
                for frame in frames:
                    self._count(frame.camera, "stale")
                return
            if not self._active:
                return
            published = [
                f for f, rgb, r in zip(frames, images, results, strict=True) if self._publish(f, rgb, r, vocab, cfg)
            ]
        for frame in published:
            stamp = frame.msg.header.stamp
            rec = FrameRecord(
                stamp.sec * 1_000_000_000 + stamp.nanosec, model_s, time.monotonic() - frame.received, vocab.version
            )
            self.stats.record(rec)
            if frame.camera.stats is not self.stats:
                frame.camera.stats.record(rec)

    def _publish(self, frame: Frame, rgb, result, vocab: ActiveVocabulary, cfg: NodeConfig) -> bool:
        """One camera's outputs of one frame (under the publish lock); False if it was dropped."""
        cam, header = frame.camera, frame.msg.header
        pubs = cam.pubs
        if "semantic" in pubs and not self._claim_stamp(cam.name, header.stamp, vocab.version):
            self._count(cam, "ambiguous")
            self._warn(
                "ambiguous",
                "dropped a frame whose stamp an output of another vocabulary version "
                "already carries (semantic images are paired with semantic/info by "
                "stamp): give every camera frame its own header stamp",
            )
            return False
        build = cam.outputs
        out = build.semantic(
            result,
            header,
            vocabulary_version=vocab.version,
            num_classes=len(vocab.names),
            score_threshold=cfg.semantic_score_threshold,
        )
        if "semantic" in pubs:  # the frame's vocabulary version first, then the image, same header
            pubs["semantic_info"].publish(out.semantic_info)
            pubs["semantic"].publish(out.semantic)
        if "panoptic" in pubs:
            pubs["panoptic"].publish(
                build.panoptic(
                    out, result, header, vocabulary=vocab.encoded.vocabulary, vocabulary_version=vocab.version
                )
            )
        if "segment_embeddings" in pubs:
            msg, ids, emb, image = build.embeddings(
                out, result, header, vocabulary=vocab.encoded.vocabulary, vocabulary_version=vocab.version
            )
            if self._embedding_cache is not None:  # first: who has the message can query its frame
                self._embedding_cache.add(cam.name, embeddings.CachedFrame(header, vocab.version, ids, emb, image))
            pubs["segment_embeddings"].publish(msg)
        if frame.depth is not None and "segments_3d" in pubs:
            self._publish_3d(frame, out, result, vocab, cfg)
        overlay_pub = pubs.get("overlay")
        if overlay_pub is not None and overlay_pub.get_subscription_count() > 0:
            overlay_pub.publish(
                build.overlay(
                    out,
                    rgb,
                    result,
                    header,
                    names=vocab.names,
                    palette=vocab.palette,
                    alpha=cfg.overlay_alpha,
                    draw_labels=cfg.overlay_draw_labels,
                )
            )
            self._count(cam, "overlays")
        return True

    def _publish_3d(self, frame: Frame, out, result, vocab: ActiveVocabulary, cfg: NodeConfig) -> None:
        """The frame's ``segments_3d`` and ``points``; depth or camera_info it cannot use is counted
        and warned about with the reason (the 2D outputs are published already)."""
        from .geometry3d import GeometryError

        cam = frame.camera
        try:
            msg, cloud = cam.outputs.geometry(
                out,
                result,
                frame.msg.header,
                frame.depth,
                frame.camera_info,
                vocabulary=vocab.encoded.vocabulary,
                vocabulary_version=vocab.version,
                cfg=cfg,
            )
        except (GeometryError, conversions.ImageConversionError) as e:
            self._count(cam, "depth_invalid")
            where = f" of camera '{cam.name}'" if cam.name else ""
            self._warn(f"depth{cam.name}", f"no 3D output for a frame{where}: {e}")
            return
        cam.pubs["segments_3d"].publish(msg)
        if cloud is not None:
            cam.pubs["points"].publish(cloud)

    def _claim_stamp(self, camera: str, stamp, version: int) -> bool:
        """False if an output of this camera with this stamp but another vocabulary version was
        published recently."""
        key = (camera, stamp.sec, stamp.nanosec)
        seen = self._published_stamps.get(key)
        if seen is not None and seen != version:
            return False
        self._published_stamps[key] = version
        self._published_stamps.move_to_end(key)
        while len(self._published_stamps) > STAMP_MEMORY:
            self._published_stamps.popitem(last=False)
        return True

    # -- losses below the callback ------------------------------------------------------------
    def _input_events(self, cam: Camera) -> SubscriptionEventCallbacks:
        """DDS events of a camera's subscription: frames lost before the callback, QoS mismatches."""
        return SubscriptionEventCallbacks(
            message_lost=lambda info: self._on_message_lost(cam, info),
            incompatible_qos=lambda info: self._on_incompatible_qos(cam, info),
        )

    def _on_message_lost(self, cam: Camera, info) -> None:
        self._count(cam, "lost", int(info.total_count_change))
        best_effort = cam.sub is not None and cam.sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        fix = (
            "the input is best effort: frames of this size do not get through whole; set "
            "input.qos.reliability: reliable (and publish reliable), use the shared-memory profile "
            "config/fastdds_shm.xml on both sides, or send smaller or compressed frames"
            if best_effort
            else "the subscriber falls behind: raise input.qos.depth or lower the camera rate"
        )
        where = f" of camera '{cam.name}'" if cam.name else ""
        self._warn(
            f"lost{cam.name}",
            f"{cam.stats.lost} input frame(s){where} lost below the callback (DDS sample lost): {fix}",
        )

    def _on_incompatible_qos(self, cam: Camera, info) -> None:
        self._count(cam, "incompatible_qos", int(info.total_count_change))
        from rclpy.qos import qos_policy_name_from_kind

        try:
            policy = qos_policy_name_from_kind(info.last_policy_kind)
        except Exception:  # noqa: BLE001
            policy = str(info.last_policy_kind)
        topic = cam.sub.topic_name if cam.sub is not None else cam.topic
        self._warn(
            f"incompatible_qos{cam.name}",
            f"a publisher of the input topic {topic} offers a QoS this subscription cannot "
            f"accept ({policy}); none of its frames arrive: set input.qos.reliability: "
            "best_effort (or make the camera publish reliable)",
            period=0.0,
        )

    # -- diagnostics ------------------------------------------------------------------------
    def diagnostics(self) -> DiagnosticStatus:
        vocab = self._vocab
        return segmentation_status(
            self.get_fully_qualified_name(),
            state=self._state_label,
            cfg=self.cfg,
            stats=self.stats.snapshot(),
            vocabulary_version=vocab.version if vocab else 0,
            vocabulary_classes=len(vocab.names) if vocab else 0,
            vocabulary_requests_answered=sum(self._encoder.answered.values()) if self._encoder else 0,
            last_warning=self.recent_warnings[-1] if self.recent_warnings else "",
            depth_sync=self._depth_sync_stats(self._cameras),
        )

    @staticmethod
    def _depth_sync_stats(cameras) -> dict | None:
        """The depth synchronisers' counters summed over ``cameras`` (None without depth)."""
        stats = [c.sync_stats() for c in cameras if c.sync_stats is not None and c.sync is not None]
        if not stats:
            return None
        offsets = [s["last_offset_s"] for s in stats if s.get("last_offset_s") is not None]
        return {
            "unpaired": sum(s["unpaired"] for s in stats),
            "dropped": [sum(d) for d in zip(*(s["dropped"] for s in stats), strict=True)],
            "last_offset_s": offsets[-1] if offsets else None,
        }

    def camera_diagnostics(self) -> list[DiagnosticStatus]:
        """With the ``cameras`` parameter, one status per camera (its own counters and rates)."""
        if not any(c.name for c in self._cameras):
            return []
        vocab = self._vocab
        return [
            segmentation_status(
                f"{self.get_fully_qualified_name()}/{cam.name}",
                state=self._state_label,
                cfg=self.cfg,
                stats=cam.stats.snapshot(),
                vocabulary_version=vocab.version if vocab else 0,
                vocabulary_classes=len(vocab.names) if vocab else 0,
                vocabulary_requests_answered=0,
                last_warning="",
            )
            for cam in self._cameras
        ]

    def _publish_diagnostics(self) -> None:
        pub = self._pubs.get("diagnostics")
        if pub is None:
            return
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [self.diagnostics(), *self.camera_diagnostics()]
        pub.publish(arr)


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
        node._close_text_worker()
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
            lingering = node.encoding_thread or node.text_thread
        rclpy.try_shutdown()
    if lingering is not None:
        # A model that cannot cancel is still encoding (a vocabulary or encode_text's texts) in C++ on
        # a daemon thread: letting the
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
