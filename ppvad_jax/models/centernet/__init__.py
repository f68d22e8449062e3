"""The COCO CenterNet of the npm package ``@vladmandic/human``, run by JAX: a bag of 80 COCO classes.

- ``tfjs_model``: a TF.js graph model (``model.json`` + weight shards) into nodes and arrays;
- ``graph``: a jit-able JAX interpreter of such a graph, node by node in topological order;
- ``decode``: CenterNet's heatmap peaks and box distances into detections;
- ``bag_detector``: the bag-of-objects backend ``centernet_coco`` (preprocessing, batching).

Checked against TensorFlow.js running the same files (``tools/tfjs_reference.mjs``,
``tests/test_centernet.py``). The model files come from ``npm ci --prefix tools``.
"""
