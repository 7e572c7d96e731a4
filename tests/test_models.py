"""Backbones: shapes, invertibility, official IRN layout, shipped weights, training."""
import json
import math
import shutil

import pytest
import torch

import hcd_lite
from hcd_lite.models import IRN, BicubicSR, EncoderDecoder, HCFlow
from hcd_lite.models.bicubic import bicubic_down, bicubic_up
from hcd_lite.models.hcflow import InvConv1x1
from hcd_lite.models.registry import TRAINABLE, build_model, sha256, weights_dir
from hcd_lite.train import main as train_main, training_loss

SHIPPED = sorted(p.stem for p in weights_dir().glob("*.pt"))


def randomize(model, std=0.05, seed=0):
    """Give every trainable parameter random values (fresh models start as identities)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


@pytest.mark.parametrize("name,scale", sorted(TRAINABLE))
def test_shapes(name, scale):
    model = build_model(name, scale)
    y = torch.rand(2, 3, 32, 48)
    x = model.down(y)
    assert x.shape == (2, 3, 32 // scale, 48 // scale)
    assert model.up(x).shape == y.shape


def imresize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """1-D resampling matrix of MATLAB's bicubic ``imresize``: Keys' kernel (a = -0.5), stretched
    when shrinking (antialiasing), mirrored borders, rows normalised (written from its formulas)."""
    def keys(t):
        t = abs(t)
        return 1.5 * t**3 - 2.5 * t**2 + 1 if t <= 1 else (
            -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2 if t < 2 else 0.0)
    f = n_out / n_in
    k = min(f, 1.0)
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        u = (i + 0.5) / f - 0.5
        for j in range(math.floor(u - 2 / k), math.ceil(u + 2 / k) + 1):
            m[i, min(max(j, -j - 1), 2 * n_in - j - 1)] += k * keys(k * (u - j))
    return m / m.sum(1, keepdim=True)


@pytest.mark.parametrize("scale", [2, 4])
def test_bicubic_follows_the_matlab_convention(scale):
    """Bicubic & Bicubic uses MATLAB's kernel both ways (equal away from the image edges)."""
    y = torch.rand(1, 3, 16 * scale, 12 * scale, dtype=torch.float64)
    x = y[..., :16, :12]
    want_down = imresize_matrix(16 * scale, 16) @ y @ imresize_matrix(12 * scale, 12).T
    want_up = imresize_matrix(16, 16 * scale) @ x @ imresize_matrix(12, 12 * scale).T
    inner, inner_hr = (..., slice(2, -2), slice(2, -2)), (..., slice(2 * scale, -2 * scale),
                                                          slice(2 * scale, -2 * scale))
    torch.testing.assert_close(bicubic_down(y, scale)[inner], want_down[inner])
    torch.testing.assert_close(bicubic_up(x, scale)[inner_hr], want_up[inner_hr])
    # The sharper kernel kept for the SR networks' skip path is a different interpolant.
    assert (bicubic_up(x, scale, sharp=True) - want_up)[inner_hr].abs().max() > 0.01


