#!/usr/bin/env bash
# Fetches, on this machine, the Python 3.12 wheels that the lent GPU machine's image lacks, into
# .whl/ (git-ignored), so that launch/gpu_checks.sh can run there (nothing can be fetched there).
# The image has jax/jaxlib (CUDA), flax, optax, orbax, grpcio, OpenCV, scikit-image, chex, scipy,
# protobuf, pyarrow ... (/work/.library/device/KINDS.md); these are the rest, at the versions of
# requirements.txt (and of their dependencies as this .venv holds them). About 15 MB.
#   bash launch/device_wheels.sh && then: run(command="bash launch/gpu_checks.sh", carry=[".whl"])
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=(.venv/bin/python -m pip)
mkdir -p .whl
"${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl \
  dp-accounting==0.6.0 ml-collections==1.1.0 dm-pix==0.4.5 tensorboardX==2.6.5 \
  tensorflow-datasets==4.9.10 array_record==0.8.6 importlib_resources==7.1.0 \
  cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 \
  dm-tree==0.1.10 immutabledict==4.3.1 simple-parsing==0.1.9 docstring_parser==0.18.0 \
  tensorflow-metadata==1.21.0 googleapis-common-protos==1.76.0 termcolor==3.3.0 toml==0.10.2 \
  attrs==23.2.0
# promise ships as a source archive only: build its (pure-Python) wheel here.
"${PIP[@]}" wheel -q --no-deps -w .whl promise==2.3
ls .whl
du -sh .whl
