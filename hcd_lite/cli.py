"""The ``hcd-lite`` command: encode (downscale), decode (upscale) and evaluate folders of images.

    hcd-lite encode HR_DIR LR_DIR --model irn --scale 4 [--method hcd] [--paper] [options]
    hcd-lite decode LR_DIR OUT_DIR --model irn --scale 4 [options]
    hcd-lite eval HR_DIR --model irn --scale 4 [--method hcd] [--csv eval.csv]

Each command is a thin ``work`` per image over :func:`hcd_lite.batch.run` (sorted files,
reports, skipping finished images, interruption, exit codes 0/1/2/130/143), plus:

* ``--shard K/N`` (1 <= K <= N): the files whose 0-based index ``i`` in the sorted list has
  ``i % N == K - 1`` (the N shards partition the folder; each writes its own report);
* inputs are never overwritten: an output folder that is the input folder is refused;
* optimiser options: :data:`hcd_lite.FAST` (2 + 4 geometric steps from zero, alpha = eps: the
  paper's PSNR gain for a fifth of the CPU time), or Algorithm 1's :data:`hcd_lite.PAPER`
  with ``--paper``; explicit options override either (:func:`method_options`);
* ``--pad crop|reflect`` for sizes not divisible by the scale (:func:`pad_to_multiple`); the
  encoder stores the size the decoder gives back in every LR's metadata;
* ``--tile auto|off|SIZE``: large images are optimised in overlapping tiles
  (:mod:`hcd_lite.tiling`), in bounded memory;
* a warning when a collaborative method lowered an image's PSNR (:func:`lowered_warnings`).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import __version__, batch, tiling
from .batch import REPORT, Report, UsageError, check_outputs, list_inputs
from .images import load_image, read_meta
from .metrics import psnr, ssim
from .models import BACKBONES, load_backbone as backbone
from .models.base import crop_to_multiple
from .options import FAST, NORMS, PAPER, SCHEDULES, Options

METHODS = ("baseline", "lr", "hr", "hcd")


# ----------------------------------------------------------------------------- settings

def parse_shard(text: str | None) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``; ``None`` -> ``(1, 1)``."""
    if text is None:
        return 1, 1
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like K/N (e.g. 2/8), got {text!r}") from None
    if not 1 <= k <= n:
        raise UsageError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def select_shard(files: list, k: int, n: int) -> list:
    """The files whose 0-based index ``i`` has ``i % n == k - 1``."""
    return [f for i, f in enumerate(files) if i % n == k - 1]


def _shard_suffix(args) -> str:
    k, n = parse_shard(args.shard)
    return f"_shard{k}of{n}" if n > 1 else ""


def method_options(args) -> Options:
    """:data:`~hcd_lite.FAST` (its ``alpha`` follows ``--eps``) or, with ``--paper``,
    :data:`~hcd_lite.PAPER`, overridden by the options given; a value
    :class:`~hcd_lite.Options` refuses (NaN, infinite, negative) is a :class:`UsageError`."""
    changes = {k: getattr(args, k) for k in ("steps_hr", "steps_lr", "alpha", "schedule")
               if getattr(args, k) is not None}
    changes.update(norm=args.norm, seed=args.seed, record_psnr=False)
    if args.no_random_start:
        changes["random_start"] = False
    try:
        preset = PAPER.replace(eps=args.eps) if args.paper else FAST.scaled(args.eps / FAST.eps)
        return preset.replace(**changes)
    except ValueError as err:
        raise UsageError(f"bad optimiser option: {err}") from None


def load_model(name: str, scale: int, device: str):
    try:
        model = backbone(name, scale)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    return model.to(device) if isinstance(model, torch.nn.Module) else model


# ----------------------------------------------------------------------------- one image

def pad_to_multiple(y: torch.Tensor, scale: int, pad: str) -> tuple[torch.Tensor, tuple]:
    """``(y', (h, w))``: ``y'`` has sides divisible by ``scale`` (``pad``: ``"crop"`` or
    ``"reflect"``); ``(h, w)`` is the size a decoder should give back (``crop``: the cropped
    size; ``reflect``: the original size)."""
    h, w = y.shape[-2:]
    if h < scale or w < scale:
        raise ValueError(f"image {h}x{w} is smaller than the scale {scale}")
    if pad == "crop":
        y = crop_to_multiple(y, scale)
        return y, tuple(y.shape[-2:])
    ph, pw = -h % scale, -w % scale
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        y = F.pad(y, (0, pw, 0, ph), mode=mode)
    return y, (h, w)


