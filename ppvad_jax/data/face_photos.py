"""Real photographs of faces that ship inside installed packages (nothing is downloaded).

The attackers' and the redaction's tests, and the camera benchmark, need real faces at a
size a face detector and dlib's descriptor work on; LFW's crops in scikit-image are 25x25
grey. ``PHOTOS``: three portraits in the Python wheels. ``group_photos``: the six group
photos (1920 px wide, 3-6 people each, 23 faces) of the npm package ``@vladmandic/face-api``
(MIT; the photos' own source is not stated), installed by ``launch/setup_node.sh``.
The camera man is also one of ``public_images``' pretraining images, so a privacy number
measured on *reconstructions* of him would flatter the autoencoder: use the others there.
"""

import pathlib

import cv2
import matplotlib.cbook
import matplotlib.image
import numpy as np
from skimage import data as skimage_data


def _hopper():
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return matplotlib.image.imread(path).astype(np.uint8)


# (name, loader of a uint8 RGB array, licence).
PHOTOS = (
    ("astronaut", skimage_data.astronaut, "public domain (NASA), scikit-image"),
    ("hopper", _hopper, "public domain (US Navy), matplotlib sample data"),
    ("cameraman", lambda: np.repeat(skimage_data.camera()[..., None], 3, axis=-1), "CC0, scikit-image"),
)
NAMES = tuple(name for name, _, _ in PHOTOS)


def photo(name):
    """One photograph by name (``NAMES``), uint8 RGB at its own size."""
    loaders = {n: loader for n, loader, _ in PHOTOS}
    if name not in loaders:
        raise ValueError(f"unknown face photo {name!r}; known: {NAMES}")
    return np.ascontiguousarray(loaders[name]())


def photos(size=None, names=NAMES):
    """The photographs, each resized (area interpolation) to ``size`` = (height, width) if given."""
    images = [photo(n) for n in names]
    if size is None:
        return images
    return [cv2.resize(p, (size[1], size[0]), interpolation=cv2.INTER_AREA) for p in images]


GROUP_PACKAGE = "@vladmandic/face-api"
GROUP_DIR = pathlib.Path(__file__).resolve().parents[2] / "tools" / "node_modules" / GROUP_PACKAGE / "demo"
GROUP_NAMES = tuple(f"sample{i}" for i in range(1, 7))


def group_photo(name, folder=None):
    """One group photo (``GROUP_NAMES``) as uint8 RGB, or FileNotFoundError saying how to get it."""
    folder = pathlib.Path(folder) if folder else GROUP_DIR
    image = cv2.imread(str(folder / f"{name}.jpg"), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(
            f"no readable group photo {folder / name}.jpg: it comes with the npm package "
            f"{GROUP_PACKAGE} (bash launch/setup_node.sh, or python3 tools/fetch_npm_files.py)"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def group_photos(folder=None):
    """[(name, uint8 RGB)] for the six group photos."""
    return [(name, group_photo(name, folder)) for name in GROUP_NAMES]
