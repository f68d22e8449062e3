"""Writes the synthetic world: a miniature UCF-Crime + UCFCrime2Local tree.

Layout (identical to the real data's, see ``ppvad_jax.data.ucf_layout``)::

    OUT/<Class>/<Name>_x264.avi                         320x240, 30 FPS, lossless FFV1
    OUT/UCFCrime2Local/readme/Train_split_AD.txt
    OUT/UCFCrime2Local/readme/Test_split_AD.txt
    OUT/UCFCrime2Local/readme/Txt annotations/<Name>.txt   Vatic rows
    OUT/synthetic_manifest.json                         parameters and ground truth
    OUT/contact_sheets/<Name>.png                       on request

Each video has its own seed derived from (seed, video index), so the world is
identical for a seed whatever the number of worker processes. About a third of
the annotation files are 1-based, to exercise the frame-numbering rule.
"""

import concurrent.futures
import dataclasses
import json
import multiprocessing
import pathlib

import numpy as np
import tqdm

from ppvad_jax.data import contact_sheet, ucf_layout, vatic, video_io
from ppvad_jax.data.synthetic import render, scenarios

FPS = 30


@dataclasses.dataclass(frozen=True)
class WorldParams:
    num_videos: int = 21
    seed: int = 0
    seconds: float = 6.0  # length of every video
    crowd: int = 3  # passers-by per video
    difficulty: float = 0.5  # 0..1: sensor noise, distractors, subtler anomalies
    codec: str = "ffv1"
    normal_fraction: float = 0.4
    test_fraction: float = 0.3
    # 0: every video has its own scene. K > 0: a site of K fixed cameras (same background, door and
    # windows per camera), assigned by ``camera_plan`` so that every camera films normal and
    # anomalous videos of train and of test: the scene then says nothing about the label, as for
    # a team whose training footage comes from its own cameras.
    cameras: int = 0


def plan_videos(params):
    """``[(name, class)]``: about ``normal_fraction`` normal, the rest round-robin over anomalies."""
    if params.num_videos < 2:
        raise ValueError("num_videos must be at least 2 (one normal, one anomalous)")
    num_normal = max(1, round(params.num_videos * params.normal_fraction))
    plan, counts = [], dict.fromkeys(ucf_layout.CLASSES, 0)
    for i in range(params.num_videos):
        cls = "Normal" if i < num_normal else ucf_layout.ANOMALY_CLASSES[(i - num_normal) % 6]
        counts[cls] += 1
        name = f"Normal_Videos_{counts[cls]:03d}" if cls == "Normal" else f"{cls}{counts[cls]:03d}"
        plan.append((name, cls))
    return plan


def split_plan(plan, params):
    """Train and test name lists, stratified by class.

    Normal and anomalous videos each send about ``test_fraction`` of their number to test (at
    least one, never all), and the anomalous test videos are spread over the anomaly classes
    (largest remainder), so every class reaches test once the world has enough videos. (Taking
    every k-th anomalous video instead aliases with the round-robin class order: with 6 classes
    and k = 3 only Burglary and Vandalism ever reached test.)"""
    by_class = {}
    for name, cls in plan:
        by_class.setdefault(cls, []).append(name)
    test = set()
    for group in (["Normal"], [c for c in ucf_layout.ANOMALY_CLASSES if c in by_class]):
        sizes = {c: len(by_class.get(c, [])) for c in group}
        total = sum(sizes.values())
        if total < 2:
            continue  # one video: it trains
        want = min(total - 1, max(1, round(total * params.test_fraction)))
        quota = {c: sizes[c] * want / total for c in group}
        count = {c: int(quota[c]) for c in group}
        by_remainder = sorted(group, key=lambda c: (count[c] - quota[c], group.index(c)))
        for c in [c for c in by_remainder if count[c] < sizes[c]][: want - sum(count.values())]:
            count[c] += 1
        for c in group:  # evenly spaced within the class
            test.update(by_class[c][int((j + 1) * sizes[c] / (count[c] + 1))] for j in range(count[c]))
    return [n for n, _ in plan if n not in test], [n for n, _ in plan if n in test]


