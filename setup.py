"""pip installation of the Python side of ovseg.

Researchers who only train and evaluate: ``pip install .`` (no ROS needed; ``ovseg_models``
imports no ROS module). ROS 2 users build the whole package (interfaces, node, launch and
config files) with colcon from a workspace's ``src/``: package.xml and CMakeLists.txt drive
that build, this file is not used by it.
"""

from setuptools import find_packages, setup

ENTRY_POINTS = {
    "console_scripts": [
        # ROS side (needs rclpy and the built ovseg interfaces)
        "ovseg = ovseg_ros.demo:main",
        "ovseg-node = ovseg_ros.node:main",
        "ovseg-lifecycle-node = ovseg_ros.node:lifecycle_main",
        "ovseg-bag-eval = ovseg_ros.bag_eval:main",
        # research side (no ROS)
        "ovseg-eval = ovseg_models.evaluation.cli:main",
        "ovseg-train = ovseg_models.training.cli:main",
        "ovseg-prepare = ovseg_models.data.cli:main",
        "ovseg-export = ovseg_models.export.cli:main",
    ]
}

setup(
    # Not "ovseg": that distribution name belongs to the interfaces rosidl installs.
    name="ovseg-python",
    version="0.1.0",
    description="Open-vocabulary segmentation (FC-CLIP, CAT-Seg) for robots, with a ROS 2 node",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["ovseg_models", "ovseg_models.*", "ovseg_ros", "ovseg_ros.*"]),
    package_data={"ovseg_models": ["**/*.json", "**/*.yaml", "**/*.txt"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.1",
        "torchvision",
        "open_clip_torch>=2.20",
        "timm>=0.9",
        "numpy",
        "pillow",
        "opencv-python-headless",  # the official dataset preparation scripts resize with OpenCV
        "scipy",
        "pyyaml",
        "tqdm",
        "pycocotools",
        "torchmetrics",
    ],
    extras_require={
        # rclpy and messages come from the robot's ROS 2 distro, or from PyPI wheels
        # (see requirements/lock.txt); rosbags reads and writes bags without rosbag2.
        "ros": ["rosbags", "scikit-image"],
        # ovseg-export and the onnxruntime backend (ovseg_models.export)
        "export": ["onnx", "onnxruntime"],
        "test": ["pytest"],
    },
    entry_points=ENTRY_POINTS,
)
