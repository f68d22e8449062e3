"""What happens in each class of synthetic video.

A scenario returns actors (people) and props (cars, bags) as per-frame arrays.
Actors with a ``role`` are the anomaly's participants and become Vatic tracks:
``engaged`` marks the frames of the anomaly itself (hard), everything else in
an anomalous video is soft. The soft frames around the anomaly are suspicious
on purpose: approaching, loitering, fleeing, a victim on the ground.

Motion alone does not give the anomaly away: normal videos have joggers,
passing cars and people who stop to chat, and an arrest is mostly standing
still. The anomaly is in who does what to whom and to which object.
"""

import dataclasses

import numpy as np

from ppvad_jax.data.synthetic import render

W, H = render.WIDTH, render.HEIGHT


@dataclasses.dataclass
class Actor:
    x: np.ndarray  # [T] feet position
    y: np.ndarray
    visible: np.ndarray  # [T] bool
    look: dict
    face: int
    arm: np.ndarray = None  # [T] extra arm raise (radians)
    lying: np.ndarray = None  # [T] bool
    carrying: np.ndarray = None  # [T] bool: holds the bag prop
    role: str | None = None  # set for annotated participants
    engaged: np.ndarray = None  # [T] bool: taking part in the anomaly (hard)

    def __post_init__(self):
        t = len(self.x)
        self.arm = np.zeros(t) if self.arm is None else self.arm
        self.lying = np.zeros(t, bool) if self.lying is None else self.lying
        self.carrying = np.zeros(t, bool) if self.carrying is None else self.carrying
        self.engaged = np.zeros(t, bool) if self.engaged is None else self.engaged

    def phase(self):
        step = np.abs(np.diff(self.x, prepend=self.x[0])) + np.abs(np.diff(self.y, prepend=self.y[0]))
        return np.cumsum(step) * 0.25


@dataclasses.dataclass
class Prop:
    kind: str  # "car" or "bag"
    x: np.ndarray
    y: np.ndarray
    visible: np.ndarray
    color: tuple
    damage: np.ndarray = None  # [T] int, cars only


@dataclasses.dataclass
class Scene:
    actors: list
    props: list
    door_broken: np.ndarray  # [T] bool


def path(num_frames, keys):
    """Piecewise-linear positions through keyframes ``[(t, x, y), ...]``, held at both ends."""
    ts, xs, ys = (np.asarray(v, np.float64) for v in zip(*keys, strict=True))
    t = np.arange(num_frames)
    return np.interp(t, ts, xs), np.interp(t, ts, ys)


def in_view(x, margin=25):
    return (x > -margin) & (x < W + margin)


SKIN_TONES = np.array(
    [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 51, 23)]
)


def random_look(rng, *, uniform=False):
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.75, 0.95)
    if uniform:  # police: dark blue, with a cap
        return {"shirt": (25, 35, 110), "pants": (20, 25, 70), "skin": skin, "cap": True}
    return {"shirt": rng.uniform(30, 240, 3), "pants": rng.uniform(20, 150, 3), "skin": skin, "cap": False}


def make_actor(rng, x, y, **kw):
    uniform = kw.pop("uniform", False)
    return Actor(
        x=x,
        y=y,
        visible=in_view(x),
        look=random_look(rng, uniform=uniform),
        face=int(rng.integers(len(render.faces()))),
        **kw,
    )


def jitter(rng, num_frames, mask, amplitude):
    """Fast erratic motion on the masked frames (lightly smoothed noise)."""
    noise = rng.normal(0, amplitude, (num_frames, 2))
    noise = (noise + np.roll(noise, 1, 0)) / 2
    return noise * mask[:, None]


def walker(rng, num_frames, horizon, *, speed=None):
    """A passer-by crossing the scene at some point of the video."""
    speed = rng.uniform(0.5, 1.8) if speed is None else speed
    direction = rng.choice([-1, 1])
    y = rng.uniform(horizon + 25, H - 4)
    start_t = rng.uniform(-0.6, 0.8) * num_frames
    x0 = -30 if direction > 0 else W + 30
    t = np.arange(num_frames)
    x = x0 + direction * speed * (t - start_t)
    return make_actor(rng, x, np.full(num_frames, y))


def timeline(rng, num_frames):
    """(soft start, hard start, hard end) frame numbers for an anomaly."""
    return (
        int(num_frames * rng.uniform(0.08, 0.18)),
        int(num_frames * rng.uniform(0.35, 0.45)),
        int(num_frames * rng.uniform(0.66, 0.78)),
    )


def meeting_point(rng, horizon):
    return rng.uniform(100, 220), rng.uniform(horizon + 45, H - 12)


def strike_arm(num_frames, mask, *, period=8.0):
    t = np.arange(num_frames)
    return mask * (1.3 + 1.4 * np.abs(np.sin(np.pi * t / period)))


# --- anomalies -------------------------------------------------------------------------------


