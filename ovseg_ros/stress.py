"""Attack a running ovseg node over real DDS (loopback only) and print the reliability figures.

    python -m ovseg_ros.stress [--seconds-per-attack 10] [--domain 42]
    python -m ovseg_ros.stress --transport-table   # which QoS/transport carries which frame size

Starts ``ovseg_node`` with the tiny random FC-CLIP (config/tiny_random.yaml) in a child process
on a private domain limited to localhost, then runs each class of attack from issue 12 with
bounded loops that end by themselves: malformed images, vocabulary abuse, file-read attempts,
read-only parameters, request floods, get during a long encoding, huge frames (reliable and best
effort), lifecycle cycles, max_rate changes, and Ctrl-C while a vocabulary encodes. It prints:
attacks tried and refused with the node alive; requests answered out of requests sent; peak
memory per frame size; memory after huge frames and after 20 lifecycle cycles against the
baseline; frames lost below the callback; time from a max_rate change to its effect.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import tiny
from .resources import config_file

__all__ = ["main"]


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _Sampler:
    """Samples a process's resident memory at 50 Hz; ``peak()`` since the last ``reset()``."""

    def __init__(self, pid: int):
        self.pid, self._peak, self._stop = pid, 0.0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self._peak = max(self._peak, _rss_mib(self.pid))
            except OSError:
                return
            time.sleep(0.02)

    def reset(self) -> None:
        self._peak = _rss_mib(self.pid)

    def peak(self) -> float:
        return self._peak

    def stop(self) -> None:
        self._stop.set()


def _transport_role(role: str, h: int, w: int, reliability: str, frames: int) -> int:
    """One side of a --transport-table run: 'pub' sends ``frames`` at 5 Hz, 'sub' counts (JSON line)."""
    import json

    import rclpy
    from rclpy.event_handler import SubscriptionEventCallbacks
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    q = QoSProfile(
        depth=5, reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    )
    node = rclpy.create_node(f"transport_{role}")
    if role == "sub":
        got, lost = [0], [0]
        node.create_subscription(
            Image,
            "transport_test",
            lambda m: got.__setitem__(0, got[0] + 1),
            q,
            event_callbacks=SubscriptionEventCallbacks(message_lost=lambda i: lost.__setitem__(0, i.total_count)),
        )
        end = time.monotonic() + 6.0 + frames / 5.0
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
        print(json.dumps({"received": got[0], "lost": lost[0]}), flush=True)
    else:
        pub = node.create_publisher(Image, "transport_test", q)
        end = time.monotonic() + 10
        while pub.get_subscription_count() == 0 and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(1.0)
        msg = Image(height=h, width=w, encoding="rgb8", step=3 * w, data=bytes(3 * h * w))
        for _ in range(frames):
            pub.publish(msg)
            time.sleep(0.2)
        time.sleep(2.0)
    rclpy.try_shutdown()
    return 0


