"""Converts pretrained weights into the checkpoints the server-side configs point at.

  python -m launch.convert_weights --from=torchvision --input=resnet50-11ad3fa6.pth --output=weights/resnet50
  python -m launch.convert_weights --from=darknet --cfg=yolov4.cfg --weights=yolov4.weights \
      --output=weights/yolov4

torchvision: a ResNet-50 state_dict as .pth/.pt, .safetensors or .npz (torch is not
needed for any); see ``ppvad_jax/models/resnet_weights.py``.
darknet: a .cfg and its .weights (``ppvad_jax/models/darknet/``).
Each output directory holds the parameters and a ``spec.json`` recording the
source files' sha256 and the preprocessing the weights expect. Nothing here
downloads anything.
"""

import json
import pathlib
import struct
import sys
import zipfile

from absl import app, flags

_FROM = flags.DEFINE_enum("from", None, ["torchvision", "darknet"], "Source format.", required=True)
_INPUT = flags.DEFINE_string("input", None, "torchvision: the state_dict file (.pth, .safetensors, .npz).")
_CFG = flags.DEFINE_string("cfg", None, "darknet: the network's .cfg.")
_WEIGHTS = flags.DEFINE_string("weights", None, "darknet: the .weights file.")
_OUTPUT = flags.DEFINE_string("output", None, "Output directory (created).", required=True)


def _need(flag, what):
    if not flag.value:
        raise app.UsageError(f"--from={_FROM.value} needs --{flag.name} ({what})")
    path = pathlib.Path(flag.value)
    if not path.is_file():
        raise app.UsageError(f"--{flag.name}={path}: no such file")
    return path


# What a truncated, corrupt or wrong-format weights file raises while it is parsed (a corrupt
# .npz is a BadZipFile; a .npz of objects is a ValueError, since pickles are never loaded).
_UNREADABLE = (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile, struct.error)


def _convert():
    if _FROM.value == "torchvision":
        from ppvad_jax.models import resnet_weights

        source = _need(_INPUT, "the ResNet-50 state_dict")
        return [source], lambda: resnet_weights.convert_torchvision(source, _OUTPUT.value)
    from ppvad_jax.models.darknet import convert

    cfg, weights = _need(_CFG, "the .cfg"), _need(_WEIGHTS, "the .weights")
    return [cfg, weights], lambda: convert.convert_darknet(cfg, weights, _OUTPUT.value)


def main(argv):
    del argv
    sources, run = _convert()
    try:
        out = run()
    except _UNREADABLE as e:
        names = " / ".join(str(s) for s in sources)
        # The message often names the file already; the prefix always does.
        sys.exit(f"error: cannot convert {names}: {type(e).__name__}: {e}")
    spec = json.loads((pathlib.Path(out) / "spec.json").read_text())
    # Long fields (a copied cfg text, class names) are left out of the console summary.
    short = {k: v for k, v in spec.items() if len(json.dumps(v, default=str)) <= 300}
    print(json.dumps({"output": str(out), "spec": short}, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(app.run(main))
