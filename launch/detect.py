"""Runs a converted darknet detector on one image; prints the boxes and the bag of objects as JSON.

  python -m launch.detect --model=DIR --image=PATH [--output_png=PATH] [--conf_threshold=0.25] \
      [--iou_threshold=0.45] [--nms=iou|darknet_diou]

DIR is what ``ppvad_jax.models.darknet.convert.convert_darknet`` wrote. The JSON has
``boxes`` (xyxy in image pixels, class id and name, score; best first), ``bag`` (the
non-zero class counts by name) and ``bag_vector`` (all counts, in class order).
``--output_png`` also writes the image with the boxes drawn.
"""

import json
import sys

import cv2
from absl import app, flags

from ppvad_jax.models.darknet import convert, detect

_MODEL = flags.DEFINE_string("model", None, "Converted model directory.", required=True)
_IMAGE = flags.DEFINE_string("image", None, "Image file (anything OpenCV reads).", required=True)
_OUTPUT_PNG = flags.DEFINE_string("output_png", None, "Write the image with boxes drawn here.")
_CONF = flags.DEFINE_float("conf_threshold", 0.25, "Score (objectness * class prob) threshold.")
_IOU = flags.DEFINE_float("iou_threshold", 0.45, "NMS IoU threshold.")
_NMS = flags.DEFINE_enum(
    "nms",
    "iou",
    ["iou", "darknet_diou"],
    "What NMS compares: IoU (OpenCV) or AlexeyAB darknet's greedynms DIoU.",
)


def draw(image_bgr, boxes):
    """Boxes and labels drawn on a copy of ``image_bgr``."""
    out = image_bgr.copy()
    for box in boxes:
        x0, y0, x1, y1 = (round(v) for v in box.xyxy)
        color = tuple(
            int(c) for c in (37 * box.class_id % 256, 17 * box.class_id % 256, 255 - 29 * box.class_id % 256)
        )
        cv2.rectangle(out, (x0, y0), (x1, y1), color, 2)
        label = f"{box.class_name} {box.score:.2f}"
        cv2.putText(out, label, (x0, max(y0 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
    return out


def main(argv):
    del argv
    try:
        model, variables, spec = convert.load_converted(_MODEL.value)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    image_bgr = cv2.imread(_IMAGE.value, cv2.IMREAD_COLOR)
    if image_bgr is None:
        sys.exit(f"error: {_IMAGE.value}: cannot read image (missing, or a format OpenCV cannot decode)")
    result = detect.detect_image(
        model,
        variables,
        spec,
        cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB),
        conf_threshold=_CONF.value,
        iou_threshold=_IOU.value,
        nms_overlap=_NMS.value,
    )
    names = spec["class_names"]
    out = {
        "image": _IMAGE.value,
        "image_size": {"height": image_bgr.shape[0], "width": image_bgr.shape[1]},
        "conf_threshold": _CONF.value,
        "iou_threshold": _IOU.value,
        "nms": _NMS.value,
        "boxes": [
            {
                "xyxy": [round(v, 2) for v in box.xyxy],
                "class_id": box.class_id,
                "class_name": box.class_name,
                "score": round(box.score, 5),
            }
            for box in result.boxes
        ],
        "bag": {names[i]: int(n) for i, n in enumerate(result.bag) if n},
        "bag_vector": [int(n) for n in result.bag],
        "num_candidates": result.num_candidates,
    }
    if _OUTPUT_PNG.value:
        if not cv2.imwrite(_OUTPUT_PNG.value, draw(image_bgr, result.boxes)):
            sys.exit(f"error: {_OUTPUT_PNG.value}: cannot write image")
        out["output_png"] = _OUTPUT_PNG.value
    print(json.dumps(out))


if __name__ == "__main__":
    app.run(main)
