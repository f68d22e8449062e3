"""The on-disk layout of UCF-Crime + UCFCrime2Local, and names within it.

Layout (see ``shared/reference/datasets.md``)::

    MANUAL_DIR/<Class>/<Name>_x264.mp4            UCF-Crime videos (any folder depth)
    MANUAL_DIR/UCFCrime2Local/readme/Train_split_AD.txt
    MANUAL_DIR/UCFCrime2Local/readme/Test_split_AD.txt
    MANUAL_DIR/UCFCrime2Local/readme/Txt annotations/<Name>.txt

Videos are found by name anywhere under MANUAL_DIR, so UCF-Crime's own folder
names (``Training_Normal_Videos_Anomaly`` ...) and the synthetic world's
(``Normal``) both work without a special case.
"""

import pathlib
import re

from ppvad_jax.data import errors

# The seven classes of UCFCrime2Local, in a fixed order (ClassLabel ids).
CLASSES = ("Normal", "Arrest", "Assault", "Burglary", "Robbery", "Stealing", "Vandalism")
ANOMALY_CLASSES = CLASSES[1:]

# Per-frame labels, in ClassLabel order.
LABEL_NAMES = ("normal", "soft_anomaly", "hard_anomaly")
NORMAL, SOFT, HARD = 0, 1, 2

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".mpg", ".mpeg", ".m4v")
README_DIR = pathlib.Path("UCFCrime2Local") / "readme"
TRAIN_SPLIT = README_DIR / "Train_split_AD.txt"
TEST_SPLIT = README_DIR / "Test_split_AD.txt"
ANNOTATIONS_DIR = README_DIR / "Txt annotations"

DOWNLOAD_INSTRUCTIONS = """\
Put the raw data in MANUAL_DIR like this:
  MANUAL_DIR/<Class>/<Name>_x264.mp4   UCF-Crime videos (Sultani et al., CVPR 2018;
                                       the 'Anomaly-Videos-Part-*' and normal-video
                                       archives from the UCF-Crime project page;
                                       any sub-folder names work)
  MANUAL_DIR/UCFCrime2Local/readme/    the 'readme' folder of UCFCrime2Local
                                       (Landi et al., arXiv 1901.10364), with
                                       Train_split_AD.txt, Test_split_AD.txt and
                                       'Txt annotations/<Name>.txt'
Or make a synthetic tree with: python -m launch.make_synthetic --out_dir=MANUAL_DIR
"""

_NAME_CLASS = re.compile(r"^([A-Za-z]+?)(?:_Videos)?_?\d")


def video_class(name):
    """The class of a UCF-Crime video name: ``Arrest002`` -> ``Arrest``.

    ``Normal_Videos_003`` and ``Normal_Videos239`` -> ``Normal``.

    Raises:
      ValueError: if the name does not start with one of the seven classes.
    """
    stem = strip_video_suffix(name)
    match = _NAME_CLASS.match(stem)
    cls = match.group(1) if match else None
    if cls not in CLASSES:
        raise ValueError(f"video name {name!r} does not start with one of the classes {CLASSES}")
    return cls


def strip_video_suffix(name):
    """``Arrest002_x264.mp4`` -> ``Arrest002``; ``Arrest002`` is unchanged."""
    stem = pathlib.PurePath(name).name
    for ext in VIDEO_EXTENSIONS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return stem[:-5] if stem.endswith("_x264") else stem


def find_videos(manual_dir):
    """Maps every video name under ``manual_dir`` to its path.

    Returns:
      dict ``{name without _x264 and extension: pathlib.Path}``.

    Raises:
      MissingDataError: if ``manual_dir`` does not exist.
      ValueError: if one name is found at two paths (ambiguous data).
    """
    root = pathlib.Path(manual_dir)
    if not root.is_dir():
        raise errors.MissingDataError(
            f"manual_dir {root} does not exist or is not a folder.\n" + DOWNLOAD_INSTRUCTIONS
        )
    found = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in VIDEO_EXTENSIONS or not path.is_file():
            continue
        name = strip_video_suffix(path.name)
        if name in found:
            raise ValueError(f"video {name!r} found twice: {found[name]} and {path}")
        found[name] = path
    return found


def read_split_file(path):
    """Reads a UCFCrime2Local split file: one video name per line.

    Blank lines and ``#`` comments are ignored; ``_x264`` and extensions are
    stripped so either spelling works.

    Raises:
      MissingDataError: if the file does not exist.
      AnnotationError: on a line with more than one field, or a duplicate.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise errors.MissingDataError(f"split file {path} is missing.\n" + DOWNLOAD_INSTRUCTIONS)
    names = []
    seen = set()
    with open(path, encoding="utf-8-sig") as f:
        for line_number, line in enumerate(f, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            if len(text.split()) != 1:
                raise errors.AnnotationError(path, line_number, "expected one video name", line)
            name = strip_video_suffix(text)
            if name in seen:
                raise errors.AnnotationError(path, line_number, f"duplicate video {name!r}", line)
            seen.add(name)
            names.append(name)
    return names
