r"""The samplers' steps as ONNX graphs, so that a browser runs the same code as `pytest`.

Each sampler of `snippets.sampling` runs a loop around one pure step function: `ddpm_step`,
`ddim_step`, `euler_step` (in `snippets.karras`) and `dpm_solver_pp_2m_step` (in
`snippets.dpm_solver`). `SamplerStep` wraps one of them, with the shipped network guided by
`snippets.guidance.cfg_model`, into a module whose inputs are the step's tensors: $x_t$, the
timestep and the step's schedule values, the labels, the guidance scale and the step's noise.
`torch.onnx.export` traces it into a graph that ONNX Runtime Web runs in the reader's browser;
JavaScript only loops over the steps, draws the noise and paints the pixels.

`step_schedule` lists every step's schedule values with the samplers' own helpers
(`inference_timesteps`, `karras_timesteps`, `dpm_solver_timesteps`), and `export` writes one
`<sampler>.onnx` per sampler and `steps.json`, the table the page loops over:

```bash
python -m snippets.onnx_export --checkpoint checkpoints/digits --out docs/playground/models
```

The graphs run at the network's own resolution. A digits model trained at the native 8x8 whose
samples are upsampled (`data.upsample_to` in `config.json`, as `snippets.checkpoint.generate`
does with `snippets.fast_digits.upsample_digits`) gives 8x8 graphs; `steps.json` records the
model's shape and the side to display (`"upsample_to": 16`, `null` for a model drawn as it
samples), and the page upsamples every picture exactly as `upsample_digits` does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from snippets import check
from snippets.dpm_solver import (
    dpm_solver_coefficients,
    dpm_solver_pp_2m_step,
    dpm_solver_timesteps,
)
from snippets.forward import check_prediction_type
from snippets.guidance import cfg_model
from snippets.karras import _initial_sigma, euler_step, karras_timesteps
from snippets.sampling import ddim_step, ddpm_step
from snippets.schedules import NoiseSchedule, inference_timesteps

# The samplers the browser runs, with the options `snippets.checkpoint.generate` uses.
BROWSER_SAMPLERS = ("ddpm", "ddim", "euler", "dpmsolver++")
# Step counts offered by the page (steps.json holds a table for each).
BROWSER_STEPS = (5, 10, 20, 50, 100)
OPSET = 17

# The step inputs of each sampler after x (in this order), then class_labels and
# guidance_scale; the graph outputs (x_next, x0_hat).
STEP_INPUTS = {
    "ddpm": ("t", "t_prev", "noise"),
    "ddim": ("t", "t_prev", "eta", "noise"),
    "euler": ("t", "sigma", "sigma_hat", "sigma_next", "noise"),
    "dpmsolver++": (
        "x0_prev",
        "t",
        "alpha_t",
        "sigma_t",
        "alpha_next",
        "sigma_next",
        "h",
        "inv_r",
    ),
}


# --8<-- [start:sampler-step]
class SamplerStep(nn.Module):
    r"""One step of a sampler with classifier-free guidance, as a module of tensors only.

    `forward(x, *step_inputs, class_labels, guidance_scale)` calls the sampler's step
    function with the network wrapped by `cfg_model` (always on the doubled batch, so the
    guidance scale can be any value at run time) and returns `(x_next, x0_hat)`.

    Args:
        model: A class-conditional network `model(x, t, class_labels=...)`.
        alpha_bar: $\bar\alpha$ of its training schedule, shape `(T,)`.
        sampler: One of `BROWSER_SAMPLERS`.
        prediction_type: `"epsilon"`, `"v_prediction"` or `"sample"`.
        null_label: The network's label for "no condition" (its number of classes).
    """

    def __init__(
        self,
        model: nn.Module,
        alpha_bar: torch.Tensor,
        sampler: str,
        prediction_type: str,
        null_label: int,
    ):
        super().__init__()
        check.instance("model", model, nn.Module)
        check.one_of("sampler", sampler, BROWSER_SAMPLERS)
        check_prediction_type(prediction_type)
        check.tensor("alpha_bar", alpha_bar, ndim=1, ge=0, le=1)
        check.integer("null_label", null_label, ge=1)
        self.model, self.sampler = model, sampler
        self.prediction_type, self.null_label = prediction_type, null_label
        self.register_buffer("alpha_bar", alpha_bar.float().clone())

    def forward(
        self, x: torch.Tensor, *inputs: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        *step_inputs, class_labels, guidance_scale = inputs
        # the guided network model(x, t) of every sampler (Ho & Salimans 2022, Eq. 6)
        model = cfg_model(self.model, class_labels, guidance_scale, self.null_label)
        kind = {"prediction_type": self.prediction_type}
        if self.sampler == "ddpm":
            t, t_prev, noise = step_inputs
            return ddpm_step(model, x, t, t_prev, self.alpha_bar, noise, **kind)
        if self.sampler == "ddim":
            t, t_prev, eta, noise = step_inputs
            final_alpha_bar = torch.ones(
                (), dtype=x.dtype
            )  # clean data after the last step
            return ddim_step(
                model, x, t, t_prev, self.alpha_bar, final_alpha_bar, eta, noise, **kind
            )
        if self.sampler == "euler":
            return euler_step(model, x, *step_inputs, **kind)
        return dpm_solver_pp_2m_step(model, x, *step_inputs, **kind)


# --8<-- [end:sampler-step]


def step_schedule(
    sampler: str, schedule: NoiseSchedule, num_inference_steps: int
) -> dict:
    r"""Every step's schedule values for the browser's loop, as the Python sampler computes them.

    Args:
        sampler: One of `BROWSER_SAMPLERS`.
        schedule: The training noise schedule.
        num_inference_steps: $N \ge 1$.

    Returns:
        `{"x_scale": s, "steps": [...]}`: the factor of $x_T$ before the first step (Euler's
        $\sigma_0$ scale, else 1) and one object per step with the step inputs of
        `STEP_INPUTS[sampler]` except the tensors (`x0_prev`, `noise`, `eta`), plus `"noise"`:
        whether the step draws noise ($\eta > 0$ decides it for DDIM). An infinite value is
        written as the string `"Infinity"`.
    """
    check.one_of("sampler", sampler, BROWSER_SAMPLERS)
    check.integer("num_inference_steps", num_inference_steps, ge=1)
    alpha_bar, T = schedule.alpha_bar, schedule.num_train_timesteps
    steps, x_scale = [], 1.0
    if sampler in ("ddpm", "ddim"):
        timesteps = inference_timesteps(T, num_inference_steps, "leading")
        for i, t in enumerate(timesteps.tolist()):
            if sampler == "ddpm":  # the next listed timestep, -1 after the last
                t_prev = timesteps[i + 1].item() if i + 1 < len(timesteps) else -1
                steps.append({"t": t, "t_prev": t_prev, "noise": t > 0})
            else:
                t_prev = t - T // num_inference_steps
                steps.append({"t": t, "t_prev": t_prev, "noise": "eta"})
    elif sampler == "euler":
        sigmas, timesteps = karras_timesteps(alpha_bar, num_inference_steps, "linspace")
        x_scale = float(_initial_sigma(sigmas, "linspace"))
        for i, t in enumerate(timesteps):
            sigma = sigmas[i].item()
            steps.append(
                {
                    "t": t.item(),
                    "sigma": sigma,
                    "sigma_hat": sigma,  # no churn in the browser
                    "sigma_next": sigmas[i + 1].item(),
                    "noise": False,
                }
            )
    else:
        timesteps = dpm_solver_timesteps(T, num_inference_steps, "linspace")
        alphas_t, sigmas_t, lambdas = dpm_solver_coefficients(alpha_bar, timesteps)
        for i, t in enumerate(timesteps.tolist()):
            h = lambdas[i + 1] - lambdas[i]
            first_order = i == 0 or i == len(timesteps) - 1
            inv_r = 0.0 if first_order else (1.0 / ((lambdas[i] - lambdas[i - 1]) / h))
            values = {
                "t": t,
                "alpha_t": alphas_t[i],
                "sigma_t": sigmas_t[i],
                "alpha_next": alphas_t[i + 1],
                "sigma_next": sigmas_t[i + 1],
                "h": h,
                "inv_r": inv_r,
            }
            steps.append({k: _number(v) for k, v in values.items()} | {"noise": False})
    return {"x_scale": x_scale, "steps": steps}


def _number(value) -> float | int | str:
    value = value.item() if isinstance(value, torch.Tensor) else value
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def example_inputs(
    sampler: str, batch: int = 2, shape: tuple[int, int, int] = (1, 16, 16)
) -> tuple[torch.Tensor, ...]:
    """Tensors of the right dtypes and shapes to trace `SamplerStep(sampler)` with.

    Args:
        sampler: One of `BROWSER_SAMPLERS`.
        batch: Batch size of the image tensors.
        shape: The network's image shape `(C, H, W)`: `(1, 8, 8)` for a digits model whose
            samples are upsampled, since the graph runs at the model's own resolution.
    """
    check.one_of("sampler", sampler, BROWSER_SAMPLERS)
    check.integer("batch", batch, ge=1)
    shape = check.integers("shape", shape, ge=1)
    if len(shape) != 3:
        raise ValueError(f"shape must be (C, H, W), got {tuple(shape)}")
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))
    scalar = {
        "t": torch.tensor(500.5 if sampler == "euler" else 500),
        "t_prev": torch.tensor(480),
        "eta": torch.tensor(0.5),
        "sigma": torch.tensor(2.0),
        "sigma_hat": torch.tensor(2.0),
        "sigma_next": torch.tensor(1.0),
        "alpha_t": torch.tensor(0.6),
        "sigma_t": torch.tensor(0.8),
        "alpha_next": torch.tensor(0.8),
        "h": torch.tensor(0.4),
        "inv_r": torch.tensor(1.2),
    }
    if sampler == "dpmsolver++":
        scalar["sigma_next"] = torch.tensor(0.6)
    step = [
        torch.zeros_like(x) if name in ("noise", "x0_prev") else scalar[name]
        for name in STEP_INPUTS[sampler]
    ]
    labels = torch.arange(batch) % 10
    return (
        x,
        *step,
        labels,
        torch.tensor(3.0),
    )  # guidance 3: traced on the doubled batch


# --8<-- [start:export]
def export_step(
    step: SamplerStep, path: str | Path, shape: tuple[int, int, int] = (1, 16, 16)
) -> None:
    """Trace `step` on images of `shape` `(C, H, W)`; write an ONNX graph, free batch size."""
    check.instance("step", step, SamplerStep)
    names = ["x", *STEP_INPUTS[step.sampler], "class_labels", "guidance_scale"]
    batched = {name: {0: "batch"} for name in ("x", "noise", "x0_prev", "class_labels")}
    with warnings.catch_warnings():  # the checks on traced values are tracer warnings
        warnings.simplefilter("ignore")
        torch.onnx.export(
            step.eval(),
            example_inputs(step.sampler, shape=shape),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=names,
            output_names=["x_next", "x0_hat"],
            dynamic_axes={n: a for n, a in batched.items() if n in names}
            | {"x_next": {0: "batch"}, "x0_hat": {0: "batch"}},
        )


# --8<-- [end:export]


def export(checkpoint: str | Path, out: str | Path) -> dict:
    """Write `<sampler>.onnx` for every browser sampler and `steps.json` into `out`.

    The graphs take and return images at the network's resolution, `shape` in the manifest.
    For a checkpoint whose samples are upsampled (`data.upsample_to`: an 8x8 digits model) that
    is 8x8, and the manifest's `upsample_to` (16) tells the page to upsample what it paints as
    `snippets.fast_digits.upsample_digits` does; it is `null` for a model drawn as it samples.

    Args:
        checkpoint: A class-conditional checkpoint folder (`checkpoints/digits`).
        out: The folder to write (created).

    Returns:
        The manifest written to `steps.json`.

    Raises:
        ValueError: If the checkpoint is unconditional, or its files are bad (as
            `snippets.checkpoint.load_checkpoint` says).
    """
    from snippets.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    if ckpt.num_classes is None:
        raise ValueError(f"checkpoint {checkpoint} is unconditional; need class labels")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = ckpt.model.config
    # the network's own resolution: what the graphs take and return
    shape = (cfg["out_channels"], cfg["sample_size"], cfg["sample_size"])
    manifest = {
        "checkpoint": str(checkpoint),
        "num_classes": ckpt.num_classes,
        "shape": list(shape),
        # the side the page paints at: upsample_digits' output (None: the model's own)
        "upsample_to": ckpt.upsample_to,
        "prediction_type": ckpt.prediction_type,
        "inputs": {s: list(STEP_INPUTS[s]) for s in BROWSER_SAMPLERS},
        "graphs": {},
        "schedules": {},
    }
    for sampler in BROWSER_SAMPLERS:
        name = sampler.replace("+", "p") + ".onnx"
        step = SamplerStep(
            ckpt.model,
            ckpt.schedule.alpha_bar,
            sampler,
            ckpt.prediction_type,
            ckpt.num_classes,
        )
        export_step(step, out / name, shape=shape)
        data = (out / name).read_bytes()
        manifest["graphs"][sampler] = {
            "file": name,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        manifest["schedules"][sampler] = {
            str(n): step_schedule(sampler, ckpt.schedule, n) for n in BROWSER_STEPS
        }
    (out / "steps.json").write_text(json.dumps(manifest, separators=(",", ":")))
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snippets.onnx_export", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--checkpoint", default="checkpoints/digits")
    parser.add_argument("--out", default="docs/playground/models")
    args = parser.parse_args(argv)
    try:
        if not (Path(args.checkpoint) / "config.json").is_file():
            raise ValueError(f"--checkpoint {args.checkpoint}: no config.json there")
        torch.manual_seed(0)
        manifest = export(args.checkpoint, args.out)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for sampler, graph in manifest["graphs"].items():
        print(f"{sampler}: {args.out}/{graph['file']} ({graph['bytes'] / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