def camera_plan(plan, params):
    """``{name: camera}`` for a site of ``params.cameras`` cameras; {} without one.

    Round-robin within each group of (split, normal or anomalous), in plan order: a group of at
    least K videos then has every camera. (Round-robin over the whole plan, video i on camera
    i % K, left coverage to which indices the split picked.) A classifier that learns which
    scene a video shows, not what happens in it, then gains nothing on test (a measured trap:
    frozen ImageNet features scored 0.30, below chance, on a world where each video had its own
    background and only 5 were normal)."""
    if not params.cameras:
        return {}
    train, test = split_plan(plan, params)
    label = dict(plan)
    cameras = {}
    for split in (train, test):
        for normal in (True, False):
            group = [n for n in split if (label[n] == "Normal") == normal]
            cameras.update({name: j % params.cameras for j, name in enumerate(group)})
    return cameras


def scene_coverage(manifest):
    """``{split: {"normal": sorted cameras, "anomalous": sorted cameras}}`` of a site's manifest."""
    camera = {v["name"]: v.get("camera") for v in manifest["videos"]}
    label = {v["name"]: v["class"] for v in manifest["videos"]}
    out = {}
    for split in ("train", "test"):
        names = manifest[split]
        out[split] = {
            kind: sorted({camera[n] for n in names if (label[n] == "Normal") == (kind == "normal")})
            for kind in ("normal", "anomalous")
        }
    return out


def render_frames(scene, background, layout, rng, difficulty):
    """Yields the RGB frames of a scene."""
    n = len(scene.door_broken)
    gain = 1 + 0.06 * difficulty * np.sin(2 * np.pi * np.arange(n) / n * rng.uniform(0.5, 2))
    noise_std = 2 + 5 * difficulty
    phases = [a.phase() for a in scene.actors]
    all_faces = render.faces()
    for t in range(n):
        canvas = background.copy()
        render.draw_door(canvas, layout["door"], broken=bool(scene.door_broken[t]))
        items = [(p.y[t], "prop", p) for p in scene.props if p.visible[t]]
        items += [
            (a.y[t], "actor", (a, ph)) for a, ph in zip(scene.actors, phases, strict=True) if a.visible[t]
        ]
        bag = next((p for p in scene.props if p.kind == "bag"), None)
        for _, kind, item in sorted(items, key=lambda i: i[0]):
            if kind == "prop" and item.kind == "car":
                render.draw_car(
                    canvas,
                    x=item.x[t],
                    y=item.y[t],
                    color=item.color,
                    damage=int(item.damage[t]),
                    damage_rng=7,
                )
            elif kind == "prop":
                render.draw_bag(canvas, x=item.x[t], y=item.y[t], color=item.color)
            else:
                actor, phase = item
                render.draw_person(
                    canvas,
                    x=actor.x[t],
                    y=actor.y[t],
                    phase=phase[t],
                    arm=actor.arm[t],
                    lying=bool(actor.lying[t]),
                    look=actor.look,
                    face=all_faces[actor.face],
                )
                if actor.carrying[t]:
                    h = render.PERSON_HEIGHT * render.person_scale(actor.y[t])
                    color = bag.color if bag is not None else (90, 60, 30)
                    render.draw_bag(canvas, x=actor.x[t] + 0.28 * h, y=actor.y[t] - 0.3 * h, color=color)
        canvas = canvas * gain[t] + rng.normal(0, noise_std, canvas.shape)
        yield np.clip(canvas, 0, 255).astype(np.uint8)


def annotation_rows(scene, *, frame_base, rng):
    """Vatic rows: one per frame per participant; ``lost=0`` while engaged and visible."""
    rows = []
    participants = [a for a in scene.actors if a.role is not None]
    for track_id, actor in enumerate(participants):
        for t in range(len(actor.x)):
            box = render.person_box(
                actor.x[t], actor.y[t], render.person_scale(actor.y[t]), bool(actor.lying[t])
            )
            xmin, xmax = (int(np.clip(v, 0, render.WIDTH - 1)) for v in (box[0], box[2]))
            ymin, ymax = (int(np.clip(v, 0, render.HEIGHT - 1)) for v in (box[1], box[3]))
            lost = not (actor.engaged[t] and actor.visible[t])
            rows.append(
                vatic.VaticRow(
                    track_id=track_id,
                    xmin=xmin,
                    ymin=ymin,
                    xmax=xmax,
                    ymax=ymax,
                    frame=t + frame_base,
                    lost=lost,
                    occluded=bool(rng.random() < 0.05),
                    generated=t % 5 != 0,
                    label="Person",
                    attributes=(actor.role,),
                )
            )
    return rows