def _check_finite(sr):
    """ValueError unless every value of a decoded image is finite (a broken model)."""
    if not torch.isfinite(sr).all():
        raise ValueError("model.up() returned NaN or infinite values for this image; check the "
                         "model")


def compare(f: Path, row: dict, methods: list[str], model, args, options: Options):
    """Run ``methods`` (``"baseline"`` first) on the image ``f``, padded and maybe tiled; fill
    ``row`` with its size and per method ``m`` ``psnr_m`` / ``ssim_m`` (Y, border = scale),
    ``gain_m`` (PSNR over the baseline) and ``seconds_m``. Returns the last method's result
    and the size a decoder should give back."""
    y = load_image(f).to(args.device)
    row["height"], row["width"] = y.shape[-2:]
    yp, size = pad_to_multiple(y, args.scale, args.pad)
    for m in methods:
        t0 = time.perf_counter()
        res = tiling.tiled(m, yp, model, tile=tiling.resolve_tile(args.tile, *yp.shape[-2:]),
                           overlap=args.overlap, mode=args.tile_mode, batch=args.tile_batch,
                           options=options, progress=False if args.quiet else None)
        row[f"seconds_{m}"] = time.perf_counter() - t0  # the library refuses a NaN LR or SR
        row[f"psnr_{m}"] = _metric(psnr, res.sr, yp, size, args.scale)
        row[f"ssim_{m}"] = _metric(ssim, res.sr, yp, size, args.scale)
        if m != "baseline" and None not in (row[f"psnr_{m}"], row["psnr_baseline"]):
            row[f"gain_{m}"] = row[f"psnr_{m}"] - row["psnr_baseline"]
            row["warnings"] += lowered_warnings(m, row["psnr_baseline"], row[f"gain_{m}"],
                                                options, *yp.shape[-2:])
    return res, size


def metric_columns(methods: list[str]) -> list[str]:
    """The report columns :func:`compare` fills for ``methods``."""
    return [f"{k}_{m}" for m in methods for k in ("psnr", "ssim", "gain", "seconds")
            if (k, m) != ("gain", "baseline")]


def _metric(fn, sr, y, size, scale):
    """``fn`` (psnr/ssim) of ``sr`` against ``y`` on the top-left ``size``, border ``scale``;
    ``None`` when the image is too small for it."""
    h, w = size
    try:
        return float(fn(sr[..., :h, :w], y[..., :h, :w], crop=scale)[0])
    except ValueError:
        return None


def lowered_warnings(method: str, base_psnr, gain, options: Options, height: int,
                     width: int) -> list[str]:
    """The warning (a list of one) for a collaborative ``method`` that lowered the PSNR, else
    ``[]``. ``eps`` is an L2 norm over the whole image: on a small image its rms change per
    value ``eps / sqrt(3 H W)`` may not be small against the baseline's rms error."""
    if method == "baseline" or gain is None or gain >= 0:
        return []
    eps = options.eps
    return [f"{method} lowered the PSNR by {-gain:.2f} dB: on this {height}x{width} image "
            f"--eps {eps:g} allows an rms change of {eps / math.sqrt(3 * height * width):.4f} "
            f"per value, against a baseline rms error of {10 ** (-base_psnr / 20):.4f}; try "
            + ("the default preset without --paper (no random start, shrinking steps), "
               if options.random_start else "")
            + "a smaller --eps and --alpha, or --method baseline"]


# ----------------------------------------------------------------------------- commands