@pytest.mark.parametrize("scale", [2, 4])
def test_irn_is_invertible_before_quantisation(scale):
    model = randomize(IRN(scale, blocks=2, width=8)).double()
    y = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    lr, z = model.encode(y)
    assert z.shape == (1, 3 * (scale ** 2 - 1), 32 // scale, 32 // scale)
    assert not torch.allclose(lr, torch.nn.functional.avg_pool2d(y, scale))  # not trivial
    torch.testing.assert_close(model.decode(lr, z), y, atol=1e-10, rtol=0)


def test_irn_low_pass_band_is_block_mean_at_init():
    y = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(IRN(4, blocks=1, width=8).down(y),
                               torch.nn.functional.avg_pool2d(y, 4), atol=1e-6, rtol=0)


def test_irn_sampled_latent_is_seeded():
    model = randomize(IRN(2, blocks=1, width=8, z_mode="sample"))
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(model.up(x), model.up(x))
    zero = randomize(IRN(2, blocks=1, width=8, z_mode="zero"))
    assert not torch.allclose(model.up(x), zero.up(x))


@pytest.mark.parametrize("scale", [2, 4])
def test_hcflow_is_invertible_given_its_residuals(scale):
    model = randomize(HCFlow(scale, steps=2, width=8, cond_width=8, cond_blocks=1)).double()
    with torch.no_grad():  # keep the 1x1 mixing well conditioned, as training does
        for mix in (m for m in model.modules() if isinstance(m, InvConv1x1)):
            mix.weight += torch.eye(mix.weight.shape[0], dtype=torch.float64)
    y = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    lr, residuals = model.encode(y)
    assert lr.shape == (1, 3, 32 // scale, 32 // scale)
    # one latent per level: 9 channels at x2; 6 (at 16x16) then 21 (at 8x8) at x4
    expected = [(9, 16)] if scale == 2 else [(6, 16), (21, 8)]
    assert [(r.shape[1], r.shape[-1]) for r in residuals] == expected
    torch.testing.assert_close(model.decode(lr, residuals), y, atol=1e-10, rtol=0)
    # without residuals it decodes from the predicted latents: close to, but not exactly, y
    assert not torch.allclose(model.decode(lr), y, atol=1e-6)


def test_hcflow_upscaling_uses_the_latent_predicted_from_the_lr():
    model = randomize(HCFlow(2, steps=1, width=8, cond_width=8, cond_blocks=1)).double()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    _, mean = model.predictors[0](x)
    assert mean.abs().max() > 0
    assert not torch.allclose(model.up(x), model.decode(x, [-mean]))  # [-mean]: latent 0, as IRN
    noisy = model.decode(x, temperature=0.5)
    torch.testing.assert_close(noisy, model.decode(x, temperature=0.5))  # seeded
    assert not torch.allclose(noisy, model.up(x))


def test_hcflow_low_pass_band_is_block_mean_at_init():
    y = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(HCFlow(4).down(y), torch.nn.functional.avg_pool2d(y, 4),
                               atol=1e-6, rtol=0)


def official_irn_state_dict(scale, gen):
    """A state dict laid out as the official IRN release: written from its architecture
    description (Haar level, then 8 InvBlockExp of three 5-conv dense blocks, width 32)."""
    state, index, channels = {}, 0, 3
    for _ in range({2: 1, 4: 2}[scale]):
        state[f"module.operations.{index}.haar_weights"] = None  # filled below
        index, channels = index + 1, channels * 4
        for _ in range(8):
            for sub, (cin, cout) in {"F": (channels - 3, 3), "G": (3, channels - 3),
                                     "H": (3, channels - 3)}.items():
                for k in range(1, 6):
                    c_in = cin + 32 * (k - 1)
                    c_out = 32 if k < 5 else cout
                    key = f"module.operations.{index}.{sub}.conv{k}"
                    state[key + ".weight"] = torch.randn(c_out, c_in, 3, 3, generator=gen) * 0.02
                    state[key + ".bias"] = torch.randn(c_out, generator=gen) * 0.02
            index += 1
    return state


@pytest.mark.parametrize("scale", [2, 4])
def test_from_official_loads_official_layout(tmp_path, scale):
    gen = torch.Generator().manual_seed(1)
    state = official_irn_state_dict(scale, gen)
    haar = torch.ones(4, 1, 2, 2)
    haar[1, 0, 0, 1] = haar[1, 0, 1, 1] = -1
    haar[2, 0, 1, 0] = haar[2, 0, 1, 1] = -1
    haar[3, 0, 1, 0] = haar[3, 0, 0, 1] = -1
    channels = 3
    for key in [k for k in state if k.endswith("haar_weights")]:
        state[key] = torch.cat([haar] * channels, 0)
        channels *= 4
    path = tmp_path / f"IRN_x{scale}.pth"
    torch.save(state, path)
    model = IRN.from_official(path, scale)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 0  # frozen
    loaded = model.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key.removeprefix("module.")], value)
    y = torch.rand(1, 3, 32, 32)
    assert model.up(model.down(y)).shape == y.shape
    assert model.z_mode == "sample"


