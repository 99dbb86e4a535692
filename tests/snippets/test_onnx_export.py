"""The samplers' step graphs: the same numbers as the Python step, the schedule the loop visits."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
import torch

from snippets.checkpoint import load_checkpoint, save_checkpoint
from snippets.dpm_solver import dpm_solver_pp_2m_sample_progressive
from snippets.karras import euler_sample_progressive
from snippets.onnx_export import (
    BROWSER_SAMPLERS,
    STEP_INPUTS,
    SamplerStep,
    example_inputs,
    export,
    export_step,
    step_schedule,
)
from snippets.sampling import ddim_sample_progressive, ddpm_sample_progressive
from snippets.schedules import NoiseSchedule
from snippets.unet import UNet

SCHEDULE = NoiseSchedule.from_name("cosine", num_train_timesteps=1000)
PROGRESSIVE = {
    "ddpm": ddpm_sample_progressive,
    "ddim": ddim_sample_progressive,
    "euler": euler_sample_progressive,
    "dpmsolver++": dpm_solver_pp_2m_sample_progressive,
}


@pytest.fixture(scope="module")
def tiny_unet():
    torch.manual_seed(0)
    return UNet(
        channels=(8, 8),
        attention_levels=(),
        num_groups=4,
        sample_size=16,
        num_classes=10,
    ).eval()


@pytest.mark.parametrize("sampler", BROWSER_SAMPLERS)
def test_step_schedule_lists_the_timesteps_the_sampler_visits(sampler):
    seen = []

    def model(x, t):
        seen.append(t[0].item())
        return torch.zeros_like(x)

    x_T = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    list(PROGRESSIVE[sampler](model, x_T, SCHEDULE, 7, prediction_type="v_prediction"))
    table = step_schedule(sampler, SCHEDULE, 7)
    assert [s["t"] for s in table["steps"]] == pytest.approx(seen)
    assert (table["x_scale"] > 1) == (sampler == "euler")
    # every step input but the tensors fed by the page is in the table
    for step in table["steps"]:
        names = set(STEP_INPUTS[sampler]) - {"noise", "x0_prev", "eta"}
        assert names <= set(step), (names, step)


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver++"])
def test_exported_step_equals_the_python_step_and_exports_reproducibly(
    tiny_unet, sampler, tmp_path
):
    step = SamplerStep(tiny_unet, SCHEDULE.alpha_bar, sampler, "v_prediction", 10)
    path = tmp_path / "step.onnx"
    export_step(step, path)
    inputs = example_inputs(sampler, batch=3)  # traced with a batch of 2
    inputs = tuple(
        torch.randn_like(v) if v.ndim == 4 else v for v in inputs
    )  # non-zero noise and previous estimate
    with torch.no_grad():
        expected = [o.numpy() for o in step(*inputs)]
    session = onnxruntime.InferenceSession(str(path))
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, dict(zip(names, (v.numpy() for v in inputs))))
    for ours, theirs in zip(got, expected):
        assert ours.shape == theirs.shape == (3, 1, 16, 16)
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    if sampler == "ddim":  # the export is reproducible: the same bytes again
        export_step(step, tmp_path / "again.onnx")
        assert (tmp_path / "again.onnx").read_bytes() == path.read_bytes()


def tiny_checkpoint(directory, sample_size: int, upsample_to: int | None):
    """A class-conditional checkpoint folder of a tiny UNet (8x8 upsampled, or plain)."""
    torch.manual_seed(0)
    model = UNet(
        sample_size=sample_size,
        channels=(8, 8),
        num_res_blocks=1,
        attention_levels=(),
        mid_attention=False,
        num_groups=4,
        num_classes=10,
    )
    data = {"data": "digits", "image_size": sample_size}
    if upsample_to is not None:
        data["upsample_to"] = upsample_to
    config = {
        "model_class": "UNet",
        "model": model.config,
        "schedule": {"name": "cosine", "num_train_timesteps": 1000},
        "prediction_type": "v_prediction",
        "data": data,
    }
    return save_checkpoint(directory, model, config)


@pytest.fixture(scope="module")
def upsampled_export(tmp_path_factory):
    """An 8x8 checkpoint whose samples are upsampled to 16x16, exported for the browser."""
    root = tmp_path_factory.mktemp("upsampled")
    checkpoint = tiny_checkpoint(root / "eight", sample_size=8, upsample_to=16)
    manifest = export(checkpoint, root / "models")
    return checkpoint, root / "models", manifest


def test_export_of_an_upsampled_checkpoint_runs_at_8x8_and_records_the_display_size(
    upsampled_export,
):
    checkpoint, out, manifest = upsampled_export
    assert load_checkpoint(checkpoint).upsample_to == 16
    assert json.loads((out / "steps.json").read_text()) == manifest
    # the graphs run at the model's resolution; the page upsamples what it paints
    assert manifest["shape"] == [1, 8, 8] and manifest["upsample_to"] == 16
    assert manifest["num_classes"] == 10
    assert set(manifest["graphs"]) == set(BROWSER_SAMPLERS)
    for sampler, graph in manifest["graphs"].items():
        session = onnxruntime.InferenceSession(str(out / graph["file"]))
        images = {
            i.name: i.shape
            for i in [*session.get_inputs(), *session.get_outputs()]
            if len(i.shape) == 4
        }
        assert {"x", "x_next", "x0_hat"} <= set(images), (sampler, images)
        assert all(shape[1:] == [1, 8, 8] for shape in images.values()), images


def test_export_of_a_plain_checkpoint_records_no_upsampling(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "sixteen", sample_size=16, upsample_to=None)
    manifest = export(checkpoint, tmp_path / "models")
    assert manifest["shape"] == [1, 16, 16] and manifest["upsample_to"] is None
    saved = json.loads((tmp_path / "models" / "steps.json").read_text())
    assert saved["upsample_to"] is None


@pytest.mark.parametrize("sampler", BROWSER_SAMPLERS)
def test_exported_8x8_step_equals_the_python_step(upsampled_export, sampler):
    checkpoint, out, manifest = upsampled_export
    ckpt = load_checkpoint(checkpoint)
    step = SamplerStep(
        ckpt.model, ckpt.schedule.alpha_bar, sampler, ckpt.prediction_type, 10
    )
    inputs = example_inputs(sampler, batch=3, shape=(1, 8, 8))
    inputs = tuple(torch.randn_like(v) if v.ndim == 4 else v for v in inputs)
    with torch.no_grad():
        expected = [o.numpy() for o in step(*inputs)]
    session = onnxruntime.InferenceSession(
        str(out / manifest["graphs"][sampler]["file"])
    )
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, dict(zip(names, (v.numpy() for v in inputs))))
    for ours, theirs in zip(got, expected):
        assert ours.shape == theirs.shape == (3, 1, 8, 8)
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
