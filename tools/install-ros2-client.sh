#!/usr/bin/env bash
# Developers and CI: install the ROS 2 command line (ros2 launch/run/topic/service/param/
# lifecycle/pkg ...), launch, launch_ros and message_filters into the venv tools/setup.sh made,
# from a folder of their wheels (PyPI has none; CI and developers have ../shared/ros2-client).
# A robot has the same tools from its ROS 2 distro and needs none of this.
#
#   tools/install-ros2-client.sh ../shared/ros2-client
#
# Environment: OVSEG_VENV (default: .venv in the repository).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case "${1-}" in
  ""|-h|--help) sed -n '2,9p' "$0"; [ -n "${1-}" ]; exit $? ;;
esac
wheels=$(cd "$1" && pwd)
venv=${OVSEG_VENV:-$repo/.venv}
vpy="$venv/bin/python"
[ -x "$vpy" ] || { echo "install-ros2-client.sh: no venv at $venv: run tools/setup.sh first" >&2; exit 1; }
shopt -s nullglob
whl=("$wheels"/*.whl)
[ "${#whl[@]}" -gt 0 ] || { echo "install-ros2-client.sh: no wheels in $wheels" >&2; exit 1; }
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
# --no-deps: launch_ros declares ament_index_python, which PyPI names ros-ament-index-python
# (already installed by tools/setup.sh); their other run-time dependencies are pinned here.
"$vpy" -m pip --disable-pip-version-check -q install --no-deps "${whl[@]}" -r "$repo/requirements/ros2-client.txt"
"$venv/bin/ros2" --help > /dev/null
printf '\033[1m[ros2-client]\033[0m installed %d wheels from %s into %s\n' "${#whl[@]}" "$wheels" "$venv"