def test_from_official_rejects_other_layouts(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save(IRN(4, blocks=2, width=16).state_dict(), path)
    with pytest.raises(ValueError, match="not an official IRN x4 checkpoint"):
        IRN.from_official(path, 4)


@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_weights_load_with_checksum(stem):
    name, scale = stem.rsplit("_x", 1)
    model = hcd_lite.load_pretrained(name, int(scale))
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    manifest = json.loads((weights_dir() / f"{stem}.json").read_text())
    assert manifest["sha256"] == sha256(weights_dir() / f"{stem}.pt")
    y = hcd_lite.sample_image("astronaut")[..., :64, :64]
    sr = model.up(model.down(y))
    assert sr.shape == y.shape and torch.isfinite(sr).all()


def test_every_shipped_backbone_is_present():
    assert {"irn_x2", "irn_x4", "hcflow_x2", "hcflow_x4", "encoder_decoder_x2",
            "encoder_decoder_x4",
            "bicubic_sr_x2", "bicubic_sr_x4"} <= set(SHIPPED)
    total = sum((weights_dir() / f"{s}.pt").stat().st_size for s in SHIPPED)
    assert total < 20 * 2 ** 20


def copy_weights(tmp_path, monkeypatch, stem="bicubic_sr_x2"):
    for suffix in (".pt", ".json"):
        shutil.copy(weights_dir() / f"{stem}{suffix}", tmp_path / f"{stem}{suffix}")
    monkeypatch.setenv("HCD_LITE_WEIGHTS", str(tmp_path))
    return tmp_path / f"{stem}.pt"


def test_corrupted_weights_raise(tmp_path, monkeypatch):
    path = copy_weights(tmp_path, monkeypatch)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        hcd_lite.load_pretrained("bicubic_sr", 2)


def test_missing_weights_raise(tmp_path, monkeypatch):
    copy_weights(tmp_path, monkeypatch).unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        hcd_lite.load_pretrained("bicubic_sr", 2)
    with pytest.raises(FileNotFoundError, match="python -m hcd_lite.train"):
        hcd_lite.load_pretrained("irn", 4)


def test_a_scale_without_a_model_is_refused_before_suggesting_training():
    with pytest.raises(ValueError, match=r"no 'irn' model at scale 3; scales: \[2, 4\]"):
        hcd_lite.load_pretrained("irn", 3)


@pytest.mark.parametrize("text, msg", [("{not json", "not valid JSON"),
                                       ('{"config": {}}', "lacks sha256"),
                                       ("[1, 2]", "lacks config, sha256")])
def test_a_broken_manifest_is_named(tmp_path, monkeypatch, text, msg):
    copy_weights(tmp_path, monkeypatch)
    (tmp_path / "bicubic_sr_x2.json").write_text(text)
    with pytest.raises(ValueError, match=msg):
        hcd_lite.load_pretrained("bicubic_sr", 2)


def test_unknown_model_raises():
    with pytest.raises(ValueError, match="choose one of"):
        hcd_lite.load_pretrained("swinir", 4)
    with pytest.raises(ValueError, match="scale must be 2 or 4"):
        BicubicSR(3)
    with pytest.raises(ValueError, match="not divisible by the scale 4"):
        EncoderDecoder(4).down(torch.rand(1, 3, 30, 32))


@pytest.mark.parametrize("name", ["irn", "hcflow"])
def test_short_flow_training_lowers_loss(tmp_path, monkeypatch, name):
    crop = hcd_lite.sample_image("astronaut")[..., 100:132, 200:232]
    monkeypatch.setattr("hcd_lite.train.training_images", lambda: [("crop", crop)])
    monkeypatch.setattr("hcd_lite.train.heldout_images", lambda: {"crop": crop})
    monkeypatch.setenv("HCD_LITE_WEIGHTS", str(tmp_path / "w"))
    train_main(["--model", name, "--scale", "2", "--steps", "60", "--batch", "8", "--patch", "32",
                "--lr", "1e-3", "--work", str(tmp_path / "run"), "--threads", "1", "--quiet"])
    trained = hcd_lite.load_pretrained(name, 2)
    with torch.no_grad():
        assert training_loss(trained, crop) < 0.95 * training_loss(build_model(name, 2), crop)


def test_short_training_lowers_loss_and_resumes(tmp_path, monkeypatch):
    """The training command, on one 32x32 crop (so a few steps show), lowers the loss."""
    crop = hcd_lite.sample_image("astronaut")[..., 100:132, 200:232]
    monkeypatch.setattr("hcd_lite.train.training_images", lambda: [("crop", crop)])
    monkeypatch.setenv("HCD_LITE_WEIGHTS", str(tmp_path / "w"))
    args = ["--model", "bicubic_sr", "--scale", "4", "--steps", "60", "--batch", "8",
            "--patch", "32", "--lr", "1e-3", "--work", str(tmp_path / "run"), "--threads", "1"]
    manifest = train_main(args)
    assert manifest["steps"] == 60 and manifest["train_images"] == ["crop"]
    assert manifest["sha256"] == sha256(tmp_path / "w" / "bicubic_sr_x4.pt")
    trained = hcd_lite.load_pretrained("bicubic_sr", 4)  # what training wrote loads back
    with torch.no_grad():
        untrained = build_model("bicubic_sr", 4)
        assert training_loss(trained, crop) < 0.95 * training_loss(untrained, crop)
    again = train_main(args + ["--resume"])  # a finished run resumes to the same weights
    assert again["sha256"] == manifest["sha256"]


def test_init_continues_finished_weights_as_a_new_stage(tmp_path, monkeypatch):
    """``--init`` starts from finished weights (here fine-tuned with the L2 loss); the manifest
    chains both stages."""
    crop = hcd_lite.sample_image("astronaut")[..., 100:132, 200:232]
    monkeypatch.setattr("hcd_lite.train.training_images", lambda: [("crop", crop)])
    monkeypatch.setattr("hcd_lite.train.heldout_images", lambda: {"crop": crop})
    monkeypatch.setenv("HCD_LITE_WEIGHTS", str(tmp_path / "w"))
    common = ["--model", "bicubic_sr", "--scale", "4", "--batch", "8", "--patch", "32",
              "--threads", "1", "--quiet"]
    first = train_main(common + ["--steps", "60", "--lr", "1e-3", "--work", str(tmp_path / "a")])
    weights = tmp_path / "w" / "bicubic_sr_x4.pt"
    manifest_path = weights.with_suffix(".json")  # as written before manifests listed stages
    manifest_path.write_text(json.dumps({k: v for k, v in first.items() if k != "stages"}))
    with torch.no_grad():
        loss_first = training_loss(hcd_lite.load_pretrained("bicubic_sr", 4), crop, "l2")
    second = train_main(common + ["--steps", "30", "--lr", "3e-4", "--seed", "1", "--loss", "l2",
                                  "--init", str(weights), "--work", str(tmp_path / "b")])
    with torch.no_grad():
        assert training_loss(hcd_lite.load_pretrained("bicubic_sr", 4), crop, "l2") < loss_first
    assert [st["loss"] for st in second["stages"]] == ["l1", "l2"]
    assert "--loss l2" in second["stages"][1]["replay_command"]
    assert [st["steps"] for st in second["stages"]] == [60, 30] and second["steps"] == 90
    assert second["replay_command"].startswith(first["replay_command"] + " && ")
    assert "--init data/weights/bicubic_sr_x4.pt" in second["stages"][1]["replay_command"]
    assert second["lr"] == 3e-4 and second["heldout_psnr_y_mean"] > first["heldout_psnr_y_mean"]
    weights.write_bytes(weights.read_bytes()[:-1])  # a damaged start is refused
    with pytest.raises(SystemExit, match="sha256"):
        train_main(common + ["--steps", "5", "--init", str(weights), "--work", str(tmp_path / "c")])
    with pytest.raises(SystemExit, match="not irn x4"):
        train_main(["--model", "irn", "--scale", "4", "--steps", "5", "--init", str(weights),
                    "--work", str(tmp_path / "d")])
