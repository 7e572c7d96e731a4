"""The helpers the chapters share (hcd_lite.book): tables, the quoted Table 1, expect."""
import re

import numpy as np
import pytest
import torch
from IPython.display import HTML, Markdown

from hcd_lite import book
from hcd_lite.book import PAPER_TABLE1, html_table, markdown_table


def test_markdown_table():
    out = markdown_table(["name", "PSNR (dB)"], [["irn", f"{31.234:.2f}"], ["a|b", 2]])
    assert isinstance(out, Markdown)
    assert out.data.splitlines() == ["| name | PSNR (dB) |", "| --- | --- |",
                                     "| irn | 31.23 |", r"| a\|b | 2 |"]
    captioned = markdown_table(["a"], [[1]], caption="Means over 3 crops")
    assert captioned.data.startswith("Means over 3 crops\n\n| a |")


def test_html_table():
    out = html_table(["Method", "dB"], [["Bicubic & Bicubic", 28.42], ["<x>", "–"]])
    assert isinstance(out, HTML)
    assert re.findall(r"<th>(.*?)</th>", out.data) == ["Method", "dB"]
    rows = re.findall(r"<tr>(.*?)</tr>", out.data)[1:]
    assert rows == ["<td>Bicubic &amp; Bicubic</td><td>28.42</td>",
                    "<td>&lt;x&gt;</td><td>–</td>"]
    assert out.data.startswith('<table class="table"') and out.data.endswith("</table>")


def test_paper_table1_is_the_quoted_shape():
    assert set(book.__all__) >= {"PAPER_TABLE1", "expect", "markdown_table", "html_table"}
    assert list(PAPER_TABLE1)[:2] == ["Bicubic & Bicubic", "Bicubic & EDSR"]
    for method, cols in PAPER_TABLE1.items():
        assert set(cols) == {"Set5", "DIV2K"}, method
        for psnr, ssim in cols.values():
            assert 20 < psnr < 40 and (ssim is None or 0 < ssim < 1)
    assert PAPER_TABLE1["IRN"]["Set5"] == (36.19, 0.9451)  # spot check against the paper
    for model in ("IRN", "HCFlow"):                          # HCD rows improve on their backbone
        for data in ("Set5", "DIV2K"):
            assert PAPER_TABLE1[f"{model}+HCD (N=15)"][data][0] > PAPER_TABLE1[model][data][0]


def test_expect_passes_quietly_and_names_the_claim_when_it_fails():
    assert book.expect(np.float64(1.0) > 0, "positive") is None
    with pytest.raises(book.ClaimNotSupported, match="HCD beats both single stages"):
        book.expect(torch.tensor(False), "HCD beats both single stages")


def test_heldout_crops_are_central_and_of_the_asked_size():
    crops = book.heldout_crops(64)
    full = book.heldout_images()
    assert list(crops) == list(full)
    for name, c in crops.items():
        h, w = full[name].shape[-2:]
        top, left = (h - 64) // 2, (w - 64) // 2
        assert c.shape == (1, 3, 64, 64)
        assert torch.equal(c, full[name][..., top:top + 64, left:left + 64])


def test_quoted_paper_tables_agree_with_each_other():
    # Table 3's N = 15 row is Table 2's HCD (15, 15) row; Table 1 lists IRN+HCD above IRN.
    assert book.PAPER_TABLE3[15][:2] == book.PAPER_TABLE2[15, 15]
    assert book.PAPER_TABLE1["IRN+HCD (N=15)"]["Set5"][0] > book.PAPER_TABLE1["IRN"]["Set5"][0]
    assert book.label("irn") == "IRN-lite"
