"""Tests for snippets/guidance.py: classifier-free guidance (Ho & Salimans 2022)."""

from __future__ import annotations

import pytest
import torch
from diffusers.guiders import ClassifierFreeGuidance

from snippets.guidance import cfg_model, drop_labels, guided_prediction

NUM_CLASSES = 10  # the null label is 10, as in the project's UNet(num_classes=10)


class ToyConditionalModel(torch.nn.Module):
    """A tiny class-conditional 'network' whose output depends on x, t and the label."""

    def __init__(self, num_classes: int = NUM_CLASSES, channels: int = 1):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.embedding = torch.nn.Parameter(
            torch.randn(num_classes + 1, channels, generator=g)
        )
        self.calls = 0

    def forward(self, x, t, class_labels):
        self.calls += 1
        emb = self.embedding[class_labels].reshape(x.shape[0], -1, 1, 1)
        return torch.tanh(x * (1 + emb)) + 1e-3 * t.reshape(-1, 1, 1, 1) * emb


# --8<-- [start:test-guidance-parity]
@pytest.mark.parametrize(
    "convention, use_original_formulation", [("diffusers", False), ("paper", True)]
)
@pytest.mark.parametrize("scale", [0.0, 1.0, 3.0, 7.5])
def test_guided_prediction_matches_diffusers_guider(
    convention, use_original_formulation, scale
):
    g = torch.Generator().manual_seed(1)
    pred_cond, pred_uncond = torch.randn(2, 4, 1, 8, 8, generator=g)
    # diffusers' own guidance code path (the guider its modular pipelines call)
    guider = ClassifierFreeGuidance(
        guidance_scale=scale, use_original_formulation=use_original_formulation
    )
    expected = guider.forward(pred_cond, pred_uncond).pred
    ours = guided_prediction(pred_cond, pred_uncond, scale, convention)
    assert (ours - expected).abs().max() <= 1e-5


def test_two_conventions_agree_when_s_equals_one_plus_w():
    g = torch.Generator().manual_seed(2)
    pred_cond, pred_uncond = torch.randn(2, 3, 1, 4, 4, generator=g)
    for w in [0.0, 0.5, 2.0, 6.5]:
        paper = guided_prediction(pred_cond, pred_uncond, w, "paper")
        diffusers = guided_prediction(pred_cond, pred_uncond, 1 + w, "diffusers")
        assert torch.allclose(paper, diffusers, atol=1e-6)


# --8<-- [end:test-guidance-parity]


def test_scale_one_is_conditional_and_scale_zero_is_unconditional():
    g = torch.Generator().manual_seed(3)
    pred_cond, pred_uncond = torch.randn(2, 2, 1, 4, 4, generator=g)
    assert torch.allclose(
        guided_prediction(pred_cond, pred_uncond, 1.0), pred_cond, atol=1e-6
    )
    assert torch.allclose(
        guided_prediction(pred_cond, pred_uncond, 0.0), pred_uncond, atol=1e-6
    )
    assert torch.allclose(
        guided_prediction(pred_cond, pred_uncond, 0.0, "paper"), pred_cond, atol=1e-6
    )
    assert not torch.allclose(
        guided_prediction(pred_cond, pred_uncond, 3.0), pred_cond, atol=1e-2
    )


def test_guided_prediction_matches_the_pipeline_formula():
    # The line every diffusers text-to-image pipeline runs after the doubled forward pass:
    #   noise_pred_uncond, noise_pred_text = noise_pred.chunk(2)
    #   noise_pred = noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)
    g = torch.Generator().manual_seed(4)
    noise_pred = torch.randn(6, 1, 4, 4, generator=g)
    noise_pred_text, noise_pred_uncond = noise_pred.chunk(
        2
    )  # ours puts the conditional half first
    pipeline = noise_pred_uncond + 7.5 * (noise_pred_text - noise_pred_uncond)
    assert torch.allclose(
        guided_prediction(noise_pred_text, noise_pred_uncond, 7.5), pipeline, atol=1e-6
    )


# --8<-- [start:test-cfg-model]
def test_cfg_model_batched_pass_equals_two_separate_passes():
    model = ToyConditionalModel()
    g = torch.Generator().manual_seed(5)
    x, t = torch.randn(4, 1, 8, 8, generator=g), torch.tensor([999, 500, 10, 0])
    labels = torch.tensor([0, 3, 7, 9])
    guided = cfg_model(model, labels, guidance_scale=4.0, null_label=NUM_CLASSES)
    with torch.no_grad():
        out = guided(x, t)
        cond = model(x, t, class_labels=labels)
        uncond = model(x, t, class_labels=torch.full_like(labels, NUM_CLASSES))
    assert torch.allclose(out, uncond + 4.0 * (cond - uncond), atol=1e-6)


# --8<-- [end:test-cfg-model]


def test_cfg_model_makes_one_network_call_per_step_and_skips_uncond_when_off():
    model = ToyConditionalModel()
    x, t, labels = torch.zeros(2, 1, 4, 4), torch.tensor([5, 5]), torch.tensor([1, 2])
    cfg_model(model, labels, 3.0, NUM_CLASSES)(x, t)
    assert model.calls == 1
    off = cfg_model(model, labels, 1.0, NUM_CLASSES)
    assert torch.equal(off(x, t), model(x, t, class_labels=labels))
    off_paper = cfg_model(model, labels, 0.0, NUM_CLASSES, convention="paper")
    assert torch.equal(off_paper(x, t), model(x, t, class_labels=labels))


