"""Contact sheets: a grid of frames, each bordered by its label colour."""

import cv2
import numpy as np

from ppvad_jax.data import ucf_layout

# RGB border colours per label: green normal, orange soft, red hard.
LABEL_COLORS = {
    ucf_layout.NORMAL: (40, 180, 60),
    ucf_layout.SOFT: (255, 150, 0),
    ucf_layout.HARD: (230, 20, 20),
}


def contact_sheet(frames, labels, frame_indices, *, title="", columns=6, thumb_width=160):
    """Tiles frames into one RGB image with a label border and frame number on each.

    Args:
      frames: uint8 [N, H, W, 3] RGB.
      labels: [N] per-frame labels (NORMAL, SOFT, HARD).
      frame_indices: [N] frame numbers to print.
      title: text written above the grid, with a legend.
    """
    frames = np.asarray(frames)
    n, h, w = frames.shape[:3]
    thumb_h = int(round(h * thumb_width / w))
    border = 4
    cell_w, cell_h = thumb_width + 2 * border, thumb_h + 2 * border
    rows = max(1, -(-n // columns))
    header = 24
    sheet = np.full((header + rows * cell_h, columns * cell_w, 3), 255, np.uint8)
    cv2.putText(sheet, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    legend_x = sheet.shape[1] - 3 * 70
    for i, label in enumerate((ucf_layout.NORMAL, ucf_layout.SOFT, ucf_layout.HARD)):
        x = legend_x + i * 70
        cv2.rectangle(sheet, (x, 6), (x + 10, 16), LABEL_COLORS[label], -1)
        name = ucf_layout.LABEL_NAMES[label].split("_")[0]
        cv2.putText(sheet, name, (x + 13, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for i in range(n):
        r, c = divmod(i, columns)
        y0, x0 = header + r * cell_h, c * cell_w
        sheet[y0 : y0 + cell_h, x0 : x0 + cell_w] = LABEL_COLORS[int(labels[i])]
        thumb = cv2.resize(frames[i], (thumb_width, thumb_h), interpolation=cv2.INTER_AREA)
        sheet[y0 + border : y0 + border + thumb_h, x0 + border : x0 + border + thumb_width] = thumb
        cv2.putText(
            sheet,
            f"#{int(frame_indices[i])}",
            (x0 + 7, y0 + 18),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return sheet


def pick_evenly(num_frames, count):
    """``count`` indices spread evenly over ``range(num_frames)``."""
    return np.unique(np.linspace(0, num_frames - 1, min(count, num_frames)).round().astype(int))


def save_png(path, image_rgb):
    if not cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
