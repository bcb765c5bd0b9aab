"""launch/: standard ROS 2 Python launch files.

With the real ``launch``/``launch_ros`` (a ROS 2 distro, or ``tools/install-ros2-client.sh``) the
launch description is built and visited with real arguments and ``ros2 launch --show-args`` runs
on it; without them those tests skip with the install command in the reason, and fail in CI
(``ros2_tools.require_ros2_tools``). The static checks (valid Python, the declared arguments, the
executables it starts exist in CMakeLists.txt, the parameter files are valid ROS parameter YAML
accepted by rcl) always run. Running the launch file with nodes: test_ros2_tools.py.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch" / "ovseg.launch.py"
ARGS = {
    "camera_topic",
    "model",
    "params_file",
    "namespace",
    "lifecycle",
    "input_transport",
    "device",
    "checkpoint",
    "log_level",
    "fastdds_profile",
}


def test_launch_file_is_valid_python_with_the_expected_arguments():
    tree = ast.parse(LAUNCH.read_text())
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs
    declared = {
        n.args[0].value
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "DeclareLaunchArgument"
    }
    assert declared == ARGS
    text = LAUNCH.read_text()
    cmake = (REPO / "CMakeLists.txt").read_text()
    for exe in ("ovseg_node", "ovseg_lifecycle_node"):
        assert f'"{exe}"' in text and f"{exe}=" in cmake


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "config").glob("*.yaml")))
def test_parameter_files_are_valid_and_known(name, ros_context):
    from ovseg_ros.params import PARAMETERS

    data = yaml.safe_load((REPO / "config" / name).read_text())
    params = data["/**"]["ros__parameters"]

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, prefix + k + ".")
            else:
                yield prefix + k, v

    values = dict(flat(params))
    assert set(values) <= set(PARAMETERS), set(values) - set(PARAMETERS)
    for k, v in values.items():
        default = PARAMETERS[k][0]
        assert type(v) is type(default) or (isinstance(default, float) and isinstance(v, float)), (k, v)
    if name == "ovseg.yaml":
        assert set(values) == set(PARAMETERS)  # the reference file lists every parameter
    # rcl itself parses it into a node's parameters
    import rclpy

    from ovseg_ros.node import SegmentationNode

    node = SegmentationNode(
        context=ros_context,
        cli_args=["--ros-args", "--params-file", str(REPO / "config" / name)],
        use_global_arguments=False,
    )
    try:
        from ovseg_ros.params import parameter_value

        for k, v in values.items():  # an empty array leaves the parameter unset: the node reads its default
            assert parameter_value(node, k) == v, k
    finally:
        node.destroy_node()
    del rclpy


def _launch():
    from ros2_tools import require_ros2_tools

    require_ros2_tools()
    import launch

    return launch


@pytest.mark.parametrize("lifecycle", ["false", "true"])
def test_launch_description_builds_under_real_launch(lifecycle, monkeypatch):
    launch = _launch()
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    monkeypatch.setenv("AMENT_PREFIX_PATH", str(Path(sys.prefix)))  # as the venv's bin/activate does
    try:
        get_package_share_directory("ovseg")
    except PackageNotFoundError:
        pytest.fail("the ovseg package is not in the venv's ament index: run tools/setup.sh")
    source = PythonLaunchDescriptionSource(str(LAUNCH))
    ld = source.get_launch_description(launch.LaunchContext())
    names = {a.name for a in ld.get_launch_arguments()}
    assert names == ARGS
    context = launch.LaunchContext()
    context.launch_configurations.update(
        {
            "camera_topic": "/cam/image",
            "model": "catseg",
            "params_file": "",
            "namespace": "seg",
            "lifecycle": lifecycle,
            "input_transport": "raw",
            "device": "cpu",
            "checkpoint": "/x.pth",
            "log_level": "info",
            "fastdds_profile": str(REPO / "config" / "fastdds_shm.xml"),
        }
    )
    opaque = [e for e in ld.entities if type(e).__name__ == "OpaqueFunction"][0]
    nodes = opaque.execute(context)
    assert len(nodes) == 1
    node = nodes[0]
    expected = "LifecycleNode" if lifecycle == "true" else "Node"
    assert type(node).__name__ == expected


@pytest.mark.slow
def test_launch_file_runs_under_ros2_launch(tmp_path):
    _launch()
    from ros2_tools import ros2_shell

    res = ros2_shell("ros2 launch --show-args ovseg ovseg.launch.py", 0, timeout=90)
    assert res.returncode == 0, res.stdout + res.stderr
    for a in ARGS:
        assert f"'{a}'" in res.stdout
