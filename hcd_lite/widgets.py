"""Interactive figures: a static slider for the HTML book and a live one for notebooks.

:func:`static_slider` renders every combination of a small parameter grid when the
chapter runs and embeds the PNG frames in one self-contained HTML block with range
inputs: it works in the rendered book with no kernel and no network.
:func:`live_explorer` recomputes on demand with ipywidgets in a running notebook (same
``render`` contract), and shows a note instead in the static book.
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


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


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
        frames.append(_png(fig))
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


def live_explorer(render, sliders: dict, delay: float = 0.3):
    """ipywidgets sliders that redraw ``render(**values)`` in a running notebook.

    ``render`` has :func:`static_slider`'s contract (returns ``(figure, label)``), so a chapter
    can use one function for both; ``sliders`` maps parameter names to ipywidgets sliders.
    Changes are debounced: a redraw starts ``delay`` seconds after the last change (five quick
    arrow-key presses cost one redraw), and redraws never overlap. Returns the widget box.

    In the rendered book (``HCD_STATIC_BUILD`` set by the build) it returns a short note
    instead: without a kernel the controls would show but could not recompute.
    """
    if os.environ.get(STATIC_BUILD_ENV):
        from IPython.display import Markdown

        return Markdown(STATIC_NOTE)
    import ipywidgets

    image, label = ipywidgets.Image(format="png"), ipywidgets.HTML()
    lock, pending = threading.Lock(), {"timer": None}

    def redraw():
        with lock:  # a redraw that starts while one runs waits, then draws the latest values
            fig, text = render(**{name: s.value for name, s in sliders.items()})
            image.value = base64.b64decode(_png(fig))
            label.value = html.escape(text)

    def schedule(_change):
        if pending["timer"] is not None:
            pending["timer"].cancel()
        pending["timer"] = threading.Timer(delay, redraw)
        pending["timer"].start()

    for name, slider in sliders.items():
        slider.description = slider.description or name
        slider.continuous_update = False
        slider.observe(schedule, "value")
    redraw()
    box = ipywidgets.VBox([*sliders.values(), image, label])
    box.add_class("hcd-live-explorer")
    return box
