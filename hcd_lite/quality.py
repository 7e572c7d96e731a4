"""Quality benchmark: every shipped backbone, with and without collaborative examples.

    python -m hcd_lite.quality [--crop 256] [--scales 2 4] [--methods baseline hcd]

prints PSNR-Y / SSIM-Y (8-bit LR, border cropped by the scale) per backbone, scale and
method, averaged over the held-out images, with per-image gains and the seconds taken.
The book's benchmark chapter calls :func:`evaluate_methods` on crops.
"""
from __future__ import annotations

import argparse

import torch
from tqdm.auto import tqdm

from . import collaborative
from .data import center_crop, heldout_images
from .models import BACKBONES, load_backbone
from .options import PAPER, Options

#: The compared methods, each ``f(y, model, options) -> CollaborativeResult``.
METHODS = {
    "baseline": lambda y, m, o: collaborative.rescale(y, m, o.quantize),
    "adversarial_lr": lambda y, m, o: collaborative.adversarial_lr(y, m, options=o),
    "collaborative_hr": lambda y, m, o: collaborative.collaborative_hr(y, m, options=o),
    "collaborative_lr": lambda y, m, o: collaborative.collaborative_lr(y, m, options=o),
    "hcd": lambda y, m, o: collaborative.hcd(y, m, options=o),
}


def evaluate_methods(model, images: dict, methods=("baseline", "hcd"), progress=False,
                     options: Options = PAPER, **overrides) -> list[dict]:
    """One row per (method, image): ``psnr``, ``ssim``, ``seconds``. ``options`` (with
    ``overrides``) go to the optimisers; the single-stage methods run ``steps_lr`` /
    ``steps_hr`` steps of their stage. Images are ``{name: [1, 3, H, W]}``."""
    options = options.replace(**overrides)
    rows = []
    for method in tqdm(methods, disable=not progress, desc=type(model).__name__):
        fn = METHODS[method]
        for name, y in images.items():
            r = fn(y, model, options)
            rows.append(dict(method=method, image=name, psnr=float(r.psnr(y)[0]),
                             ssim=float(r.ssim(y)[0]), seconds=r.seconds))
    return rows


def summarise(rows: list[dict]) -> dict:
    """``{method: {"psnr", "ssim", "seconds", "gain", "improved"}}``: means over images;
    ``gain`` is the mean PSNR change over the baseline, ``improved`` how many images gained."""
    base = {r["image"]: r["psnr"] for r in rows if r["method"] == "baseline"}
    out = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        sel = [r for r in rows if r["method"] == method]
        gains = [r["psnr"] - base[r["image"]] for r in sel] if base else []
        out[method] = dict(psnr=sum(r["psnr"] for r in sel) / len(sel),
                           ssim=sum(r["ssim"] for r in sel) / len(sel),
                           seconds=sum(r["seconds"] for r in sel) / len(sel),
                           gain=sum(gains) / len(gains) if gains else float("nan"),
                           improved=sum(g > 0 for g in gains), images=len(sel))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description="PSNR/SSIM of every backbone on the held-out images")
    p.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--crop", type=int, default=0, help="central crop size (0: full images)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if "baseline" not in args.methods:
        args.methods.insert(0, "baseline")
    images = heldout_images()
    if args.crop:
        images = {k: center_crop(v, args.crop) for k, v in images.items()}
    print(f"held-out images: {', '.join(f'{k} {tuple(v.shape[-2:])}' for k, v in images.items())}")
    print(f"options: {PAPER}")
    print(f"{'backbone':16s} {'scale':>5s} {'method':17s} {'PSNR-Y':>7s} {'SSIM-Y':>7s} "
          f"{'gain dB':>8s} {'improved':>8s} {'s/image':>8s}")
    for scale in args.scales:
        for name in args.backbones:
            rows = evaluate_methods(load_backbone(name, scale), images, args.methods, progress=True)
            for method, s in summarise(rows).items():
                print(f"{name:16s} {scale:5d} {method:17s} {s['psnr']:7.2f} {s['ssim']:7.4f} "
                      f"{s['gain']:+8.2f} {s['improved']:>4d}/{s['images']:<3d} "
                      f"{s['seconds']:8.2f}", flush=True)


if __name__ == "__main__":
    main()
