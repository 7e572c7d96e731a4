"""The ``hcd-lite`` command: encode (downscale), decode (upscale) and evaluate folders of images.

    hcd-lite encode HR_DIR LR_DIR --model irn --scale 4 [--method hcd] [options]
    hcd-lite decode LR_DIR OUT_DIR --model irn --scale 4 [options]
    hcd-lite eval HR_DIR --model irn --scale 4 [--method hcd] [--csv eval.csv]

Every command (``hcd-lite CMD --help`` lists the options):

* reads the regular, non-hidden files of the input folder in sorted (code-point) name
  order; PNG/JPEG/TIFF/BMP/WebP/PPM/PGM, 8/16-bit, grayscale, RGBA and palette images are
  read with :func:`hcd_lite.load_image` (its warnings, e.g. a dropped alpha channel, go
  into the report). A broken, empty or unsupported file is reported and skipped, the
  others go on, and the exit code is 1 if any image failed (2 for a usage error, 130 on
  Ctrl-C);
* ``--shard K/N`` (1 <= K <= N) processes the files whose 0-based index ``i`` in that
  sorted list has ``i % N == K - 1``: the N shards partition the folder, so N jobs of any
  scheduler can split a dataset (each writes its own report, ``*_shardKofN``);
* never writes over an input: it refuses an output folder that is the input folder and
  any output path that is an input path;
* writes every file atomically (a hidden temporary file in the same folder, then
  ``os.replace``), so an interrupted run leaves no half-written PNG; a re-run skips
  images whose output exists unless ``--overwrite`` (keeping their earlier report row,
  with a warning if they were made with another model, scale, method or padding);
* optimiser options default to the paper's (15 + 15 steps, eps 0.3, alpha 20/255, L2);
  ``--fast`` selects :data:`hcd_lite.collaborative.FAST` (2 + 4 geometric steps, 5x
  faster for the same PSNR gain with IRN-lite x4), explicit options override it;
* sizes not divisible by the scale: ``--pad crop`` removes the bottom/right remainder
  (:func:`hcd_lite.crop_to_multiple`), ``--pad reflect`` reflect-pads to the next
  multiple. The encoder stores the size the decoder must produce (the original size for
  ``reflect``, the cropped one for ``crop``) with the settings in the PNG text chunk
  ``hcd_lite`` (JSON) of every LR; ``decode`` crops its output back to that size.
  Default: ``reflect`` for encode (a round trip keeps the size), ``crop`` for eval
  (the literature's convention, as in :mod:`hcd_lite.quality`);
* ``--tile auto|off|SIZE`` (``--overlap``, ``--tile-mode``, ``--tile-batch``): optimise
  large images in overlapping tiles (:mod:`hcd_lite.tiling`; memory bounded by the tile
  size); ``auto`` tiles images above 512x512 pixels with 512-pixel tiles. The report
  gives the number of tiles and the budget one tile used (``eps_tile``);
* warns when a collaborative method lowered an image's PSNR (seen on small or very
  smooth images, where the default budget per pixel is not small against the
  reconstruction error: :func:`lowered_warnings`).

``encode`` writes ``LR_DIR/<name>.png`` per input and a report ``LR_DIR/hcd_lite_report.json``
and ``.csv`` with, per image, the PSNR (Y, border = scale) of the baseline
(``up(down(y))``) and of the chosen method against the HR input, the gain and seconds.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from . import __version__, collaborative, tiling
from .options import FAST, NORMS, PAPER, SCHEDULES
from .models import BACKBONES, load_backbone as backbone
from .images import load_image, to_numpy_uint8
from .metrics import psnr, ssim
from .models.base import crop_to_multiple

SUPPORTED = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm")
METHODS = ("baseline", "lr", "hr", "hcd")
REPORT = "hcd_lite_report"
PNG_KEY = "hcd_lite"  # PNG tEXt keyword holding the encoder's JSON metadata


class UsageError(Exception):
    """A problem with the command line itself (exit code 2)."""


# ----------------------------------------------------------------------------- files

def list_inputs(folder: Path) -> list[Path]:
    """Regular, non-hidden files of ``folder`` sorted by name (the order ``--shard`` uses)."""
    if not folder.is_dir():
        raise UsageError(f"input folder {folder} does not exist or is not a folder")
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
                  key=lambda p: p.name)


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


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def check_outputs(in_dir: Path, out_dir: Path, inputs: list[Path], outputs: list[Path]):
    """Refuse to write into the input folder or over any input file."""
    if _same_path(in_dir, out_dir):
        raise UsageError(f"the output folder {out_dir} is the input folder; choose another "
                         "folder (inputs are never overwritten)")
    resolved = {p.resolve() for p in inputs}
    for out in outputs:
        if out.resolve() in resolved:
            raise UsageError(f"output {out} would overwrite an input file")


def _atomic(path: Path, write) -> Path:
    """Call ``write(tmp_path)`` on a hidden temporary file next to ``path``, then
    ``os.replace`` it onto ``path``; the temporary file is removed on any error
    (Ctrl-C included), so ``path`` is either absent, the old file, or complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_png(t: torch.Tensor, path: Path, meta: dict | None = None) -> Path:
    """One image ``[1, 3, H, W]`` in [0, 1] as an 8-bit RGB PNG, atomically, with ``meta``
    (JSON) in the tEXt chunk ``hcd_lite``."""
    from PIL import Image, PngImagePlugin

    arr = to_numpy_uint8(t)
    info = None
    if meta is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text(PNG_KEY, json.dumps(meta, sort_keys=True))
    return _atomic(Path(path), lambda tmp: Image.fromarray(arr, "RGB").save(
        tmp, format="PNG", pnginfo=info))


