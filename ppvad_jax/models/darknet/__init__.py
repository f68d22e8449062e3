"""Darknet YOLOv4 / YOLOv4-tiny in Flax: the detector behind the bag of objects.

- ``cfg``: the ``.cfg`` parser (typed layers, errors naming file:line);
- ``shapes``: per-layer output shapes and consistency checks;
- ``network``: the Flax module a cfg describes;
- ``decode``: the yolo layer's activation and box decoding;
- ``weights``: ``.weights`` reader and writer, seeded random weights, Flax variables;
- ``nms``: per-class NMS under jit with fixed-size outputs;
- ``bag_of_objects``: per-class object counts per frame;
- ``detect``: the jitted detector and the one-image entry point;
- ``convert``: cfg + weights -> checkpoint directory, and back.

Checked against OpenCV's darknet importer (``tests/test_darknet_opencv.py``).
"""
