"""Performance benchmark: seconds, autograd overhead, peak memory, speed-ups and tiling.

    python -m hcd_lite.perf [--sections timing speed tiling div2k] [--threads 1] [--quick]

A script that prints figures (not a test). Sections:

* ``timing``: for each backbone at each scale, on a 256x256 crop and on a full-size image
  (astronaut, 512x512): seconds per image of the baseline, LR-only, HR-only and HCD at
  the paper's defaults (15 + 15 steps); the time of one forward+backward of
  ``up(down(.))`` (an HR step) and of ``up(.)`` (an LR step); the ratio of the measured
  HCD time to ``15 * t_hr + 15 * t_lr`` (loop overhead over the unavoidable autograd
  work; target <= 1.1); the peak memory (RSS of a fresh process) and torch threads.
* ``speed``: HCD on the three held-out 256x256 crops, IRN-lite x4, every variant in the
  same run: the paper's 15 + 15 (the "before"), without the per-step PSNR record,
  :data:`hcd_lite.options.FAST`, other step counts, bfloat16 autocast of the
  gradient passes, 2 threads; mean PSNR gain and speed-up over the "before".
* ``tiling``: a 512x512 image untiled vs in 256- and 128-pixel tiles (IRN-lite x4), in
  both modes of :func:`hcd_lite.tiling.tiled`: PSNR difference, peak memory.
* ``div2k``: a 2040x1356 image (DIV2K size, astronaut resized) in 512-pixel tiles with
  IRN-lite x4: peak memory (limit 4 GiB) and time.

Every measurement runs in its own fresh process (peak RSS from ``resource.getrusage``).
CPU seconds (``time.process_time``) are printed next to wall seconds: on a shared machine
the wall time depends on the other jobs, the CPU time much less.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import os
import platform
import resource
import statistics
import time

import torch

from .options import FAST, PAPER

GIB = 1024 ** 3


# ----------------------------------------------------------------------------- helpers

def peak_rss() -> int:
    """Peak resident memory of this process in bytes (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if platform.system() == "Darwin" else rss * 1024


def timed(fn, *args, **kwargs):
    """``(result, wall seconds, CPU seconds)`` of one call."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w, time.process_time() - c


def step_times(model, y, repeats=3):
    """Median (wall, CPU) seconds of one forward+backward of ``up(down(.))`` and of ``up(.)``
    with respect to the input, the work of one HR / LR step."""
    from .pgd import frozen

    def hr():
        d = torch.zeros_like(y).requires_grad_(True)
        torch.autograd.grad(((model.up(model.down(y + d)) - y) ** 2).mean(), d)

    x = model.down(y).detach()

    def lr():
        d = torch.zeros_like(x).requires_grad_(True)
        torch.autograd.grad(((model.up(x + d) - y) ** 2).mean(), d)

    out = {}
    with torch.enable_grad(), frozen(model):
        for name, fn in (("hr", hr), ("lr", lr)):
            fn()  # warm-up
            runs = [timed(fn)[1:] for _ in range(repeats)]
            out[name] = (statistics.median(r[0] for r in runs),
                         statistics.median(r[1] for r in runs))
    return out


def image(kind: str) -> torch.Tensor:
    """``"crop256"``: central 256x256 crop of astronaut; ``"full"``: astronaut 512x512;
    ``"cropN"``: central NxN crop; ``"div2k"``: astronaut resized to 1356x2040."""
    from .data import center_crop
    from .images import load_image, sample_image

    y = sample_image("astronaut")
    if kind.startswith("crop"):
        return center_crop(y, int(kind[4:])).contiguous()
    if kind == "full":
        return y
    if kind == "div2k":
        from skimage.transform import resize

        arr = resize(y[0].permute(1, 2, 0).numpy(), (1356, 2040), order=3,
                     anti_aliasing=False).clip(0, 1)
        return load_image(arr.astype("float32"))
    raise ValueError(kind)


class Autocast:
    """A model wrapper running the gradient passes (only) in bfloat16 autocast; the final
    no-grad passes that give the stored LR and the reported SR stay float32."""

    def __init__(self, model):
        self.model, self.scale = model, model.scale

    def parameters(self):
        return self.model.parameters()

    def _call(self, fn, t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=torch.is_grad_enabled()):
            return fn(t).float()

    def down(self, y):
        return self._call(self.model.down, y)

    def up(self, x):
        return self._call(self.model.up, x)


# ----------------------------------------------------------------------------- workers
# Each runs in a fresh process and returns plain data plus its peak RSS.

def _setup(threads):
    torch.set_num_threads(threads)
    return {"threads": torch.get_num_threads(), "rss_start": peak_rss()}


def work_timing(backbone: str, scale: int, kind: str, threads: int, steps: int) -> dict:
    from . import collaborative as C
    from .models import load_backbone as load

    out = _setup(threads)
    model = load(backbone, scale)
    y = image(kind)
    out["size"] = tuple(y.shape[-2:])
    out["steps"] = step_times(model, y, repeats=3)
    base = C.rescale(y, model).psnr(y).item()
    calls = {"baseline": lambda: C.rescale(y, model),
             "lr": lambda: C.collaborative_lr(y, model, steps, progress=False),
             "hr": lambda: C.collaborative_hr(y, model, steps, progress=False),
             "hcd": lambda: C.hcd(y, model, steps, steps, progress=False),
             "fast": lambda: C.hcd(y, model, options=FAST, progress=False)}
    for name, fn in calls.items():
        r, wall, cpu = timed(fn)
        out[name] = dict(wall=wall, cpu=cpu, gain=r.psnr(y).item() - base)
    out["peak"] = peak_rss()
    return out


SPEED_VARIANTS = {
    # name: (options for hcd(), wrapper, threads or None for the default)
    "before: paper 15+15": (PAPER, None, None),
    "15+15, no PSNR record": (PAPER.replace(record_psnr=False), None, None),
    "FAST 2+4 geometric": (FAST, None, None),
    "3+3 geometric, zero start": (FAST.replace(steps_hr=3, steps_lr=3), None, None),
    "5+5 constant (paper's alpha)": (PAPER.replace(steps_hr=5, steps_lr=5, record_psnr=False),
                                     None, None),
    "FAST + bf16 autocast": (FAST, "bf16", None),
    "paper 15+15, 2 threads": (PAPER, None, 2),
    "FAST, 2 threads": (FAST, None, 2),
}


def work_speed(backbone: str, scale: int, crop: int, threads: int, variants: list[str],
               repeats: int) -> dict:
    from . import collaborative as C
    from .models import load_backbone as load
    from .data import center_crop, heldout_images

    _setup(threads)
    model = load(backbone, scale)
    images = {k: center_crop(v, crop).contiguous() for k, v in heldout_images(scale).items()}
    base = {k: C.rescale(y, model).psnr(y).item() for k, y in images.items()}
    results = {v: dict(wall=[], cpu=[], gain={}) for v in variants}
    for _ in range(repeats):  # interleaved, so load changes hit every variant alike
        for v in variants:
            opts, wrap, nthreads = SPEED_VARIANTS[v]
            m = Autocast(model) if wrap == "bf16" else model
            torch.set_num_threads(nthreads or threads)
            wall = cpu = 0.0
            for k, y in images.items():
                r, w, c = timed(C.hcd, y, m, options=opts, progress=False)
                wall, cpu = wall + w, cpu + c
                results[v]["gain"][k] = r.psnr(y).item() - base[k]
            results[v]["wall"].append(wall / len(images))
            results[v]["cpu"].append(cpu / len(images))
            torch.set_num_threads(threads)
    return dict(results=results, images=list(images), peak=peak_rss())


def work_tiling(kind: str, tile: int | None, overlap: int, threads: int, fast: bool,
                mode: str = "global") -> dict:
    from . import collaborative as C
    from .models import load_pretrained
    from .tiling import tiled

    out = _setup(threads)
    model = load_pretrained("irn", 4)
    y = image(kind)
    out["size"] = tuple(y.shape[-2:])
    base = C.rescale(y, model).psnr(y).item()
    r, wall, cpu = timed(tiled, "hcd", y, model, tile=tile, overlap=overlap, mode=mode,
                         options=FAST if fast else PAPER, progress=False)  # tile=None: untiled
    out.update(tiles=len(r.tiles), eps_tile=r.eps_tile)
    out.update(wall=wall, cpu=cpu, psnr=r.psnr(y).item(), gain=r.psnr(y).item() - base,
               norm_hr=r.delta_hr.norm().item(), norm_lr=r.delta_lr.norm().item(),
               peak=peak_rss())
    return out


def run_isolated(fn, *args):
    """Run ``fn(*args)`` in a fresh (spawned) process and return its result."""
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


# ----------------------------------------------------------------------------- sections

def section_timing(args):
    print("\n== timing: seconds per image (CPU s / wall s), paper defaults "
          f"({args.steps}+{args.steps} steps) ==")
    print("t_hr/t_lr: CPU s of one forward+backward of up(down(.)) / up(.); ratio = HCD CPU "
          "time / (steps * t_hr + steps * t_lr); FAST: hcd(**FAST), its ratio over "
          "2 t_hr + 4 t_lr;\npeak = RSS of the process (incl. ~0.3 GiB of torch itself)")
    print(f"{'backbone':16s} {'x':>2s} {'image':>9s} {'baseline':>12s} {'LR-only':>12s} "
          f"{'HR-only':>12s} {'HCD':>13s} {'t_hr':>6s} {'t_lr':>6s} {'ratio':>5s} "
          f"{'gain dB':>7s} {'FAST':>12s} {'ratio':>5s} {'gain dB':>7s} {'peak GiB':>8s} "
          f"{'thr':>3s}")
    for scale in args.scales:
        for name in args.backbones:
            for kind in args.images:
                r = run_isolated(work_timing, name, scale, kind, args.threads, args.steps)
                (_, hc), (_, lc) = r["steps"]["hr"], r["steps"]["lr"]  # CPU seconds
                ratio = r["hcd"]["cpu"] / (args.steps * (hc + lc))
                fast = r["fast"]["cpu"] / (2 * hc + 4 * lc)
                cells = " ".join(f"{r[m]['cpu']:5.2f}/{r[m]['wall']:6.2f}"
                                 for m in ("baseline", "lr", "hr", "hcd"))
                size = "x".join(map(str, r["size"]))
                print(f"{name:16s} {scale:2d} {size:>9s} {cells} {hc:6.3f} {lc:6.3f} "
                      f"{ratio:5.2f} {r['hcd']['gain']:+7.3f} "
                      f"{r['fast']['cpu']:5.2f}/{r['fast']['wall']:6.2f} {fast:5.2f} "
                      f"{r['fast']['gain']:+7.3f} {r['peak'] / GIB:8.2f} {r['threads']:3d}",
                      flush=True)


def section_speed(args):
    print(f"\n== speed: HCD on the held-out {args.crop}x{args.crop} crops, {args.speed_model} "
          f"x{args.speed_scale}, {args.threads} thread(s) unless stated; "
          f"best of {args.repeats} interleaved runs ==")
    variants = args.variants or list(SPEED_VARIANTS)
    if variants[0] != "before: paper 15+15":
        variants.insert(0, "before: paper 15+15")
    r = run_isolated(work_speed, args.speed_model, args.speed_scale, args.crop, args.threads,
                     variants, args.repeats)
    res = r["results"]
    before = res[variants[0]]
    b_cpu, b_wall = min(before["cpu"]), min(before["wall"])
    b_gain = statistics.mean(before["gain"].values())
    print(f"{'variant':30s} {'CPU s/img':>9s} {'wall s/img':>10s} {'speed-up CPU':>12s} "
          f"{'wall':>6s} {'mean gain':>9s} {'vs before':>9s}   per image "
          f"({', '.join(r['images'])})")
    for v in variants:
        s = res[v]
        cpu, wall, gain = min(s["cpu"]), min(s["wall"]), statistics.mean(s["gain"].values())
        per = " ".join(f"{g:+.3f}" for g in s["gain"].values())
        print(f"{v:30s} {cpu:9.2f} {wall:10.2f} {b_cpu / cpu:11.2f}x {b_wall / wall:5.2f}x "
              f"{gain:+9.4f} {gain - b_gain:+9.4f}   {per}", flush=True)
    if any(SPEED_VARIANTS[v][2] for v in variants):
        print("(2-thread CPU seconds add up both threads: compare its wall time on an idle "
              "machine)")


def section_tiling(args):
    kind = f"crop{args.tile_image}" if args.tile_image != 512 else "full"
    print(f"\n== tiling: HCD on a {args.tile_image}x{args.tile_image} image, IRN-lite x4, "
          f"overlap {args.overlap} ==")
    print(f"{'preset':6s} {'mode':11s} {'tile':>5s} {'tiles':>5s} {'eps_tile':>8s} {'PSNR':>8s} "
          f"{'gain':>7s} {'vs untiled':>10s} {'|d_hr|':>6s} {'|d_lr|':>6s} {'CPU s':>7s} "
          f"{'wall s':>7s} {'peak GiB':>8s}")
    runs = [(None, "global")] + [(t, "global") for t in args.tiles] + [
        (t, "independent") for t in args.tiles[:1]]
    for fast in (False, True):
        ref = None
        for tile, mode in runs:
            r = run_isolated(work_tiling, kind, tile, args.overlap, args.threads, fast, mode)
            ref = r["psnr"] if tile is None else ref
            print(f"{'FAST' if fast else 'paper':6s} {mode if tile else '-':11s} "
                  f"{str(tile or 'off'):>5s} "
                  f"{r['tiles']:5d} {r['eps_tile']:8.4f} {r['psnr']:8.3f} "
                  f"{r['gain']:+7.3f} {r['psnr'] - ref:+10.4f} {r['norm_hr']:6.3f} "
                  f"{r['norm_lr']:6.3f} {r['cpu']:7.1f} {r['wall']:7.1f} "
                  f"{r['peak'] / GIB:8.2f}", flush=True)


def section_div2k(args):
    preset = "FAST" if args.div2k_fast else "paper 15+15"
    print(f"\n== div2k: HCD ({preset}) on a 2040x1356 image, IRN-lite x4, "
          f"{args.div2k_tile}-pixel tiles, overlap {args.overlap} ==")
    r = run_isolated(work_tiling, "div2k", args.div2k_tile, args.overlap, args.threads,
                     args.div2k_fast)
    print(f"global mode: {r['tiles']} windows, gain {r['gain']:+.3f} dB, "
          f"CPU {r['cpu']:.0f} s, wall {r['wall']:.0f} s, peak RSS {r['peak'] / GIB:.2f} GiB "
          f"({'within' if r['peak'] <= 4 * GIB else 'ABOVE'} the 4 GiB limit)", flush=True)


def main(argv=None):
    from .models import BACKBONES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sections", nargs="+", default=["timing", "speed", "tiling", "div2k"],
                   choices=["timing", "speed", "tiling", "div2k"])
    p.add_argument("--threads", type=int, default=1, help="torch threads of every run")
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    p.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    p.add_argument("--images", nargs="+", default=["crop256", "full"],
                   help="timing images: crop256, full (astronaut 512x512), cropN")
    p.add_argument("--steps", type=int, default=15, help="steps per stage in 'timing'")
    p.add_argument("--speed-model", default="irn", choices=BACKBONES)
    p.add_argument("--speed-scale", type=int, default=4)
    p.add_argument("--crop", type=int, default=256, help="crop size of 'speed'")
    p.add_argument("--repeats", type=int, default=2, help="interleaved repeats of 'speed'")
    p.add_argument("--variants", nargs="+", default=None, choices=list(SPEED_VARIANTS),
                   metavar="VARIANT", help="variants of 'speed' (default: all; the first, "
                   "the paper's 15+15, is always run)")
    p.add_argument("--tile-image", type=int, default=512, help="image size of 'tiling'")
    p.add_argument("--tiles", type=int, nargs="+", default=[256, 128])
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--div2k-tile", type=int, default=512)
    p.add_argument("--div2k-fast", action=argparse.BooleanOptionalAction, default=True,
                   help="FAST preset for the div2k run (the paper's 15+15 takes ~7x longer; "
                        "peak memory does not depend on the number of steps)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: bicubic only, 64-pixel crops, no div2k")
    args = p.parse_args(argv)
    if args.quick:
        args.backbones, args.scales, args.images = ["bicubic"], [4], ["crop64"]
        args.speed_model, args.crop, args.repeats = "bicubic", 64, 1
        args.tile_image, args.tiles = 128, [64]
        args.overlap = min(args.overlap, 16)  # global mode needs overlap < tile / 2
        args.sections = [s for s in args.sections if s != "div2k"]
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}, torch threads {args.threads}")
    for name in args.sections:
        globals()[f"section_{name}"](args)
    print(f"\nload average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
