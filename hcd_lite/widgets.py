"""Interactive figures: a static slider for the HTML book and a live one for notebooks.

:func:`static_slider` renders every combination of a small parameter grid when the
chapter runs and embeds the PNG frames in one self-contained HTML block with range
inputs: it works in the rendered book with no kernel and no network.
:func:`live_explorer` recomputes on demand with ipywidgets in a running notebook (same
``render`` contract), and shows a note instead in the static book; :func:`hcd_explorer` is the
chapters' live explorer of HCD on one image.

Each slider of a live explorer has a number box beside it (:func:`_number_box`): type a value,
or step it with the arrow keys Up and Down, in JupyterLab and Notebook 7 alike. Arrow keys on a
slider's handle move it only in JupyterLab (jupyterlab 4.5, notebook 7.5): Notebook 7 starts its
app without ``bubblingKeydown``, so its command-mode arrow-key shortcuts (selector
``.jp-Notebook.jp-mod-commandMode:not(.jp-mod-readWrite) :focus``) take the key in the capture
phase before the handle sees it; a focused ``<input>`` sets ``jp-mod-readWrite`` and keeps its
keys. (``data-lm-suppress-shortcuts`` would free the handle, but ipywidgets cannot set it.)
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import numbers
import os
import threading

import matplotlib.pyplot as plt

#: Set (to anything) by the book build; :func:`live_explorer` then returns :data:`STATIC_NOTE`.
STATIC_BUILD_ENV = "HCD_STATIC_BUILD"
STATIC_NOTE = ("*Live explorer:* this one needs a running notebook. Open the chapter in "
               "JupyterLab (`make lab`), run its first cells, then this one; its sliders "
               "recompute for any value. The precomputed sliders on this page work here.")

_SCRIPT = """
(function () {
  var root = document.getElementById(%(id)s);
  var data = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  var inputs = root.querySelectorAll("input[type=range]");
  function update() {
    var index = 0;
    inputs.forEach(function (input, k) {
      var i = parseInt(input.value, 10);
      index = index * data.sizes[k] + i;
      root.querySelectorAll(".hcd-slider-value")[k].textContent = data.values[k][i];
    });
    root.querySelector("img").src = "data:image/png;base64," + data.frames[index];
    root.querySelector(".hcd-slider-label").textContent = data.labels[index];
  }
  inputs.forEach(function (input) { input.addEventListener("input", update); });
  update();
})();
"""


def _png(fig) -> bytes:
    """The PNG bytes of ``fig`` (80 dpi, tight box); the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _format_value(value, fmt: str | None) -> str:
    """Text shown beside a slider: ``fmt`` for floats (``None``: ``str``), ``str`` otherwise."""
    if fmt is not None and isinstance(value, numbers.Real) \
            and not isinstance(value, numbers.Integral):
        return fmt.format(value)
    return str(value)


def static_slider(render, grid: dict, initial: dict | None = None, title: str = "",
                  fmt: str | None = "{:.3g}"):
    """One HTML block with a range input per parameter of ``grid`` (``{name: [values]}``).

    ``render(**params)`` is called for every combination and returns ``(figure, label)``:
    a matplotlib figure (closed after saving) and the text shown under it (e.g. the PSNR).
    ``initial`` picks the starting values. ``fmt`` formats the float values shown beside the
    sliders (``20 / 255`` shows as ``0.0784``); ints and other values show as ``str(value)``,
    and ``fmt=None`` shows every value as ``str(value)``. Returns an ``IPython.display.HTML``
    object.
    """
    from IPython.display import HTML

    names = list(grid)
    frames, labels = [], []
    for combo in itertools.product(*grid.values()):
        fig, label = render(**dict(zip(names, combo)))
        frames.append(base64.b64encode(_png(fig)).decode("ascii"))
        labels.append(label)
    start = {n: grid[n].index(initial[n]) if initial and n in initial else 0 for n in names}
    uid = "hcd-slider-" + hashlib.sha1(json.dumps([title, names, labels]).encode()).hexdigest()[:12]
    data = dict(sizes=[len(v) for v in grid.values()], frames=frames, labels=labels,
                values=[[_format_value(v, fmt) for v in grid[n]] for n in names])
    rows = "".join(
        f'<label style="display:block">{html.escape(n)} '
        f'<input type="range" min="0" max="{len(grid[n]) - 1}" step="1" value="{start[n]}" '
        f'aria-label="{html.escape(n)}"> <span class="hcd-slider-value"></span></label>'
        for n in names)
    body = (f'<div class="hcd-slider" id="{uid}">'
            f'<div style="font-weight:bold">{html.escape(title)}</div>{rows}'
            f'<img alt="{html.escape(title or "slider frame")}" style="max-width:100%">'
            f'<div class="hcd-slider-label"></div>'
            f'<script type="application/json">{json.dumps(data)}</script>'
            f'<script>{_SCRIPT % {"id": json.dumps(uid)}}</script></div>')
    return HTML(body)


def _static_note():
    """What a live explorer shows in the static book: :data:`STATIC_NOTE`, no widgets (a widget
    created in the build's kernel would be saved into the page as a dead control)."""
    from IPython.display import Markdown

    return Markdown(STATIC_NOTE)


