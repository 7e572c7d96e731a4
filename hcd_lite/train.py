"""Train a backbone on the bundled images and write its weights and manifest.

    python -m hcd_lite.train --model irn --scale 4 --minutes 10

Either ``--steps N`` or ``--minutes M`` (the step count that fits M minutes is measured
on the first iterations, then fixed and recorded). The learning rate is held for the
first ``HOLD`` steps, then follows a cosine decay to zero, so re-running with the
recorded ``--steps`` repeats the same schedule. Checkpoints go to ``--work`` every
``--checkpoint-every`` steps; ``--resume`` continues from the last one. ``--init W.pt``
continues training finished weights with a fresh schedule (e.g. a GPU run refined on a CPU):
the manifest then lists every stage, totals their steps and wall time, and its
``replay_command`` chains the stages' commands.

Losses (every model): L1 (or, with ``--loss l2``, a scaled MSE: what PSNR measures, used to
fine-tune finished weights) between the reconstruction of the 8-bit-rounded LR and the HR
patch, plus the MSE between the LR and the bicubic LR (keeps the LR a viewable image);
IRN adds ``(s^2 - 1)/s^2 * mean(z^2)`` so the discarded latent carries little; HCFlow adds
the same penalty on the difference between each latent and its prediction from the coarser
images, and decodes with the predictions.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .collaborative import rescale
from .data import PatchSampler, heldout_images, training_images
from .metrics import psnr
from .models import Bicubic
from .models.base import round_to_8bit_straight_through
from .models.bicubic import bicubic_down
from .models.hcflow import HCFlow
from .models.irn import IRN
from .models.registry import (TRAINABLE, build_model, sha256, training_stages,
                              verified_weights, weights_dir)

HOLD = 50  # steps at the initial learning rate (steps 10-50 time the --minutes budget)


def scaled_mse(sr: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """50 x MSE: its gradient matches L1's (1) at the typical error of a trained model (0.01)."""
    return 50 * F.mse_loss(sr, y)


RECONSTRUCTION_LOSSES = {"l1": F.l1_loss, "l2": scaled_mse}


def training_loss(model, y: torch.Tensor, reconstruction: str = "l1") -> torch.Tensor:
    """The joint rescaling loss of one HR batch ``y`` [N, 3, P, P]."""
    s = model.scale
    latent = 0.0
    if isinstance(model, (IRN, HCFlow)):
        lr, z = model.encode(y)  # HCFlow: per-level residuals of the predicted latents
        if isinstance(model, IRN) and model.z_mode == "sample":
            sr = model.decode(round_to_8bit_straight_through(lr), torch.randn_like(z))
        else:
            sr = model.decode(round_to_8bit_straight_through(lr))
        flat = torch.cat([t.flatten() for t in (z if isinstance(z, list) else [z])])
        latent = (s * s - 1) / (s * s) * flat.pow(2).mean()
    else:
        lr = model.down(y)
        sr = model.up(round_to_8bit_straight_through(lr))
    return (RECONSTRUCTION_LOSSES[reconstruction](sr, y) + F.mse_loss(lr, bicubic_down(y, s))
            + latent)


def learning_rate(step: int, total: int, base: float) -> float:
    """Constant for ``HOLD`` steps, then cosine decay to 0 at ``total``."""
    if step < HOLD:
        return base
    return base * 0.5 * (1 + math.cos(math.pi * (step - HOLD) / max(1, total - HOLD)))


@torch.no_grad()
def evaluate(model, device: str = "cpu") -> dict[str, float]:
    """PSNR-Y (8-bit LR, border cropped by the scale) on every held-out image."""
    out = {}
    for name, y in heldout_images().items():
        y = y.to(device)
        out[name] = float(psnr(rescale(y, model).sr, y, crop=model.scale)[0])
    return out


def evaluate_mean(model, device: str = "cpu") -> float:
    """Mean of :func:`evaluate` over the held-out images."""
    scores = evaluate(model, device)
    return sum(scores.values()) / len(scores)


STAGE_KEYS = ("command", "replay_command", "steps", "batch", "patch", "lr", "loss", "seed",
              "device", "device_name", "torch_version", "wall_seconds", "heldout_psnr_y_mean")


