"""Benchmark: SDN training throughput per preset and precision on this machine.

    python -m benchmarks.perf.train_throughput --presets tiny-16,cpu-32 --precisions fp32,bf16 --steps 10

One iteration = one ψ step + one θ step on ``batch_sets`` x ``set_size`` random
images (the data pipeline is excluded: it reads a memmap). Prints a Markdown table
of seconds per iteration, iterations/s and real images/s. Reported, never asserted.
"""

from __future__ import annotations

import os
import platform
import time

import click
import torch

from sdn.config import apply_overrides, preset
from sdn.trainer import Trainer
from sdn.training import Dist


def measure(
    preset_name: str, precision: str, recipe: str, batch_sets: int, set_size: int, steps: int, device: str
) -> dict:
    cfg = apply_overrides(
        preset(preset_name, "shapes", recipe),
        [f"train.precision={precision}", f"train.batch_sets={batch_sets}", f"train.set_size={set_size}"],
    )
    trainer = Trainer(cfg, Dist(device=torch.device(device)))
    res = cfg.model.resolution
    sets = torch.rand(batch_sets, set_size, 3, res, res)
    for _ in range(3):  # warm-up (allocator, oneDNN kernel selection)
        trainer.step(sets)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(sets)
    if device == "cuda":
        torch.cuda.synchronize()
    sec = (time.perf_counter() - start) / steps
    params = sum(p.numel() for p in trainer.model.parameters()) / 1e6
    return {"s_per_it": sec, "it_s": 1 / sec, "img_s": batch_sets * set_size / sec, "params_m": params}


@click.command()
@click.option("--presets", default="tiny-16,cpu-32", show_default=True)
@click.option("--precisions", default="fp32,bf16", show_default=True)
@click.option("--recipe", default="faithful", show_default=True)
@click.option("--batch-sets", default=4, show_default=True, type=int)
@click.option("--set-size", default=8, show_default=True, type=int)
@click.option("--steps", default=10, show_default=True, type=int)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
def main(presets, precisions, recipe, batch_sets, set_size, steps, device):
    torch.manual_seed(0)
    name = torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine())
    print(
        f"device: {device} ({name}), {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    print(f"one iteration = ψ step + θ step on {batch_sets} sets x {set_size} images, recipe {recipe}")
    print("| preset | precision | params (M) | s/it | it/s | images/s |")
    print("|---|---|---:|---:|---:|---:|")
    for p in presets.split(","):
        for prec in precisions.split(","):
            r = measure(p, prec, recipe, batch_sets, set_size, steps, device)
            print(
                f"| {p} | {prec} | {r['params_m']:.2f} | {r['s_per_it']:.3f} | "
                f"{r['it_s']:.2f} | {r['img_s']:.0f} |"
            )


if __name__ == "__main__":
    main()
