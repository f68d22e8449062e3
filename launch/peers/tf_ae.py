"""Peer timing: the paper's autoencoder in TensorFlow, non-private and with TF Privacy's DPSequential.

Run by launch/benchmark_peers.sh in its own venv (tensorflow-cpu + tensorflow-privacy);
prints one JSON object.
  python launch/peers/tf_ae.py --batch_size=16 --height=240 --width=320 --repeats=3
"""

import argparse
import json
import statistics
import time

import numpy as np
import tensorflow as tf


def layers():
    def conv(f, s):
        return tf.keras.layers.Conv2D(f, 3, strides=s, padding="same", activation="relu")

    def up(f):
        return tf.keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")

    return [conv(240, 2), conv(64, 2), conv(16, 2), up(16), up(64), up(240),
            tf.keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")]  # fmt: skip


def time_fit(model, x, repeats, batch_size):
    model.fit(x, x, batch_size=batch_size, epochs=1, verbose=0)  # warm-up (graph building)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, x, batch_size=batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    x = np.random.default_rng(0).random((args.batch_size, args.height, args.width, 3), dtype=np.float32)
    out = {"tensorflow": tf.__version__}
    shape = (args.height, args.width, 3)

    plain = tf.keras.Sequential([tf.keras.Input(shape), *layers()])
    plain.compile(optimizer=tf.keras.optimizers.Adam(1e-4), loss="mse")
    out["tf_plain_s"] = time_fit(plain, x, args.repeats, args.batch_size)

    import tensorflow_privacy

    dp = tensorflow_privacy.DPSequential(
        l2_norm_clip=0.01, noise_multiplier=1.0, layers=[tf.keras.Input(shape), *layers()]
    )
    dp.compile(optimizer=tf.keras.optimizers.Adam(1e-4), loss="mse")
    out["tf_privacy_dpsequential_s"] = time_fit(dp, x, args.repeats, args.batch_size)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
