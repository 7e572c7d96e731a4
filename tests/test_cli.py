"""The hcd-lite command line: encode/decode/eval, atomic writes, skipping, shards, padding,
reports that survive interruption, and what it does with odd inputs and outputs."""
import csv
import json
import os
import signal
import subprocess
import sys
import zlib
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hcd_lite import cli, load_image, save_image
from hcd_lite.options import FAST, PAPER

torch.set_num_threads(1)

MODEL = ["--model", "bicubic", "--scale", "4", "--steps-hr", "3", "--steps-lr", "3"]
ARGS = [*MODEL, "--quiet"]
GOOD = ("a.png", "b_odd.png", "c_gray.png")


@pytest.fixture
def hr(tmp_path):
    """3 small images (one of odd size, one grayscale), a broken file and an empty file."""
    d = tmp_path / "hr"
    d.mkdir()
    rgb = skimage.data.astronaut()
    Image.fromarray(rgb[100:140, 200:248]).save(d / "a.png")  # 40x48
    Image.fromarray(rgb[150:187, 220:265]).save(d / "b_odd.png")  # 37x45
    Image.fromarray(skimage.data.camera()[200:248, 200:240]).save(d / "c_gray.png")  # 48x40
    (d / "d_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (d / "e_empty.png").write_bytes(b"")
    return d


def encode(hr, lr, *extra, quiet=True):
    return cli.main(["encode", str(hr), str(lr), *(ARGS if quiet else MODEL), *extra])


def decode(lr, out, *extra):
    return cli.main(["decode", str(lr), str(out), "--model", "bicubic", "--scale", "4",
                     "--quiet", *extra])


def report_json(folder, name="hcd_lite_report"):
    return json.loads((folder / f"{name}.json").read_text())


def report(folder, name="hcd_lite_report"):
    return {r["input"]: r for r in report_json(folder, name)["images"]}


def report_csv(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def leftovers(folder):
    return [p.name for p in Path(folder).iterdir() if p.name.startswith(".")]


def test_console_script_and_help(capsys):
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("hcd-lite") == "hcd_lite.cli:main"
    for cmd in ([], ["encode"], ["decode"], ["eval"]):
        with pytest.raises(SystemExit) as exc:
            cli.main([*cmd, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: hcd-lite") and "--help" in out
        assert not cmd or ("--shard K/N" in out and "--model" in out)
        assert "--fast" not in out
        assert cmd not in (["encode"], ["eval"]) or "--paper" in out


def test_encode_decode_round_trip(hr, tmp_path, capsys):
    lr, out = tmp_path / "lr", tmp_path / "out"
    assert encode(hr, lr) == 1  # the broken and the empty file failed...
    rows = report(lr)
    assert {n for n, r in rows.items() if r["status"] == "ok"} == set(GOOD)  # ...the rest went on
    assert "empty" in rows["e_empty.png"]["error"] and rows["d_broken.png"]["status"] == "failed"
    assert sorted(p.name for p in lr.glob("*.png")) == list(GOOD)
    for name in GOOD:
        r = rows[name]
        assert r["gain_hcd"] > 0 and r["method"] == "hcd"
        assert r["psnr_hcd"] == pytest.approx(r["psnr_baseline"] + r["gain_hcd"])
        assert 0 < r["ssim_baseline"] < r["ssim_hcd"] <= 1
        assert r["seconds"] > 0 and r["tiles"] == 1
        im = Image.open(lr / name)
        assert im.mode == "RGB" and im.size == (-(-r["width"] // 4), -(-r["height"] // 4))
        assert json.loads(im.text["hcd_lite"])["height"] == r["height"]
    table = report_csv(lr / "hcd_lite_report.csv")
    assert [r["input"] for r in table] == sorted(rows) and table[0]["psnr_hcd"]
    assert report_json(lr)["state"] == "finished"
    assert decode(lr, out) == 0
    for name in GOOD:  # reflect padding: decoded back to the original size
        assert Image.open(out / name).size == Image.open(hr / name).size
    assert {n: r["status"] for n, r in report(out).items()} == dict.fromkeys(GOOD, "ok")
    assert leftovers(lr) == [] and leftovers(out) == []


def test_pad_crop_vs_reflect(hr, tmp_path):
    for pad, lr_size, out_size in [("crop", (11, 9), (44, 36)), ("reflect", (12, 10), (45, 37))]:
        lr, out = tmp_path / f"lr_{pad}", tmp_path / f"out_{pad}"
        encode(hr, lr, "--pad", pad, "--method", "baseline")
        assert Image.open(lr / "b_odd.png").size == lr_size
        assert Image.open(lr / "a.png").size == (12, 10)  # 48x40 is divisible: same for both
        decode(lr, out)
        assert Image.open(out / "b_odd.png").size == out_size


def test_skip_on_rerun_and_overwrite(hr, tmp_path):
    lr = tmp_path / "lr"
    encode(hr, lr, "--method", "baseline")
    inode = (lr / "a.png").stat().st_ino
    first = report(lr)["a.png"]
    assert encode(hr, lr, "--method", "baseline") == 1
    again = report(lr)["a.png"]
    assert again["status"] == "skipped" and (lr / "a.png").stat().st_ino == inode
    assert again["psnr_baseline"] == first["psnr_baseline"]  # kept from the earlier run
    assert not again["warnings"]
    encode(hr, lr, "--method", "hcd")  # other settings: still skipped, with a warning
    assert report(lr)["a.png"]["status"] == "skipped" and (lr / "a.png").stat().st_ino == inode
    assert "--overwrite" in report(lr)["a.png"]["warnings"][-1]
    encode(hr, lr, "--method", "baseline", "--overwrite")
    assert report(lr)["a.png"]["status"] == "ok" and (lr / "a.png").stat().st_ino != inode


def test_decode_rerun_skips_finished_images(hr, tmp_path, monkeypatch):
    lr, out = tmp_path / "lr", tmp_path / "out"
    encode(hr, lr, "--method", "baseline")
    assert decode(lr, out) == 0
    stamps = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.png")}
    model, calls = cli.backbone("bicubic", 4), []
    up = model.up
    monkeypatch.setattr(model, "up", lambda x: calls.append(x) or up(x))
    monkeypatch.setattr(cli, "backbone", lambda name, scale: model)
    assert decode(lr, out) == 0
    assert calls == [] and set(stamps) == set(GOOD)
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*.png")} == stamps
    assert {r["status"] for r in report(out).values()} == {"skipped"}
    assert decode(lr, out, "--overwrite") == 0 and len(calls) == 3


def test_output_made_from_another_input_is_redone(hr, tmp_path):
    lr = tmp_path / "lr"
    encode(hr, lr, "--method", "baseline")
    rgb = skimage.data.astronaut()
    for crop in (rgb[0:40, 0:48], rgb[0:44, 0:48]):  # same size other content, then other size
        Image.fromarray(crop).save(hr / "a.png")
        assert encode(hr, lr, "--method", "baseline") == 1
        row = report(lr)["a.png"]
        assert row["status"] == "ok" and row["height"] == crop.shape[0]
        assert "a.png was made from another input" in " ".join(row["warnings"])
        assert load_image(lr / "a.png").shape[-2:] == (crop.shape[0] // 4, 12)
        assert report(lr)["b_odd.png"]["status"] == "skipped"


def _failing_save(monkeypatch, exc, on_call=2):
    """PIL's save writes half a file and raises ``exc`` on the ``on_call``-th call."""
    real, calls = Image.Image.save, []

    def save(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == on_call:
            Path(fp).write_bytes(b"\x89PNG\r\n\x1a\n half")
            raise exc
        return real(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    return calls


def test_interrupted_run_leaves_no_partial_file(hr, tmp_path, monkeypatch):
    lr = tmp_path / "lr"
    calls = _failing_save(monkeypatch, KeyboardInterrupt())
    assert encode(hr, lr, "--method", "baseline") == 130
    assert len(calls) == 2 and Path(calls[1]).parent == lr  # temp file in the output folder
    assert sorted(p.name for p in lr.glob("*.png")) == ["a.png"]
    assert load_image(lr / "a.png").shape == (1, 3, 10, 12)  # the first one is complete
    assert leftovers(lr) == []
    assert report(lr)["a.png"]["status"] == "ok"
    monkeypatch.undo()
    assert encode(hr, lr, "--method", "baseline") == 1  # re-run finishes the job
    rows = report(lr)
    assert rows["a.png"]["status"] == "skipped" and rows["b_odd.png"]["status"] == "ok"


def test_failed_write_is_reported_and_the_rest_go_on(hr, tmp_path, monkeypatch):
    lr = tmp_path / "lr"
    _failing_save(monkeypatch, OSError("No space left on device"))
    assert encode(hr, lr, "--method", "baseline") == 1
    rows = report(lr)
    assert "No space" in rows["b_odd.png"]["error"] and rows["c_gray.png"]["status"] == "ok"
    assert not (lr / "b_odd.png").exists() and leftovers(lr) == []


def test_shards_partition_the_folder(hr, tmp_path):
    names = [f"{i:02d}.png" for i in range(11)]
    for n in range(1, 5):
        parts = [cli.select_shard(names, k, n) for k in range(1, n + 1)]
        assert sorted(sum(parts, [])) == names  # every file exactly once
        assert all(cli.select_shard(names, k, n) == parts[k - 1] for k in range(1, n + 1))
    done = []
    for k in (1, 2):
        lr = tmp_path / "lr"
        before = set(lr.glob("*.png")) if lr.exists() else set()
        encode(hr, lr, "--method", "baseline", "--shard", f"{k}/2")
        done.append({p.name for p in set(lr.glob("*.png")) - before})
        assert (lr / f"hcd_lite_report_shard{k}of2.json").exists()
    assert done[0] | done[1] == set(GOOD) and not done[0] & done[1]
    assert done[0] == {"a.png", "c_gray.png"}  # sorted index 0, 2 (and 4: the empty file)
    for bad in ("0/2", "3/2", "2", "a/b"):
        assert encode(hr, tmp_path / "x", "--shard", bad) == 2


def test_never_overwrites_inputs(hr, tmp_path):
    before = {p.name: p.read_bytes() for p in hr.iterdir()}
    assert encode(hr, hr) == 2
    (tmp_path / "link").symlink_to(hr)
    assert encode(hr, tmp_path / "link") == 2
    assert cli.main(["decode", str(hr), str(hr), "--model", "bicubic", "--scale", "4"]) == 2
    assert cli.main(["eval", str(hr), *ARGS, "--csv", str(hr / "a.png")]) == 2
    assert {p.name: p.read_bytes() for p in hr.iterdir()} == before


def test_eval_table_and_csv(hr, tmp_path, capsys, monkeypatch):
    path = tmp_path / "eval.csv"
    assert cli.main(["eval", str(hr), *ARGS, "--method", "lr", "hcd", "--csv", str(path)]) == 1
    out = capsys.readouterr().out
    assert "baseline PSNR" in out and "hcd SSIM" in out
    rows = report_csv(path)  # one row per image
    ok = [r for r in rows if r["status"] == "ok"]
    assert [r["input"] for r in ok] == list(GOOD) and len(rows) == 5
    assert all(float(r[f"gain_{m}"]) > 0 for r in ok for m in ("lr", "hcd"))
    assert all(float(r[f"psnr_{m}"]) == pytest.approx(float(r["psnr_baseline"])
                                                      + float(r[f"gain_{m}"]))
               for r in ok for m in ("lr", "hcd"))
    assert not any("lowered" in r["warnings"] for r in rows)
    assert all(0 < float(r[f"ssim_{m}"]) <= 1 for r in ok for m in ("baseline", "lr", "hcd"))
    mean = next(line for line in out.splitlines() if line.startswith("mean")).split()
    assert float(mean[1]) == pytest.approx(np.mean([float(r["psnr_baseline"]) for r in ok]),
                                           abs=0.005)
    monkeypatch.chdir(tmp_path)  # default: the CSV goes into the current folder
    assert cli.main(["eval", str(hr), *ARGS, "--method", "baseline", "--shard", "1/2"]) == 1
    assert (tmp_path / "eval_bicubic_x4_shard1of2.csv").is_file()


def test_warns_when_the_method_lowers_psnr(tmp_path, capsys):
    # measured: on this 32 x 32 crop the default budget is large against IRN-lite x2's error
    d = tmp_path / "hr"
    d.mkdir()
    Image.fromarray(skimage.data.chelsea()[100:132, 150:182]).save(d / "cat.png")
    path = tmp_path / "eval.csv"
    irn = ["--model", "irn", "--scale", "2", "--paper"]
    assert cli.main(["eval", str(d), *irn, "--csv", str(path)]) == 0
    row = report_csv(path)[0]
    assert float(row["gain_hcd"]) < 0 and "hcd lowered the PSNR" in row["warnings"]
    assert f"lowered the PSNR by {-float(row['gain_hcd']):.2f} dB" in capsys.readouterr().err
    lr = tmp_path / "lr"
    assert cli.main(["encode", str(d), str(lr), *irn, "--quiet"]) == 0
    assert any("without --paper" in w for w in report(lr)["cat.png"]["warnings"])
    # measured: the default preset (FAST) gains on this crop
    assert cli.main(["eval", str(d), *irn[:-1], "--csv", str(path), "--quiet"]) == 0
    assert float(report_csv(path)[0]["gain_hcd"]) > 0


def test_shipped_backbone_and_tiles(tmp_path):
    # eps is a whole-image L2 budget: on crops much smaller than 64 x 64 the default eps = 0.3
    # is so large per pixel that HCD can lower the PSNR (measured on 32 x 32 crops of chelsea)
    cat = skimage.data.chelsea()[100:164, 150:214]
    big = tmp_path / "big"
    big.mkdir()
    Image.fromarray(cat).save(big / "cat.png")
    lr = tmp_path / "lr"
    assert cli.main(["encode", str(big), str(lr), "--model", "irn", "--scale", "2",
                     "--steps-hr", "5", "--steps-lr", "5", "--quiet"]) == 0
    r = report(lr)["cat.png"]
    assert r["gain_hcd"] > 0 and Image.open(lr / "cat.png").size == (32, 32)
    assert cli.main(["decode", str(lr), str(tmp_path / "out"), "--model", "irn", "--scale", "2",
                     "--quiet"]) == 0
    d = tmp_path / "hr"
    d.mkdir()
    Image.fromarray(cat[:32, :32]).save(d / "cat.png")
    for mode, tiles, eps_tile in [("global", 16, 0.3), ("independent", 9, 0.3 * 16 / 32)]:
        lr2 = tmp_path / f"lr_{mode}"
        assert cli.main(["encode", str(d), str(lr2), "--model", "bicubic", "--scale", "2",
                         "--tile", "16", "--overlap", "4", "--tile-mode", mode, "--quiet"]) == 0
        r = report(lr2)["cat.png"]
        assert r["tiles"] == tiles and r["eps_tile"] == pytest.approx(eps_tile)
        assert r["gain_hcd"] > 0


def test_unusual_inputs_and_name_clashes(tmp_path, capsys):
    d = tmp_path / "hr"
    d.mkdir()
    rgb = skimage.data.astronaut()[:32, :32]
    Image.fromarray(np.dstack([rgb, np.full((32, 32), 200, np.uint8)])).save(d / "rgba.png")
    Image.fromarray(skimage.data.camera()[:32, :32].astype(np.uint16) * 257).save(d / "g16.png")
    Image.fromarray(rgb).save(d / "rgba.jpg")  # same output name as rgba.png
    (d / "notes.txt").write_text("not an image")
    lr = tmp_path / "lr"
    assert encode(d, lr, "--method", "baseline") == 1
    rows = report(lr)
    assert rows["g16.png"]["status"] == "ok" and rows["rgba.jpg"]["status"] == "ok"
    assert rows["rgba.png"]["status"] == "failed" and "rgba.jpg" in rows["rgba.png"]["error"]
    assert "unsupported" in rows["notes.txt"]["error"]
    d2 = tmp_path / "hr2"
    d2.mkdir()
    (d / "rgba.png").rename(d2 / "rgba.png")
    assert encode(d2, tmp_path / "lr2", "--method", "baseline") == 0
    assert any("alpha" in w for w in report(tmp_path / "lr2")["rgba.png"]["warnings"])
    capsys.readouterr()
    path = tmp_path / "eval.csv"
    assert cli.main(["eval", str(d2), "--model", "bicubic", "--scale", "4", "--method",
                     "baseline", "--csv", str(path)]) == 0
    assert any(line.startswith("warning: rgba.png:") and "alpha" in line
               for line in capsys.readouterr().err.splitlines())
    assert "alpha" in report_csv(path)[0]["warnings"]


@pytest.mark.parametrize("extra", [["--tile", "30"], ["--overlap", "6"], ["--tile", "big"],
                                   ["--steps-hr", "-1"], ["--tile", "16", "--overlap", "8"],
                                   ["--tile", "16", "--overlap", "16", "--tile-mode",
                                    "independent"], ["--threads", "0"], ["--eps", "nan"],
                                   ["--eps", "inf"], ["--eps", "-1"], ["--alpha", "nan"],
                                   ["--paper", "--alpha=-inf"], ["--device", "nonsense"]])
def test_bad_options_exit_2(hr, tmp_path, extra, capsys):
    assert encode(hr, tmp_path / "lr", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("hcd-lite encode: error:") and len(err.splitlines()) == 1
    assert not (tmp_path / "lr").exists()
    assert cli.main(["eval", str(hr), *ARGS, *extra, "--csv", str(tmp_path / "e.csv")]) == 2
    assert not (tmp_path / "e.csv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_without_cuda_is_a_usage_error(hr, tmp_path, capsys):
    assert encode(hr, tmp_path / "lr", "--device", "cuda") == 2
    err = capsys.readouterr().err
    assert "--device cuda is not usable here" in err and len(err.splitlines()) == 1


def test_presets_and_explicit_options():
    def opts(*argv):
        return cli.method_options(cli.build_parser().parse_args(["encode", "a", "b", *argv]))

    assert opts() == FAST.replace(record_psnr=False)  # the default
    assert opts("--paper") == PAPER.replace(record_psnr=False)
    assert opts("--eps", "0.5") == FAST.replace(eps=0.5, alpha=0.5, record_psnr=False)
    assert opts("--paper", "--eps", "0.5") == PAPER.replace(eps=0.5, record_psnr=False)
    mixed = opts("--steps-hr", "5", "--alpha", "0.1", "--norm", "linf", "--seed", "3")
    assert (mixed.steps_hr, mixed.steps_lr, mixed.alpha, mixed.schedule, mixed.norm,
            mixed.seed) == (5, FAST.steps_lr, 0.1, "geometric", "linf", 3)
    assert opts("--paper", "--no-random-start", "--schedule", "geometric") == PAPER.replace(
        random_start=False, schedule="geometric", record_psnr=False)


def crafted_png(width, height) -> bytes:
    """A 45-byte PNG header claiming ``width`` x ``height`` pixels, with no pixel data."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_is_reported_and_the_rest_go_on(hr, tmp_path, capsys):
    bomb = crafted_png(100_000, 100_000)
    assert len(bomb) == 45
    (hr / "d_broken.png").write_bytes(bomb)
    lr, out = tmp_path / "lr", tmp_path / "out"
    assert encode(hr, lr, "--method", "baseline") == 1
    rows = report(lr)
    assert "MAX_IMAGE_PIXELS" in rows["d_broken.png"]["error"]
    assert {n for n, r in rows.items() if r["status"] == "ok"} == set(GOOD)
    (lr / "z_bomb.png").write_bytes(bomb)
    assert decode(lr, out) == 1
    assert "MAX_IMAGE_PIXELS" in report(out)["z_bomb.png"]["error"]
    assert {r["status"] for n, r in report(out).items() if n != "z_bomb.png"} == {"ok"}
    path = tmp_path / "eval.csv"
    capsys.readouterr()
    assert cli.main(["eval", str(hr), *MODEL, "--method", "baseline", "--csv", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("failed: d_broken.png:") == 1
    line = err.split("failed: d_broken.png:")[1].splitlines()[0]  # one line naming it
    assert "MAX_IMAGE_PIXELS" in line and "Downscale it" in line
    assert [r["status"] for r in report_csv(path)].count("ok") == 3


def _sigterm_on_save(monkeypatch, on_call=2):
    """PIL's save sends this process SIGTERM on the ``on_call``-th call."""
    real, calls = Image.Image.save, []

    def save(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == on_call:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)


def test_sigterm_writes_the_report_and_exits_143(hr, tmp_path, monkeypatch):
    lr = tmp_path / "lr"
    before = signal.getsignal(signal.SIGTERM)
    _sigterm_on_save(monkeypatch)
    assert encode(hr, lr, "--method", "baseline") == 143
    assert signal.getsignal(signal.SIGTERM) is before
    data = report_json(lr)
    assert data["state"] == "terminated (SIGTERM)" and data["summary"]["ok"] == 1
    assert [r["input"] for r in report_csv(lr / "hcd_lite_report.csv")] == ["a.png"]
    assert sorted(p.name for p in lr.glob("*.png")) == ["a.png"] and leftovers(lr) == []


KILL_ON_SECOND_SAVE = """
import os, signal, sys
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from hcd_lite import cli
real, calls = Image.Image.save, []
def save(self, fp, *args, **kwargs):
    calls.append(fp)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, fp, *args, **kwargs)
Image.Image.save = save
sys.exit(cli.main(sys.argv[1:]))
"""


def test_kill_9_keeps_finished_rows_and_a_rerun_cleans_up(hr, tmp_path, capsys):
    lr = tmp_path / "lr"
    run = subprocess.run([sys.executable, "-c", KILL_ON_SECOND_SAVE, "encode", str(hr), str(lr),
                          *ARGS, "--threads", "1"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert [r["input"] for r in report_csv(lr / "hcd_lite_report.csv")] == ["a.png"]
    assert report_json(lr)["state"] == "running"
    stale = leftovers(lr)
    assert len(stale) == 1 and stale[0].startswith(".b_odd.png.") and stale[0].endswith(".part")
    (lr / ".keep").write_text("not ours")
    (lr / ".other.png.abcdefgh.part").write_text("not this run's")
    assert encode(hr, lr, quiet=False) == 1
    assert sorted(leftovers(lr)) == [".keep", ".other.png.abcdefgh.part"]
    assert f"removed {stale[0]}" in " ".join(report_json(lr)["notes"])
    rows = report(lr)
    assert rows["a.png"]["status"] == "skipped" and rows["a.png"]["gain_hcd"] > 0
    gains = [rows[n]["gain_hcd"] for n in GOOD]
    assert report_json(lr)["summary"]["mean"]["gain_hcd"] == pytest.approx(np.mean(gains))
    assert f"mean gain_hcd {np.mean(gains):+.3f} dB" in capsys.readouterr().err


def test_unwritable_output_is_a_usage_error_before_any_image(hr, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.setattr(cli.tiling, "tiled", lambda *a, **k: pytest.fail("computed an image"))
    (tmp_path / "lr").write_text("a file where the output folder should be")
    assert encode(hr, tmp_path / "lr") == 2
    assert "cannot write the report" in capsys.readouterr().err
    assert encode(hr, tmp_path / "lr" / "sub") == 2
    (tmp_path / "lr2" / "hcd_lite_report.json").mkdir(parents=True)
    assert encode(hr, tmp_path / "lr2") == 2
    assert cli.main(["eval", str(hr), *ARGS, "--csv", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("is a folder") == 2 and len(err.splitlines()) == 3
    (tmp_path / "ro").mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anyway
        assert encode(hr, tmp_path / "ro") == 2


def test_foreign_files_are_never_replaced(hr, tmp_path, capsys):
    lr = tmp_path / "lr"
    lr.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(lr / "a.png")  # not made by hcd-lite
    foreign = (lr / "a.png").read_bytes()
    save_image(torch.zeros(1, 3, 4, 4), lr / "b_odd.png", meta=[1, 2])  # JSON, not an object
    assert encode(hr, lr, "--method", "baseline", "--overwrite") == 1
    rows = report(lr)
    for name in ("a.png", "b_odd.png"):
        assert rows[name]["status"] == "failed" and "not made by hcd-lite" in rows[name]["error"]
    assert "not a JSON object" in rows["b_odd.png"]["warnings"][0]
    assert (lr / "a.png").read_bytes() == foreign and load_image(lr / "b_odd.png").shape[-1] == 4
    assert rows["c_gray.png"]["status"] == "ok"


def test_lr_metadata_that_is_not_an_object_is_ignored(hr, tmp_path):
    lr, out = tmp_path / "lr", tmp_path / "out"
    lr.mkdir()
    for i, meta in enumerate(([1, 2], "x", 3)):
        save_image(load_image(hr / "a.png")[..., :8, :12], lr / f"{i}.png", meta=meta)
    info = PngInfo()
    info.add_text("hcd_lite", "{not json")
    Image.open(lr / "0.png").save(lr / "3.png", pnginfo=info)
    assert decode(lr, out) == 0
    for row in report(out).values():
        assert row["status"] == "ok" and (row["height"], row["width"]) == (32, 48)
        assert any("not a JSON object" in w for w in row["warnings"])


class NaNModel(torch.nn.Module):
    scale = 4

    def down(self, y):
        return F.avg_pool2d(y, 4) * float("nan")

    def up(self, x):
        return F.interpolate(x, scale_factor=4)


def test_a_model_giving_nan_is_a_clear_error(hr, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "backbone", lambda name, scale: NaNModel())
    lr = tmp_path / "lr"
    assert encode(hr, lr) == 1
    for name in GOOD:
        assert "returned NaN or infinite values" in report(lr)[name]["error"]
    assert not list(lr.glob("*.png"))


class NaNUpModel(NaNModel):
    def up(self, x):
        return super().up(x) * float("nan")


def test_a_model_giving_nan_when_decoding_is_a_clear_error(hr, tmp_path, monkeypatch):
    lr, out = tmp_path / "lr", tmp_path / "out"
    encode(hr, lr)                      # the good images of `hr` are encoded (others fail)
    assert len(list(lr.glob("*.png"))) == len(GOOD)
    monkeypatch.setattr(cli, "backbone", lambda name, scale: NaNUpModel())
    assert decode(lr, out) == 1
    rows = report(out)
    assert len(rows) == len(GOOD)
    assert all("model.up() returned NaN" in row["error"] for row in rows.values())
    assert not list(out.glob("*.png"))


def test_non_utf8_names_and_subfolders(tmp_path, capsys):
    d = tmp_path / "hr"
    (d / "nested").mkdir(parents=True)
    name = os.fsdecode(b"caf\xe9.png")
    Image.fromarray(skimage.data.astronaut()[:32, :32]).save(d / name)
    lr = tmp_path / "lr"
    capsys.readouterr()
    assert encode(d, lr, "--method", "baseline", quiet=False) == 0
    err = capsys.readouterr().err
    assert err.count("skipped subfolder nested; hcd-lite does not recurse") == 1
    data = report_json(lr)
    assert list(report(lr)) == ["caf\\xe9.png"] and (lr / name).is_file()
    assert data["notes"] == ["skipped subfolder nested; hcd-lite does not recurse"]
    assert report_csv(lr / "hcd_lite_report.csv")[0]["input"] == "caf\\xe9.png"
    assert cli.main(["eval", str(d), *ARGS, "--csv", str(tmp_path / "e.csv")]) == 0
    assert report_csv(tmp_path / "e.csv")[0]["input"] == "caf\\xe9.png"
