"""Launch the ovseg segmentation node.

    ros2 launch ovseg ovseg.launch.py camera_topic:=/camera/color/image_raw model:=fcclip \
        params_file:=/path/to/my_robot.yaml

Arguments: ``camera_topic`` (remapped onto the node's ``image`` input; ``<camera_topic>/compressed``
with ``input_transport:=compressed``), ``model`` (fcclip or catseg), ``params_file`` (loaded after
the package's ``config/ovseg.yaml``, so it only needs to override), ``namespace`` (default
``segmentation``), ``lifecycle`` (true: a managed ``ovseg_lifecycle_node``; false: ``ovseg_node``,
configured and activated at start), ``input_transport`` (raw or compressed), ``device``,
``checkpoint`` ('' = from the parameter files), ``log_level``, ``fastdds_profile`` (a Fast DDS XML
profile for the node's process, e.g. the package's ``config/fastdds_shm.xml``; '' = inherit the
environment; see the README's "Node latency and DDS transports").
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import LifecycleNode, Node


def _nodes(context):
    def arg(name):
        return context.launch_configurations[name]

    share = get_package_share_directory("ovseg")
    params = [os.path.join(share, "config", "ovseg.yaml")]
    if arg("params_file"):
        params.append(arg("params_file"))
    overrides = {"model": arg("model"), "input.transport": arg("input_transport"), "device": arg("device")}
    if arg("checkpoint"):
        overrides["checkpoint"] = arg("checkpoint")
    params.append(overrides)
    camera = arg("camera_topic")
    env = {"FASTDDS_DEFAULT_PROFILES_FILE": arg("fastdds_profile")} if arg("fastdds_profile") else None
    common = dict(additional_env=env, package="ovseg", namespace=arg("namespace"), name="ovseg", output="screen",
                  parameters=params, remappings=[("image", camera), ("image/compressed", camera + "/compressed")],
                  arguments=["--ros-args", "--log-level", arg("log_level")])
    if arg("lifecycle").lower() in ("true", "1", "yes"):
        return [LifecycleNode(executable="ovseg_lifecycle_node", **common)]
    return [Node(executable="ovseg_node", **common)]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("camera_topic", default_value="/camera/image_raw",
                              description="camera image topic (the base topic for compressed input)"),
        DeclareLaunchArgument("model", default_value="fcclip", description="fcclip or catseg"),
        DeclareLaunchArgument("params_file", default_value="",
                              description="parameter file loaded after config/ovseg.yaml (overrides)"),
        DeclareLaunchArgument("namespace", default_value="segmentation", description="namespace of the node"),
        DeclareLaunchArgument("lifecycle", default_value="false",
                              description="true: managed lifecycle node; false: starts active"),
        DeclareLaunchArgument("input_transport", default_value="raw", description="raw or compressed"),
        DeclareLaunchArgument("device", default_value="auto", description="auto, cpu, cuda or cuda:N"),
        DeclareLaunchArgument("checkpoint", default_value="", description="checkpoint file ('' = from the params)"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug, info, warn, error"),
        DeclareLaunchArgument("fastdds_profile", default_value="",
                              description="Fast DDS XML profile for the node's process ('' = inherit)"),
        OpaqueFunction(function=_nodes),
    ])
