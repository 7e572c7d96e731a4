"""The helpers the chapters share, d2l-style: one import for what two chapters need.

* :func:`heldout_crops`: the chapters' fast stand-in for the held-out images;
* :func:`~hcd_lite.models.registry.label`: display labels of the backbones (from the one registry);
* :data:`PAPER_TABLE1`, :data:`PAPER_TABLE2`, :data:`PAPER_TABLE3`: figures QUOTED from the
  HCD paper (Xu et al., ICCV 2023), never computed here;
* :func:`markdown_table` / :func:`html_table`: computed tables (numbers inside sentences are
  ``{eval}`` roles of the chapters' own variables);
* :func:`expect`: the hidden check that guards a verdict written in the prose.

IPython and myst-nb are imported only when a helper needs them.
"""
from __future__ import annotations

import html

import torch

from .data import center_crop, heldout_images
from .models import label

__all__ = ["PAPER_SINGLE_STAGE_GAINS", "PAPER_TABLE1", "PAPER_TABLE2", "PAPER_TABLE3",
           "PAPER_TABLE3_UPSCALING_SECONDS",
           "ClaimNotSupported", "expect", "heldout_crops", "html_table", "label",
           "markdown_table"]

#: Quoted from the paper, Table 1 (Xu et al., ICCV 2023): 4x, PSNR in dB / SSIM on the Y
#: channel; None: the paper gives no SSIM. These are the paper's numbers, not computed here.
PAPER_TABLE1 = {
    "Bicubic & Bicubic": {"Set5": (28.42, 0.8104), "DIV2K": (26.66, 0.8521)},
    "Bicubic & EDSR": {"Set5": (32.62, 0.8984), "DIV2K": (29.38, 0.9032)},
    "TAD & TAU": {"Set5": (31.81, None), "DIV2K": (31.16, None)},
    "CAR & EDSR": {"Set5": (33.88, 0.9174), "DIV2K": (32.82, 0.8837)},
    "IRN": {"Set5": (36.19, 0.9451), "DIV2K": (35.07, 0.9318)},
    "IRN+HCD (N=15)": {"Set5": (36.63, 0.9488), "DIV2K": (35.20, 0.9324)},
    "HCFlow": {"Set5": (36.29, 0.9468), "DIV2K": (35.32, 0.9346)},
    "HCFlow+HCD (N=15)": {"Set5": (36.99, 0.9506), "DIV2K": (35.36, 0.9352)},
}

#: Quoted from the paper, Table 2 (IRN, 2x, Set5): (N_x, N_y) -> (PSNR dB, SSIM).
PAPER_TABLE2 = {(15, 0): (44.45, 0.9880), (0, 15): (44.37, 0.9879), (15, 15): (44.67, 0.9886)}
#: Quoted from the paper's Section 4.3: the single stages' gains over plain IRN at 2x (dB).
PAPER_SINGLE_STAGE_GAINS = {"lr": 0.46, "hr": 0.38}

#: Quoted from the paper, Table 3 (IRN + HCD, 2x, Set5): iterations N per level ->
#: (PSNR dB, SSIM, downscaling seconds per image).
PAPER_TABLE3 = {1: (44.10, 0.9872, 0.33), 5: (44.52, 0.9882, 1.61),
                10: (44.61, 0.9884, 2.98), 15: (44.67, 0.9886, 3.97),
                20: (44.66, 0.9872, 5.26)}
#: Quoted from the paper, Table 3: upscaling took 0.03 s per image whatever N.
PAPER_TABLE3_UPSCALING_SECONDS = 0.03


class ClaimNotSupported(AssertionError):
    """A sentence of the book states something the freshly computed data no longer support."""


def expect(condition, claim: str) -> None:
    """Guard a verdict the prose states: raise :class:`ClaimNotSupported` naming ``claim``
    when ``condition`` is false, so the build fails and a person rewrites the sentence.

    >>> expect(3 > 2, "three beats two")
    """
    if not bool(condition):
        raise ClaimNotSupported(f"the text says {claim!r}, but the data computed in this run "
                                "do not support it: rewrite the sentence or fix the code")


def heldout_crops(size: int, multiple: int = 4) -> dict[str, torch.Tensor]:
    """``{name: [1, 3, size, size]}``: central crops of the held-out images, the chapters'
    fast stand-in for the full images (``heldout_images(multiple)`` before cropping)."""
    return {name: center_crop(img, size) for name, img in heldout_images(multiple).items()}


def markdown_table(header, rows, caption: str | None = None):
    """Header and rows of cells (any objects, shown with ``str``) -> an IPython ``Markdown`` table.

    ``caption``, if given, is a paragraph placed above the table. ``|`` in a cell is escaped.
    """
    from IPython.display import Markdown

    def line(cells):
        return "| " + " | ".join(str(c).replace("|", r"\|") for c in cells) + " |"

    lines = [line(header), "|" + " --- |" * len(header)] + [line(row) for row in rows]
    text = "\n".join(lines)
    return Markdown(text if caption is None else f"{caption}\n\n{text}")


def html_table(header, rows):
    """Header and rows of cells -> an IPython ``HTML`` table (alike in Jupyter and the book).

    Cells are shown with ``str`` and HTML-escaped (``&``, ``<``, ``>``).
    """
    from IPython.display import HTML

    def cells(tag, values):
        return "".join(f"<{tag}>{html.escape(str(v), quote=False)}</{tag}>" for v in values)

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return HTML('<table class="table" style="font-size: 0.85em">'
                f"<thead><tr>{cells('th', header)}</tr></thead><tbody>{body}</tbody></table>")
