"""One loop over the image files of a folder, shared by the ``hcd-lite`` commands.

:func:`run` calls a command's ``work`` on every input file, one report row per file: a file
that fails (unreadable, too large, a model error, a full disk) is reported and the others go
on. With output files (``encode``, ``decode``) it also

* skips an input whose output exists, was made by hcd-lite (PNG metadata
  :data:`hcd_lite.images.PNG_KEY`) and records the same input (size and sha256), keeping the
  stored report row; ``overwrite`` redoes it. An output made from another input is redone
  (with a warning); a file of that name that hcd-lite did not make is reported and left alone;
* writes each output with :func:`hcd_lite.images.save_image` (atomic), its metadata recording
  the settings, the input and the report row.

The :class:`Report` CSV gets a line as each image finishes (so a ``kill -9`` loses nothing
finished); the JSON (settings, summary, all rows) is written at the start (``"state":
"running"``) and at the end, also after Ctrl-C (exit code 130) or SIGTERM (143).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path

from . import __version__
from .images import EXTENSIONS, atomic_write, read_meta, remove_stale_temps, save_image

REPORT = "hcd_lite_report"
STATUSES = ("ok", "skipped", "failed")
# what one image may raise without stopping the run (torch's out-of-memory is a RuntimeError)
ERRORS = (ValueError, TypeError, OSError, RuntimeError, MemoryError)
# report columns that are not stored in an output's metadata (they describe this run)
_RUN_COLUMNS = ("input", "output", "status", "error", "seconds", "warnings")


class UsageError(Exception):
    """A problem with the command line itself (exit code 2)."""


class Terminated(BaseException):
    """Raised by SIGTERM in the loop of :func:`run`."""


def shown(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 become ``\\xNN`` escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def say(msg: str, quiet: bool = False):
    """A line on stderr that does not break the progress bar (nothing when ``quiet``)."""
    from tqdm import tqdm

    if not quiet:
        tqdm.write(msg, file=sys.stderr)


def list_inputs(folder: Path) -> tuple[list[Path], list[str]]:
    """``(files, notes)``: the regular, non-hidden files of ``folder`` sorted by name (the
    order ``--shard`` uses), hcd-lite's own reports left out, and a note per subfolder."""
    if not folder.is_dir():
        raise UsageError(f"input folder {folder} does not exist or is not a folder")
    entries = sorted((p for p in folder.iterdir() if not p.name.startswith(".")),
                     key=lambda p: p.name)
    files = [p for p in entries if p.is_file() and not (
        p.name.startswith(REPORT) and p.suffix in (".json", ".csv"))]
    notes = [f"skipped subfolder {shown(p.name)}; hcd-lite does not recurse"
             for p in entries if p.is_dir()]
    return files, notes


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


def source(path: Path) -> dict:
    """What an output records of its input: its size in bytes and its sha256."""
    data = path.read_bytes()
    return dict(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())


def summarize(rows: list[dict]) -> dict:
    """Counts per status, and the mean of every PSNR/SSIM/gain value over the rows that have
    it (skipped rows included: their metrics come from the outputs' metadata)."""
    keys = dict.fromkeys(k for r in rows for k in r if k.startswith(("psnr", "ssim", "gain")))
    means = {}
    for key in keys:
        values = [r[key] for r in rows if r.get(key) is not None]
        if values:
            means[key] = sum(values) / len(values)
    return dict(images=len(rows), **{s: sum(r["status"] == s for r in rows) for s in STATUSES},
                mean=means)


class Report:
    """The rows of a run in ``csv_path`` (a line per finished image) and, when given,
    ``json_path`` (settings, summary and rows; written at the start and at the end)."""

    def __init__(self, csv_path: Path, json_path: Path | None, columns: list[str],
                 settings: dict, notes: list[str]):
        self.csv_path, self.json_path, self.columns = csv_path, json_path, columns
        self.settings, self.notes, self.rows = settings, notes, []
        self._csv = self._writer = None

    def start(self):
        """Check that the report can be written (:class:`UsageError` if not), before any
        image is computed: write the JSON as ``running``, open the CSV and write its header."""
        for path in filter(None, (self.csv_path, self.json_path)):
            if path.is_dir():
                raise UsageError(f"the report path {path} is a folder")
        try:
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            self.write_json("running")
            self._csv = open(self.csv_path, "w", newline="", encoding="utf-8",
                             errors="backslashreplace")
        except OSError as err:
            raise UsageError(f"cannot write the report {err.filename or self.csv_path}: "
                             f"{err.strerror or err}") from None
        self._writer = csv.DictWriter(self._csv, self.columns, extrasaction="ignore",
                                      lineterminator="\n")
        self._writer.writeheader()
        self._csv.flush()

    def add(self, row: dict):
        """Append ``row`` (``None`` -> empty cell, lists joined with ``"; "``) to the CSV."""
        self.rows.append(row)
        self._writer.writerow({k: "" if row.get(k) is None else
                               "; ".join(row[k]) if isinstance(row[k], list) else row[k]
                               for k in self.columns})
        self._csv.flush()

    def write_json(self, state: str):
        if self.json_path is not None:
            text = json.dumps(dict(state=state, settings=self.settings, notes=self.notes,
                                   summary=summarize(self.rows),
                                   images=self.rows), indent=2, default=str)
            atomic_write(self.json_path, lambda tmp: tmp.write_text(
                text + "\n", encoding="utf-8", errors="backslashreplace"))

    def close(self, state: str):
        if self._csv is not None:
            self._csv.close()
        self.write_json(state)


