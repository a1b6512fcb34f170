#!/usr/bin/env bash
# Installs metanas's build dependencies from Debian 12 packages (skips what is
# already installed). Needs root or sudo. The CUDA toolkit is optional and not
# installed here: when /usr/local/cuda/bin/nvcc exists the CUDA backend is built.
set -euo pipefail
pkgs=(build-essential cmake pkg-config catch2 nlohmann-json3-dev libstb-dev
      libopenblas-dev libopenblas-openmp-dev zlib1g-dev unzip graphviz
      openmpi-bin libopenmpi-dev  # MPI: distributed meta-training (docs/distributed.md)
      libdnnl-dev)  # oneDNN: the default CPU convolutions where faster (docs/cli.md, METANAS_CPU_CONV)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
