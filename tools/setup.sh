#!/usr/bin/env bash
# One command from a fresh clone to a working ovseg: a virtual environment in .venv with the
# pinned Python dependencies, ROS 2 Kilted rclpy and message wheels, this ROS package installed
# the ROS way into the venv prefix (interfaces built with rosidl, share/ovseg/{package.xml,
# launch, config}, the ament index marker, lib/ovseg/<executables>), and ovseg_models +
# ovseg_ros installed in editable mode. The venv's bin/activate puts the venv on
# AMENT_PREFIX_PATH, so `ros2 launch ovseg ...`, `ros2 run ovseg ...` and `ros2 pkg prefix ovseg`
# find the package. It then runs the main job (the demo) unless --no-demo is given.
#
# The ros2 command line and launch come from a ROS 2 distro on a robot; without one, install
# them into the venv with tools/install-ros2-client.sh DIR (a folder of their wheels).
#
# Idempotent: a second run checks the pins, skips the package build when msg/, srv/, the
# build files, launch/ and config/ are unchanged, and finishes in seconds.
#
#   tools/setup.sh              # set up and run the demo
#   tools/setup.sh --no-demo    # set up only (CI)
#
# Environment:
#   OVSEG_PYTHON              interpreter for the venv (default: python3.11, else python3)
#   OVSEG_VENV                venv folder (default: .venv in the repository)
#   OVSEG_TORCH_REQUIREMENTS  requirements file for torch/torchvision (default:
#                             requirements/torch.txt); a robot with another CUDA version points
#                             this at its own pins, e.g. a file with an --index-url line.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
run_demo=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) run_demo=0 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
t_start=$SECONDS

# --- 1. virtual environment --------------------------------------------------------------
py=${OVSEG_PYTHON:-$(command -v python3.11 || command -v python3)}
venv=${OVSEG_VENV:-$repo/.venv}
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv with $py"
  "$py" -m venv "$venv"
fi
vpy="$venv/bin/python"
"$vpy" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null || {
  echo "setup.sh: the ROS 2 Kilted wheels need Python 3.11; $vpy is $("$vpy" -V)." >&2
  echo "          Set OVSEG_PYTHON to a 3.11 interpreter and remove $venv." >&2
  exit 1
}
# The ROS wheels' bootstrapper re-executes Python with LD_LIBRARY_PATH set and marks the
# environment; a marker inherited from another venv would stop it from setting up this one.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE

# --- 2. pinned dependencies ----------------------------------------------------------------
pip=("$vpy" -m pip --disable-pip-version-check -q)
torch_req=${OVSEG_TORCH_REQUIREMENTS:-requirements/torch.txt}
stamp_dir="$venv/.ovseg-stamps"
mkdir -p "$stamp_dir"
req_hash=$(cat "$torch_req" requirements/lock.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp_dir/requirements" 2>/dev/null)" != "$req_hash" ]; then
  say "installing torch ($torch_req)"
  "${pip[@]}" install -r "$torch_req"
  say "installing pinned dependencies (requirements/lock.txt)"
  "${pip[@]}" install -r requirements/lock.txt
  echo "$req_hash" > "$stamp_dir/requirements"
else
  say "dependencies already match requirements/ (stamp $req_hash)"
fi

# --- 3. the ROS package (interfaces, launch, config, executables) installed into the venv ------
# The ROS wheels' exported CMake files name the interpreter of the machine that built them;
# point them at this venv once (see ../shared/notes/ros2-on-pypi.md).
py_include=$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_include=$("$vpy" -c 'import numpy; print(numpy.get_include())')
{ grep -rl --include='*.cmake' '/opt/python/cp311-cp311/' "$venv/share" 2>/dev/null || true; } | while read -r f; do
  sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_include#g" \
         -e "s#/opt/python/cp311-cp311/include/python3.11#$py_include#g" "$f"
done