def generate_video(job):
    """Renders and writes one video (and its annotation). Returns its manifest entry."""
    name, cls, index, camera, params, out_dir, sheets = job
    rng = np.random.default_rng([params.seed, index])
    n = int(round(params.seconds * FPS))
    if camera is not None:
        background, layout = render.background(np.random.default_rng([params.seed, 1_000_003, camera]))
    else:
        background, layout = render.background(rng)
    scene = scenarios.build_scene(rng, cls, n, layout, crowd=params.crowd, difficulty=params.difficulty)
    out_dir = pathlib.Path(out_dir)
    video_path = out_dir / cls / f"{name}_x264{video_io.CODECS[params.codec][1]}"
    video_path.parent.mkdir(parents=True, exist_ok=True)
    frames = list(render_frames(scene, background, layout, rng, params.difficulty))
    video_io.write_video(video_path, frames, fps=FPS, codec=params.codec)
    entry = {"name": name, "class": cls, "frames": n, "path": str(video_path.relative_to(out_dir))}
    if camera is not None:
        entry["camera"] = camera
    labels = np.zeros(n, np.int8)
    if cls != "Normal":
        frame_base = int(rng.random() < 0.35)
        rows = annotation_rows(scene, frame_base=frame_base, rng=rng)
        ann_path = out_dir / ucf_layout.ANNOTATIONS_DIR / f"{name}.txt"
        ann_path.parent.mkdir(parents=True, exist_ok=True)
        ann_path.write_text("".join(vatic.format_row(r) + "\n" for r in rows))
        labels = vatic.anomalous_video_labels(rows, num_frames=n, frame_base=frame_base).labels
        hard = np.flatnonzero(labels == ucf_layout.HARD)
        entry.update(
            frame_base=frame_base,
            hard_frames=int(hard.size),
            hard_first=int(hard[0]),
            hard_last=int(hard[-1]),
        )
    if sheets:
        pick = contact_sheet.pick_evenly(n, 24)
        sheet = contact_sheet.contact_sheet(
            np.stack([frames[i] for i in pick]), labels[pick], pick, title=f"{name} ({cls})"
        )
        (out_dir / "contact_sheets").mkdir(exist_ok=True)
        contact_sheet.save_png(out_dir / "contact_sheets" / f"{name}.png", sheet)
    return entry


def generate_world(out_dir, params=WorldParams(), *, contact_sheets=False, num_workers=0):
    """Writes the whole tree under ``out_dir`` and returns the manifest dict."""
    out_dir = pathlib.Path(out_dir)
    readme = out_dir / ucf_layout.README_DIR
    (readme / "Txt annotations").mkdir(parents=True, exist_ok=True)
    plan = plan_videos(params)
    cameras = camera_plan(plan, params)
    jobs = [
        (name, cls, i, cameras.get(name), params, str(out_dir), contact_sheets)
        for i, (name, cls) in enumerate(plan)
    ]
    if num_workers > 0:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context) as pool:
            entries = list(
                tqdm.tqdm(pool.map(generate_video, jobs), total=len(jobs), desc="synthetic videos")
            )
    else:
        entries = [generate_video(j) for j in tqdm.tqdm(jobs, desc="synthetic videos")]
    manifest = {"params": dataclasses.asdict(params), "fps": FPS, "videos": entries}
    return write_split(out_dir, manifest)


def write_split(out_dir, manifest):
    """Writes the split files and the manifest (with its ``train``/``test`` lists) for the
    manifest's videos, and returns the manifest. A world written before the split changed gets
    today's split without re-rendering its videos."""
    out_dir = pathlib.Path(out_dir)
    params = WorldParams(**manifest["params"])
    train, test = split_plan(plan_videos(params), params)
    (out_dir / ucf_layout.TRAIN_SPLIT).write_text("".join(f"{n}\n" for n in train))
    (out_dir / ucf_layout.TEST_SPLIT).write_text("".join(f"{n}\n" for n in test))
    manifest = {**manifest, "train": train, "test": test}
    (out_dir / "synthetic_manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest
