"""Frame privacy per camera mechanism against strong attackers (CenterFace, dlib naive/adaptive).

  python -m launch.frame_privacy --ae_workdir=runs/demo/autoencoder_dpadam \
      --mechanisms=clear,blur6,ae,redact_fill+ae,redact_pixelate+ae,ldp1.0+ae

Prints the JSON report (one row per mechanism) and writes frame_privacy.json and .md under
--output_dir (default ae_workdir/frame_privacy). What each number means, and which guarantee
it is: ``ppvad_jax/pipelines/frame_privacy.py`` and ``ppvad_jax/evaluation/face_attacks.py``.
"""

import json
import sys

from absl import app, flags

from ppvad_jax.pipelines import frame_privacy
from ppvad_jax.privacy import accounting

_WORKDIR = flags.DEFINE_string("ae_workdir", None, "Autoencoder workdir (with export/).", required=True)
_MECHS = flags.DEFINE_list(
    "mechanisms", ["clear", "blur6", "ae", "redact_fill+ae", "redact_pixelate+ae", "ldp1.0+ae"], "Mechanisms."
)
_VIEWS = flags.DEFINE_integer("views", 5, "Sightings per person.")
_GALLERY = flags.DEFINE_integer("gallery_views", 2, "Sightings the adaptive attacker holds per person.")
_BOUND = flags.DEFINE_float("ldp_l2_bound", None, "Latent LDP bound C; default the latents' median norm.")
_SEED = flags.DEFINE_integer("seed", 0, "Sightings and noise seed.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Default ae_workdir/frame_privacy.")


def main(argv):
    del argv
    try:
        report = frame_privacy.run(
            ae_workdir=_WORKDIR.value, mechanisms=_MECHS.value, views=_VIEWS.value,
            gallery_views=_GALLERY.value, seed=_SEED.value, l2_bound=_BOUND.value, output_dir=_OUTPUT.value,
        )  # fmt: skip
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(json.dumps(accounting.json_safe(report), indent=2))
    print(frame_privacy.markdown(report), file=sys.stderr)


if __name__ == "__main__":
    app.run(main)
