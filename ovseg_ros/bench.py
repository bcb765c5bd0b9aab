"""Benchmark: end-to-end latency and node overhead at 640x480 (prints figures; not a test).

    python -m ovseg_ros.bench [--frames 60] [--modes inproc,fastdds,large_data,shm_profile] [-p name:=value ...]
    python -m ovseg_ros.bench --cameras 1,2,4 [--seconds 10]   (see ovseg_ros.bench_cameras)
    python -m ovseg_ros.bench --embeddings [--modes inproc,large_data]
    python -m ovseg_ros.bench --depth [--modes inproc,large_data]

For each mode a client publishes 640x480 rgb8 frames one at a time (the next when the previous
one's outputs arrived, so nothing queues) and measures, per frame, the time from publishing to
receiving the last of the node's outputs (semantic + panoptic; overlay when ``--overlay``). The node
records its model time (``Segmenter.predict``) per frame; overhead = end to end - model time: image
transport both ways, conversions, message building, the worker hand-off.

Modes: ``inproc`` (client and node in one process, separate executors), ``fastdds`` (node in a
child process, FastDDS defaults), ``large_data`` (both processes with
``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA``), ``shm_profile`` (both processes with the package's
Fast DDS profile ``config/fastdds_shm.xml``: a shared-memory segment that holds whole frames). The model defaults to the tiny random FC-CLIP of
``config/tiny_random.yaml`` (the overhead does not depend on the model); ``-p`` picks another,
e.g. ``-p variant:=rn50 -p checkpoint:=/path/fcclip_cocopan_r50.pth -p allow_random_weights:=false``.
Target: node overhead at most 5 ms median at 640x480. ``--floor`` also runs each mode with an echo
node that answers every frame with messages of the same sizes and does nothing else: its overhead is
the transport floor of that mode, and the difference is the node's own share.

``--embeddings`` runs each mode twice, side by side: as above, and with ``publish.embeddings`` (the
client then also waits for ``segment_embeddings``); the difference of the medians is what the
embeddings add end to end. It first prints the cost of the embedding step alone for 50 segments
of a 640x480 frame (FC-CLIP ConvNeXt-L shapes: 250 queries x 768; CAT-Seg ViT-B: a 24x24x512
grid pooled over an id map), message included. Target: at most 1 ms median.

``--depth`` does the same with ``depth.enabled``: the client also publishes an aligned 16UC1 depth
image and its camera_info with every frame (a ray-cast room: floor, wall, boxes) and waits for
``segments_3d`` and ``points`` too. It first prints ``python -m ovseg_ros.geometry3d``'s figures
(centroids, extents and the 20,000-point cloud alone, strides 1-3). Target: at most 3 ms median.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from . import tiny
from .params import parse_param
from .resources import share_file

#: the benchmark's settings over the tiny model of ``config/tiny_random.yaml``
BENCH_PARAMS = {
    # the model resizes (as on a robot, config/fcclip_robot.yaml: 640x480 frames are not
    # rescaled by the node); node-level resize.max_side would add its resampling to the overhead
    "resize.max_side": 0,
    "vocabulary.default": "ade20k_150",
    "publish.diagnostics": False,
    # reliable input: a lost fragment of a best-effort 900 KB frame would lose the frame
    "input.qos.reliability": "reliable",
    "input.qos.depth": 2,
}


def _params(extra: dict) -> dict:
    return tiny.params(**{**BENCH_PARAMS, **extra})


class EchoNode:
    """The transport floor: the node's traffic without its work.

    For each frame it waits ``delay`` seconds (standing in for the model, so that, as with the
    real node, the input has arrived in full before outputs go back), then publishes messages of
    the node's output sizes (a mono16 semantic image and a panoptic id image at the input's
    resolution) without decoding the frame or building segments. Its overhead (end to end minus the
    wait) is what DDS and rclpy alone cost for the same traffic.
    """

    def __init__(self, context, delay: float = 0.1):
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from ovseg.msg import PanopticSegmentation

        from .worker import FrameWorker, LatestSlot, Stats

        self.node = rclpy.create_node("ovseg_bench_echo", namespace="/segmentation", context=context)
        self.stats = Stats()
        self.delay = delay
        self._sem, self._pan = Image(), PanopticSegmentation()
        q_in = QoSProfile(depth=int(BENCH_PARAMS["input.qos.depth"]), reliability=ReliabilityPolicy.RELIABLE)
        out = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._pub_sem = self.node.create_publisher(Image, "semantic", out)
        self._pub_pan = self.node.create_publisher(PanopticSegmentation, "panoptic", out)
        self._slot = LatestSlot()
        self._worker = FrameWorker(self._slot, self._answer)
        self._worker.start()
        self.node.create_subscription(Image, "image", self._on_image, q_in)

    def _on_image(self, msg) -> None:
        self._slot.put((msg, time.monotonic()))
        time.sleep(0)  # as the node: hand the GIL to the worker

    def _answer(self, item) -> None:
        from .conversions import label_image
        from .worker import FrameRecord

        msg, received = item
        t0 = time.perf_counter()
        time.sleep(self.delay)
        waited = time.perf_counter() - t0
        label_image(msg.height, msg.width, header=msg.header, msg=self._sem)
        self._pub_sem.publish(self._sem)
        self._pan.header = msg.header
        label_image(msg.height, msg.width, header=msg.header, msg=self._pan.id_image)
        self._pub_pan.publish(self._pan)
        s = msg.header.stamp
        self.stats.record(FrameRecord(s.sec * 1_000_000_000 + s.nanosec, waited, time.monotonic() - received, 0))

    def destroy_node(self) -> None:
        self._worker.stop()
        self.node.destroy_node()


def _start_node(context, params, echo: bool = False):
    """The segmentation node (or :class:`EchoNode`), active and spun on its own thread as in
    ovseg_node; ``(node, spinner)``."""
    from .harness import Spinner, start_node

    if echo:
        node = EchoNode(context)
        return node, Spinner(context, node.node)
    try:
        running = start_node(context, params)
    except RuntimeError as e:
        raise SystemExit(str(e)) from None
    return running.node, running.spinner


def client_main(args) -> int:
    """Child process: the measuring client of a cross-process mode; {stamp: seconds} to a file."""
    import rclpy

    rclpy.init()
    e2e = _client(rclpy.get_default_context(), args.frames, args.warmup, args.overlay, args.timeout, args.extra)
    Path(args.client_out).write_text(json.dumps({str(k): v for k, v in e2e.items()}))
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: with LARGE_DATA, Fast DDS's TCP threads are still joinable
    # when this short-lived process exits, and its teardown aborts ("terminate called without an
    # active exception") after the results are written. The OS reclaims everything.
    os._exit(0)


def serve(args) -> int:
    """Child process: run the node until ``--frames`` frames were processed; dump its per-frame timings."""
    import rclpy

    from .harness import wait_until

    params = _params(dict(args.param))
    rclpy.init()
    context = rclpy.get_default_context()
    node, spinner = _start_node(context, params, echo=args.echo)
    print("ready", flush=True)
    wait_until(lambda: node.stats.processed >= args.frames + args.warmup, args.timeout, interval=0.05)
    time.sleep(0.5)
    recs = [{"stamp": r.stamp_ns, "model": r.model, "node": r.node} for r in node.stats.records]
    Path(args.stats_file).write_text(json.dumps(recs))
    spinner.close(timeout=2)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def embedding_microbench(segments: int = 50, repeats: int = 200) -> dict[str, float]:
    """Median milliseconds of the embedding step of one 640x480 frame with ``segments`` segments
    (computing the rows and building ``ovseg/SegmentEmbeddings``), for both models' shapes."""
    import torch

    from ovseg_models.embeddings import pool_embeddings, query_segment_embeddings
    from ovseg_models.segmenter import Segment

    from .embeddings import segment_embeddings_msg

    rng = np.random.default_rng(0)
    h, w = 480, 640
    # an id map of `segments` blocks (as a panoptic map: contiguous regions)
    ys, xs = np.meshgrid(np.arange(h) * 5 // h, np.arange(w) * 10 // w, indexing="ij")
    ids = (ys * 10 + xs + 1).astype(np.uint16)
    ids[rng.random((h, w)) < 0.05] = 0
    seg_ids = list(range(1, segments + 1))
    queries = torch.randn(250, 768)
    segs = [
        Segment(i, 0, "x", 1.0, 1, (0, 0, 1, 1), i % 3 != 0, queries=(i, i + 60) if i % 3 == 0 else (i,))
        for i in seg_ids
    ]
    dense = torch.nn.functional.normalize(torch.randn(512, 24, 24), dim=0)

    def timed(fn) -> float:
        for _ in range(5):
            fn()
        t = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
        return float(np.median(t) * 1e3)

    from std_msgs.msg import Header

    header = Header()
    return {
        "fcclip_ms": timed(lambda: segment_embeddings_msg(header, 1, seg_ids, query_segment_embeddings(queries, segs))),
        "catseg_ms": timed(lambda: segment_embeddings_msg(header, 1, seg_ids, pool_embeddings(dense, ids, seg_ids))),
    }


#: the side-by-side runs: the parameters they set, the outputs the client then also waits for
EXTRAS = {
    "embeddings": ({"publish.embeddings": True}, ("embeddings",)),
    "depth": ({"depth.enabled": True}, ("segments_3d", "points")),
}


def _depth_frame(h: int = 480, w: int = 640):
    """A 16UC1 depth image (mm) of a room seen by a 525 px pinhole camera and its camera_info K:
    floor 1 m below the camera, a wall 5 m ahead, two boxes."""
    f, cx, cy = 525.0 * w / 640, (w - 1) / 2, (h - 1) / 2
    v = (np.arange(h)[:, None] - cy) / f
    with np.errstate(divide="ignore"):
        floor = np.where(v > 0, 1.0 / np.maximum(v, 1e-9), np.inf)
    z = np.minimum(np.broadcast_to(floor, (h, w)), 5.0).copy()
    z[h // 3 : h // 2, w // 8 : w // 3] = 2.5
    z[h // 4 : h // 2, w // 2 : 3 * w // 4] = 2.0
    return (z * 1000).astype(np.uint16), [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]


def _client(context, frames: int, warmup: int, overlay: bool, timeout: float, extra: str | None = None):
    """Publish frames one by one; {stamp_ns: end-to-end seconds}. ``extra``: a key of :data:`EXTRAS`
    (its outputs awaited too; with ``depth`` a depth image and camera_info go with every frame)."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from ovseg.msg import PanopticSegmentation

    from .conversions import numpy_to_image
    from .harness import Spinner, wait_until

    node = rclpy.create_node("ovseg_bench_client", context=context)
    got: dict[int, set] = {}
    arrived: dict[int, float] = {}
    want = {"semantic", "panoptic"} | ({"overlay"} if overlay else set()) | set(EXTRAS[extra][1] if extra else ())
    lock = threading.Lock()
    ev = threading.Event()

    def on(key, msg):
        t = time.perf_counter()
        s = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with lock:
            got.setdefault(s, set()).add(key)
            if got[s] >= want:
                arrived[s] = t
                ev.set()

    q = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, "/segmentation/semantic", lambda m: on("semantic", m), q)
    node.create_subscription(PanopticSegmentation, "/segmentation/panoptic", lambda m: on("panoptic", m), q)
    if overlay:
        node.create_subscription(Image, "/segmentation/overlay", lambda m: on("overlay", m), q)
    if extra == "embeddings":
        from ovseg.msg import SegmentEmbeddings

        node.create_subscription(
            SegmentEmbeddings, "/segmentation/segment_embeddings", lambda m: on("embeddings", m), q
        )
    depth_pubs = None
    if extra == "depth":
        from sensor_msgs.msg import CameraInfo, PointCloud2

        from ovseg.msg import Segments3D

        node.create_subscription(Segments3D, "/segmentation/segments_3d", lambda m: on("segments_3d", m), q)
        node.create_subscription(PointCloud2, "/segmentation/points", lambda m: on("points", m), q)
        depth_pubs = (
            node.create_publisher(Image, "/segmentation/depth/image", q),
            node.create_publisher(CameraInfo, "/segmentation/depth/camera_info", q),
        )
        depth_mm, k = _depth_frame()
        depth_msg = numpy_to_image(depth_mm, "16UC1")
        info = CameraInfo(width=depth_mm.shape[1], height=depth_mm.shape[0], k=k)
    pub = node.create_publisher(Image, "/segmentation/image", q)
    spinner = Spinner(context, node)
    wait_until(lambda: pub.get_subscription_count() > 0, 60)
    time.sleep(1.0)
    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    e2e = {}
    for i in range(frames + warmup):
        msg = numpy_to_image(np.roll(base, i, axis=1), "rgb8")
        s = 1_000_000_000 + i * 1_000_000
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(s, 1_000_000_000)
        msg.header.frame_id = "camera_color_optical_frame"
        ev.clear()
        t0 = time.perf_counter()
        if depth_pubs:  # sent first: the colour frame is what the node waits on
            depth_msg.header = info.header = msg.header
            depth_pubs[0].publish(depth_msg)
            depth_pubs[1].publish(info)
        pub.publish(msg)
        limit = time.monotonic() + timeout
        while s not in arrived and time.monotonic() < limit:
            ev.wait(0.05)
            ev.clear()
        if s in arrived and i >= warmup:
            e2e[s] = arrived[s] - t0
        time.sleep(0.02)
    spinner.close(timeout=2)
    node.destroy_node()
    return e2e


def _summary(name: str, e2e: dict, model: dict, node_t: dict) -> dict:
    keys = [s for s in e2e if s in model]
    e = np.array([e2e[s] for s in keys]) * 1e3
    m = np.array([model[s] for s in keys]) * 1e3
    n = np.array([node_t[s] for s in keys]) * 1e3
    o = e - m
    res = {"mode": name, "frames": len(keys)}
    for label, v in (("end_to_end_ms", e), ("model_ms", m), ("overhead_ms", o), ("in_node_ms", n)):
        res[label] = (
            {"p50": float(np.median(v)), "p90": float(np.percentile(v, 90)), "max": float(v.max())} if len(v) else None
        )
    return res


_RUNS = itertools.count()

#: cross-process modes: the environment both processes get
TRANSPORT_ENV = {
    "fastdds": lambda args: {},
    "large_data": lambda args: {"FASTDDS_BUILTIN_TRANSPORTS": args.large_data},
    "shm_profile": lambda args: {"FASTDDS_DEFAULT_PROFILES_FILE": str(_existing(args.profile))},
}


def _existing(path: Path | None) -> Path:
    if path is None or not Path(path).is_file():
        raise SystemExit(f"Fast DDS profile {path} not found: pass --profile")
    return Path(path)


def run_mode(mode: str, args, echo: bool = False, extra: str | None = None) -> dict:
    """One mode's figures; ``echo``: with :class:`EchoNode` instead of the segmentation node;
    ``extra``: with the parameters of that :data:`EXTRAS` entry (and the client waiting for its
    outputs too)."""
    import rclpy

    more = list(EXTRAS[extra][0].items()) if extra else []
    args = argparse.Namespace(**{**vars(args), "param": [*args.param, *more], "extra": extra})
    params = _params(dict(args.param))
    # a fresh domain per run: no run meets the participants (or the leftovers) of another
    domain = 100 + (os.getpid() + next(_RUNS)) % 100
    if mode == "inproc":
        ctx = rclpy.Context()
        rclpy.init(context=ctx, domain_id=domain)
        node, spinner = _start_node(ctx, params, echo=echo)
        try:
            e2e = _client(ctx, args.frames, args.warmup, args.overlay, args.timeout, extra)
            recs = list(node.stats.records)
        finally:
            spinner.close(timeout=2)
            node.destroy_node()
            ctx.try_shutdown()
        return _summary(mode, e2e, {r.stamp_ns: r.model for r in recs}, {r.stamp_ns: r.node for r in recs})
    if mode not in TRANSPORT_ENV:
        raise SystemExit(f"unknown mode {mode!r}: inproc, {', '.join(TRANSPORT_ENV)}")
    transport = TRANSPORT_ENV[mode](args)
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    for k in ("FASTDDS_BUILTIN_TRANSPORTS", "FASTDDS_DEFAULT_PROFILES_FILE"):
        env.pop(k, None)
    env.update(transport)
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        cmd = [
            sys.executable,
            "-m",
            "ovseg_ros.bench",
            "--serve",
            "--stats-file",
            str(stats),
            "--frames",
            str(args.frames),
            "--warmup",
            str(args.warmup),
            "--timeout",
            str(args.timeout * 10),
        ]
        for k, v in args.param:
            cmd += ["-p", f"{k}:={json.dumps(v) if not isinstance(v, str) else v}"]
        if echo:
            cmd.append("--echo")
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready", "the node process did not start"
            # the client in a process of its own too: Fast DDS reads its transport settings once
            # per process, so an earlier mode's must not leak into this one's
            e2e_file = Path(tmp) / "e2e.json"
            client = [
                sys.executable,
                "-m",
                "ovseg_ros.bench",
                "--client-out",
                str(e2e_file),
                "--frames",
                str(args.frames),
                "--warmup",
                str(args.warmup),
                "--timeout",
                str(args.timeout),
            ]
            if args.overlay:
                client.append("--overlay")
            if extra:
                client += ["--extra", extra]
            subprocess.run(client, env=env, check=True, timeout=(args.frames + args.warmup) * (args.timeout + 1) + 120)
            e2e = {int(k): v for k, v in json.loads(e2e_file.read_text()).items()}
            child.wait(args.timeout * 10 + 30)
        finally:
            if child.poll() is None:
                child.kill()
        recs = json.loads(stats.read_text())
    return _summary(mode, e2e, {r["stamp"]: r["model"] for r in recs}, {r["stamp"]: r["node"] for r in recs})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ovseg_ros.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--modes", default="inproc,fastdds,large_data,shm_profile")
    ap.add_argument("--overlay", action="store_true", help="also subscribe to (and so compute) the overlay")
    ap.add_argument("-p", "--param", action="append", default=[], type=parse_param, metavar="NAME:=VALUE")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for one frame")
    ap.add_argument(
        "--large-data",
        default="LARGE_DATA",
        metavar="VALUE",
        help="FASTDDS_BUILTIN_TRANSPORTS for the large_data mode, e.g. 'LARGE_DATA?max_msg_size=2MB'",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        default=share_file("config/fastdds_shm.xml"),
        help="Fast DDS XML profile of the shm_profile mode (default: the package's config/fastdds_shm.xml)",
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--stats-file", help=argparse.SUPPRESS)
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also measure each mode with an echo node (same traffic, no processing): the transport floor",
    )
    ap.add_argument(
        "--embeddings",
        action="store_true",
        help="also run each mode with publish.embeddings (side by side) and time the embedding step alone",
    )
    ap.add_argument(
        "--depth",
        action="store_true",
        help="also run each mode with depth.enabled and a depth stream (side by side) and time the 3D step alone",
    )
    ap.add_argument("--extra", choices=sorted(EXTRAS), help=argparse.SUPPRESS)
    ap.add_argument("--client-out", help=argparse.SUPPRESS)
    ap.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--cameras",
        help="camera counts, e.g. 1,2,4: one node with N cameras against N nodes (ovseg_ros.bench_cameras)",
    )
    ap.add_argument("--seconds", type=float, default=10.0, help="--cameras: measured seconds per set-up")
    args = ap.parse_args(argv)
    if args.serve:
        return serve(args)
    if args.client_out:
        return client_main(args)
    if args.cameras:
        from .bench_cameras import bench_cameras, print_table

        params = _params({"input.qos.depth": 1, **dict(args.param)})
        counts = [int(x) for x in args.cameras.split(",")]
        print(f"640x480 rgb8, closed loop per camera, {args.seconds:.0f} s per set-up, model {params['model']}")
        rows = bench_cameras(counts, params, seconds=args.seconds)
        print_table(rows)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return 0
    results = []
    if args.embeddings:
        micro = embedding_microbench()
        print(
            f"embedding step, 50 segments of a 640x480 frame (rows + message), median: FC-CLIP "
            f"{micro['fcclip_ms']:.3f} ms, CAT-Seg {micro['catseg_ms']:.3f} ms (target <= 1 ms)"
        )
    if args.depth:
        from . import geometry3d

        print("3D step alone (target <= 3 ms median), python -m ovseg_ros.geometry3d:")
        geometry3d.bench()
    extras = [name for name in EXTRAS if getattr(args, name)]
    print(
        f"640x480 rgb8, {args.frames} frames per mode (+{args.warmup} warm-up), model "
        f"{_params(dict(args.param))['model']}/{_params(dict(args.param))['variant']}"
        f"{' + overlay' if args.overlay else ''}"
    )
    print(
        f"{'mode':<12} {'e2e p50':>9} {'e2e p90':>9} {'model p50':>10} {'overhead p50':>13} {'overhead p90':>13}"
        f" {'in-node p50':>12}" + (f" {'floor p50':>10} {'node share':>11}" if args.floor else "")
    )
    for mode in args.modes.split(","):
        r = run_mode(mode.strip(), args)
        results.append(r)
        if r["frames"] == 0:
            print(f"{mode:<12} no frames came back")
            continue
        line = (
            f"{mode:<12} {r['end_to_end_ms']['p50']:8.2f}ms {r['end_to_end_ms']['p90']:8.2f}ms "
            f"{r['model_ms']['p50']:9.2f}ms {r['overhead_ms']['p50']:12.2f}ms {r['overhead_ms']['p90']:12.2f}ms"
            f" {r['in_node_ms']['p50'] - r['model_ms']['p50']:11.2f}ms"
        )
        if args.floor:
            f = run_mode(mode.strip(), args, echo=True)
            r["floor_ms"] = f["overhead_ms"]
            if f["overhead_ms"]:
                line += f" {f['overhead_ms']['p50']:9.2f}ms {r['overhead_ms']['p50'] - f['overhead_ms']['p50']:10.2f}ms"
        print(line, flush=True)
        for extra in extras:
            e = run_mode(mode.strip(), args, extra=extra)
            r[f"with_{extra}"] = e
            if e["frames"]:
                added = e["end_to_end_ms"]["p50"] - r["end_to_end_ms"]["p50"]
                added_overhead = e["overhead_ms"]["p50"] - r["overhead_ms"]["p50"]
                print(
                    f"{'+' + extra:<12} {e['end_to_end_ms']['p50']:8.2f}ms {e['end_to_end_ms']['p90']:8.2f}ms "
                    f"{e['model_ms']['p50']:9.2f}ms {e['overhead_ms']['p50']:12.2f}ms "
                    f"{e['overhead_ms']['p90']:12.2f}ms  (overhead {added_overhead:+.2f} ms, end to end {added:+.2f} ms)",
                    flush=True,
                )
            else:
                print(f"{'+' + extra:<12} no frames came back", flush=True)
    met = [r["mode"] for r in results if r["overhead_ms"] and r["overhead_ms"]["p50"] <= 5.0]
    missed = [r["mode"] for r in results if r["mode"] not in met]
    print(
        f"target (node overhead <= 5 ms median): met in {len(met)}/{len(results)} modes"
        + (f"; not met in: {', '.join(missed)}" if missed else "")
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
