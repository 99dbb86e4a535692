"""The sampler playground in headless Chromium: its samples are the Python samplers' samples.

For a fixed $x_T$ and fixed per-step noise, the page's loop over the exported step graphs
(ONNX Runtime Web, WebAssembly) gives the same samples and the same $\\hat x_0$ at every step as
`snippets.sampling` and friends, within 1e-4, for DDPM, DDIM (with eta > 0), Euler and
DPM-Solver++(2M). The runtime and the graphs load only when the reader presses Run. What it paints
for a model trained at 8x8 is upsampled as `snippets.fast_digits.upsample_digits` does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from siteaudit import REPO
from test_site_browser import browser, open_page  # noqa: F401  (fixture)

from snippets.checkpoint import load_checkpoint
from snippets.dpm_solver import dpm_solver_pp_2m_sample_progressive
from snippets.fast_digits import upsample_digits
from snippets.guidance import cfg_model
from snippets.karras import euler_sample_progressive
from snippets.onnx_export import BROWSER_SAMPLERS, step_schedule
from snippets.sampling import ddim_sample_progressive, ddpm_sample_progressive

PAGE = "playground/"
PROGRESSIVE = {
    "ddpm": ddpm_sample_progressive,
    "ddim": ddim_sample_progressive,
    "euler": euler_sample_progressive,
    "dpmsolver++": dpm_solver_pp_2m_sample_progressive,
}
STEPS, LABELS, GUIDANCE, ETA = 5, [3, 7, 0], 2.5, 0.6
TOLERANCE = 1e-4

SAMPLE_JS = """async (o) => {
    const r = await window.feastPlayground.sample(o);
    return {x: Array.from(r.x), x0: r.frames.map(f => Array.from(f.x0))};
}"""


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    return load_checkpoint("checkpoints/digits")


def model_shape(digits) -> tuple[int, int, int]:
    """The network's own image shape: what the graphs take (8x8 for an upsampled model)."""
    size = digits.image_size
    return (digits.model.config["out_channels"], size, size)


def python_reference(digits, sampler: str) -> dict:
    """x_T, the per-step noise and the Python sampler's x_0 and x0_hat at every step."""
    x_T = torch.randn(
        len(LABELS), *model_shape(digits), generator=torch.Generator().manual_seed(1)
    )
    table = step_schedule(sampler, digits.schedule, STEPS)
    # the noise the Python sampler draws, in its order: replayed by the same generator
    replay = torch.Generator().manual_seed(2)
    noises = []
    for step in table["steps"]:
        drawn = step["noise"] is True or (step["noise"] == "eta" and ETA > 0)
        noises.append(torch.randn(x_T.shape, generator=replay) if drawn else None)
    model = cfg_model(digits.model, torch.tensor(LABELS), GUIDANCE, digits.num_classes)
    options = {"eta": ETA} if sampler == "ddim" else {}
    with torch.no_grad():
        steps = list(
            PROGRESSIVE[sampler](
                model,
                x_T,
                digits.schedule,
                STEPS,
                prediction_type=digits.prediction_type,
                generator=torch.Generator().manual_seed(2),
                **options,
            )
        )
    return {
        "x_T": x_T,
        "noises": noises,
        "x": steps[-1][1].numpy(),
        "x0": [s[2].numpy() for s in steps],
    }


