"""Draws the synthetic world: textured backgrounds, people with real faces, cars, bags.

Everything is drawn with OpenCV primitives on 240x320 RGB canvases; a frame
costs about a millisecond, so the world is cheap to regenerate.
"""

import functools

import cv2
import numpy as np
from skimage import data as skimage_data

HEIGHT, WIDTH = 240, 320
PERSON_HEIGHT = 76  # pixels at the bottom of the frame; smaller further away


@functools.cache
def faces():
    """200 real 25x25 grey face crops (LFW subset shipped with scikit-image)."""
    return skimage_data.lfw_subset().astype(np.float32)


def person_scale(y):
    """Perspective: people higher in the frame (further away) are smaller."""
    return 0.55 + 0.6 * (y / HEIGHT)


def background(rng):
    """A static scene: wall with windows and a door, a textured floor, low-frequency shading."""
    wall_color = rng.uniform(70, 190, 3)
    floor_color = rng.uniform(60, 160, 3)
    horizon = int(rng.uniform(0.3, 0.42) * HEIGHT)
    canvas = np.empty((HEIGHT, WIDTH, 3), np.float32)
    canvas[:horizon] = wall_color
    canvas[horizon:] = floor_color
    # Bricks / paving: a seeded tile pattern, coarser near the camera.
    for y in range(horizon, HEIGHT, 12):
        cv2.line(canvas, (0, y), (WIDTH, y), tuple(floor_color * 0.8), 1)
    for x in range(-WIDTH, 2 * WIDTH, 28):
        cv2.line(
            canvas, (WIDTH // 2 + (x - WIDTH // 2) // 3, horizon), (x, HEIGHT), tuple(floor_color * 0.85), 1
        )
    windows = []
    for x in range(int(rng.uniform(5, 25)), WIDTH - 30, int(rng.uniform(45, 70))):
        top = int(rng.uniform(8, max(10, horizon - 45)))
        w, h = int(rng.uniform(20, 32)), int(rng.uniform(18, 30))
        cv2.rectangle(canvas, (x, top), (x + w, min(top + h, horizon - 4)), tuple(rng.uniform(20, 90, 3)), -1)
        windows.append((x, top, w, h))
    door_x = int(rng.uniform(40, WIDTH - 80))
    door = (door_x, horizon - 44, 26, 44)
    cv2.rectangle(canvas, (door_x, horizon - 44), (door_x + 26, horizon), tuple(wall_color * 0.45), -1)
    # Low-frequency texture and grain, so flow and SSIM have something to hold on to.
    coarse = rng.normal(0, 14, (HEIGHT // 16, WIDTH // 16, 3)).astype(np.float32)
    canvas += cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    canvas += rng.normal(0, 6, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255), {"horizon": horizon, "door": door, "windows": windows}


def _color(c):
    return tuple(float(v) for v in c)


def draw_face(canvas, face, skin, center, size):
    """Pastes a grey face crop, tinted with a skin colour, inside an elliptic head."""
    size = max(int(size), 5)
    grey = cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR)[..., None]
    patch = (0.3 + 0.9 * grey) * np.asarray(skin, np.float32)
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, size // 2), (size // 2 - 1 + size % 2, size // 2), 0, 0, 360, 1.0, -1)
    x0, y0 = int(center[0]) - size // 2, int(center[1]) - size // 2
    xa, ya = max(x0, 0), max(y0, 0)
    xb, yb = min(x0 + size, WIDTH), min(y0 + size, HEIGHT)
    if xa >= xb or ya >= yb:
        return
    m = mask[ya - y0 : yb - y0, xa - x0 : xb - x0, None]
    region = canvas[ya:yb, xa:xb]
    region[:] = region * (1 - m) + np.clip(patch[ya - y0 : yb - y0, xa - x0 : xb - x0], 0, 255) * m


def person_box(x, y, scale, lying=False):
    """Vatic box (xmin, ymin, xmax, ymax) of a person drawn at feet (x, y)."""
    h = PERSON_HEIGHT * scale
    box = (x - 0.55 * h, y - 0.3 * h, x + 0.55 * h, y) if lying else (x - 0.3 * h, y - h, x + 0.3 * h, y)
    return tuple(int(round(v)) for v in box)


def draw_person(canvas, *, x, y, phase, arm, lying, look, face):
    """Draws one person with feet at (x, y).

    Args:
      phase: walking phase (radians); legs and arms swing with it.
      arm: extra arm raise (radians), for strikes, fights and hands up.
      lying: drawn horizontally, on the ground.
      look: dict with ``shirt``, ``pants``, ``skin`` colours and ``cap`` (bool).
      face: 25x25 grey face crop.
    """
    scale = person_scale(y)
    h = PERSON_HEIGHT * scale
    thick = max(2, int(round(0.09 * h)))
    shirt, pants, skin = _color(look["shirt"]), _color(look["pants"]), look["skin"]
    if lying:
        y0 = int(y - 0.12 * h)
        cv2.line(canvas, (int(x - 0.1 * h), y0), (int(x + 0.45 * h), y0 + 2), pants, thick, cv2.LINE_AA)
        cv2.rectangle(
            canvas, (int(x - 0.42 * h), y0 - int(0.1 * h)), (int(x - 0.05 * h), y0 + int(0.08 * h)), shirt, -1
        )
        draw_face(canvas, face, skin, (x - 0.5 * h, y0 - 0.02 * h), 0.22 * h)
        return
    hip = (x, y - 0.45 * h)
    shoulder_y = y - 0.78 * h
    swing = np.sin(phase)
    for side in (-1, 1):
        foot = (int(x + side * swing * 0.16 * h), int(y))
        cv2.line(canvas, (int(hip[0]), int(hip[1])), foot, pants, thick, cv2.LINE_AA)
    cv2.rectangle(
        canvas, (int(x - 0.14 * h), int(shoulder_y)), (int(x + 0.14 * h), int(hip[1]) + 2), shirt, -1
    )
    for side in (-1, 1):
        angle = side * swing * 0.5 + arm  # 0 = hanging down, pi = straight up
        hand = (x + side * 0.1 * h + side * np.sin(angle) * 0.34 * h, shoulder_y + np.cos(angle) * 0.34 * h)
        cv2.line(
            canvas,
            (int(x + side * 0.12 * h), int(shoulder_y) + 2),
            (int(hand[0]), int(hand[1])),
            shirt,
            max(2, thick - 1),
            cv2.LINE_AA,
        )
    head_size = 0.3 * h
    draw_face(canvas, face, skin, (x, shoulder_y - 0.5 * head_size), head_size)
    if look.get("cap"):
        cv2.rectangle(
            canvas,
            (int(x - 0.5 * head_size), int(shoulder_y - head_size)),
            (int(x + 0.5 * head_size), int(shoulder_y - 0.78 * head_size)),
            (15, 20, 60),
            -1,
        )


def draw_car(canvas, *, x, y, color, damage=0, damage_rng=None):
    """A side view of a car with wheels at (x, y); ``damage`` dents drawn on it."""
    color = _color(color)
    cv2.rectangle(canvas, (int(x - 38), int(y - 20)), (int(x + 38), int(y - 6)), color, -1)
    cv2.rectangle(canvas, (int(x - 20), int(y - 30)), (int(x + 18), int(y - 19)), color, -1)
    cv2.rectangle(canvas, (int(x - 16), int(y - 28)), (int(x + 14), int(y - 21)), (170, 200, 220), -1)
    for wx in (x - 24, x + 24):
        cv2.circle(canvas, (int(wx), int(y - 5)), 6, (20, 20, 20), -1, cv2.LINE_AA)
    if damage and damage_rng is not None:
        rng = np.random.default_rng(damage_rng)
        for _ in range(damage):
            px, py = x + rng.uniform(-34, 34), y - rng.uniform(8, 28)
            cv2.line(
                canvas,
                (int(px), int(py)),
                (int(px + rng.uniform(-7, 7)), int(py + rng.uniform(-5, 5))),
                (25, 25, 25),
                2,
                cv2.LINE_AA,
            )


def draw_bag(canvas, *, x, y, color):
    """A small bag standing at (x, y)."""
    color = _color(color)
    cv2.rectangle(canvas, (int(x - 6), int(y - 10)), (int(x + 6), int(y)), color, -1)
    cv2.ellipse(canvas, (int(x), int(y - 10)), (4, 4), 0, 180, 360, color, 2)


def draw_door(canvas, door, *, broken):
    """Shows the door of the background broken open (dark, with splinters)."""
    if not broken:
        return
    x, y, w, h = door
    cv2.rectangle(canvas, (x, y), (x + w, y + h), (10, 10, 10), -1)
    cv2.line(canvas, (x, y + 5), (x + w // 2, y + h // 2), (120, 90, 50), 2)
    cv2.line(canvas, (x + w, y + 10), (x + w // 3, y + h - 4), (120, 90, 50), 2)
