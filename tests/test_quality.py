"""The benchmark's summary: means, gains over the baseline and images improved."""
import pytest
import torch

from hcd_lite import Bicubic
from hcd_lite.quality import evaluate_methods, main, summarise


def test_evaluate_and_summarise_on_bicubic():
    gen = torch.Generator().manual_seed(0)
    images = {f"img{i}": torch.rand(1, 3, 32, 32, generator=gen) for i in range(2)}
    rows = evaluate_methods(Bicubic(2), images, ("baseline", "hcd", "adversarial_lr"),
                            steps_hr=3, steps_lr=3)
    assert len(rows) == 6
    s = summarise(rows)
    assert s["baseline"]["gain"] == 0 and s["baseline"]["improved"] == 0
    assert s["hcd"]["gain"] > 0 and s["hcd"]["improved"] == 2
    assert s["adversarial_lr"]["gain"] < 0
    hcd_rows = [r["psnr"] for r in rows if r["method"] == "hcd"]
    assert s["hcd"]["psnr"] == pytest.approx(sum(hcd_rows) / 2)


def test_benchmark_command_prints_a_table(capsys):
    main(["--scales", "4", "--backbones", "bicubic", "--methods", "hcd", "--crop", "64"])
    out = capsys.readouterr().out
    assert "bicubic" in out and "baseline" in out and "hcd" in out
