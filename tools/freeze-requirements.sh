#!/usr/bin/env bash
# Regenerate requirements/lock.txt from the working .venv (after a deliberate upgrade).
# Keeps only real distributions (ROS wheels also ship egg-info of their inner packages, which
# pip freeze lists but no index serves) and leaves torch and its CUDA libraries to torch.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
sp=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
dists=$(ls "$sp" | grep '\.dist-info$' | sed 's/-[^-]*\.dist-info$//' | tr 'A-Z.-' 'a-z__')
{
  echo "# Pinned environment (everything except torch; see torch.txt). Generated from a working venv"
  echo "# by pip freeze; regenerate with tools/freeze-requirements.sh after a deliberate upgrade."
  .venv/bin/pip freeze --exclude-editable | grep -v -i -E '^((torch|torchvision)==|triton==|nvidia-|cuda-|ovseg)' |
  while IFS= read -r line; do
    name=$(echo "${line%%==*}" | tr 'A-Z.-' 'a-z__')
    grep -qx "$name" <<<"$dists" && echo "$line"
  done
} > requirements/lock.txt
echo "wrote requirements/lock.txt ($(grep -vc '^#' requirements/lock.txt) pins)"
