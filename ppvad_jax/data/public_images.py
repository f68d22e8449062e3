"""Public images for pretraining the autoencoder before DP training, at no privacy cost.

Differential privacy protects the training units of the DP run. Parameters
learnt beforehand from *public* data, disjoint from the cameras' footage, cost
no epsilon (the usual public-pretraining setting of DP deep learning), and
they spare the DP run from learning generic image structure through noise. On
the embedded default that is the difference between a flat grey
reconstruction and one that shows people: BUILD_NOTES.md, "Demo autoencoder".

The public set is the CC0 / public-domain sample images that ship inside the
scikit-image wheel (already a dependency; nothing is downloaded). Astronaut
and the LFW faces are left out on purpose: the privacy evaluation pastes them
into test frames, and pretraining on them would leak the attack's targets
into the model.
"""

import functools

import cv2
import numpy as np
from skimage import data as skimage_data

# (name, loader, licence as scikit-image's docstring states it). Mostly colour photographs: with
# half of them grey, a few hundred steps learnt luminance only (measured, BUILD_NOTES.md).
IMAGES = (
    ("chelsea", skimage_data.chelsea, "CC0"),
    ("coffee", skimage_data.coffee, "CC0"),
    ("hubble_deep_field", skimage_data.hubble_deep_field, "public domain (NASA)"),
    ("immunohistochemistry", skimage_data.immunohistochemistry, "no known copyright restrictions"),
    ("rocket", skimage_data.rocket, "public domain (SpaceX)"),
    ("retina", skimage_data.retina, "CC0"),
    ("colorwheel", skimage_data.colorwheel, "scikit-image sample"),
    ("motorcycle_left", lambda: skimage_data.stereo_motorcycle()[0], "scikit-image sample (Middlebury)"),
    ("motorcycle_right", lambda: skimage_data.stereo_motorcycle()[1], "scikit-image sample (Middlebury)"),
    ("brick", skimage_data.brick, "CC0"),
    ("gravel", skimage_data.gravel, "CC0"),
    ("camera", skimage_data.camera, "CC0"),
)
DESCRIPTION = "public: scikit-image sample images (" + ", ".join(n for n, _, _ in IMAGES) + ")"


@functools.cache
def load():
    """The public images as uint8 RGB arrays (greyscale ones replicated to three channels)."""
    images = []
    for _, loader, _ in IMAGES:
        image = np.asarray(loader())
        if image.dtype != np.uint8:
            image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        images.append(np.ascontiguousarray(image[..., :3]))
    return tuple(images)


def random_crops(rng, count, height, width):
    """``count`` uint8 [height, width, 3] crops: random image, scale, position, flip and channel order.

    Scales from 0.3 to 1 of the largest crop with the target's aspect ratio, resized with area
    interpolation; the channel permutation multiplies the images' colours by six.
    """
    images = load()
    out = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        image = images[rng.integers(len(images))]
        scale = rng.uniform(0.3, 1.0) * min(image.shape[0] / height, image.shape[1] / width)
        h, w = max(1, int(height * scale)), max(1, int(width * scale))
        y = rng.integers(0, image.shape[0] - h + 1)
        x = rng.integers(0, image.shape[1] - w + 1)
        crop = cv2.resize(image[y : y + h, x : x + w], (width, height), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = crop[..., rng.permutation(3)]
    return out
