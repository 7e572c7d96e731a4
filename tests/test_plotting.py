import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from hcd_lite.plotting import show_images  # noqa: E402


def test_show_images_labels_the_colour_bars_of_heat_maps_only():
    panels = {"image": torch.rand(1, 3, 8, 8), "map": np.random.rand(8, 8),
              "other map": np.random.rand(8, 8)}
    fig = show_images(panels, cols=2, cbar_label="grey levels")
    bars = fig.axes[4:]                              # 2x2 grid, then one bar per heat map
    assert [ax.get_title() for ax in fig.axes[:3]] == list(panels)
    assert [b.get_ylabel() for b in bars] == ["grey levels", "grey levels"]
    plt.close(fig)
    fig = show_images(panels)
    assert [b.get_ylabel() for b in fig.axes[3:]] == ["", ""]
    plt.close(fig)