def _terminate(signum, frame):
    raise Terminated


def run(command: str, files: list[Path], work, report: Report, *, outputs: dict | None = None,
        made_with: dict | None = None, overwrite: bool = False, quiet: bool = False) -> int:
    """Call ``work(f, row)`` on every file ``f`` of ``files`` in order; returns the exit code
    (0, 1 if any image failed, 130 after Ctrl-C, 143 after SIGTERM).

    ``row`` is the file's report row (``input``, ``status``, ``error``, ``warnings``) for
    ``work`` to fill; warnings raised inside ``work`` are added to it. Without ``outputs``
    ``work`` returns nothing. ``outputs`` maps every input of the folder (other shards
    included, so two inputs with one output name are refused) to its output path; ``work``
    then returns ``(image, meta)``: the image to save and metadata to store with
    ``made_with`` (the settings a skipped output is compared with) (module docstring).
    """
    from tqdm import tqdm

    targets = [outputs[f] for f in files] if outputs else []
    removed = remove_stale_temps([*targets, *filter(None, [report.json_path])])
    report.notes += [f"removed {shown(p.name)}, left by an interrupted run" for p in removed]
    for note in report.notes:
        say(f"note: {note}", quiet)
    report.start()
    owner = {}
    for f, out in (outputs or {}).items():
        owner.setdefault(out, f)
    stop, previous = None, signal.signal(signal.SIGTERM, _terminate)
    bar = tqdm(files, desc=command, unit="img", disable=quiet, file=sys.stderr,
               dynamic_ncols=True)
    try:
        for f in bar:
            row = dict(input=shown(f.name), status="ok", error=None, warnings=[])
            bar.set_postfix_str(row["input"], refresh=False)
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    if f.suffix.lower() not in EXTENSIONS:
                        raise ValueError(f"unsupported file type {f.suffix or '(no extension)'!r}; "
                                         f"expected one of {' '.join(EXTENSIONS)}")
                    if outputs is None:
                        work(f, row)
                    else:
                        _one_output(f, outputs[f], row, work, owner, made_with, overwrite)
                except ERRORS as err:
                    row.update(status="failed", error=f"{type(err).__name__}: {err}")
                    say(f"failed: {row['input']}: {err}", quiet)
            row["warnings"] = [str(w.message) for w in caught] + row["warnings"]
            for msg in row["warnings"]:
                say(f"warning: {row['input']}: {msg}", quiet)
            row["seconds"] = time.perf_counter() - start
            report.add(row)
    except KeyboardInterrupt:
        stop = 130
    except Terminated:
        stop = 143
    finally:
        signal.signal(signal.SIGTERM, previous)
        bar.close()
    state = {None: "finished", 130: "interrupted (Ctrl-C)", 143: "terminated (SIGTERM)"}[stop]
    report.close(state)
    summary = summarize(report.rows)
    gains = [f"{k} {v:+.3f} dB" for k, v in summary["mean"].items() if k.startswith("gain")]
    say(f"{command}: {summary['ok']} done, {summary['skipped']} skipped, "
        f"{summary['failed']} failed" + (f"; mean {', '.join(gains)}" if gains else "")
        + f"; report {report.json_path or report.csv_path}"
        + (f"; {state.upper()}: re-run to finish" if stop else ""), quiet)
    return stop or (1 if summary["failed"] else 0)


def _one_output(f: Path, out: Path, row: dict, work, owner: dict, made_with: dict,
                overwrite: bool):
    """:func:`run`'s step for one input with an output file: skip, refuse or compute."""
    row["output"] = shown(out.name)
    if owner[out] != f:
        raise ValueError(f"its output {row['output']} is also the output of "
                         f"{shown(owner[out].name)}; rename one of them")
    made_from = source(f)
    if out.exists():
        meta = read_meta(out)
        if meta is None:
            raise ValueError(f"{row['output']} exists and was not made by hcd-lite; it is "
                             "left alone (move it away to process this image)")
        if meta.get("source") != made_from:
            warnings.warn(f"{row['output']} was made from another input (other size or "
                          "content); redone")
        elif not overwrite:
            row.update(meta.get("row") or {}, status="skipped")
            made = {k: meta.get(k) for k in made_with}
            if made != made_with:
                warnings.warn(f"kept {row['output']} made with {made}; --overwrite redoes it "
                              "with the current settings")
            return
    image, meta = work(f, row)
    stored = {k: v for k, v in row.items() if k not in _RUN_COLUMNS}
    save_image(image, out, {**made_with, **meta, "source": made_from, "version": __version__,
                            "row": stored})