def _run_folder(args, in_dir: Path, out_dir: Path, columns: list[str], made_with: dict,
                work, settings: dict) -> int:
    """Encode or decode: ``work`` over this shard's files of ``in_dir``, one PNG each in
    ``out_dir`` with the report there (:func:`hcd_lite.batch.run`)."""
    files, notes = list_inputs(in_dir)
    outputs = {f: out_dir / f"{f.stem}.png" for f in files}  # whole folder: clashes
    files = select_shard(files, *parse_shard(args.shard))
    paths = [out_dir / f"{REPORT}{_shard_suffix(args)}.{ext}" for ext in ("csv", "json")]
    check_outputs(in_dir, out_dir, files, [*outputs.values(), *paths])
    report = Report(*paths, columns, settings, notes)
    return batch.run(args.command, files, work, report, outputs=outputs, made_with=made_with,
                     overwrite=args.overwrite, quiet=args.quiet)


def _settings(args, options: Options | None = None) -> dict:
    """What a report records: the command line's values, version, threads and options."""
    return dict({k: v for k, v in vars(args).items() if k != "func"}, version=__version__,
                threads=torch.get_num_threads(),
                options=dataclasses.asdict(options) if options else None)


def cmd_encode(args) -> int:
    options = method_options(args)
    model = load_model(args.model, args.scale, args.device)
    methods = list(dict.fromkeys(["baseline", args.method]))

    def work(f: Path, row: dict):
        res, size = compare(f, row, methods, model, args, options)
        row.update(method=args.method, pad=args.pad, lr_height=res.lr.shape[-2],
                   lr_width=res.lr.shape[-1], tiles=len(res.tiles), eps_tile=res.eps_tile)
        return res.lr.cpu(), dict(height=size[0], width=size[1],
                                  options=dataclasses.asdict(options))

    columns = ["input", "output", "status", "error", "method", "height", "width", "lr_height",
               "lr_width", "pad", "tiles", "eps_tile", *metric_columns(methods), "seconds",
               "warnings"]
    made_with = dict(model=args.model, scale=args.scale, method=args.method, pad=args.pad)
    return _run_folder(args, Path(args.hr_dir), Path(args.lr_dir), columns, made_with, work,
                       _settings(args, options))


def cmd_decode(args) -> int:
    model = load_model(args.model, args.scale, args.device)

    def work(f: Path, row: dict):
        x = load_image(f).to(args.device)
        meta = read_meta(f) or {}
        if meta and (meta.get("model"), meta.get("scale")) != (args.model, args.scale):
            row["warnings"].append(f"encoded with {meta.get('model')} x{meta.get('scale')}, "
                                   f"decoded with {args.model} x{args.scale}")
        with torch.no_grad():
            sr = model.up(x)
        _check_finite(sr)
        h, w = sr.shape[-2:]
        th, tw = meta.get("height", h), meta.get("width", w)
        if h - args.scale < th <= h and w - args.scale < tw <= w:
            sr = sr[..., :th, :tw]
        else:
            row["warnings"].append(f"stored size {th}x{tw} does not match the upscaled "
                                   f"{h}x{w}; kept {h}x{w}")
        row["height"], row["width"] = sr.shape[-2:]
        return sr.cpu(), {}

    columns = ["input", "output", "status", "error", "height", "width", "seconds", "warnings"]
    return _run_folder(args, Path(args.lr_dir), Path(args.out_dir), columns,
                       dict(model=args.model, scale=args.scale), work, _settings(args))


def cmd_eval(args) -> int:
    in_dir = Path(args.hr_dir)
    csv_path = Path(args.csv or f"eval_{args.model}_x{args.scale}{_shard_suffix(args)}.csv")
    files, notes = list_inputs(in_dir)
    check_outputs(in_dir, csv_path.parent, files, [csv_path])
    options = method_options(args)
    model = load_model(args.model, args.scale, args.device)
    methods = list(dict.fromkeys(["baseline", *args.method]))
    columns = ["input", "status", "error", "height", "width", *metric_columns(methods),
               "seconds", "warnings"]

    def work(f: Path, row: dict):
        compare(f, row, methods, model, args, options)

    report = Report(csv_path, None, columns, _settings(args, options), notes)
    code = batch.run("eval", select_shard(files, *parse_shard(args.shard)), work, report,
                     quiet=args.quiet)
    print(format_table(report.rows, methods, args.model, args.scale))
    return code