def test_cfg_model_accepts_a_scalar_timestep():
    model = ToyConditionalModel()
    x, labels = torch.ones(3, 1, 4, 4), torch.tensor([0, 1, 2])
    guided = cfg_model(model, labels, 2.0, NUM_CLASSES)
    assert torch.equal(guided(x, torch.tensor(7)), guided(x, torch.tensor([7, 7, 7])))


def test_cfg_model_works_with_every_sampler():
    from snippets.sampling import SAMPLERS
    from snippets.schedules import NoiseSchedule

    schedule = NoiseSchedule.from_name("linear", num_train_timesteps=100)
    model = ToyConditionalModel()
    labels = torch.tensor([1, 8])
    guided = cfg_model(model, labels, 3.0, NUM_CLASSES)
    for name, sampler in SAMPLERS.items():
        x_T = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(6))
        with torch.no_grad():
            x0 = sampler(
                guided, x_T, schedule, 4, generator=torch.Generator().manual_seed(7)
            )
        assert x0.shape == x_T.shape and torch.isfinite(x0).all(), name


def test_cfg_ddim_loop_matches_a_diffusers_guided_ddim_loop():
    """Full loop: our DDIM sampler on cfg_model vs diffusers' DDIMScheduler with the pipeline's guidance."""
    from diffusers import DDIMScheduler

    from snippets.sampling import SAMPLERS
    from snippets.schedules import NoiseSchedule

    T, steps, scale = 1000, 10, 5.0
    schedule = NoiseSchedule.from_name("linear", num_train_timesteps=T)
    model = ToyConditionalModel()
    labels = torch.tensor([2, 4])
    x_T = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        ours = SAMPLERS["ddim"](
            cfg_model(model, labels, scale, NUM_CLASSES), x_T, schedule, steps
        )
        scheduler = DDIMScheduler(
            num_train_timesteps=T, beta_schedule="linear"
        )  # clips x0_hat, as ours does
        scheduler.set_timesteps(steps)
        x = x_T.clone()
        null = torch.full_like(labels, NUM_CLASSES)
        for t in scheduler.timesteps:
            # what a diffusers pipeline does at each step
            noise_pred = model(
                torch.cat([x, x]), t.repeat(4), class_labels=torch.cat([null, labels])
            )
            noise_pred_uncond, noise_pred_text = noise_pred.chunk(2)
            noise_pred = noise_pred_uncond + scale * (
                noise_pred_text - noise_pred_uncond
            )
            x = scheduler.step(noise_pred, t, x).prev_sample
    assert (ours - x).abs().max() <= 1e-4


def test_drop_labels_drops_at_the_requested_rate():
    labels = torch.randint(
        0, NUM_CLASSES, (20_000,), generator=torch.Generator().manual_seed(9)
    )
    dropped = drop_labels(
        labels, 0.2, NUM_CLASSES, generator=torch.Generator().manual_seed(10)
    )
    is_null = dropped == NUM_CLASSES
    assert abs(is_null.float().mean().item() - 0.2) < 0.01
    assert torch.equal(dropped[~is_null], labels[~is_null])
    assert torch.equal(drop_labels(labels, 0.0, NUM_CLASSES), labels)
    assert (drop_labels(labels, 1.0, NUM_CLASSES) == NUM_CLASSES).all()


def test_drop_labels_uses_an_injected_mask():
    labels = torch.tensor([1, 2, 3])
    out = drop_labels(
        labels, 0.5, NUM_CLASSES, drop_mask=torch.tensor([True, False, True])
    )
    assert out.tolist() == [NUM_CLASSES, 2, NUM_CLASSES]


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: guided_prediction(torch.zeros(2), torch.zeros(2), 2.0, "imagen"),
            "convention",
        ),
        (lambda: guided_prediction(torch.zeros(2), torch.zeros(3), 2.0), "same shape"),
        (
            lambda: cfg_model(
                ToyConditionalModel(), torch.tensor([0.0, 1.0]), 2.0, NUM_CLASSES
            ),
            "integer",
        ),
        (
            lambda: cfg_model(
                ToyConditionalModel(), torch.tensor([[0, 1]]), 2.0, NUM_CLASSES
            ),
            "1-D",
        ),
        (
            lambda: cfg_model(
                ToyConditionalModel(), torch.tensor([0, 10]), 2.0, NUM_CLASSES
            ),
            r"\[0, null_label",
        ),
        (
            lambda: cfg_model(
                ToyConditionalModel(), torch.tensor([0, -1]), 2.0, NUM_CLASSES
            ),
            r"\[0, null_label",
        ),
        (
            lambda: cfg_model(ToyConditionalModel(), torch.tensor([0]), 2.0, 0),
            "null_label",
        ),
        (
            lambda: cfg_model(
                ToyConditionalModel(), torch.tensor([0]), 2.0, NUM_CLASSES, "x"
            ),
            "convention",
        ),
        (lambda: drop_labels(torch.tensor([0, 1]), 1.5, NUM_CLASSES), "p_uncond"),
        (
            lambda: drop_labels(
                torch.tensor([0, 1]), 0.5, NUM_CLASSES, drop_mask=torch.tensor([1, 0])
            ),
            "drop_mask",
        ),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_cfg_model_rejects_a_batch_of_the_wrong_size():
    guided = cfg_model(ToyConditionalModel(), torch.tensor([0, 1]), 2.0, NUM_CLASSES)
    with pytest.raises(ValueError, match="batch of 3"):
        guided(torch.zeros(3, 1, 4, 4), torch.tensor([1, 1, 1]))