def assault(rng, n, layout, difficulty):
    """Two people meet and fight (fast erratic motion, flailing arms); one ends on the ground."""
    _, t_hard, t_end = timeline(rng, n)
    mx, my = meeting_point(rng, layout["horizon"])
    hard = (np.arange(n) >= t_hard) & (np.arange(n) < t_end)
    amp = 5.0 * (1 - 0.4 * difficulty)
    ax, ay = path(
        n, [(0, mx - 170, my), (t_hard, mx - 9, my), (t_end, mx - 9, my), (n, mx - 9 - 1.6 * (n - t_end), my)]
    )
    bx, by = path(n, [(0, mx + 150, my), (t_hard, mx + 9, my)])
    actors = []
    for x, y, role in ((ax, ay, "attacker"), (bx, by, "victim")):
        d = jitter(rng, n, hard, amp)
        arm = hard * rng.uniform(0.3, 2.6, n)
        actors.append(make_actor(rng, x + d[:, 0], y + d[:, 1], arm=arm, role=role, engaged=hard.copy()))
    actors[1].lying = np.arange(n) >= t_end
    return actors, [], None


def robbery(rng, n, layout, difficulty):
    """A robber catches up with a person carrying a bag, scuffles, grabs it and runs."""
    _, t_hard, t_end = timeline(rng, n)
    mx, my = meeting_point(rng, layout["horizon"])
    t_grab = t_hard + int(0.4 * (t_end - t_hard))
    run = rng.uniform(4.0, 6.0) * (1 - 0.3 * difficulty)
    vx, vy = path(n, [(0, mx - 120, my), (t_hard, mx, my)])
    rx, ry = path(
        n, [(0, -40, my), (t_hard, mx - 11, my), (t_grab, mx - 11, my), (n, mx - 11 + run * (n - t_grab), my)]
    )
    scuffle = (np.arange(n) >= t_hard) & (np.arange(n) < t_grab)
    d = jitter(rng, n, scuffle, 4.0)
    robber = make_actor(rng, rx + d[:, 0], ry + d[:, 1], arm=scuffle * 1.5, role="robber")
    victim = make_actor(rng, vx - d[:, 0], vy, arm=(np.arange(n) >= t_grab) * 2.6, role="victim")
    robber.engaged = (np.arange(n) >= t_hard) & robber.visible
    robber.engaged[t_end:] = False
    victim.engaged = (np.arange(n) >= t_hard) & (np.arange(n) < t_end)
    victim.carrying = np.arange(n) < t_grab
    robber.carrying = np.arange(n) >= t_grab
    return [robber, victim], [], None


def stealing(rng, n, layout, difficulty):
    """A bag is left unattended; someone loiters near it, then grabs it and runs."""
    t_soft, t_hard, _ = timeline(rng, n)
    bx, by = meeting_point(rng, layout["horizon"])
    t_grab = t_hard + 8
    run = rng.uniform(3.5, 5.5) * (1 - 0.3 * difficulty)
    t = np.arange(n)
    tx, ty = path(
        n, [(0, -40, by), (t_soft, bx - 45, by), (t_grab, bx - 5, by), (n, bx - 5 - run * (n - t_grab), by)]
    )
    loiter = (t >= t_soft) & (t < t_hard)
    tx = tx + loiter * 12 * np.sin((t - t_soft) / 9.0)
    thief = make_actor(rng, tx, ty, role="thief")
    thief.carrying = t >= t_grab
    thief.engaged = (t >= t_hard) & thief.visible
    bag = Prop("bag", np.full(n, bx), np.full(n, by), t < t_grab, tuple(rng.uniform(30, 200, 3)))
    return [thief], [bag], None


def burglary(rng, n, layout, difficulty):
    """Someone forces the door of the building, goes in, and comes out with a bag."""
    t_soft, t_hard, t_end = timeline(rng, n)
    dx, dy, dw, dh = layout["door"]
    x_door, y_door = dx + dw / 2, dy + dh + 6
    t_break = t_hard + int(0.6 * (t_end - t_hard))
    t = np.arange(n)
    bx, by = path(
        n,
        [
            (0, W + 40, y_door + 30),
            (t_soft, x_door + 40, y_door + 10),
            (t_hard, x_door, y_door),
            (t_end, x_door, y_door),
            (n, x_door - 1.2 * (n - t_end), y_door + 20),
        ],
    )
    looks = (t >= t_soft) & (t < t_hard)
    bx = bx + looks * 8 * np.sin((t - t_soft) / 6.0)
    striking = (t >= t_hard) & (t < t_break)
    burglar = make_actor(rng, bx, by, arm=strike_arm(n, striking), role="burglar")
    inside = (t >= t_break + 5) & (t < t_end)
    burglar.visible &= ~inside
    burglar.engaged = (t >= t_hard) & burglar.visible & (t < t_end)
    burglar.carrying = t >= t_end
    return [burglar], [], t >= t_break


