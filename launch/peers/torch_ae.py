"""Peer timing: the paper's autoencoder in PyTorch, non-private and with Opacus (per-sample hooks).

Run by launch/benchmark_peers.sh in its own venv (torch + opacus); prints one JSON object.
  python launch/peers/torch_ae.py --batch_size=16 --height=240 --width=320 --repeats=3
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn


def autoencoder():
    # Encoder 240, 64, 16 filters (3x3, stride 2, ReLU); decoder mirrors it with transposed
    # convolutions (output_padding=1 doubles each side, as "SAME" does), then 3x3 to RGB, sigmoid.
    def up(cin, cout):
        return [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1), nn.ReLU()]

    return nn.Sequential(
        nn.Conv2d(3, 240, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(240, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 16, 3, stride=2, padding=1), nn.ReLU(),
        *up(16, 16), *up(16, 64), *up(64, 240),
        nn.Conv2d(240, 3, 3, padding=1), nn.Sigmoid(),
    )  # fmt: skip


def time_steps(step, repeats):
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.rand(args.batch_size, 3, args.height, args.width)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}

    model = autoencoder()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def plain_step():
        opt.zero_grad()
        nn.functional.mse_loss(model(x), x).backward()
        opt.step()

    out["torch_plain_s"] = time_steps(plain_step, args.repeats)

    import opacus
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    out["opacus"] = opacus.__version__
    dp_model = GradSampleModule(autoencoder())
    dp_opt = DPOptimizer(
        torch.optim.Adam(dp_model.parameters(), lr=1e-4),
        noise_multiplier=1.0,
        max_grad_norm=0.01,
        expected_batch_size=args.batch_size,
    )

    def opacus_step():
        dp_opt.zero_grad()
        # Per-sample losses summed: each sample's gradient is its own loss's gradient.
        per_sample = ((dp_model(x) - x) ** 2).mean(dim=(1, 2, 3))
        per_sample.sum().backward()
        dp_opt.step()

    out["opacus_hooks_s"] = time_steps(opacus_step, args.repeats)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
