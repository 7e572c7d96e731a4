"""Every method on the three held-out images at FULL size, with bootstrap CIs (issue 19).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/full_size.py [--paper irn:4] [--crop 64]

A script that prints figures (not a test); the recorded output is ``benchmarks/FULL_SIZE.md``.
For each preset (``FAST``, ``PAPER``), backbone and scale: the PSNR-Y (dB, ``crop=scale``) of
each image for the baseline, adversarial LR, HR-only, LR-only and HCD, and of two LR-only runs
with HCD's step count ``Nx + Ny``: one with ``eps``, one with the combined budget
``eps * sqrt(2)`` (:meth:`hcd_lite.options.Options.scaled`); the mean gain over the baseline
and HCD minus the best single stage, each with a 95% bootstrap CI over the images
(:mod:`hcd_lite.stats`); CPU and wall seconds per image. Then the unconstrained oracle
(:func:`hcd_lite.oracle.oracle_lr`) for the backbones of ``--oracle``. PAPER runs without
its per-step PSNR record (``record_psnr=False``: the same result, less work). One torch thread.
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import subprocess
import sys

import numpy as np
import torch

import hcd_lite
from hcd_lite.data import center_crop, heldout_images
from hcd_lite.options import FAST, PAPER
from hcd_lite.oracle import oracle_lr
from hcd_lite.perf import timed
from hcd_lite.stats import bootstrap_ci, format_ci, sign

PRESETS = {"FAST": FAST, "PAPER": PAPER.replace(record_psnr=False)}
ORDER = ("adversarial LR", "baseline", "HR-only", "LR-only", "HCD")
METHODS = {
    "adversarial LR": lambda y, m, o: hcd_lite.adversarial_lr(y, m, options=o),
    "baseline": lambda y, m, o: hcd_lite.rescale(y, m, quantize=o.quantize),
    "HR-only": lambda y, m, o: hcd_lite.collaborative_hr(y, m, options=o),
    "LR-only": lambda y, m, o: hcd_lite.collaborative_lr(y, m, options=o),
    "HCD": lambda y, m, o: hcd_lite.hcd(y, m, options=o),
    "LR-only, Nx+Ny steps": lambda y, m, o: hcd_lite.collaborative_lr(
        y, m, o.steps_hr + o.steps_lr, options=o),
    "LR-only, Nx+Ny steps, eps*sqrt2": lambda y, m, o: hcd_lite.collaborative_lr(
        y, m, o.steps_hr + o.steps_lr, options=o.scaled(math.sqrt(2))),
}


def model_of(name: str, scale: int):
    return hcd_lite.Bicubic(scale) if name == "bicubic" else hcd_lite.load_pretrained(name, scale)


def config(text: str) -> tuple[str, int]:
    """``"irn:4"`` -> ``("irn", 4)``."""
    name, scale = text.split(":")
    return name, int(scale)


def measure(images: dict, model, method: str, options) -> dict:
    """Per image: PSNR-Y (dB), wall and CPU seconds of ``METHODS[method]``."""
    rows = {}
    for name, y in images.items():
        r, wall, cpu = timed(METHODS[method], y, model, options)
        rows[name] = {"psnr": r.psnr(y).item(), "wall": wall, "cpu": cpu}
    return rows


def ci_text(values) -> str:
    """Mean and 95% bootstrap CI of per-image values, and whether the CI excludes 0."""
    ci = bootstrap_ci(values)
    return f"{format_ci(ci)} {('> 0', 'contains 0', '< 0')[1 - sign(ci)]}"


def table(images: dict, results: dict) -> None:
    """PSNR per image, mean, gain over the baseline with CI, seconds per image."""
    names = list(images)
    base = np.array([results["baseline"][n]["psnr"] for n in names])
    print(f"{'method':33}" + "".join(f"{n:>10}" for n in names)
          + f"{'mean':>9}   {'gain vs baseline [95% CI]':34}{'CPU s/img':>10}{'wall s/img':>11}")
    for method, rows in results.items():
        p = np.array([rows[n]["psnr"] for n in names])
        print(f"{method:33}" + "".join(f"{v:10.3f}" for v in p) + f"{p.mean():9.3f}   "
              f"{ci_text(p - base):34}{np.mean([r['cpu'] for r in rows.values()]):10.2f}"
              f"{np.mean([r['wall'] for r in rows.values()]):11.2f}")


def verdicts(images: dict, results: dict) -> dict:
    """The ordering of the mean PSNRs and HCD minus the single stages (paired, with CIs)."""
    names = list(images)
    psnr = {m: np.array([rows[n]["psnr"] for n in names]) for m, rows in results.items()}
    ranked = sorted((m for m in ORDER if m in psnr), key=lambda m: psnr[m].mean())
    expected = [m for m in ORDER if m in psnr]
    print(f"ordering of the means: {' < '.join(ranked)}  "
          f"({'as expected' if ranked == expected else 'expected ' + ' < '.join(expected)})")
    best = max(("HR-only", "LR-only"), key=lambda m: psnr[m].mean())
    for other in (best, *(m for m in METHODS if m.startswith("LR-only,") and m in psnr)):
        print(f"HCD - {other:31}: {ci_text(psnr['HCD'] - psnr[other])}")
    return {"best": best, "hcd_minus_best": ci_text(psnr["HCD"] - psnr[best]),
            "ordered": ranked == expected,
            "hcd_cpu": np.mean([r["cpu"] for r in results["HCD"].values()])}


def oracle_section(images: dict, configs, steps: int, lr: float, done: dict) -> None:
    """The oracle per image against the baseline and HCD FAST (taken from ``done`` when
    the FAST section measured them)."""
    for name, scale in configs:
        model = model_of(name, scale)
        fast = done.get((name, scale)) or {m: measure(images, model, m, FAST)
                                           for m in ("baseline", "HCD")}
        kw = {} if isinstance(model, hcd_lite.Bicubic) else {"steps": steps, "lr": lr}
        solver = "CGLS" if not kw else f"Adam, {steps} steps, lr {lr:g}"
        print(f"\n== oracle: {name} x{scale} ({solver}) ==")
        print(f"{'image':10}{'baseline':>10}{'HCD FAST':>10}{'oracle':>10}{'oracle-HCD':>11}"
              f"{'|dx| L2':>9}{'iters':>7}{'CPU s':>8}{'wall s':>8}   loss PSNR-RGB by step")
        gaps = []
        for n, y in images.items():
            r, wall, cpu = timed(oracle_lr, y, model, progress=False, **kw)
            b, h, o = fast["baseline"][n]["psnr"], fast["HCD"][n]["psnr"], r.psnr(y).item()
            gaps.append(o - h)
            curve = [-10 * math.log10(r.history[t]["loss"][0])
                     for t in sorted({0, len(r.history) // 2, len(r.history) - 1})]
            print(f"{n:10}{b:10.3f}{h:10.3f}{o:10.3f}{o - h:+11.3f}"
                  f"{r.delta_lr.norm().item():9.2f}{len(r.history):7d}{cpu:8.2f}{wall:8.2f}   "
                  + " -> ".join(f"{c:.3f}" for c in curve))
        print(f"oracle - HCD FAST, mean [95% CI]: {ci_text(gaps)}  (eps = {FAST.eps})")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fast", nargs="*", type=config,
                   default=[("irn", 2), ("irn", 4), ("hcflow", 2), ("hcflow", 4)],
                   help="backbone:scale pairs run with the FAST preset")
    p.add_argument("--paper", nargs="*", type=config, default=[("irn", 4)],
                   help="backbone:scale pairs run with the PAPER preset")
    p.add_argument("--paper-methods", nargs="+", default=["baseline", "HR-only", "LR-only",
                                                           "HCD"], choices=list(METHODS))
    p.add_argument("--oracle", nargs="*", type=config, default=[("bicubic", 4), ("irn", 4)])
    p.add_argument("--oracle-steps", type=int, default=30)
    p.add_argument("--oracle-lr", type=float, default=3e-3)
    p.add_argument("--crop", type=int, default=None,
                   help="central crops of this size instead of the full images (smoke runs)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    images = heldout_images()
    if args.crop:
        images = {n: center_crop(y, args.crop) for n, y in images.items()}
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    print(f"$ {' '.join(sys.argv)}\ngit HEAD {head}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread, load average {os.getloadavg()[0]:.1f}")
    print(f"started {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC; images "
          + ", ".join(f"{n} {y.shape[-2]}x{y.shape[-1]}" for n, y in images.items()))
    summary, done = [], {}
    plan = [("FAST", c, list(METHODS)) for c in args.fast]
    plan += [("PAPER", c, args.paper_methods) for c in args.paper]
    for preset, (name, scale), methods in plan:
        model = model_of(name, scale)
        print(f"\n== {preset}: {hcd_lite.label(name)} x{scale} ==")
        results = {m: measure(images, model, m, PRESETS[preset]) for m in methods}
        table(images, results)
        summary.append((preset, name, scale, verdicts(images, results)))
        if preset == "FAST":
            done[name, scale] = results
    print("\n== summary: HCD - best single stage (mean [95% CI] over the images) ==")
    for preset, name, scale, v in summary:
        print(f"{preset:6}{name:8}x{scale}  ordering {'holds' if v['ordered'] else 'FAILS':6}"
              f"  HCD - {v['best']:8}{v['hcd_minus_best']:36}HCD {v['hcd_cpu']:.1f} CPU s/img")
    oracle_section(images, args.oracle, args.oracle_steps, args.oracle_lr, done)
    print(f"\nfinished {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC, "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