def format_table(rows, methods, model, scale) -> str:
    """Per-image PSNR/SSIM table (Y channel, border = scale) with a mean row."""
    def cell(v, spec):
        return f"{'-':>13s}" if v is None or math.isnan(v) else format(v, spec)

    ok = [r for r in rows if r["status"] == "ok"]
    if ok:
        ok.append(dict(input="mean", **batch.summarize(ok)["mean"]))
    width = max([len(r["input"]) for r in ok] + [5])
    lines = [f"{model} x{scale}: PSNR-Y (dB) / SSIM-Y, border {scale}",
             f"{'image':{width}s} " + " ".join(f"{m + ' PSNR':>13s} {m + ' SSIM':>13s}"
                                              for m in methods)]
    for r in ok:
        lines.append(f"{r['input']:{width}s} " + " ".join(
            f"{cell(r.get(f'psnr_{m}'), '13.2f')} {cell(r.get(f'ssim_{m}'), '13.4f')}"
            for m in methods))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- parser

class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the uninformative None/False ones."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hcd-lite", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Downscale (encode), upscale (decode) and evaluate folders of images "
                    "with a rescaling model and collaborative downscaling (HCD).",
        epilog="Run 'hcd-lite COMMAND --help' for the options of a command. Exit codes: 0 "
               "success, 1 some image failed, 2 usage error, 130 Ctrl-C, 143 SIGTERM.")
    p.add_argument("--version", action="version", version=f"hcd-lite {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default="irn", choices=BACKBONES,
                        help="rescaling backbone (bicubic needs no weights)")
    common.add_argument("--scale", type=int, default=4, choices=(2, 4),
                        help="rescaling factor")
    common.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    common.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice)")
    common.add_argument("--shard", default=None, metavar="K/N",
                        help="process only the files with index %% N == K-1 in the sorted "
                             "file list (1 <= K <= N)")
    common.add_argument("--quiet", action="store_true", help="no progress bar or messages")

    method = argparse.ArgumentParser(add_help=False)
    method.add_argument("--paper", action="store_true",
                        help="Algorithm 1's settings hcd_lite.PAPER (15 HR + 15 LR constant "
                             "steps of 20/255 from a random start) instead of the default "
                             "hcd_lite.FAST (2 HR + 4 LR geometric steps from zero, alpha = "
                             "eps: the same PSNR gain for ~5x less CPU); explicit options win")
    method.add_argument("--steps-hr", type=int, default=None,
                        help="HR-stage steps (hr, hcd) [2; --paper: 15]")
    method.add_argument("--steps-lr", type=int, default=None,
                        help="LR-stage steps (lr, hcd) [4; --paper: 15]")
    method.add_argument("--eps", type=float, default=FAST.eps,
                        help="L2 budget of the perturbation of a whole image (per value "
                             "with --norm linf)")
    method.add_argument("--alpha", type=float, default=None,
                        help="step length [eps; --paper: 20/255 = 0.0784]")
    method.add_argument("--schedule", default=None, choices=SCHEDULES,
                        help="step lengths: constant alpha, or geometric alpha, alpha/2, ... "
                             "[geometric; --paper: constant]")
    method.add_argument("--norm", default="l2", choices=NORMS,
                        help="norm of the budget and of the steps")
    method.add_argument("--seed", type=int, default=0, help="seed of the random start")
    method.add_argument("--no-random-start", action="store_true",
                        help="with --paper: start from zero instead of a random point "
                             "of the ball (the default preset always starts from zero)")
    method.add_argument("--tile", default="auto", metavar="auto|off|SIZE",
                        help="optimise in overlapping SIZE-pixel tiles; auto: 512-pixel "
                             "tiles for images above 512x512 pixels")
    method.add_argument("--overlap", type=int, default=tiling.DEFAULT_OVERLAP,
                        help="HR pixels (multiple of the scale) of context around each "
                             "tile's core (global) or of overlap between tiles (independent)")
    method.add_argument("--tile-mode", default="global", choices=tiling.MODES,
                        help="global: tiles only compute the gradient, eps stays a "
                             "whole-image budget (as untiled); independent: each tile "
                             "optimised alone with eps*sqrt(tile area/image area), blended")
    method.add_argument("--tile-batch", type=int, default=1,
                        help="tiles optimised together (faster, more memory)")

    writes = argparse.ArgumentParser(add_help=False)
    writes.add_argument("--overwrite", action="store_true",
                        help="redo finished images (only files hcd-lite made are replaced: "
                             "another file of that name is reported and left alone)")

    e = sub.add_parser("encode", parents=[common, method, writes], formatter_class=_Formatter,
                       help="downscale every image of HR_DIR into LR_DIR",
                       description="Downscale every image of HR_DIR into an 8-bit PNG "
                                   "LR_DIR/<name>.png with the chosen method and write the "
                                   f"report LR_DIR/{REPORT}.json/.csv (PSNR of the baseline "
                                   "and of the method, gain, seconds). A re-run skips the "
                                   "images whose LR exists and was made from the same input.")
    e.add_argument("hr_dir", metavar="HR_DIR", help="folder of high-resolution images")
    e.add_argument("lr_dir", metavar="LR_DIR", help="output folder (created; not HR_DIR)")
    e.add_argument("--method", default="hcd", choices=METHODS,
                   help="baseline: down(y); lr/hr: collaborative LR/HR example; hcd: both")
    e.add_argument("--pad", default="reflect", choices=("crop", "reflect"),
                   help="sizes not divisible by the scale: crop the remainder, or "
                        "reflect-pad (decode crops back to the original size)")
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser("decode", parents=[common, writes], formatter_class=_Formatter,
                       help="upscale every LR image of LR_DIR into OUT_DIR",
                       description="Upscale every LR PNG of LR_DIR into OUT_DIR/<name>.png; "
                                   "LRs written by 'encode' are cropped back to the size "
                                   "stored in their metadata. Writes the report "
                                   f"OUT_DIR/{REPORT}.json/.csv; a re-run skips finished "
                                   "images.")
    d.add_argument("lr_dir", metavar="LR_DIR", help="folder of LR PNGs (from encode)")
    d.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created; not LR_DIR)")
    d.set_defaults(func=cmd_decode)

    v = sub.add_parser("eval", parents=[common, method], formatter_class=_Formatter,
                       help="PSNR/SSIM table of methods on the images of HR_DIR",
                       description="Encode and decode every image of HR_DIR in memory, print "
                                   "a PSNR-Y/SSIM-Y table (border = scale) of the baseline and "
                                   "the chosen methods and write it as CSV (a row per "
                                   "image, written as each image finishes).")
    v.add_argument("hr_dir", metavar="HR_DIR", help="folder of high-resolution images")
    v.add_argument("--method", nargs="+", default=["hcd"], choices=METHODS,
                   help="methods besides the baseline")
    v.add_argument("--pad", default="crop", choices=("crop", "reflect"),
                   help="sizes not divisible by the scale: crop or reflect-pad")
    v.add_argument("--csv", default=None,
                   help="CSV path (default: eval_<model>_x<scale>.csv in the current folder)")
    v.set_defaults(func=cmd_eval)
    return p