def vandalism(rng, n, layout, difficulty):
    """Someone walks up to a parked car and strikes it again and again, leaving dents."""
    _, t_hard, t_end = timeline(rng, n)
    cx, cy = meeting_point(rng, layout["horizon"])
    t = np.arange(n)
    vx, vy = path(
        n,
        [
            (0, -40, cy + 4),
            (t_hard, cx - 44, cy + 4),
            (t_end, cx - 44, cy + 4),
            (n, cx - 44 - 1.5 * (n - t_end), cy + 4),
        ],
    )
    hard = (t >= t_hard) & (t < t_end)
    vx = vx + hard * 3 * np.sin(np.pi * t / 8.0)
    vandal = make_actor(rng, vx, vy, arm=strike_arm(n, hard), role="vandal", engaged=hard.copy())
    damage = np.clip((t - t_hard) // 8 + 1, 0, None) * (t >= t_hard)
    car = Prop(
        "car",
        np.full(n, cx),
        np.full(n, cy),
        np.ones(n, bool),
        tuple(rng.uniform(40, 220, 3)),
        damage.astype(int),
    )
    return [vandal], [car], None


def arrest(rng, n, layout, difficulty):
    """Two officers converge on a person, who raises their hands; they stand, then leave together."""
    _, t_hard, t_end = timeline(rng, n)
    mx, my = meeting_point(rng, layout["horizon"])
    t = np.arange(n)
    hard = (t >= t_hard) & (t < t_end)
    away = [(t_end, 0, 0), (n, -1.0 * (n - t_end), 0)]
    actors = []
    for role, start, offset, uniform in (
        ("suspect", mx - 90, 0, False),
        ("officer", -60, -15, True),
        ("officer", W + 60, 15, True),
    ):
        keys = [(0, start, my), (t_hard, mx + offset, my)] + [
            (tk, mx + offset + dx, my) for tk, dx, _ in away
        ]
        x, y = path(n, keys)
        arm = hard * (2.8 if role == "suspect" else 1.1)
        d = jitter(rng, n, hard, 0.5)
        actors.append(
            make_actor(
                rng, x + d[:, 0], y + d[:, 1], arm=arm, role=role, engaged=hard.copy(), uniform=uniform
            )
        )
    return actors, [], None


ANOMALIES = {
    "Arrest": arrest,
    "Assault": assault,
    "Burglary": burglary,
    "Robbery": robbery,
    "Stealing": stealing,
    "Vandalism": vandalism,
}


# --- context shared by every video ------------------------------------------------------------


def distractors(rng, n, layout, difficulty, *, normal):
    """Things that move a lot but are normal: joggers, passing cars, people who stop to chat."""
    actors, props = [], []
    p = 0.35 + 0.5 * difficulty if normal else 0.2 + 0.3 * difficulty
    if rng.random() < p:  # a jogger
        actors.append(walker(rng, n, layout["horizon"], speed=rng.uniform(3.5, 5.5)))
        actors[-1].arm = np.full(n, 0.6)
    if rng.random() < p:  # a passing car
        direction = rng.choice([-1, 1])
        speed = rng.uniform(3.0, 7.0)
        t0 = rng.uniform(0, 0.7) * n
        x = (-50 if direction > 0 else W + 50) + direction * speed * (np.arange(n) - t0)
        y = rng.uniform(layout["horizon"] + 30, H - 4)
        props.append(
            Prop("car", x, np.full(n, y), in_view(x, 50), tuple(rng.uniform(40, 220, 3)), np.zeros(n, int))
        )
    if rng.random() < p:  # two people meet, stand and talk, then go on
        mx, my = meeting_point(rng, layout["horizon"])
        t1, t2 = sorted(rng.uniform(0.2, 0.8, 2) * n)
        for side in (-1, 1):
            x, y = path(
                n,
                [
                    (0, mx + side * 140, my),
                    (t1, mx + side * 12, my),
                    (t2, mx + side * 12, my),
                    (n, mx + side * (12 + 1.2 * (n - t2)), my),
                ],
            )
            talk = ((np.arange(n) > t1) & (np.arange(n) < t2)) * 0.4 * (np.sin(np.arange(n) / 5.0) > 0.6)
            actors.append(make_actor(rng, x, y, arm=talk))
    if rng.random() < 0.5:  # a parked car, so that a car is no evidence of vandalism
        x = rng.uniform(40, W - 40)
        y = rng.uniform(layout["horizon"] + 20, H - 4)
        props.append(
            Prop(
                "car",
                np.full(n, x),
                np.full(n, y),
                np.ones(n, bool),
                tuple(rng.uniform(40, 220, 3)),
                np.zeros(n, int),
            )
        )
    return actors, props


def build_scene(rng, video_class, n, layout, *, crowd, difficulty):
    """All actors and props of one video."""
    actors, props, door = [], [], None
    if video_class != "Normal":
        actors, props, door = ANOMALIES[video_class](rng, n, layout, difficulty)
    more_actors, more_props = distractors(rng, n, layout, difficulty, normal=video_class == "Normal")
    crowd_actors = [walker(rng, n, layout["horizon"]) for _ in range(crowd)]
    door = np.zeros(n, bool) if door is None else door
    return Scene(actors + more_actors + crowd_actors, props + more_props, door)