# launch/ and config/ are installed as copies: a change there only reinstalls (seconds).
iface_hash=$(cat CMakeLists.txt package.xml msg/*.msg srv/*.srv | sha256sum | cut -c1-16)
data_hash=$(cat launch/* config/* | sha256sum | cut -c1-16)
if [ "$(cat "$stamp_dir/interfaces" 2>/dev/null)" = "$iface_hash" ] && [ -d "$repo/.ovseg_build" ] \
    && [ "$(cat "$stamp_dir/data" 2>/dev/null)" != "$data_hash" ]; then
  say "installing launch/ and config/ again (changed)"
  rm -rf "$venv/share/ovseg/launch" "$venv/share/ovseg/config"
  cmake --install "$repo/.ovseg_build" > "$stamp_dir/cmake-install.log" 2>&1 ||
    { cat "$stamp_dir/cmake-install.log" >&2; exit 1; }
  echo "$data_hash" > "$stamp_dir/data"
fi
# cmake configure, build and install of one ament package (source folder, build folder, log name)
# into the venv prefix
build_ros_package() {
  local src=$1 build=$2 log=$3
  rm -rf "$build"
  (
    export AMENT_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH"
    cmake -S "$src" -B "$build" -DOVSEG_INSTALL_PYTHON=OFF -DBUILD_TESTING=OFF \
      -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" -DPython3_EXECUTABLE="$vpy" \
      -DCMAKE_BUILD_TYPE=Release > "$stamp_dir/$log-configure.log" 2>&1 ||
      { cat "$stamp_dir/$log-configure.log" >&2; exit 1; }
    cmake --build "$build" -j "$(nproc)" > "$stamp_dir/$log-build.log" 2>&1 ||
      { tail -50 "$stamp_dir/$log-build.log" >&2; exit 1; }
    cmake --install "$build" > "$stamp_dir/$log-install.log" 2>&1 ||
      { cat "$stamp_dir/$log-install.log" >&2; exit 1; }
  )
}

# vision_msgs (LabelInfo on label_info): a robot's ROS 2 distro has it; the PyPI wheels do not, so
# build the two definitions ovseg publishes (tools/vision_msgs: upstream's names and fields) into
# the venv. Never over a vision_msgs that imports already (a sourced distro's).
vision_hash=$(cat tools/vision_msgs/CMakeLists.txt tools/vision_msgs/package.xml tools/vision_msgs/msg/*.msg | sha256sum | cut -c1-16)
if [ "$(cat "$stamp_dir/vision_msgs" 2>/dev/null)" = "$vision_hash" ] && "$vpy" -c 'from vision_msgs.msg import LabelInfo' 2>/dev/null; then
  say "vision_msgs up to date (stamp $vision_hash)"
elif "$vpy" -c 'from vision_msgs.msg import LabelInfo' 2>/dev/null && [ ! -f "$stamp_dir/vision_msgs" ]; then
  say "vision_msgs: using the installed package ($("$vpy" -c 'import vision_msgs, os; print(os.path.dirname(vision_msgs.__file__))'))"
else
  say "building vision_msgs (LabelInfo, VisionClass) into the venv: this ROS 2 has none"
  build_ros_package "$repo/tools/vision_msgs" "$repo/.ovseg_build_vision_msgs" vision-msgs-cmake
  "$vpy" -c 'from vision_msgs.msg import LabelInfo, VisionClass' || {
    echo "setup.sh: vision_msgs was built but does not import; see $stamp_dir/vision-msgs-cmake-*.log" >&2
    exit 1
  }
  echo "$vision_hash" > "$stamp_dir/vision_msgs"
fi

if [ "$(cat "$stamp_dir/interfaces" 2>/dev/null)" != "$iface_hash" ] || ! "$vpy" -c 'import ovseg.msg' 2>/dev/null \
    || [ ! -f "$venv/share/ovseg/launch/ovseg.launch.py" ]; then
  say "building and installing the ROS package (msg/, srv/ with rosidl; launch/, config/, executables)"
  build_ros_package "$repo" "$repo/.ovseg_build" cmake
  # rosidl installs the generated Python package under the prefix's site-packages, which for
  # a venv prefix is the venv's own: nothing else to set at run time.
  "$vpy" -c 'from ovseg.msg import PanopticSegmentation; from ovseg.srv import SetVocabulary, QuerySegments' || {
    echo "setup.sh: the interfaces were built but do not import; see $stamp_dir/cmake-*.log" >&2
    exit 1
  }
  echo "$iface_hash" > "$stamp_dir/interfaces"
  echo "$data_hash" > "$stamp_dir/data"
else
  say "interfaces up to date (stamp $iface_hash)"
fi

# --- 4. ROS tools find the venv's packages --------------------------------------------------
# `ros2 launch/run/pkg` look packages up in the ament index of the prefixes on AMENT_PREFIX_PATH.
# bin/activate prepends the venv (keeping a sourced distro's prefixes after it) and deactivate
# restores the previous value.
if ! grep -q '# >>> ovseg ament prefix >>>' "$venv/bin/activate"; then
  cat >> "$venv/bin/activate" <<'ACTIVATE'
# >>> ovseg ament prefix >>>
# ROS 2 tools (ros2 launch/run/pkg) find the packages installed in this venv through the ament
# index under AMENT_PREFIX_PATH; deactivate restores the previous value.
_OVSEG_OLD_AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH-__ovseg_unset__}"
case ":${AMENT_PREFIX_PATH:-}:" in
  *":$VIRTUAL_ENV:"*) ;;
  *) export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
esac
eval "_ovseg_venv_$(declare -f deactivate)"
deactivate () {
  if [ "${_OVSEG_OLD_AMENT_PREFIX_PATH-}" = "__ovseg_unset__" ]; then unset AMENT_PREFIX_PATH
  elif [ -n "${_OVSEG_OLD_AMENT_PREFIX_PATH+x}" ]; then export AMENT_PREFIX_PATH="$_OVSEG_OLD_AMENT_PREFIX_PATH"; fi
  unset _OVSEG_OLD_AMENT_PREFIX_PATH
  _ovseg_venv_deactivate "$@"
  if [ "${1-}" != "nondestructive" ]; then unset -f _ovseg_venv_deactivate; fi
}
# <<< ovseg ament prefix <<<
ACTIVATE
fi

# --- 5. this package (editable) --------------------------------------------------------------
if ! "$vpy" -c 'import ovseg_models, ovseg_ros' 2>/dev/null || [ setup.py -nt "$stamp_dir/package" ]; then
  say "installing ovseg_models and ovseg_ros (editable)"
  "${pip[@]}" install --no-deps --no-build-isolation -e . 2> >(grep -v -E 'BuildBackendWarning|^ *(!!|\*+|Please be careful|name as your package|with strategy)|^ *$' >&2)
  touch "$stamp_dir/package"
fi

say "environment ready in $((SECONDS - t_start)) s: activate with 'source $venv/bin/activate'"

# --- 6. the main job -----------------------------------------------------------------------
if [ "$run_demo" = 1 ]; then
  if [ -x "$venv/bin/ovseg" ]; then
    say "running the main job: ovseg (demo bag replayed through the node)"
    "$venv/bin/ovseg"
  else
    say "no demo entry point installed yet (ovseg); skipping"
  fi
fi