def read_png_meta(path: Path) -> dict | None:
    """The encoder's metadata of an LR PNG (``None`` if absent or unreadable)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            text = getattr(im, "text", {}) or {}
            return json.loads(text[PNG_KEY]) if PNG_KEY in text else None
    except (OSError, ValueError, KeyError):
        return None


def write_text(path: Path, text: str) -> Path:
    return _atomic(Path(path), lambda tmp: tmp.write_text(text))


def read_image(path: Path) -> tuple[torch.Tensor, list[str]]:
    """``(y [1, 3, H, W], warnings)``; raises ``ValueError`` for empty, unsupported or
    broken files."""
    if path.suffix.lower() not in SUPPORTED:
        raise ValueError(f"unsupported file type {path.suffix or '(no extension)'!r}; "
                         f"expected one of {' '.join(SUPPORTED)}")
    if path.stat().st_size == 0:
        raise ValueError("empty file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = load_image(path)
    return y, [str(w.message) for w in caught]


# ----------------------------------------------------------------------------- processing

def pad_to_multiple(y: torch.Tensor, scale: int, pad: str) -> tuple[torch.Tensor, tuple]:
    """``(y', (h, w))``: ``y'`` has sides divisible by ``scale``; ``(h, w)`` is the size a
    decoder should give back (``crop``: the cropped size; ``reflect``: the original size)."""
    h, w = y.shape[-2:]
    if h < scale or w < scale:
        raise ValueError(f"image {h}x{w} is smaller than the scale {scale}")
    if pad == "crop":
        y = crop_to_multiple(y, scale)
        return y, tuple(y.shape[-2:])
    if pad != "reflect":
        raise ValueError(f"pad must be 'crop' or 'reflect', got {pad!r}")
    ph, pw = -h % scale, -w % scale
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        y = F.pad(y, (0, pw, 0, ph), mode=mode)
    return y, (h, w)




def method_options(args) -> dict:
    """Optimiser options of the command line, as :func:`hcd_lite.tiling.tiled` takes them:
    the paper's defaults, or :data:`hcd_lite.collaborative.FAST` with ``--fast`` (its
    ``alpha`` follows ``--eps``), each overridden by the options given explicitly."""
    preset = FAST.scaled(args.eps / FAST.eps) if args.fast else PAPER.replace(eps=args.eps)
    opts = dict(eps=args.eps, norm=args.norm, seed=args.seed)
    for key in ("steps_hr", "steps_lr", "alpha", "schedule"):
        value = getattr(args, key)
        opts[key] = getattr(preset, key) if value is None else value
    opts["random_start"] = preset.random_start and not args.no_random_start
    return opts


def apply_method(method: str, y: torch.Tensor, model, tile: int | None, overlap: int,
                 batch: int = 1, mode: str = "global", progress=False, **opts):
    """Run ``method`` on ``y`` untiled (``tile=None``) or in tiles; returns the result.
    ``progress=None``: a per-step bar for big jobs only (the library's rule); the per-step
    history is not used here, so it is not recorded."""
    return tiling.tiled(method, y, model, tile=tile, overlap=overlap, batch=batch, mode=mode,
                        progress=progress, record_psnr=False, **opts)


def _metric(fn, sr, y, size, scale):
    """``fn`` (psnr/ssim) of ``sr`` against ``y`` on the top-left ``size``, border ``scale``;
    ``None`` when the image is too small for it."""
    h, w = size
    try:
        return float(fn(sr[..., :h, :w], y[..., :h, :w], crop=scale)[0])
    except ValueError:
        return None


def lowered_warnings(method: str, base_psnr, gain, eps: float, height: int,
                     width: int) -> list[str]:
    """The warning (a list of one) for a collaborative ``method`` that lowered the PSNR
    (``gain < 0``), else ``[]``. ``eps`` bounds the L2 norm of the whole perturbation, so
    the same ``eps`` is a larger change per value on a smaller image (rms
    ``eps / sqrt(3 H W)``); when that is not much smaller than the baseline's own rms error
    (``10 ** (-PSNR / 20)``), the random start and the constant steps can overshoot."""
    if method == "baseline" or gain is None or gain >= 0:
        return []
    return [f"{method} lowered the PSNR by {-gain:.2f} dB: on this {height}x{width} image "
            f"--eps {eps:g} allows an rms change of {eps / math.sqrt(3 * height * width):.4f} "
            f"per value, against a baseline rms error of {10 ** (-base_psnr / 20):.4f}; "
            "try --fast (no random start, shrinking steps), a smaller --eps and --alpha, "
            "or --method baseline"]


def load_model(name: str, scale: int, device: str):
    try:
        model = backbone(name, scale)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    if isinstance(model, torch.nn.Module):
        model = model.to(device)
    return model


# ----------------------------------------------------------------------------- commands

def _bar(items, quiet, desc):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", disable=quiet, file=sys.stderr, dynamic_ncols=True)


def _say(msg, quiet=False):
    from tqdm import tqdm

    if not quiet:
        tqdm.write(msg, file=sys.stderr)


def _warn(name: str, messages: list[str], quiet=False):
    """Print each warning about input ``name`` to stderr (nothing with ``--quiet``)."""
    for msg in messages:
        _say(f"warning: {name}: {msg}", quiet)


def _outputs(files: list[Path], out_dir: Path) -> tuple[dict, dict]:
    """Output path per input (``<stem>.png``), and the inputs whose name collides with an
    earlier one (``a.jpg`` and ``a.png`` -> ``a.png``)."""
    outs, first, clashes = {}, {}, {}
    for f in files:
        out = out_dir / f"{f.stem}.png"
        if out.name in first:
            clashes[f] = first[out.name]
        else:
            first[out.name] = f
        outs[f] = out
    return outs, clashes


def _new_row(f: Path, out: Path) -> dict:
    """The report row of input ``f`` written to ``out`` (status ``ok`` until it fails)."""
    return dict(input=f.name, output=out.name, status="ok", error=None, warnings=[])


def _check_clash(f: Path, out: Path, clashes: dict):
    """ValueError if ``f``'s output name is also that of an earlier input (:func:`_outputs`)."""
    if f in clashes:
        raise ValueError(f"its output {out.name} is also the output of {clashes[f].name}; "
                         "rename one of them")


def _report_paths(out_dir: Path, stem: str, shard: tuple[int, int]) -> tuple[Path, Path]:
    k, n = shard
    suffix = f"_shard{k}of{n}" if n > 1 else ""
    return out_dir / f"{stem}{suffix}.json", out_dir / f"{stem}{suffix}.csv"


def _write_report(json_path: Path, csv_path: Path, settings: dict, rows: list[dict],
                  columns: list[str]):
    done = [r for r in rows if all(r.get(k) is not None for k in
                                   ("psnr_baseline", "psnr_method", "gain"))]
    summary = dict(images=len(rows), **{s: sum(r["status"] == s for r in rows)
                                        for s in ("ok", "skipped", "failed")})
    if done:
        for key in ("psnr_baseline", "psnr_method", "gain"):
            summary[f"mean_{key}"] = sum(r[key] for r in done) / len(done)
    write_text(json_path, json.dumps(dict(settings=settings, summary=summary, images=rows),
                                      indent=2, default=str) + "\n")
    write_text(csv_path, _csv_text(rows, columns))


def _csv_text(rows: list[dict], columns: list[str]) -> str:
    """CSV with ``columns``; ``None`` -> empty cell, lists joined with ``"; "``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else
                             ("; ".join(r[k]) if isinstance(r[k], list) else r[k]))
                         for k in columns})
    return buf.getvalue()


ENCODE_COLUMNS = ["input", "output", "status", "error", "height", "width", "lr_height",
                  "lr_width", "pad", "tiles", "eps_tile", "psnr_baseline", "psnr_method",
                  "gain", "seconds", "seconds_method", "warnings"]


def cmd_encode(args) -> int:
    in_dir, out_dir = Path(args.hr_dir), Path(args.lr_dir)
    shard = parse_shard(args.shard)
    files = list_inputs(in_dir)
    outs, clashes = _outputs(files, out_dir)  # on the whole folder: clashes across shards
    files = select_shard(files, *shard)
    json_path, csv_path = _report_paths(out_dir, REPORT, shard)
    check_outputs(in_dir, out_dir, files, [*outs.values(), json_path, csv_path])
    model = load_model(args.model, args.scale, args.device)
    opts = method_options(args)
    settings = dict(command="encode", version=__version__, model=args.model, scale=args.scale,
                    method=args.method, fast=args.fast, pad=args.pad, tile=args.tile,
                    overlap=args.overlap, tile_mode=args.tile_mode,
                    shard=f"{shard[0]}/{shard[1]}", device=args.device,
                    threads=torch.get_num_threads(), input_dir=str(in_dir), **opts)
    previous = {}
    if json_path.exists():
        try:
            previous = {r["input"]: r for r in json.loads(json_path.read_text())["images"]}
        except (ValueError, KeyError, TypeError):
            previous = {}
    rows, interrupted = [], False
    bar = _bar(files, args.quiet, "encode")
    try:
        for f in bar:
            bar.set_postfix_str(f.name, refresh=False)
            out = outs[f]
            row, start = _new_row(f, out), time.perf_counter()
            try:
                _check_clash(f, out, clashes)
                if out.exists() and not args.overwrite:
                    old = previous.get(f.name, {})
                    row.update({k: v for k, v in old.items() if k not in row or k == "warnings"})
                    row.update(status="skipped", error=None)
                    meta = read_png_meta(out) or {}
                    made = {k: meta.get(k) for k in ("model", "scale", "method", "pad")}
                    if made != {k: getattr(args, k) for k in made}:
                        kept = (f"kept {out.name} made with {made}; --overwrite redoes it "
                                "with the current settings")
                        row["warnings"] = [*row.get("warnings", []), kept]
                        _warn(f.name, [kept], args.quiet)
                    rows.append(row)
                    continue
                y, row["warnings"] = read_image(f)
                y = y.to(args.device)
                row["height"], row["width"] = y.shape[-2:]
                yp, size = pad_to_multiple(y, args.scale, args.pad)
                tile = tiling.resolve_tile(args.tile, *yp.shape[-2:])
                base = collaborative.rescale(yp, model)
                t0 = time.perf_counter()
                res = base if args.method == "baseline" else apply_method(
                    args.method, yp, model, tile, args.overlap, args.tile_batch,
                    args.tile_mode, progress=False if args.quiet else None, **opts)
                row["seconds_method"] = time.perf_counter() - t0
                row["psnr_baseline"] = _metric(psnr, base.sr, yp, size, args.scale)
                row["psnr_method"] = _metric(psnr, res.sr, yp, size, args.scale)
                if row["psnr_baseline"] is not None and row["psnr_method"] is not None:
                    row["gain"] = row["psnr_method"] - row["psnr_baseline"]
                    row["warnings"] += lowered_warnings(args.method, row["psnr_baseline"],
                                                        row["gain"], opts["eps"], *yp.shape[-2:])
                row["lr_height"], row["lr_width"] = res.lr.shape[-2:]
                row["pad"] = args.pad
                row["tiles"] = len(getattr(res, "tiles", [])) or 1
                row["eps_tile"] = getattr(res, "eps_tile", opts["eps"])
                meta = dict(height=size[0], width=size[1], input_height=row["height"],
                            input_width=row["width"], model=args.model, scale=args.scale,
                            method=args.method, pad=args.pad, version=__version__)
                write_png(res.lr.cpu(), out, meta)
            except (ValueError, TypeError, OSError, RuntimeError) as err:
                row.update(status="failed", error=f"{type(err).__name__}: {err}")
                _say(f"failed: {f.name}: {err}", args.quiet)
            row["seconds"] = time.perf_counter() - start
            _warn(f.name, row["warnings"], args.quiet)
            rows.append(row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    _write_report(json_path, csv_path, settings, rows, ENCODE_COLUMNS)
    return _finish("encode", rows, json_path, interrupted, args.quiet)


def _finish(name, rows, report, interrupted, quiet) -> int:
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "failed")}
    done = [r for r in rows if r.get("gain") is not None and r["status"] == "ok"]
    msg = f"{name}: {counts['ok']} done, {counts['skipped']} skipped, {counts['failed']} failed"
    if done:
        method = f" ({done[0]['method']})" if "method" in done[0] else ""
        msg += f"; mean gain{method} {sum(r['gain'] for r in done) / len(done):+.3f} dB"
    if report is not None:
        msg += f"; report {report}"
    if interrupted:
        msg += "; INTERRUPTED (re-run to finish: completed images are skipped)"
    if not quiet:
        print(msg, file=sys.stderr)
    if interrupted:
        return 130
    return 1 if counts["failed"] else 0


DECODE_COLUMNS = ["input", "output", "status", "error", "height", "width", "seconds",
                  "warnings"]


def cmd_decode(args) -> int:
    in_dir, out_dir = Path(args.lr_dir), Path(args.out_dir)
    files = [f for f in list_inputs(in_dir) if not (f.name.startswith(REPORT) and
                                                    f.suffix in (".json", ".csv"))]
    outs, clashes = _outputs(files, out_dir)
    files = select_shard(files, *parse_shard(args.shard))
    check_outputs(in_dir, out_dir, files, list(outs.values()))
    model = load_model(args.model, args.scale, args.device)
    rows, interrupted = [], False
    bar = _bar(files, args.quiet, "decode")
    try:
        for f in bar:
            out = outs[f]
            row, start = _new_row(f, out), time.perf_counter()
            try:
                _check_clash(f, out, clashes)
                if out.exists() and not args.overwrite:
                    row["status"] = "skipped"
                    rows.append(row)
                    continue
                x, row["warnings"] = read_image(f)
                meta = read_png_meta(f) or {}
                if meta and (meta.get("model"), meta.get("scale")) != (args.model, args.scale):
                    row["warnings"].append(f"encoded with {meta.get('model')} x"
                                           f"{meta.get('scale')}, decoded with {args.model} x"
                                           f"{args.scale}")
                with torch.no_grad():
                    sr = model.up(x.to(args.device))
                h, w = sr.shape[-2:]
                th, tw = meta.get("height", h), meta.get("width", w)
                if meta and (h - args.scale < th <= h) and (w - args.scale < tw <= w):
                    sr = sr[..., :th, :tw]
                elif meta and (th, tw) != (h, w):
                    row["warnings"].append(f"stored size {th}x{tw} does not match the "
                                           f"upscaled {h}x{w}; kept {h}x{w}")
                row["height"], row["width"] = sr.shape[-2:]
                write_png(sr.cpu(), out)
            except (ValueError, TypeError, OSError, RuntimeError) as err:
                row.update(status="failed", error=f"{type(err).__name__}: {err}")
                _say(f"failed: {f.name}: {err}", args.quiet)
            _warn(f.name, row["warnings"], args.quiet)
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return _finish("decode", rows, None, interrupted, args.quiet)


EVAL_COLUMNS = ["input", "method", "status", "error", "height", "width", "psnr", "ssim",
                "gain", "seconds", "warnings"]


def cmd_eval(args) -> int:
    in_dir = Path(args.hr_dir)
    shard = parse_shard(args.shard)
    files = select_shard(list_inputs(in_dir), *shard)
    csv_path = Path(args.csv or f"eval_{args.model}_x{args.scale}"
                    f"{f'_shard{shard[0]}of{shard[1]}' if shard[1] > 1 else ''}.csv")
    if _same_path(csv_path.parent, in_dir):
        raise UsageError(f"--csv {csv_path} is in the input folder; write it elsewhere "
                         "(inputs are never overwritten)")
    model = load_model(args.model, args.scale, args.device)
    opts = method_options(args)
    methods = list(dict.fromkeys(["baseline", *args.method]))
    rows, interrupted = [], False
    bar = _bar(files, args.quiet, "eval")
    try:
        for f in bar:
            try:
                y, notes = read_image(f)
                _warn(f.name, notes, args.quiet)
                y = y.to(args.device)
                yp, size = pad_to_multiple(y, args.scale, args.pad)
                tile = tiling.resolve_tile(args.tile, *yp.shape[-2:])
                base = None
                for method in methods:
                    t0 = time.perf_counter()
                    res = apply_method(method, yp, model, tile, args.overlap,
                                       args.tile_batch, args.tile_mode,
                                       progress=False if args.quiet else None, **opts)
                    seconds = time.perf_counter() - t0
                    p = _metric(psnr, res.sr, yp, size, args.scale)
                    base = p if method == "baseline" else base
                    gain = None if p is None or base is None else p - base
                    lowered = lowered_warnings(method, base, gain, opts["eps"], *yp.shape[-2:])
                    _warn(f.name, lowered, args.quiet)
                    rows.append(dict(input=f.name, method=method, status="ok", error=None,
                                     height=y.shape[-2], width=y.shape[-1], psnr=p,
                                     ssim=_metric(ssim, res.sr, yp, size, args.scale),
                                     gain=gain, seconds=seconds,
                                     warnings=[*notes, *lowered]))
            except (ValueError, TypeError, OSError, RuntimeError) as err:
                rows.append(dict(input=f.name, method="", status="failed",
                                 error=f"{type(err).__name__}: {err}", warnings=[]))
                _say(f"failed: {f.name}: {err}", args.quiet)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    write_text(csv_path, _csv_text(rows, EVAL_COLUMNS))
    print(format_table(rows, methods, args.model, args.scale))
    # one row per image for the counts; the gain is that of the last method listed
    per_image = [r for r in rows if r["status"] == "failed" or r["method"] == methods[-1]]
    return _finish("eval", per_image, csv_path, interrupted, args.quiet)


def _fmt(v, spec):
    return format(v, spec) if v is not None and not (isinstance(v, float) and math.isnan(v)) \
        else "-"


def format_table(rows, methods, model, scale) -> str:
    """Per-image PSNR/SSIM table (Y channel, border = scale) with a mean row."""
    ok = [r for r in rows if r["status"] == "ok"]
    names = list(dict.fromkeys(r["input"] for r in ok))
    width = max([len(n) for n in names] + [5])
    head = f"{'image':{width}s} " + " ".join(f"{m + ' PSNR':>13s} {m + ' SSIM':>13s}"
                                            for m in methods)
    lines = [f"{model} x{scale}: PSNR-Y (dB) / SSIM-Y, border {scale}", head]
    table = {(r["input"], r["method"]): r for r in ok}
    for n in names:
        cells = [table.get((n, m), {}) for m in methods]
        lines.append(f"{n:{width}s} " + " ".join(
            f"{_fmt(c.get('psnr'), '13.2f')} {_fmt(c.get('ssim'), '13.4f')}" for c in cells))
    if names:
        means = []
        for m in methods:
            ps = [table[(n, m)]["psnr"] for n in names if (n, m) in table
                  and table[(n, m)]["psnr"] is not None]
            ss = [table[(n, m)]["ssim"] for n in names if (n, m) in table
                  and table[(n, m)]["ssim"] is not None]
            means.append(f"{_fmt(sum(ps) / len(ps) if ps else None, '13.2f')} "
                         f"{_fmt(sum(ss) / len(ss) if ss else None, '13.4f')}")
        lines.append(f"{'mean':{width}s} " + " ".join(means))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- parser

class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the uninformative None/False ones."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    fmt = _Formatter
    p = argparse.ArgumentParser(
        prog="hcd-lite", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Downscale (encode), upscale (decode) and evaluate folders of images "
                    "with a rescaling model and collaborative downscaling (HCD).",
        epilog="Run 'hcd-lite COMMAND --help' for the options of a command. Exit codes: 0 "
               "success, 1 some image failed, 2 usage error, 130 interrupted.")
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
    method.add_argument("--fast", action="store_true",
                        help="the measured fast preset hcd_lite.collaborative.FAST: 2 HR + 4 LR "
                             "geometric steps from zero, alpha = eps (explicit options win)")
    method.add_argument("--steps-hr", type=int, default=None,
                        help="HR-stage steps (hr, hcd) [15; --fast: 2]")
    method.add_argument("--steps-lr", type=int, default=None,
                        help="LR-stage steps (lr, hcd) [15; --fast: 4]")
    method.add_argument("--eps", type=float, default=0.3,
                        help="L2 budget of the perturbation of a whole image (per value "
                             "with --norm linf)")
    method.add_argument("--alpha", type=float, default=None,
                        help="step length [20/255 = 0.0784; --fast: eps]")
    method.add_argument("--schedule", default=None, choices=SCHEDULES,
                        help="step lengths: constant alpha, or geometric alpha, alpha/2, ... "
                             "[constant; --fast: geometric]")
    method.add_argument("--norm", default="l2", choices=NORMS,
                        help="norm of the budget and of the steps")
    method.add_argument("--seed", type=int, default=0, help="seed of the random start")
    method.add_argument("--no-random-start", action="store_true",
                        help="start from zero instead of a random point of the ball "
                             "(implied by --fast)")
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

    e = sub.add_parser("encode", parents=[common, method], formatter_class=fmt,
                       help="downscale every image of HR_DIR into LR_DIR",
                       description="Downscale every image of HR_DIR into an 8-bit PNG "
                                   "LR_DIR/<name>.png with the chosen method and write the "
                                   f"report LR_DIR/{REPORT}.json/.csv (PSNR of the baseline "
                                   "and of the method, gain, seconds).")
    e.add_argument("hr_dir", metavar="HR_DIR", help="folder of high-resolution images")
    e.add_argument("lr_dir", metavar="LR_DIR", help="output folder (created; not HR_DIR)")
    e.add_argument("--method", default="hcd", choices=METHODS,
                   help="baseline: down(y); lr/hr: collaborative LR/HR example; hcd: both")
    e.add_argument("--pad", default="reflect", choices=("crop", "reflect"),
                   help="sizes not divisible by the scale: crop the remainder, or "
                        "reflect-pad (decode crops back to the original size)")
    e.add_argument("--overwrite", action="store_true", help="redo images already encoded")
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser("decode", parents=[common], formatter_class=fmt,
                       help="upscale every LR image of LR_DIR into OUT_DIR",
                       description="Upscale every LR PNG of LR_DIR into OUT_DIR/<name>.png; "
                                   "LRs written by 'encode' are cropped back to the size "
                                   "stored in their PNG text chunk.")
    d.add_argument("lr_dir", metavar="LR_DIR", help="folder of LR PNGs (from encode)")
    d.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created; not LR_DIR)")
    d.add_argument("--overwrite", action="store_true", help="redo images already decoded")
    d.set_defaults(func=cmd_decode)

    v = sub.add_parser("eval", parents=[common, method], formatter_class=fmt,
                       help="PSNR/SSIM table of methods on the images of HR_DIR",
                       description="Encode and decode every image of HR_DIR in memory, print "
                                   "a PSNR-Y/SSIM-Y table (border = scale) of the baseline and "
                                   "the chosen methods and write it as CSV.")
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
    if hasattr(args, "steps_hr"):
        for name in ("steps_hr", "steps_lr"):
            if (getattr(args, name) or 0) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0")
        if args.eps < 0 or (args.alpha or 0) < 0:
            raise UsageError("--eps and --alpha must be >= 0")
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