def transport_table(domain: int, frames: int = 20) -> None:
    """Print, per frame size, QoS and Fast DDS profile, how many of ``frames`` arrive (two processes)."""
    import json

    profile = config_file("fastdds_shm.xml")
    print(f"rgb8 frames, {frames} at 5 Hz, publisher and subscriber in two processes (received / lost events):")
    for name, extra in (
        ("Fast DDS defaults", {}),
        ("fastdds_shm.xml", {"FASTDDS_DEFAULT_PROFILES_FILE": str(profile)}),
    ):
        for h, w in ((480, 640), (1080, 1920), (2160, 3840)):
            row = []
            for reliability in ("best_effort", "reliable"):
                domain += 1
                env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", **extra)
                env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
                base = [sys.executable, "-m", "ovseg_ros.stress", "--role"]
                args = [str(h), str(w), reliability, str(frames)]
                sub = subprocess.Popen(base + ["sub"] + args, env=env, stdout=subprocess.PIPE, text=True)
                time.sleep(0.5)
                subprocess.run(base + ["pub"] + args, env=env, timeout=120)
                out = sub.communicate(timeout=120)[0].strip().splitlines()
                r = json.loads(out[-1]) if out else {"received": -1, "lost": -1}
                row.append(f"{reliability} {r['received']}/{frames} (lost {r['lost']})")
            print(f"  {name:18s} {w}x{h}: " + ", ".join(row), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--domain", type=int, default=42)
    ap.add_argument("--seconds-per-attack", type=float, default=8.0)
    ap.add_argument("--cycles", type=int, default=20, help="lifecycle cycles")
    ap.add_argument(
        "--transport-table",
        action="store_true",
        help="only measure which QoS and Fast DDS profile carry which frame sizes",
    )
    ap.add_argument("--role", nargs=5, help=argparse.SUPPRESS)  # one side of --transport-table
    args = ap.parse_args(argv)
    if args.role:
        role, h, w, reliability, frames = args.role
        return _transport_role(role, int(h), int(w), reliability, int(frames))
    if args.transport_table:
        transport_table(args.domain)
        return 0

    env = dict(
        os.environ, ROS_DOMAIN_ID=str(args.domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1"
    )
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    os.environ.update(ROS_DOMAIN_ID=str(args.domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    tmp = Path(tempfile.mkdtemp(prefix="ovseg_stress_"))
    vocab_dir = tmp / "vocabularies"
    vocab_dir.mkdir()
    (vocab_dir / "robot.txt").write_text("wall [stuff]\nfloor [stuff]\nperson\ncup\n")
    secret = tmp / "secret.txt"
    secret.write_text("root:x:0:0:stress-secret\n")
    log = open(tmp / "node.log", "w")
    cmd = tiny.node_command(
        vocab_dir / "robot.txt",
        "-p",
        f"vocabulary.directories:=['{vocab_dir}']",
        "-p",
        "diagnostics.period:=0.5",
        "-p",
        "input.qos.depth:=2",
    )
    child = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        return _attack(child, args, secret, tmp)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        log.close()


def _attack(child, args, secret: Path, tmp: Path) -> int:  # noqa: C901 - one scenario after the other
    import numpy as np
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from ovseg.msg import Vocabulary, VocabularyClass
    from ovseg.srv import GetVocabulary, SetVocabulary

    rclpy.init()
    node = rclpy.create_node("ovseg_stress")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    q100 = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    got = {"semantic": [], "vocabulary": [], "diag": []}
    node.create_subscription(
        Image,
        "/segmentation/semantic",
        lambda m: got["semantic"].append((time.monotonic(), m)),
        QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE),
    )
    node.create_subscription(
        Vocabulary,
        "/segmentation/vocabulary",
        got["vocabulary"].append,
        QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE),
    )
    node.create_subscription(DiagnosticArray, "/diagnostics", got["diag"].append, 10)
    pub_be = node.create_publisher(
        Image, "/segmentation/image", QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)
    )
    pub_rel = node.create_publisher(
        Image, "/segmentation/image", QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
    )
    setc = node.create_client(SetVocabulary, "/segmentation/set_vocabulary", qos_profile=q100)
    getc = node.create_client(GetVocabulary, "/segmentation/get_vocabulary")
    change = node.create_client(ChangeState, "/segmentation/ovseg/change_state")
    params = node.create_client(SetParameters, "/segmentation/ovseg/set_parameters")

    def spin(pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            ex.spin_once(timeout_sec=0.02)
        return pred()

    def call(client, req, timeout=60.0):
        if not spin(client.service_is_ready, 30):
            return None
        f = client.call_async(req)
        spin(f.done, timeout)
        return f.result() if f.done() else None

    def diag():
        if not got["diag"]:
            return {}
        return {kv.key: kv.value for kv in got["diag"][-1].status[0].values}

    def alive():
        return child.poll() is None and call(getc, GetVocabulary.Request(), 10) is not None

    def frame(h, w, stamp):
        m = Image(height=h, width=w, encoding="rgb8", step=3 * w)
        m.data = np.random.default_rng(stamp).integers(0, 255, 3 * h * w, dtype=np.uint8).tobytes()
        m.header.stamp.sec, m.header.frame_id = stamp, "camera"
        return m

    def set_param(name, value):
        if isinstance(value, str):
            pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        elif isinstance(value, bool):
            pv = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
        elif isinstance(value, list):
            pv = ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=value)
        else:
            pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float(value))
        r = call(params, SetParameters.Request(parameters=[Parameter(name=name, value=pv)]))
        return bool(r and r.results[0].successful)

    def transition(tid):
        r = call(change, ChangeState.Request(transition=Transition(id=tid)), 120)
        return bool(r and r.success)

    def cycle():
        return (
            transition(Transition.TRANSITION_DEACTIVATE)
            and transition(Transition.TRANSITION_CLEANUP)
            and transition(Transition.TRANSITION_CONFIGURE)
            and transition(Transition.TRANSITION_ACTIVATE)
        )

    figures: list[str] = []
    tried = refused = 0
    t_start = time.monotonic()
    if not spin(lambda: pub_rel.get_subscription_count() > 0 and got["vocabulary"], 180):
        print("the node did not come up; see", tmp / "node.log")
        return 1
    sampler = _Sampler(child.pid)
    stamp = [100]

    def stream(pub, h, w, seconds, rate=10.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            stamp[0] += 1
            pub.publish(frame(h, w, stamp[0]))
            spin(lambda: False, 1.0 / rate)

    # warm up and baseline
    stream(pub_rel, 480, 640, 3.0)
    baseline = _rss_mib(child.pid)

    # 1. malformed images: each refused (invalid_frames) and the node alive
    bad = []
    for enc, step, n in (
        ("rgb8", 10, 48 * 64 * 3),
        ("nope", 192, 48 * 64 * 3),
        ("rgb8", 192, 100),
        ("rgb8", 0, 0),
        ("mono16", 64, 48 * 64),
    ):
        m = Image(height=48, width=64 if n else 0, encoding=enc, step=step, data=bytes(n))
        bad.append(m)
    before = int(diag().get("invalid_frames", "0"))
    for m in bad:
        pub_rel.publish(m)
        spin(lambda: False, 0.2)
    spin(lambda: int(diag().get("invalid_frames", "0")) >= before + len(bad), 5)
    n_ref = int(diag().get("invalid_frames", "0")) - before
    tried += len(bad)
    refused += min(n_ref, len(bad))
    figures.append(f"malformed images: {n_ref} of {len(bad)} refused")

    # 2. vocabulary abuse through set_vocabulary
    abuse = [
        ([], ()),
        (["a", "A"], ()),
        (["x" * 300], ()),
        (["ok"] * 2, ()),
        (["bell\x07"], ()),
        ([f"c{i}" for i in range(70000)], ()),
        (["cat"], ["no slot"]),
        (["cat"], ["{} {}"]),
        (["cat", "cat\u200b"], ()),
        (["\u200b\u200c"], ()),
        (["cat"], ["a photo of a {{}}."]),
    ]
    n_ref, accepted = 0, []
    for names, templates in abuse:
        r = call(
            setc,
            SetVocabulary.Request(classes=[VocabularyClass(name=n) for n in names], prompt_templates=list(templates)),
        )
        if r and not r.success:
            n_ref += 1
        else:
            accepted.append(ascii(names[:2]) + (f" {ascii(templates)}" if templates else ""))
    tried += len(abuse)
    refused += n_ref
    figures.append(
        f"vocabulary abuse: {n_ref} of {len(abuse)} refused"
        + (f"; accepted (validation is ovseg_models'): {', '.join(accepted)}" if accepted else "")
    )
    call(setc, SetVocabulary.Request(classes=[VocabularyClass(name=n) for n in ("wall", "floor", "person", "cup")]))

    # 3. file-read oracle and read-only parameters
    n_try = n_ref = 0
    for spec in (str(secret), "/etc/passwd", "../secret.txt", "/proc/self/environ", "/dev/zero"):
        n_try += 1
        set_param("vocabulary.default", spec)
        ok = transition(Transition.TRANSITION_DEACTIVATE) and transition(Transition.TRANSITION_CLEANUP)
        leaked = transition(Transition.TRANSITION_CONFIGURE)
        if not leaked:
            n_ref += 1
        set_param("vocabulary.default", "robot.txt")
        if not leaked:
            ok = ok and transition(Transition.TRANSITION_CONFIGURE)
        ok = ok and transition(Transition.TRANSITION_ACTIVATE)
    n_try += 1
    n_ref += not set_param("vocabulary.directories", ["/"])
    spin(lambda: False, 0.5)
    echoed = any("stress-secret" in c.name or "root" in c.name for v in got["vocabulary"] for c in v.classes)
    tried += n_try
    refused += n_ref
    figures.append(
        f"file-read attempts and read-only parameters: {n_ref} of {n_try} refused; "
        f"file content published: {'YES' if echoed else 'no'}"
    )

    # 4. request flood and get during an encoding
    clients = [node.create_client(SetVocabulary, "/segmentation/set_vocabulary", qos_profile=q100) for _ in range(30)]
    spin(lambda: all(c.service_is_ready() for c in clients), 20)
    spin(lambda: False, 1.0)
    big = SetVocabulary.Request(classes=[VocabularyClass(name=f"object {i}") for i in range(600)])
    futures = [
        c.call_async(big if i == 29 else SetVocabulary.Request(classes=[VocabularyClass(name=f"c{i}")]))
        for i, c in enumerate(clients)
    ]
    spin(lambda: False, 0.5)
    t0 = time.monotonic()
    g = getc.call_async(GetVocabulary.Request())
    spin(g.done, 30)
    get_s = time.monotonic() - t0
    encoding_then = not futures[-1].done()
    spin(lambda: all(f.done() for f in futures), 300)
    answered = sum(f.done() for f in futures)
    kinds = {}
    for f in futures:
        if f.done():
            r = f.result()
            k = "success" if r.success else r.message.split(":")[0]
            kinds[k] = kinds.get(k, 0) + 1
    figures.append(
        f"set_vocabulary flood: {answered} of {len(futures)} answered {kinds}; get_vocabulary answered "
        f"in {get_s * 1e3:.0f} ms {'while the 600-class vocabulary was encoding' if encoding_then else ''}"
    )
    call(setc, SetVocabulary.Request(classes=[VocabularyClass(name=n) for n in ("wall", "floor", "person", "cup")]))

    # 5. huge frames: peak memory per size, losses below the callback, memory afterwards; first with
    # the node's default best-effort input, then with input.qos.reliability reliable
    stream(pub_rel, 480, 640, 2.0)
    baseline = _rss_mib(child.pid)
    for name, pub in (("best_effort", pub_be), ("reliable", pub_rel)):
        if name == "reliable":
            set_param("input.qos.reliability", "reliable")
            cycle()
            spin(lambda: pub_rel.get_subscription_count() > 0, 10)
        for h, w in ((1080, 1920), (2160, 3840)):
            lost0, recv0 = int(diag().get("lost_frames", "0")), int(diag().get("received_frames", "0"))
            n_sem = len(got["semantic"])
            sampler.reset()
            base = _rss_mib(child.pid)
            stream(pub, h, w, args.seconds_per_attack / 2, rate=5.0)
            spin(lambda: False, 1.5)
            d = diag()
            figures.append(
                f"{w}x{h} {name} input (Fast DDS defaults): received {int(d.get('received_frames', '0')) - recv0}, "
                f"outputs {len(got['semantic']) - n_sem}, lost below the callback "
                f"{int(d.get('lost_frames', '0')) - lost0}; peak RSS +{sampler.peak() - base:.0f} MiB "
                f"(frame {h * w * 3 / 2**20:.0f} MiB)"
            )
    set_param("input.qos.reliability", "")
    cycle()
    stream(pub_rel, 480, 640, 3.0)
    after_huge = _rss_mib(child.pid)
    figures.append(
        f"memory: baseline {baseline:.0f} MiB, after huge frames {after_huge:.0f} MiB ({after_huge - baseline:+.0f})"
    )

    # 6. lifecycle cycles under load
    ok_cycles = 0
    before_cycles = _rss_mib(child.pid)
    for _ in range(args.cycles):
        stamp[0] += 1
        pub_rel.publish(frame(480, 640, stamp[0]))
        ok_cycles += cycle()
    stream(pub_rel, 480, 640, 2.0)
    after_cycles = _rss_mib(child.pid)
    tried += args.cycles
    figures.append(
        f"lifecycle: {ok_cycles} of {args.cycles} cycles; memory {before_cycles:.0f} -> "
        f"{after_cycles:.0f} MiB ({after_cycles - before_cycles:+.0f})"
    )

    # 7. max_rate: 0.1 Hz, then back to 0 while streaming at 10 Hz
    set_param("max_rate", 0.1)
    stream(pub_rel, 480, 640, 2.0)
    n = len(got["semantic"])
    t_set = time.monotonic()
    set_param("max_rate", 0.0)
    end = time.monotonic() + 20
    while len(got["semantic"]) == n and time.monotonic() < end:
        stamp[0] += 1
        pub_rel.publish(frame(480, 640, stamp[0]))
        spin(lambda: len(got["semantic"]) > n, 0.1)
    effect = (got["semantic"][n][0] - t_set) if len(got["semantic"]) > n else float("nan")
    figures.append(f"max_rate 0.1 -> 0: next output {effect:.2f} s after the change")

    node_alive = alive()
    # 8. Ctrl-C while a vocabulary encodes
    f = setc.call_async(SetVocabulary.Request(classes=[VocabularyClass(name=f"thing {i}") for i in range(3000)]))
    spin(lambda: False, 2.0)
    child.send_signal(signal.SIGINT)
    try:
        rc = child.wait(60)
    except subprocess.TimeoutExpired:
        rc = None
    spin(f.done, 5)
    tried += 1
    refused += rc == 0
    text = (tmp / "node.log").read_text()
    figures.append(
        f"Ctrl-C while encoding: exit status {rc}, "
        f"{'ABORTED' if 'terminate called' in text else 'no abort'}; pending set_vocabulary "
        f"{'answered: ' + f.result().message if f.done() else 'not answered'}"
    )
    sampler.stop()
    print(f"ovseg stress ({time.monotonic() - t_start:.0f} s, node log {tmp / 'node.log'}):")
    print(f"  attacks tried {tried}, refused or survived {refused + ok_cycles}; node alive before Ctrl-C: {node_alive}")
    for line in figures:
        print("  " + line)
    rclpy.try_shutdown()
    return 0 if node_alive and rc == 0 and not echoed else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
