"""Launch the ovseg segmentation node.

    ros2 launch ovseg ovseg.launch.py camera_topic:=/camera/color/image_raw model:=fcclip \
        params_file:=/path/to/my_robot.yaml

Arguments: ``camera_topic`` (remapped onto the node's ``image`` input; ``<camera_topic>/compressed``
with ``input_transport:=compressed``), ``params_file`` (loaded after the package's
``config/ovseg.yaml``, so it only needs to override), ``namespace`` (default ``segmentation``),
``lifecycle`` (true: a managed ``ovseg_lifecycle_node``; false: ``ovseg_node``, configured and
activated at start), ``log_level``, ``fastdds_profile`` (a Fast DDS XML profile for the node's
process, e.g. the package's ``config/fastdds_shm.xml``; '' = inherit the environment; see the
README's "Node latency and DDS transports").

``model`` (fcclip or catseg), ``input_transport`` (raw or compressed), ``device`` and
``checkpoint`` set the node parameter of that name (``input.transport`` for ``input_transport``)
only when given: their default '' leaves the value of the parameter files (``params_file``, else
``config/ovseg.yaml``) in force.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import LifecycleNode, Node

from launch import LaunchDescription

#: launch argument -> node parameter it sets (only when given, i.e. not '')
OVERRIDES = {"model": "model", "input_transport": "input.transport", "device": "device", "checkpoint": "checkpoint"}


def _nodes(context):
    def arg(name):
        return context.launch_configurations[name]

    share = get_package_share_directory("ovseg")
    params = [os.path.join(share, "config", "ovseg.yaml")]
    if arg("params_file"):
        params.append(arg("params_file"))
    # A launch argument overrides the parameter files only when the user gave it: '' (the
    # default) means "not given", so params_file's values (and then config/ovseg.yaml's) hold.
    overrides = {param: arg(name) for name, param in OVERRIDES.items() if arg(name)}
    if overrides:
        params.append(overrides)
    camera = arg("camera_topic")
    env = {"FASTDDS_DEFAULT_PROFILES_FILE": arg("fastdds_profile")} if arg("fastdds_profile") else None
    common = dict(
        additional_env=env,
        package="ovseg",
        namespace=arg("namespace"),
        name="ovseg",
        output="screen",
        parameters=params,
        remappings=[("image", camera), ("image/compressed", camera + "/compressed")],
        arguments=["--ros-args", "--log-level", arg("log_level")],
    )
    if arg("lifecycle").lower() in ("true", "1", "yes"):
        return [LifecycleNode(executable="ovseg_lifecycle_node", **common)]
    return [Node(executable="ovseg_node", **common)]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "camera_topic",
                default_value="/camera/image_raw",
                description="camera image topic (the base topic for compressed input)",
            ),
            DeclareLaunchArgument("model", default_value="", description="fcclip or catseg ('' = from the params)"),
            DeclareLaunchArgument(
                "params_file", default_value="", description="parameter file loaded after config/ovseg.yaml (overrides)"
            ),
            DeclareLaunchArgument("namespace", default_value="segmentation", description="namespace of the node"),
            DeclareLaunchArgument(
                "lifecycle", default_value="false", description="true: managed lifecycle node; false: starts active"
            ),
            DeclareLaunchArgument(
                "input_transport", default_value="", description="raw or compressed ('' = from the params)"
            ),
            DeclareLaunchArgument(
                "device", default_value="", description="auto, cpu, cuda or cuda:N ('' = from the params)"
            ),
            DeclareLaunchArgument("checkpoint", default_value="", description="checkpoint file ('' = from the params)"),
            DeclareLaunchArgument("log_level", default_value="info", description="debug, info, warn, error"),
            DeclareLaunchArgument(
                "fastdds_profile",
                default_value="",
                description="Fast DDS XML profile for the node's process ('' = inherit)",
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