def test_runtime_loads_only_when_run_is_pressed(browser, site_url):  # noqa: F811
    page = open_page(browser, site_url + PAGE)
    loaded = page.evaluate(
        "() => performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert not [u for u in loaded if "/ort/" in u or u.endswith(".onnx")], loaded
    assert page.evaluate("() => typeof window.ort") == "undefined"
    page.select_option("select[name=steps]", "5")
    page.click("[data-run]")
    page.wait_for_function(
        "() => /samples in/.test(document.querySelector('[data-status]').textContent)",
        timeout=120_000,
    )
    loaded = page.evaluate(
        "() => performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert any(u.endswith("dpmsolverpp.onnx") for u in loaded), loaded
    assert any(u.endswith("ort-wasm-simd-threaded.wasm") for u in loaded), loaded
    # the grid shows digits: bright strokes on a dark background, not a blank canvas
    spread = page.evaluate(
        """() => {
            const c = document.querySelector('[data-canvas=samples]');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let lo = 255, hi = 0;
            for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
            return [c.width, hi - lo];
        }"""
    )
    assert spread[0] == 64 and spread[1] > 200, spread
    # the step slider shows x_t and x0_hat of the first step
    page.fill("input[name=step]", "1")
    page.dispatch_event("input[name=step]", "input")
    assert "step 1 of 5" in page.text_content("[data-step-label]")
    assert browser.monitor.problems() == {}
    page.close()


@pytest.mark.parametrize("sampler", BROWSER_SAMPLERS)
def test_playground_samples_equal_the_python_samplers(
    browser,  # noqa: F811
    site_url,
    digits,
    sampler,
):
    reference = python_reference(digits, sampler)
    page = open_page(browser, site_url + PAGE)
    B = len(LABELS)
    result = page.evaluate(
        SAMPLE_JS,
        {
            "sampler": sampler,
            "steps": STEPS,
            "eta": ETA,
            "guidance": GUIDANCE,
            "labels": LABELS,
            "xT": reference["x_T"].flatten().tolist(),
            "noises": [
                None if n is None else n.flatten().tolist() for n in reference["noises"]
            ],
        },
    )
    shape = (B, *model_shape(digits))
    x = np.array(result["x"], dtype=np.float32).reshape(shape)
    err = np.abs(x - reference["x"]).max()
    assert err <= TOLERANCE, f"{sampler}: samples differ by {err:.2e}"
    for i, (ours, theirs) in enumerate(zip(result["x0"], reference["x0"])):
        step_err = np.abs(np.array(ours, np.float32).reshape(shape) - theirs).max()
        assert step_err <= TOLERANCE, (
            f"{sampler} step {i}: x0_hat differs by {step_err:.2e}"
        )
    assert browser.monitor.problems() == {}
    page.close()


PICTURE_JS = """([data, B, m]) => {
    const p = window.feastPlayground.picture(Float32Array.from(data), B, m);
    return {data: Array.from(p.data), side: p.side};
}"""


def test_painted_pictures_of_an_8x8_model_are_upsampled_as_upsample_digits_does(
    browser,  # noqa: F811
):
    # the page's script on a blank page: its pure functions need no site, graph or runtime
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_content("<!doctype html><title>playground.js</title>")
    page.add_script_tag(path=str(REPO / "docs" / "javascripts" / "playground.js"))
    B = 3
    # beyond [-1, 1] too (x_t is noise, Euler's x_T is scaled by sigma_max): clamped first
    x = 1.5 * torch.randn(B, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0, :] = torch.tensor([-5.0, 5.0] * 4)
    upsampled = {"shape": [1, 8, 8], "upsample_to": 16}
    got = page.evaluate(PICTURE_JS, [x.flatten().tolist(), B, upsampled])
    assert got["side"] == 16
    ours = np.array(got["data"], np.float32).reshape(B, 1, 16, 16)
    np.testing.assert_allclose(ours, upsample_digits(x).numpy(), rtol=0, atol=1e-6)
    # a plain manifest (null or no upsample_to) paints the model's own images unchanged
    y = torch.randn(B, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    for plain in ({"shape": [1, 16, 16], "upsample_to": None}, {"shape": [1, 16, 16]}):
        got = page.evaluate(PICTURE_JS, [y.flatten().tolist(), B, plain])
        assert got["side"] == 16
        np.testing.assert_array_equal(
            np.array(got["data"], np.float32), y.flatten().numpy()
        )
    assert errors == []
    page.close()


SCRUB_PAGES = {
    "unit1/forward-process/": ("forward-linear.png", 41, "t", "999"),
    "unit1/sampling/": ("sampling-ddpm.png", 20, None, None),
}


@pytest.mark.parametrize("path", sorted(SCRUB_PAGES))
def test_scrubbable_figure_moves_with_its_slider(browser, site_url, built_site, path):  # noqa: F811
    sheet, frames, readout, last_value = SCRUB_PAGES[path]
    # the sprite sheet holds the frames the HTML announces, side by side
    from PIL import Image

    served = (built_site / path / "index.html").read_text()
    assert f"--frames: {frames}" in served
    assert (
        "data-js-only hidden" in served
    )  # without JavaScript: the still frame, no slider
    width, height = Image.open(built_site / "figures" / "scrub" / sheet).size
    assert width % frames == 0 and height == 16, (width, height)
    page = open_page(browser, site_url + path)
    figure = page.locator("[data-scrub]").first
    slider = figure.locator("input[type=range]")
    assert slider.is_visible()
    slider.fill(str(frames - 1))
    slider.dispatch_event("input")
    assert figure.evaluate("e => e.style.getPropertyValue('--frame')") == str(
        frames - 1
    )
    if readout:
        page.wait_for_function(
            "v => document.querySelector('[data-readout=t]').textContent === v",
            arg=last_value,
        )
    # the window shows the last frame of the sheet: background at its right end
    position = figure.evaluate(
        "e => getComputedStyle(e.querySelector('.feast-scrub__window')).backgroundPositionX"
    )
    assert position == "100%", position
    assert browser.monitor.problems() == {}
    page.close()
