"""The README's node, launch and vocabulary commands, run as written with the real ROS 2 tools.

Right after the setup (tools/setup.sh, plus tools/install-ros2-client.sh for the tools a robot
has from its distro), in a shell with the venv activated: `ros2 pkg prefix`, `ros2 launch` of
the launch file with and without a parameter file and with lifecycle on and off, `ros2 run`,
`ros2 topic echo` of each output, `ros2 service call` of both services, `ros2 param set`,
`ros2 lifecycle set` through every transition, and a message_filters synchronizer pairing the
node's outputs (the node itself uses none). Each scenario runs on its own ROS domain; the nodes
start together once for the module (the tiny random-weight model) and are shared by the checks.
Every README command of those sections must be one the tests run (see the last test).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import rclpy
from node_harness import rgb_image
from ros2_tools import require_ros2_tools, ros2_background, ros2_shell, stop_background

from ovseg_ros import conversions

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
NODE = "/segmentation/ovseg"

# README commands, verbatim (test_every_readme_ros2_command_is_tested checks they are the README's)
LAUNCH_TINY = (
    "ros2 launch ovseg ovseg.launch.py camera_topic:=/camera/image_raw "
    "params_file:=$(ros2 pkg prefix ovseg)/share/ovseg/config/tiny_random.yaml"
)
LAUNCH_LIFECYCLE = (
    "ros2 launch ovseg ovseg.launch.py lifecycle:=true "
    "params_file:=$(ros2 pkg prefix ovseg)/share/ovseg/config/tiny_random.yaml"
)
LAUNCH_ROBOT = (
    "ros2 launch ovseg ovseg.launch.py camera_topic:=/camera/color/image_raw "
    "params_file:=$(ros2 pkg prefix ovseg)/share/ovseg/config/fcclip_robot.yaml "
    "checkpoint:=/opt/ovseg/models/fcclip_cocopan.pth"
)
RUN_NODE = (
    "ros2 run ovseg ovseg_node --ros-args --params-file "
    "$(ros2 pkg prefix ovseg)/share/ovseg/config/tiny_random.yaml -r image:=/camera/image_raw"
)
RUN_CAMERAS = (
    "ros2 run ovseg ovseg_node --ros-args --params-file "
    '$(ros2 pkg prefix ovseg)/share/ovseg/config/tiny_random.yaml -p "cameras:=[front, left]" '
    "-r front/image:=/cam_front/image_raw -r left/image:=/cam_left/image_raw"
)
RUN_MAPPING = (
    "ros2 run ovseg ovseg_node --ros-args --params-file "
    "$(ros2 pkg prefix ovseg)/share/ovseg/config/tiny_random.yaml -p publish.embeddings:=true -r image:=/camera/image_raw"
)
ECHO_LABEL_INFO = "ros2 topic echo --once /segmentation/label_info"
ECHO_EMBEDDINGS = "ros2 topic echo --once --no-arr /segmentation/segment_embeddings"
ENCODE_TEXT = 'ros2 service call /segmentation/encode_text ovseg/srv/EncodeText "{texts: [red mug, fire extinguisher]}"'
QUERY = 'ros2 service call /segmentation/query ovseg/srv/QuerySegments "{texts: [red mug, fire extinguisher]}"'
ECHO_CAMERA = {c: f"ros2 topic echo --once --no-arr /segmentation/{c}/semantic" for c in ("front", "left")}
ECHO = {
    "semantic": "ros2 topic echo --once --no-arr /segmentation/semantic",
    "panoptic": "ros2 topic echo --once --no-arr /segmentation/panoptic",
    "overlay": "ros2 topic echo --once --no-arr /segmentation/overlay",
    "vocabulary": "ros2 topic echo --once /segmentation/vocabulary",
    "diagnostics": "ros2 topic echo --once /diagnostics",
}
SET_VOCABULARY = (
    "ros2 service call /segmentation/set_vocabulary ovseg/srv/SetVocabulary "
    '"{classes: [{name: mug, synonyms: [cup]}, {name: wall}, {name: rug, thing: 2}]}"'
)
GET_VOCABULARY = "ros2 service call /segmentation/get_vocabulary ovseg/srv/GetVocabulary"
PARAM_RUNTIME = "ros2 param set /segmentation/ovseg max_rate 2.0"
PARAM_CONFIGURE = "ros2 param set /segmentation/ovseg model catseg"
LIFECYCLE_GET = "ros2 lifecycle get /segmentation/ovseg"
LIFECYCLE = {
    t: f"ros2 lifecycle set /segmentation/ovseg {t}"
    for t in ("configure", "activate", "deactivate", "cleanup", "shutdown")
}
PKG_PREFIX = "ros2 pkg prefix ovseg"
TESTED = {
    LAUNCH_TINY,
    LAUNCH_LIFECYCLE,
    LAUNCH_ROBOT,
    RUN_NODE,
    RUN_CAMERAS,
    RUN_MAPPING,
    ECHO_LABEL_INFO,
    ECHO_EMBEDDINGS,
    ENCODE_TEXT,
    QUERY,
    *ECHO_CAMERA.values(),
    *ECHO.values(),
    SET_VOCABULARY,
    GET_VOCABULARY,
    PARAM_RUNTIME,
    PARAM_CONFIGURE,
    LIFECYCLE_GET,
    *LIFECYCLE.values(),
    PKG_PREFIX,
}

# A user's parameter file with values other than the launch arguments' old defaults (fcclip, auto, raw)
USER_PARAMS = """/**:
  ros__parameters:
    model: catseg
    device: cpu
    input:
      transport: compressed
"""

pytestmark = pytest.mark.slow


def _domains() -> dict[str, int]:
    base = 101 + (os.getpid() % 16) * 7  # 101..212, apart from conftest's 1..100 (FastDDS: at most 232)
    names = ("tiny", "lifecycle", "user", "bare", "run", "cameras", "mapping")
    return {name: base + i for i, name in enumerate(names)}


class Feeder:
    """Publishes a real image at 5 Hz on ``topic`` of ``domain`` (the camera) while ``on``."""

    def __init__(self, domain: int, topic: str):
        from sensor_msgs.msg import Image

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("camera", context=self.context)
        self.pub = self.node.create_publisher(Image, topic, 10)
        self.msg = conversions.numpy_to_image(rgb_image(3, 48, 64), "rgb8")
        self.msg.header.frame_id = "camera_optical"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        n = 0
        while not self._stop.wait(0.2):
            n += 1
            self.msg.header.stamp.sec = 2000 + n
            self.pub.publish(self.msg)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.node.destroy_node()
        self.context.try_shutdown()


def _wait_log(proc, pattern: str, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = proc.log_path.read_text()
        if re.search(pattern, text):
            return text
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    text = proc.log_path.read_text()
    raise AssertionError(f"{pattern!r} not in the output of {proc.args[-1]!r}:\n{text[-3000:]}")


def _ends_after_shutdown(proc, timeout: float = 60) -> None:
    """Lifecycle shutdown finalizes the node and its process then exits by itself, status 0
    (``ros2 launch`` with it: its only process ended)."""
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"still running {timeout} s after shutdown:\n{proc.log_path.read_text()[-3000:]}"
        ) from None
    assert rc == 0, proc.log_path.read_text()[-3000:]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Every scenario's process, started together: name -> (domain, process)."""
    require_ros2_tools()
    folder = tmp_path_factory.mktemp("ros2_tools")
    user_params = folder / "my.yaml"
    user_params.write_text(USER_PARAMS)
    domains = _domains()
    commands = {
        "tiny": LAUNCH_TINY,  # lifecycle off, the package's params file
        "lifecycle": LAUNCH_LIFECYCLE,  # lifecycle on, the package's params file
        "user": f"ros2 launch ovseg ovseg.launch.py lifecycle:=true params_file:={user_params}",
        "bare": "ros2 launch ovseg ovseg.launch.py",  # lifecycle off, no params file: needs a checkpoint
        "run": RUN_NODE,
        "cameras": RUN_CAMERAS,
        "mapping": RUN_MAPPING,
    }
    procs = {
        name: ros2_background(cmd, domains[name], folder / f"{name}.log", cwd=folder) for name, cmd in commands.items()
    }
    feeders = {name: Feeder(domains[name], "/camera/image_raw") for name in ("tiny", "lifecycle", "mapping")}
    feeders.update({c: Feeder(domains["cameras"], f"/cam_{c}/image_raw") for c in ("front", "left")})
    try:
        yield {name: (domains[name], procs[name]) for name in procs}
    finally:
        for f in feeders.values():
            f.close()
        for proc in procs.values():
            stop_background(proc)
        for d in domains.values():
            ros2_shell("ros2 daemon stop", d, timeout=60)


NOT_YET = ("not found", "does not appear to be published yet", "Could not determine the type")


def _until_found(command: str, domain: int, timeout: float = 60) -> str:
    """``command``'s output once the ros2 tools have discovered the node or topic it names (just
    after the node started, discovery takes a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        res = ros2_shell(command, domain)
        out = res.stdout + res.stderr
        if res.returncode == 0 or time.monotonic() > deadline or not any(s in out for s in NOT_YET):
            return _ok(res)
        time.sleep(1)


def _shell_found(command: str, domain: int, timeout: float = 30):
    """``ros2_shell(command)``, run again while the tools have not discovered the node yet ("Node
    not found": a fresh CLI process races discovery; nothing was sent to the node)."""
    deadline = time.monotonic() + timeout
    while True:
        res = ros2_shell(command, domain)
        if "Node not found" not in res.stdout + res.stderr or time.monotonic() > deadline:
            return res
        time.sleep(1)


def _ok(res) -> str:
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    return out


def _call_idempotent(command: str, domain: int) -> subprocess.CompletedProcess:
    """``ros2 service call`` of a read-only service, once more if the first waits past 60 s.

    A DDS service response can be dropped when the server answers before it has matched the new
    client's response reader (ros2/rmw_fastrtps#390, ros2/rmw_cyclonedds#74); ``ros2 service call``
    then waits for ever. Seen once under the load of this module's seven nodes on two cores. A
    second call of a read-only service is safe; one that also hangs still fails the test.
    """
    try:
        return ros2_shell(command, domain, timeout=60)
    except subprocess.TimeoutExpired:
        return ros2_shell(command, domain, timeout=60)


def test_the_package_is_installed_the_ros_way_in_the_venv(tmp_path):
    require_ros2_tools()
    prefix = _ok(ros2_shell(PKG_PREFIX, 0)).strip()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()
    res = _ok(ros2_shell("ros2 pkg executables ovseg", 0))
    for exe in ("ovseg_node", "ovseg_lifecycle_node", "ovseg_bag_eval"):
        assert f"ovseg {exe}" in res
    # every $(ros2 pkg prefix ovseg)/share/... path in the README exists
    paths = set(re.findall(r"\$\(ros2 pkg prefix ovseg\)(/share/ovseg/[\w./-]+)", README))
    assert paths
    for p in paths:
        assert Path(prefix + p).is_file(), p
    assert (Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / "ovseg").is_file()


def test_launch_without_a_params_file_says_a_checkpoint_is_needed(stack):
    _, proc = stack["bare"]
    text = _wait_log(proc, r"no checkpoint: set 'checkpoint'")
    assert "allow_random_weights" in text


def test_launch_keeps_the_users_params_file_values(stack):
    """Launch arguments not given must not override the params file (model, device, transport)."""
    domain, proc = stack["user"]
    _wait_log(proc, "waiting for a lifecycle manager")
    for name, value in (("model", "catseg"), ("device", "cpu"), ("input.transport", "compressed")):
        out = _until_found(f"ros2 param get {NODE} {name}", domain)
        assert f"String value is: {value}" in out, (name, out)
    # configure fails (CAT-Seg without a checkpoint) with the reason; shutdown from unconfigured
    res = _shell_found(LIFECYCLE["configure"], domain)
    assert "Transitioning failed" in res.stdout + res.stderr, res.stdout + res.stderr
    assert "catseg" in proc.log_path.read_text() and "no checkpoint" in proc.log_path.read_text()
    assert "unconfigured" in _ok(_shell_found(LIFECYCLE_GET, domain))
    assert "Transitioning successful" in _ok(_shell_found(LIFECYCLE["shutdown"], domain))
    _ends_after_shutdown(proc)


def test_ros2_run_starts_the_node_which_takes_lifecycle_commands_too(stack):
    domain, proc = stack["run"]
    text = _wait_log(proc, r"active: segmenting /camera/image_raw")
    assert proc.poll() is None, text
    assert _until_found(LIFECYCLE_GET, domain).startswith("active")
    assert "Transitioning successful" in _ok(_shell_found(LIFECYCLE["deactivate"], domain))
    assert "Transitioning successful" in _ok(_shell_found(LIFECYCLE["shutdown"], domain))  # from inactive
    _ends_after_shutdown(proc)


def test_ros2_run_with_two_cameras_publishes_each_cameras_outputs(stack):
    domain, proc = stack["cameras"]
    _wait_log(proc, r"active: segmenting /cam_front/image_raw, /cam_left/image_raw")
    for c, cmd in ECHO_CAMERA.items():
        out = _until_found(cmd, domain)
        assert "encoding: mono16" in out and "frame_id: camera_optical" in out and "height: 48" in out, (c, out)
    res = _ok(ros2_shell("ros2 topic list", domain))
    assert "/segmentation/front/panoptic" in res and "/segmentation/left/panoptic" in res
    assert "/segmentation/semantic\n" not in res  # no single-camera outputs beside them


def _echo_all(domain: int) -> dict[str, str]:
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(len(ECHO)) as pool:
        futures = {k: pool.submit(_until_found, cmd, domain) for k, cmd in ECHO.items()}
        return {k: f.result() for k, f in futures.items()}


def test_outputs_services_and_parameters_as_the_readme_writes_them(stack):
    domain, proc = stack["tiny"]
    _wait_log(proc, r"active: segmenting /camera/image_raw")
    out = _echo_all(domain)
    assert "encoding: mono16" in out["semantic"] and "height: 48" in out["semantic"]
    assert "encoding: rgb8" in out["overlay"] and "width: 64" in out["overlay"]
    version = int(re.search(r"^version: (\d+)", out["vocabulary"], re.M).group(1))
    assert "name: person" in out["vocabulary"]  # coco_panoptic, the default
    assert f"vocabulary_version: {version}" in out["panoptic"]
    assert "/segmentation/ovseg: segmentation" in out["diagnostics"] and "processed_frames" in out["diagnostics"]

    res = _ok(ros2_shell(SET_VOCABULARY, domain))
    assert "success=True" in res, res
    new_version = int(re.search(r"version=(\d+)", res).group(1))
    assert new_version > version
    got = _ok(_call_idempotent(GET_VOCABULARY, domain))
    classes = re.findall(r"VocabularyClass\(name='([^']*)', synonyms=\[([^]]*)\], thing=(\d), seen=(\d)\)", got)
    assert [(n, int(t)) for n, _, t, _ in classes] == [("mug", 1), ("wall", 2), ("rug", 2)], got
    assert f"version={new_version}" in got

    assert "Set parameter successful" in _ok(ros2_shell(PARAM_RUNTIME, domain))
    assert "Double value is: 2.0" in _ok(ros2_shell(f"ros2 param get {NODE} max_rate", domain))
    res = ros2_shell(PARAM_CONFIGURE, domain)
    text = res.stdout + res.stderr
    assert "Setting parameter failed" in text and "takes effect at configure" in text, text
    assert "String value is: fcclip" in _ok(ros2_shell(f"ros2 param get {NODE} model", domain))
    res = ros2_shell(f"ros2 param set {NODE} device cuda:7", domain)
    assert "Setting parameter failed: device 'cuda:7'" in res.stdout + res.stderr


def test_a_mappers_topics_and_services_as_the_readme_writes_them(stack):
    domain, proc = stack["mapping"]
    _wait_log(proc, r"active: segmenting /camera/image_raw")
    info = _until_found(ECHO_LABEL_INFO, domain)
    assert "class_name: person" in info and "class_id: 0" in info and "threshold: 0.0" in info, info
    emb = _until_found(ECHO_EMBEDDINGS, domain)
    assert "dimension: 1024" in emb and "frame_id: camera_optical" in emb, emb
    enc = _ok(_call_idempotent(ENCODE_TEXT, domain))
    assert "success=True" in enc and "dimension=1024" in enc, enc
    ans = _ok(_call_idempotent(QUERY, domain))
    assert "success=True" in ans and re.search(r"best_segment_ids=\[\d+, \d+\]", ans), ans
    bad = _ok(ros2_shell('ros2 service call /segmentation/query ovseg/srv/QuerySegments "{texts: []}"', domain))
    assert "success=False" in bad and "at least one" in bad, bad


def test_message_filters_pairs_semantic_and_panoptic_of_one_frame(stack):
    """The node uses no synchronizer; a consumer pairs its outputs by the source header's stamp."""
    import message_filters
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from ovseg.msg import PanopticSegmentation

    domain, proc = stack["tiny"]
    _wait_log(proc, r"active: segmenting /camera/image_raw")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("consumer", context=context)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    pairs = []
    try:
        sem = message_filters.Subscriber(node, Image, "/segmentation/semantic")
        pan = message_filters.Subscriber(node, PanopticSegmentation, "/segmentation/panoptic")
        sync = message_filters.TimeSynchronizer([sem, pan], 10)
        sync.registerCallback(lambda s, p: pairs.append((s, p)))
        deadline = time.monotonic() + 60
        while len(pairs) < 3 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.1)
        assert len(pairs) >= 3
        for s, p in pairs:
            assert s.header == p.header and s.header.frame_id == "camera_optical"
            assert (s.height, s.width) == (p.id_image.height, p.id_image.width) == (48, 64)
    finally:
        ex.shutdown()
        node.destroy_node()
        context.try_shutdown()


def test_lifecycle_through_every_transition_as_the_readme_writes_it(stack):
    domain, proc = stack["lifecycle"]
    _wait_log(proc, "waiting for a lifecycle manager")

    state_after = {"configure": "inactive", "activate": "active", "deactivate": "inactive", "cleanup": "unconfigured"}

    def step(transition):
        res = _shell_found(LIFECYCLE[transition], domain)
        out = res.stdout + res.stderr
        if res.returncode == -signal.SIGSEGV and "Transitioning successful" in out and transition in state_after:
            # The ros2 CLI process itself (not the node) crashed in its own exit after printing the
            # node's answer: seen once, in a fresh-clone CI run on 2026-12-08 (status -11 after
            # "Transitioning successful" of the second configure). Whether the transition happened
            # is the node's state, asked with another CLI process.
            assert _ok(_shell_found(LIFECYCLE_GET, domain)).startswith(state_after[transition]), (transition, out)
            return
        _ok(res)
        assert "Transitioning successful" in out, (transition, out)

    def vocabulary_version():
        return int(re.search(r"^version: (\d+)", _until_found(ECHO["vocabulary"], domain), re.M).group(1))

    assert "unconfigured" in _until_found(LIFECYCLE_GET, domain)
    step("configure")
    assert _ok(_shell_found(LIFECYCLE_GET, domain)).startswith("inactive")
    v1 = vocabulary_version()
    step("activate")
    assert _ok(_shell_found(LIFECYCLE_GET, domain)).startswith("active")
    assert "encoding: mono16" in _until_found(ECHO["semantic"], domain)
    step("deactivate")
    step("cleanup")
    assert "unconfigured" in _ok(_shell_found(LIFECYCLE_GET, domain))
    step("configure")
    v2 = vocabulary_version()
    assert v2 > v1  # a new configuration never reuses a version
    step("activate")
    step("shutdown")
    _ends_after_shutdown(proc)


def test_the_robot_launch_line_names_existing_files_and_arguments():
    require_ros2_tools()
    res = _ok(ros2_shell(LAUNCH_ROBOT.replace("ros2 launch ", "ros2 launch --show-args "), 0))
    assert "'checkpoint'" in res and "'params_file'" in res


def _readme_ros2_commands() -> set[str]:
    """Every `ros2 ...` line of the README's bash blocks (continuation lines joined, comments cut)."""
    commands = set()
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        joined = re.sub(r"\\\n\s*", "", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("ros2 "):
                commands.add(re.sub(r"\s+", " ", line))
    return commands


#: README commands that cannot run here, each with the reason: SROS2's `ros2 security` verbs come
#: from the sros2 package, which is neither on PyPI nor among the ros2-client wheels, and the Fast
#: DDS in the PyPI wheels is built without the security plugins (README, "Reliability and security").
UNTESTABLE_HERE = {
    "ros2 security create_keystore ~/ovseg_keys",
    "ros2 security create_enclave ~/ovseg_keys /ovseg/segmentation",
    "ros2 security create_enclave ~/ovseg_keys /ovseg/operator",
}


def test_every_readme_ros2_command_is_tested():
    readme = _readme_ros2_commands() - UNTESTABLE_HERE
    assert readme == TESTED, (
        f"README commands not tested: {sorted(readme - TESTED)}; "
        f"tested commands not in the README: {sorted(TESTED - readme)}"
    )
