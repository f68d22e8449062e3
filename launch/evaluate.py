"""Scores a trained classifier: W/eval.json (FL-AUC, VL-F1, epsilons), W/roc.png, W/timelines/*.png.

python -m launch.evaluate --workdir=runs/cls
"""

import json

from absl import app, flags

from ppvad_jax.evaluation import anomaly_report

_WORKDIR = flags.DEFINE_string("workdir", None, "A launch.train_classifier workdir.", required=True)
_TIMELINES = flags.DEFINE_integer("timelines", 6, "How many per-video score timelines to draw.")


def main(argv):
    del argv
    print(json.dumps(anomaly_report.write_report(_WORKDIR.value, timelines=_TIMELINES.value), indent=2))


if __name__ == "__main__":
    app.run(main)