def load_init(init: Path, model: str, scale: int) -> tuple[dict, list[dict], dict]:
    """Config, training stages and checked weights of the ``--init`` file and its manifest."""
    manifest_path = init.with_suffix(".json")
    if not manifest_path.exists():
        raise SystemExit(f"--init needs the manifest {manifest_path} beside the weights {init}")
    parent = json.loads(manifest_path.read_text())
    if (parent["model"], parent["scale"]) != (model, scale):
        raise SystemExit(f"--init {init} holds {parent['model']} x{parent['scale']}, "
                         f"not {model} x{scale}")
    try:
        state = verified_weights(init, parent)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"--init: {err}") from None
    stages = [{k: st[k] for k in STAGE_KEYS} for st in training_stages(parent)]
    return parent["config"], stages, state


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, choices=sorted({name for name, _ in TRAINABLE}))
    p.add_argument("--scale", type=int, required=True, choices=(2, 4))
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="number of optimiser steps")
    budget.add_argument("--minutes", type=float, default=10.0,
                        help="time budget; the step count is measured then fixed (default 10)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=96, help="HR patch size (multiple of 4)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--loss", choices=sorted(RECONSTRUCTION_LOSSES), default="l1",
                   help="reconstruction term: l1 (default) or l2 (50 x MSE, to fine-tune for PSNR)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--name", help="output file stem (default <model>_x<scale>)")
    p.add_argument("--out", type=Path, default=None, help="weights folder (default data/weights)")
    p.add_argument("--work", type=Path, default=None,
                   help="checkpoint folder (default runs/<name>)")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--init", type=Path, default=None,
                   help="start from these weights (with their manifest beside them) on a new "
                        "schedule")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.patch % 4:
        raise SystemExit(f"--patch must be a multiple of 4, got {args.patch}")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True  # fixed patch shapes: let cuDNN pick fast kernels
    name = args.name or f"{args.model}_x{args.scale}"
    out_dir = args.out or weights_dir()
    work = args.work or Path("runs") / name
    work.mkdir(parents=True, exist_ok=True)
    ckpt_path = work / "checkpoint.pt"

    config, stages, state = {}, [], None
    if args.init:
        config, stages, state = load_init(args.init, args.model, args.scale)
    model = build_model(args.model, args.scale, **config)
    if state is not None and not args.resume:
        model.load_state_dict(state)
    model.to(args.device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=args.lr)
    data = training_images()
    sampler = PatchSampler([t for _, t in data], args.patch, seed=args.seed)
    step, total, elapsed, last_loss = 0, args.steps, 0.0, None
    if args.resume:
        if not ckpt_path.exists():
            raise SystemExit(f"--resume: no checkpoint at {ckpt_path}")
        ck = torch.load(ckpt_path, map_location=args.device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sampler.gen.set_state(ck["sampler"].cpu())  # RNG states stay on the CPU
        torch.set_rng_state(ck["torch_rng"].cpu())
        step, total, elapsed = ck["step"], ck["total"], ck["elapsed"]
        last_loss = ck["last_loss"]

    def save_checkpoint():
        torch.save(dict(model=model.state_dict(), optimizer=opt.state_dict(), step=step,
                        total=total, elapsed=elapsed, last_loss=last_loss,
                        sampler=sampler.gen.get_state(),
                        torch_rng=torch.get_rng_state()), ckpt_path)

    bar = tqdm(total=total, initial=step, desc=name, mininterval=5, disable=args.quiet)
    start = time.time() - elapsed
    while total is None or step < total:
        if total is None and step == 10:
            timer = time.time()
        if total is None and step == HOLD:  # --minutes: fix the step count from the speed so far
            per_step = (time.time() - timer) / (HOLD - 10)
            left = args.minutes * 60 - (time.time() - start)
            total = max(HOLD + 1, int(left / per_step) + HOLD)
            bar.reset(total=total)
            bar.update(step)
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, total or HOLD + 1, args.lr)
        y = sampler.sample(args.batch).to(args.device)
        loss = training_loss(model, y, args.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        step += 1
        elapsed = time.time() - start
        bar.update(1)
        last_loss = loss.item()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{last_loss:.4f}")
        if step % args.checkpoint_every == 0:
            save_checkpoint()
    bar.close()
    save_checkpoint()

    model.eval()
    val = evaluate(model, args.device)
    ref = evaluate(Bicubic(args.scale), args.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.pt"
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
    init = f" --init data/weights/{args.model}_x{args.scale}.pt" if args.init else ""
    stage = dict(
        command="python -m hcd_lite.train " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
        replay_command=(f"python -m hcd_lite.train --model {args.model} --scale {args.scale}{init} "
                        f"--steps {total} --batch {args.batch} --patch {args.patch} "
                        f"--lr {args.lr} --loss {args.loss} --seed {args.seed} "
                        f"--device {args.device}"),
        steps=total, batch=args.batch, patch=args.patch, lr=args.lr, loss=args.loss,
        seed=args.seed,
        device=str(args.device),
        device_name=(torch.cuda.get_device_name() if "cuda" in str(args.device) else "cpu"),
        torch_version=torch.__version__, wall_seconds=round(elapsed, 1),
        heldout_psnr_y_mean=sum(val.values()) / len(val))
    stages.append(stage)
    manifest = {
        "model": args.model, "scale": args.scale, "config": model.config,
        "parameters": sum(p.numel() for p in params),
        **stage,  # this stage's settings; steps, wall time, devices and replay cover all stages
        "steps": sum(st["steps"] for st in stages),
        "wall_seconds": round(sum(st["wall_seconds"] for st in stages), 1),
        "device_name": " + ".join(dict.fromkeys(st["device_name"] for st in stages)),
        "replay_command": " && ".join(st["replay_command"] for st in stages),
        "stages": stages,
        "train_images": [n for n, _ in data], "heldout_images": list(val), "final_loss": last_loss,
        "heldout_psnr_y": val, "bicubic_psnr_y": ref,
        "bicubic_psnr_y_mean": sum(ref.values()) / len(ref), "sha256": sha256(weights)}
    (out_dir / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if not args.quiet:
        print(json.dumps({k: manifest[k] for k in ("steps", "wall_seconds", "heldout_psnr_y_mean",
                                                   "bicubic_psnr_y_mean")}))
    return manifest


if __name__ == "__main__":
    main()
