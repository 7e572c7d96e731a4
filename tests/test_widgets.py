"""The static slider embeds one frame per parameter combination, in grid order; the live
explorer debounces its redraws, and is a note in the static book."""
import json
import re
import time

import matplotlib.pyplot as plt
import pytest
import torch

from hcd_lite import Bicubic, hcd, sample_image
from hcd_lite.widgets import (STATIC_BUILD_ENV, STATIC_NOTE, hcd_explorer, live_explorer,
                              static_slider)


def render(a, b):
    fig = plt.figure(figsize=(1, 1))
    fig.text(0.5, 0.5, f"{a}{b}")
    return fig, f"a={a} b={b}"


def slider_data(html_text):
    payload = re.search(r"<script type=\"application/json\">(.*?)</script>", html_text).group(1)
    return json.loads(payload)


def test_static_slider_embeds_every_combination_in_order():
    out = static_slider(render, {"a": [1, 2, 3], "b": ["x", "y"]}, initial={"a": 2}, title="t")
    data = slider_data(out.data)
    assert data["sizes"] == [3, 2]
    assert data["labels"] == [f"a={a} b={b}" for a in (1, 2, 3) for b in "xy"]
    assert len(set(data["frames"])) == 6  # every frame is a distinct PNG
    assert data["values"] == [["1", "2", "3"], ["x", "y"]]
    values = re.findall(r'type="range" min="0" max="(\d+)" step="1" value="(\d+)"', out.data)
    assert values == [("2", "1"), ("1", "0")]  # initial a=2 is index 1
    assert plt.get_fignums() == []  # frames were closed


def test_static_slider_ids_are_stable_and_distinct():
    one = static_slider(render, {"a": [1], "b": ["x"]}, title="one").data
    assert one == static_slider(render, {"a": [1], "b": ["x"]}, title="one").data
    two = static_slider(render, {"a": [1], "b": ["x"]}, title="two").data
    ids = [re.search(r'id="(hcd-slider-[0-9a-f]+)"', t).group(1) for t in (one, two)]
    assert ids[0] != ids[1]


def test_static_slider_formats_float_values():
    out = static_slider(render, {"a": [20 / 255, 0.3, 1.0], "b": [15, "x"]})
    assert slider_data(out.data)["values"] == [["0.0784", "0.3", "1"], ["15", "x"]]
    out = static_slider(render, {"a": [20 / 255], "b": [1000]}, fmt="{:.2f}")
    assert slider_data(out.data)["values"] == [["0.08"], ["1000"]]  # ints are never formatted
    out = static_slider(render, {"a": [20 / 255], "b": ["x"]}, fmt=None)
    assert slider_data(out.data)["values"] == [[str(20 / 255)], ["x"]]


def test_live_explorer_in_the_static_book_is_a_note(monkeypatch):
    monkeypatch.setenv(STATIC_BUILD_ENV, "1")
    out = live_explorer(render, {"a": None})
    assert out.data == STATIC_NOTE and "make lab" in out.data


def test_live_explorer_debounces_quick_changes_into_one_redraw(monkeypatch):
    import ipywidgets

    monkeypatch.delenv(STATIC_BUILD_ENV, raising=False)
    calls = []

    def counting_render(a):
        calls.append(a)
        return render(a, "x")

    slider = ipywidgets.IntSlider(value=1, min=1, max=9)
    box = live_explorer(counting_render, {"a": slider}, delay=0.2)
    assert calls == [1] and box.children[0].children[0] is slider and slider.description == "a"
    for value in (2, 3, 4, 5, 6):          # five arrow-key presses
        slider.value = value
    time.sleep(1.0)
    assert calls == [1, 6]                 # one redraw, with the last value
    image, label = box.children[-2:]
    assert image.value[:4] == b"\x89PNG" and label.value == "a=6 b=x"


@pytest.mark.parametrize("kind, text", [("IntSlider", "BoundedIntText"),
                                        ("FloatSlider", "BoundedFloatText")])
def test_live_explorer_gives_each_slider_a_linked_number_box(monkeypatch, kind, text):
    """The keyboard's way in both JupyterLab and Notebook 7 (see hcd_lite.widgets): a number box
    with the slider's range, linked in the browser, in place of the slider's readout."""
    import ipywidgets

    monkeypatch.delenv(STATIC_BUILD_ENV, raising=False)
    links, jslink = [], ipywidgets.jslink
    monkeypatch.setattr(ipywidgets, "jslink", lambda *ends: links.append(ends) or jslink(*ends))
    slider = getattr(ipywidgets, kind)(value=3, min=1, max=9, step=2)
    other = ipywidgets.SelectionSlider(options=["x", "y"])     # no number box for this one
    box = live_explorer(render, {"a": slider, "b": other})
    row, kept = box.children[:2]
    assert kept is other and other.readout
    assert row.children[0] is slider and not slider.readout and "hcd-slider-row" in row._dom_classes
    number = row.children[1]
    assert type(number).__name__ == text and "hcd-number-box" in number._dom_classes
    assert (number.value, number.min, number.max, number.step) == (3, 1, 9, 2)
    assert links == [((slider, "value"), (number, "value"))]


def test_hcd_explorer_is_a_note_in_the_static_book_and_creates_no_widget(monkeypatch):
    import ipywidgets

    def no_widgets(*args, **kwargs):
        raise AssertionError("a widget was created in the static book")

    monkeypatch.setenv(STATIC_BUILD_ENV, "1")
    monkeypatch.setattr(ipywidgets.Widget, "__init__", no_widgets)
    out = hcd_explorer(torch.zeros(1, 3, 8, 8), Bicubic(2), hr_steps=True)
    assert out.data == STATIC_NOTE


@pytest.mark.parametrize("hr_steps", [False, True])
def test_hcd_explorer_shows_the_psnr_of_the_hcd_run(monkeypatch, hr_steps):
    monkeypatch.delenv(STATIC_BUILD_ENV, raising=False)
    y = sample_image("astronaut")[..., :32, :32]
    box = hcd_explorer(y, Bicubic(2), hr_steps=hr_steps)
    names = [row.children[0].description for row in box.children[:-2]]
    assert names == ["eps", "alpha", "LR steps"] + (["HR steps"] if hr_steps else [])
    r = hcd(y, Bicubic(2), steps_hr=15 if hr_steps else 0, steps_lr=15, eps=0.3, alpha=0.08,
            progress=False)
    assert box.children[-1].value.startswith(f"PSNR {float(r.psnr(y)[0]):.2f} dB")
