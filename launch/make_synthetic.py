"""Writes the synthetic UCF-Crime + UCFCrime2Local tree (the embedded default).

python -m launch.make_synthetic --out_dir=runs/world --num_videos=21 --seed=0 --contact_sheets
"""

from absl import app, flags

from ppvad_jax.data.synthetic import world

_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder to write the tree into.", required=True)
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 21, "Number of videos (about 40% normal).")
_SEED = flags.DEFINE_integer("seed", 0, "World seed: the same seed gives the same world.")
_SECONDS = flags.DEFINE_float("seconds", 6.0, "Length of each video in seconds (30 FPS).")
_CROWD = flags.DEFINE_integer("crowd", 3, "Passers-by per video.")
_DIFFICULTY = flags.DEFINE_float("difficulty", 0.5, "0..1: noise, distractors, subtler anomalies.")
_CODEC = flags.DEFINE_enum("codec", "ffv1", ["ffv1", "mp4v"], "ffv1 (lossless .avi) or mp4v (.mp4).")
_CONTACT_SHEETS = flags.DEFINE_bool("contact_sheets", False, "Also write a contact sheet PNG per video.")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 2, "Rendering processes (0: in this process).")


def main(argv):
    del argv
    params = world.WorldParams(
        num_videos=_NUM_VIDEOS.value,
        seed=_SEED.value,
        seconds=_SECONDS.value,
        crowd=_CROWD.value,
        difficulty=_DIFFICULTY.value,
        codec=_CODEC.value,
    )
    manifest = world.generate_world(
        _OUT_DIR.value, params, contact_sheets=_CONTACT_SHEETS.value, num_workers=_NUM_WORKERS.value
    )
    print(
        f"wrote {len(manifest['videos'])} videos to {_OUT_DIR.value} "
        f"({len(manifest['train'])} train, {len(manifest['test'])} test)"
    )


if __name__ == "__main__":
    app.run(main)