def _number_box(slider):
    """``slider`` in a row with a number box linked to it (``jslink``: in the browser, no kernel
    round trip), which replaces the slider's readout; a slider other than an ``IntSlider`` or a
    ``FloatSlider`` is returned as it is. The box takes the slider's range and step when built.

    Type a value and press Enter, or step it with the arrow keys Up and Down: the box is an
    ``<input type=number>``, which JupyterLab and Notebook 7 both leave their keys to (see the
    module docstring for why arrow keys on the slider's handle do not work in Notebook 7).
    """
    import ipywidgets

    kinds = ((ipywidgets.IntSlider, ipywidgets.BoundedIntText),
             (ipywidgets.FloatSlider, ipywidgets.BoundedFloatText))
    number = next((text for kind, text in kinds if isinstance(slider, kind)), None)
    if number is None:
        return slider
    box = number(value=slider.value, min=slider.min, max=slider.max, step=slider.step,
                 tooltip="type a value, or step it with the arrow keys Up and Down",
                 layout=ipywidgets.Layout(width="6.5em"))
    box.add_class("hcd-number-box")
    ipywidgets.jslink((slider, "value"), (box, "value"))
    slider.readout = False
    row = ipywidgets.HBox([slider, box])
    row.add_class("hcd-slider-row")
    return row


def live_explorer(render, sliders: dict, delay: float = 0.3):
    """ipywidgets sliders that redraw ``render(**values)`` in a running notebook.

    ``render`` has :func:`static_slider`'s contract (returns ``(figure, label)``), so a chapter
    can use one function for both; ``sliders`` maps parameter names to ipywidgets sliders.
    Changes are debounced: a redraw starts ``delay`` seconds after the last change (five quick
    arrow-key presses cost one redraw), and redraws never overlap. Each ``IntSlider`` and
    ``FloatSlider`` gets a linked number box for the keyboard (:func:`_number_box`). Returns
    the widget box (CSS class ``hcd-live-explorer``): a row per slider, the image, the text.

    In the rendered book (``HCD_STATIC_BUILD`` set by the build) it returns a short note
    instead: without a kernel the controls would show but could not recompute.
    """
    if os.environ.get(STATIC_BUILD_ENV):
        return _static_note()
    import ipywidgets

    image, label = ipywidgets.Image(format="png"), ipywidgets.HTML()
    lock, pending = threading.Lock(), {"timer": None}

    def redraw():
        with lock:  # a redraw that starts while one runs waits, then draws the latest values
            fig, text = render(**{name: s.value for name, s in sliders.items()})
            image.value = _png(fig)
            label.value = html.escape(text)

    def schedule(_change):
        if pending["timer"] is not None:
            pending["timer"].cancel()
        pending["timer"] = threading.Timer(delay, redraw)
        pending["timer"].start()

    rows = []
    for name, slider in sliders.items():
        slider.description = slider.description or name
        slider.continuous_update = False
        slider.observe(schedule, "value")
        rows.append(_number_box(slider))
    redraw()
    box = ipywidgets.VBox([*rows, image, label])
    box.add_class("hcd-live-explorer")
    return box


def hcd_explorer(y, model, *, hr_steps: bool = False, vmax: float = 8.0):
    """Live explorer of HCD on one image ``y`` ``[1, 3, H, W]``: sliders for eps, alpha and the
    LR stage's steps, and for the HR stage's steps when ``hr_steps`` (0 HR steps is the LR stage
    alone, 0 + 0 the baseline). Each frame shows the reconstruction and how far the stored LR
    image moved from the plain one, in grey levels on a fixed 0..``vmax`` scale (so that no
    change shows as no colour); the text gives the PSNR. See :func:`live_explorer`.
    """
    if os.environ.get(STATIC_BUILD_ENV):
        return _static_note()
    import ipywidgets

    from .collaborative import hcd, rescale
    from .images import to_numpy_uint8

    base = rescale(y, model)
    base_psnr = float(base.psnr(y)[0])

    def render(eps, alpha, lr_steps, hr_steps=0):
        r = hcd(y, model, steps_hr=hr_steps, steps_lr=lr_steps, eps=eps, alpha=alpha,
                progress=False)
        psnr = float(r.psnr(y)[0])
        fig, (left, right) = plt.subplots(1, 2, figsize=(6.4, 3.2))
        left.imshow(to_numpy_uint8(r.sr), interpolation="nearest")
        left.set_title("reconstruction", fontsize=10)
        moved = 255 * (r.lr - base.lr).norm(dim=1)[0].numpy()
        im = right.imshow(moved, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        right.set_title("change of the stored LR image", fontsize=10)
        fig.colorbar(im, ax=right, shrink=0.8, extend="max").set_label("grey levels")
        for ax in (left, right):
            ax.axis("off")
        return fig, (f"PSNR {psnr:.2f} dB, {psnr - base_psnr:+.2f} dB over the baseline "
                     f"({base_psnr:.2f} dB)")

    sliders = {
        "eps": ipywidgets.FloatSlider(value=0.3, min=0.0, max=1.5, step=0.05, description="eps"),
        "alpha": ipywidgets.FloatSlider(value=0.08, min=0.01, max=0.3, step=0.01,
                                        description="alpha"),
        "lr_steps": ipywidgets.IntSlider(value=15, min=0, max=40, description="LR steps"),
    }
    if hr_steps:
        sliders["hr_steps"] = ipywidgets.IntSlider(value=15, min=0, max=40,
                                                   description="HR steps")
    return live_explorer(render, sliders)
