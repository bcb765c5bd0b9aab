"""Benchmark: N cameras through one node (one model, batched) against N nodes (N models).

    python -m ovseg_ros.bench --cameras 1,2,4 [--seconds 10] [-p name:=value ...]

For each N, in one process over DDS (Fast DDS defaults), each camera's client publishes a 640x480
rgb8 frame, waits for that frame's semantic + panoptic outputs, then publishes the next one: every
camera runs flat out, nothing queues. Two set-ups, the same topics (``/bench/cam<i>/image`` in,
``/bench/cam<i>/semantic`` and ``panoptic`` out):

- ``one node``: one node with ``cameras: [cam0, ..., cam<N-1>]`` (one model, one batch per step);
- ``N nodes``: N single-camera nodes, each with its own model and worker (one node per camera, as
  other ROS segmentation packages run; here in one process, so they share its cores and GIL).

Printed per set-up: aggregate output frames per second, per-camera latency (publish to the last
output, p50 / p90), the memory of the models' weights (distinct storages: N copies against one;
on a GPU also the peak CUDA memory). The model
defaults to the tiny random FC-CLIP of ``config/tiny_random.yaml``; ``-p`` picks another.
"""

from __future__ import annotations

import threading
import time

import numpy as np

__all__ = ["bench_cameras", "print_table"]


def _model_mb(nodes) -> float:
    """Bytes of the distinct weight and buffer storages of the nodes' models (shared ones once):
    what N models cost against one, independent of what the process had loaded before."""
    seen, total = set(), 0
    for r in nodes:
        seg = r.node.segmenter
        for t in (*seg.model.parameters(), *seg.model.buffers()):
            key = (t.device, t.untyped_storage().data_ptr())
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()
    return total / 2**20


def _cuda_mb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


class _Clients:
    """One closed-loop client per camera: publish, wait for the outputs, publish the next frame."""

    def __init__(self, context, cameras: list[str]):
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from ovseg.msg import PanopticSegmentation

        from .conversions import numpy_to_image
        from .harness import Spinner

        self.node = rclpy.create_node("ovseg_bench_cameras", context=context)
        q = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.cameras = cameras
        self.lock = threading.Lock()
        self.got: dict[tuple[str, int], set] = {}
        self.sent: dict[str, tuple[int, float]] = {}
        self.latency: dict[str, list[float]] = {c: [] for c in cameras}
        self.recording = False
        self.pubs = {}
        rng = np.random.default_rng(0)
        base = np.kron(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
        self.msgs = {c: numpy_to_image(np.roll(base, 40 * i, axis=1), "rgb8") for i, c in enumerate(cameras)}
        for c in cameras:
            self.node.create_subscription(Image, f"/bench/{c}/semantic", lambda m, c=c: self._on(c, "s", m), q)
            self.node.create_subscription(
                PanopticSegmentation, f"/bench/{c}/panoptic", lambda m, c=c: self._on(c, "p", m), q
            )
            self.pubs[c] = self.node.create_publisher(Image, f"/bench/{c}/image", q)
        self.spinner = Spinner(context, self.node)
        self._n = 0

    def _on(self, camera: str, kind: str, msg) -> None:
        t = time.perf_counter()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self.lock:
            kinds = self.got.setdefault((camera, stamp), set())
            kinds.add(kind)
            sent = self.sent.get(camera)
            if kinds == {"s", "p"} and sent is not None and sent[0] == stamp:
                if self.recording:
                    self.latency[camera].append(t - sent[1])
                del self.got[(camera, stamp)]
                self._publish(camera)

    def _publish(self, camera: str) -> None:
        self._n += 1
        stamp = 1_000_000_000 + self._n * 1_000_000
        msg = self.msgs[camera]
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        msg.header.frame_id = f"{camera}_optical"
        self.sent[camera] = (stamp, time.perf_counter())
        self.pubs[camera].publish(msg)

    def run(self, seconds: float, warmup: float) -> float:
        from .harness import wait_until

        wait_until(lambda: all(p.get_subscription_count() > 0 for p in self.pubs.values()), 60)
        time.sleep(0.5)
        with self.lock:
            for c in self.cameras:
                self._publish(c)
        time.sleep(warmup)
        t0 = time.perf_counter()
        with self.lock:
            self.recording = True
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
            with self.lock:  # a frame lost in transport would stop its camera's loop: resend
                now = time.perf_counter()
                for c, (_, t) in list(self.sent.items()):
                    if now - t > 5.0:
                        self._publish(c)
        with self.lock:
            self.recording = False
        return time.perf_counter() - t0

    def close(self) -> None:
        self.spinner.close(timeout=2)
        self.node.destroy_node()


def _run(n: int, one_node: bool, params: dict, seconds: float, warmup: float) -> dict:
    import rclpy

    from .harness import start_node

    context = rclpy.Context()
    rclpy.init(context=context)
    cameras = [f"cam{i}" for i in range(n)]
    if _cuda_mb() is not None:
        import torch

        torch.cuda.reset_peak_memory_stats()
    if one_node:
        nodes = [start_node(context, {**params, "cameras": cameras}, namespace="/bench")]
    else:
        nodes = [start_node(context, params, namespace=f"/bench/{c}", name=f"ovseg_{c}") for c in cameras]
    model_mb = _model_mb(nodes)
    clients = _Clients(context, cameras)
    try:
        elapsed = clients.run(seconds, warmup)
        cuda_mb = _cuda_mb()
    finally:
        clients.close()
        for r in nodes:
            r.close()
        context.try_shutdown()
    lat = {c: np.asarray(v) * 1e3 for c, v in clients.latency.items()}
    frames = sum(len(v) for v in lat.values())
    return {
        "cameras": n,
        "setup": "one node" if one_node else f"{n} nodes",
        "fps": frames / elapsed,
        "per_camera_fps": [len(v) / elapsed for v in lat.values()],
        "latency_p50_ms": float(np.median(np.concatenate(list(lat.values())))) if frames else float("nan"),
        "latency_p90_ms": float(np.percentile(np.concatenate(list(lat.values())), 90)) if frames else float("nan"),
        "model_mb": model_mb,
        "cuda_peak_mb": cuda_mb,
    }


def bench_cameras(counts: list[int], params: dict, *, seconds: float = 10.0, warmup: float = 2.0) -> list[dict]:
    """For each camera count: one node with that many cameras, then as many single-camera nodes."""
    rows = []
    for n in counts:
        rows.append(_run(n, True, params, seconds, warmup))
        if n > 1:
            rows.append(_run(n, False, params, seconds, warmup))
    return rows


def print_table(rows: list[dict]) -> None:
    print("| cameras | set-up | frames/s (all cameras) | per camera frames/s | latency p50 / p90 | model memory |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        per = ", ".join(f"{x:.1f}" for x in r["per_camera_fps"])
        cuda = r["cuda_peak_mb"]
        mem = f"{r['model_mb']:.0f} MB" + (f" (CUDA peak {cuda:.0f} MB)" if cuda is not None else "")
        print(
            f"| {r['cameras']} | {r['setup']} | {r['fps']:.1f} | {per} | "
            f"{r['latency_p50_ms']:.0f} / {r['latency_p90_ms']:.0f} ms | {mem} |"
        )