def check_options(args):
    """Reject bad option values before any image is read (exit code 2)."""
    scale = args.scale
    if hasattr(args, "tile"):  # optimiser values: method_options
        try:
            tile = tiling.resolve_tile(args.tile, 1, 1)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if tile is not None and tile % scale:
            raise UsageError(f"--tile {tile} must be a multiple of the scale {scale}")
        if args.overlap < 0 or args.overlap % scale:
            raise UsageError(f"--overlap {args.overlap} must be a multiple of the scale "
                             f"{scale} and >= 0")
        limit = 2 if args.tile_mode == "global" else 1
        if limit * args.overlap >= (tile or tiling.AUTO_TILE):
            raise UsageError(f"--overlap {args.overlap} must be smaller than "
                             f"{'half ' if limit == 2 else ''}the tile size "
                             f"{tile or tiling.AUTO_TILE} (--tile-mode {args.tile_mode})")
        if args.tile_batch < 1:
            raise UsageError("--tile-batch must be >= 1")
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be >= 1")
    try:
        torch.empty(0, device=args.device)
    except (RuntimeError, AssertionError) as err:  # torch without CUDA raises AssertionError
        raise UsageError(f"--device {args.device} is not usable here "
                         f"({str(err).splitlines()[0]}); try --device cpu") from None


def main(argv=None) -> int:
    """Entry point of the ``hcd-lite`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_options(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        return args.func(args)
    except UsageError as err:
        print(f"hcd-lite {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
