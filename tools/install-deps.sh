#!/usr/bin/env bash
# Install ctbmd's build and test dependencies from Debian 12 packages.
# Idempotent: packages that are already installed are skipped; nothing is downloaded
# from anywhere but Debian's archive. Run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libinsighttoolkit5-dev        # ITK 5.2 with GDCM (DICOM, JPEG-2000 lossless)
  libgdcm-dev libgdcm-tools
  libtorch-dev                  # LibTorch (CPU build)
  libeigen3-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  libpng-dev zlib1g-dev
  libssl-dev                    # SHA-256 from OpenSSL's libcrypto
  libdeflate-dev                # fast whole-buffer inflate for .nii.gz input
  libqhull-dev                  # convex hulls for the radiomics morphology features
  libopencv-ml-dev              # the radiomics random forest (OpenCV ml::RTrees)
  time util-linux               # /usr/bin/time and prlimit: the bad-input tests' memory bounds
  gnuplot-nox                   # ctbmd-evaluate's plots (PNG and SVG through cairo)
  clang-14 libclang-rt-14-dev   # fuzzing the parsers: libFuzzer, ASan, UBSan (tools/fuzz.sh)
  clang-format                  # tools/format.sh --check in .ci/run (Debian 12: clang-format 14)
  slurmctld slurmd slurm-client munge  # a real single-node Slurm for ctbmd-slurm's test (tools/slurm-local.sh)
  chromium                      # the cohort report rendered headless in tests/cli/test_report.sh
  # test oracles: SciPy checks ctbmd-evaluate; python3-torch checks the LibTorch plugin and
  # exports TorchScript models (tools/export_torchscript.py)
  python3 python3-numpy python3-nibabel python3-scipy python3-torch
  python3-pywt python3-sklearn  # radiomics oracles: wavelet sub-bands, LASSO, forests
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
