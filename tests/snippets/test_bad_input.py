"""Every public function of the math modules refuses bad input with an error naming the argument.

One parametrised table per module: each case calls a function with one bad argument (wrong type,
wrong dtype, NaN, out of range, wrong shape) and expects the error type (`TypeError` for a wrong
type or dtype, `ValueError` otherwise) with a message that names the argument. The good-input
behaviour of the same functions is tested in the module's own test file.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from snippets import check
from snippets.basic_unet import BasicUNet
from snippets.classifier_guidance import (
    NoisyDigitClassifier,
    TimeBlind,
    cg_ddpm_sample,
    cg_model,
    classifier_log_prob_grad,
    load_noisy_classifier,
    train_noisy_classifier,
)
from snippets.dpm_solver import dpm_solver_timesteps
from snippets.edm import (
    Denoiser,
    alpha_bar_from_sigma,
    edm_loss,
    edm_preconditioning,
    edm_sample,
    karras_sigmas,
    loss_weight,
    raw_network_target,
    sample_training_sigma,
    score_from_denoiser,
)
from snippets.flow_matching import (
    flow_match_sigmas,
    flow_matching_loss,
    flow_path,
    flow_sample,
    paper_time,
    paper_velocity,
    predict_x0_from_velocity,
    shift_sigmas,
    velocity_target,
)
from snippets.forward import (
    broadcast_at,
    corrupt,
    gaussian_noise,
    predict_x0_and_eps,
    q_posterior_mean_variance,
    q_sample,
    training_target,
)
from snippets.guidance import cfg_model, drop_labels, guided_prediction
from snippets.inpainting import (
    check_mask,
    inpaint,
    inpaint_step,
    repaint,
    repaint_timesteps,
)
from snippets.interpolation import lerp, slerp
from snippets.inversion import ddim_invert, ddim_round_trip
from snippets.karras import denoise, karras_timesteps, sigma_to_t
from snippets.loss_guidance import ink, ink_loss, loss_guided_ddim_sample
from snippets.metrics import (
    DigitClassifier,
    digit_metrics,
    frechet_distance,
    load_classifier,
    train_classifier,
)
from snippets.sampling import SAMPLERS, naive_sample
from snippets.schedules import (
    NoiseSchedule,
    cosine_betas,
    inference_timesteps,
    linear_betas,
    rescale_betas_zero_snr,
    scaled_linear_betas,
    sigma_from_alpha_bar,
    sigmoid_betas,
    snr,
)
from snippets.scratch import scratch_loss, to_unit_interval, train_basic_unet
from snippets.sdedit import img2img_timesteps, sdedit
from snippets.sketch import rasterise_strokes, sketch_digits
from snippets.training import (
    TrainConfig,
    diffusion_loss,
    ema_update,
    learning_rate_at,
    min_snr_weight,
    train,
)
from snippets.unet import (
    DownBlock,
    Downsample,
    MidBlock,
    ResBlock,
    SelfAttention,
    TimeEmbedding,
    UNet,
    UpBlock,
    Upsample,
    convert_diffusers_state_dict,
    diffusers_equivalent,
    parameter_table,
    timestep_embedding,
)

NAN, INF = float("nan"), float("inf")
SCHEDULE = NoiseSchedule.from_name("linear", num_train_timesteps=100)
A_BAR = SCHEDULE.alpha_bar
X = torch.zeros(2, 1, 4, 4)
X_INT = torch.zeros(2, 1, 4, 4, dtype=torch.int64)
X_NAN = torch.full((2, 1, 4, 4), NAN)
T = torch.tensor([3, 7])
TINY_UNET = dict(channels=(8, 8), attention_levels=(), num_groups=4, sample_size=8)


def zero_model(x, t, **kwargs):
    return torch.zeros_like(x)


class ZeroNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x, t=None, **kwargs):
        return torch.zeros_like(x)


def case(name, call, error=ValueError, id=None):
    """A bad call, the error type it must raise, and the argument its message must name."""
    return pytest.param(call, error, name, id=id or name)


def assert_rejects(call, error, name):
    with pytest.raises(error) as info:
        call()
    # the name as a word of its own: "t" is not found in "t_prev" or "timesteps"
    assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", str(info.value)), (
        f"{name!r} not named in: {info.value}"
    )


# --- snippets/check.py ------------------------------------------------------------------


def test_argument_type_error_is_a_type_error_and_a_value_error():
    with pytest.raises(TypeError):
        check.integer("n", 2.5)
    with pytest.raises(ValueError):
        check.integer("n", 2.5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: check.integer("n", True), "n must be an integer, got True"),
        (lambda: check.integer("n", 0, ge=1), "n must be an integer >= 1, got 0"),
        (
            lambda: check.real("eta", NAN, ge=0, le=1),
            r"eta must be a finite number in [0, 1], got nan",
        ),
        (lambda: check.real("s", INF), "s must be a finite number, got inf"),
        (lambda: check.real("s", "1"), "s must be a finite number, got '1'"),
        (
            lambda: check.real("p", 2.0, gt=0, lt=1),
            "p must be a finite number in (0, 1), got 2.0",
        ),
        (
            lambda: check.one_of("mode", "c", ("a", "b")),
            "mode must be one of 'a', 'b', got 'c'",
        ),
        (lambda: check.boolean("flag", 1), "flag must be True or False, got 1"),
        (lambda: check.tensor("x", [1.0]), "x must be a torch.Tensor, got list"),
        (
            lambda: check.tensor("x", X_INT),
            "x must be a floating-point tensor, got dtype torch.int64",
        ),
        (lambda: check.tensor("t", X, dtype="int"), "t must be an integer tensor"),
        (
            lambda: check.tensor("x", X, shape=(2, 3, None, None)),
            "x must have shape (2, 3, any, any), got (2, 1, 4, 4)",
        ),
        (lambda: check.tensor("x", X_NAN), "x contains NaN or infinite values"),
        (
            lambda: check.tensor("a", torch.tensor([0.5, 1.5]), ge=0, le=1),
            "a must lie in [0, 1], got values from 0.5 to 1.5",
        ),
        (
            lambda: check.tensor("s", torch.tensor([0.0]), gt=0),
            "s must be > 0, got values from 0 to 0",
        ),
        (lambda: check.integers("channels", [32.9]), "channels[0] must be an integer"),
        (
            lambda: check.tensor("x", X.double(), dtype=torch.float32),
            "x must be a torch.float32 tensor, got dtype torch.float64",
        ),
        (
            lambda: check.feature_maps("h", X, 8, torch.float32),
            "h must have shape (any, 8, any, any), got (2, 1, 4, 4)",
        ),
        (
            lambda: check.timesteps("t", torch.tensor([1, 2, 3]), 2),
            "t must be a number or have shape (B,) = (2,), got (3,)",
        ),
        (lambda: check.timesteps("t", "5", 2), "t must be a finite number, got '5'"),
        (lambda: check.timesteps("t", NAN, 2), "t must be a finite number, got nan"),
        (
            lambda: check.generator("generator", 0),
            "generator must be a torch.Generator or None, got int",
        ),
    ],
)
def test_check_messages_name_the_argument_and_the_value(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message or str(info.value).startswith(message)


def test_checks_return_their_value_unchanged():
    assert check.integer("n", 3, ge=1) == 3
    assert check.real("x", 0.5, ge=0, le=1) == 0.5
    assert check.real("s", INF, ge=0, finite=False) == INF
    assert check.tensor("x", X) is X
    assert check.integers("c", (8, 16)) == [8, 16]
    assert check.generator("g", None) is None
    assert check.timesteps("t", 5, 3).tolist() == [5, 5, 5]
    assert check.timesteps("t", torch.tensor([1.5, 2.5]), 2).tolist() == [1.5, 2.5]
    assert check.feature_maps("h", X, 1, torch.float32) is X


# --- snippets/schedules.py --------------------------------------------------------------

SCHEDULES = [
    case(
        "num_train_timesteps", lambda: linear_betas(10.0), TypeError, "linear-T-float"
    ),
    case("num_train_timesteps", lambda: linear_betas(0), id="linear-T-0"),
    case("beta_start", lambda: linear_betas(10, beta_start=NAN), id="linear-start-nan"),
    case("beta_start", lambda: linear_betas(10, beta_start=0.0), id="linear-start-0"),
    case("beta_end", lambda: linear_betas(10, beta_end=1.5), id="linear-end-1.5"),
    case(
        "beta_end",
        lambda: linear_betas(10, beta_end="0.02"),
        TypeError,
        "linear-end-str",
    ),
    case("num_train_timesteps", lambda: scaled_linear_betas(-1), id="scaled-T"),
    case(
        "beta_start",
        lambda: scaled_linear_betas(10, beta_start=-1e-3),
        id="scaled-start",
    ),
    case("beta_end", lambda: scaled_linear_betas(10, beta_end=NAN), id="scaled-end"),
    case("num_train_timesteps", lambda: cosine_betas(2.5), TypeError, "cosine-T"),
    case("s", lambda: cosine_betas(10, s=NAN), id="cosine-s"),
    case("max_beta", lambda: cosine_betas(10, max_beta=1.5), id="cosine-max-beta"),
    case(
        "num_train_timesteps", lambda: sigmoid_betas(True), TypeError, "sigmoid-T-bool"
    ),
    case("beta_start", lambda: sigmoid_betas(10, beta_start=-0.5), id="sigmoid-start"),
    case("beta_end", lambda: sigmoid_betas(10, beta_end=2.0), id="sigmoid-end-above-1"),
    case(
        "betas", lambda: rescale_betas_zero_snr([0.1, 0.2]), TypeError, "rescale-list"
    ),
    case(
        "betas",
        lambda: rescale_betas_zero_snr(torch.tensor([1, 2])),
        TypeError,
        "rescale-int",
    ),
    case(
        "betas",
        lambda: rescale_betas_zero_snr(torch.tensor([0.1, NAN])),
        id="rescale-nan",
    ),
    case(
        "betas",
        lambda: rescale_betas_zero_snr(torch.full((2, 2), 0.1)),
        id="rescale-2d",
    ),
    case(
        "betas",
        lambda: NoiseSchedule.from_betas(torch.tensor([0.1, NAN])),
        id="from-betas-nan",
    ),
    case(
        "betas",
        lambda: NoiseSchedule.from_betas(torch.tensor([0.1, 0.0])),
        id="from-betas-0",
    ),
    case("name", lambda: NoiseSchedule.from_name("quadratic"), id="from-name-name"),
    case(
        "num_train_timesteps",
        lambda: NoiseSchedule.from_name("linear", 1000.0),
        TypeError,
        "from-name-T",
    ),
    case(
        "beta_start",
        lambda: NoiseSchedule.from_name("linear", beta_start=NAN),
        id="from-name-start",
    ),
    case(
        "beta_end",
        lambda: NoiseSchedule.from_name("sigmoid", beta_end=-1.0),
        id="from-name-end",
    ),
    case(
        "rescale_zero_terminal_snr",
        lambda: NoiseSchedule.from_name("linear", rescale_zero_terminal_snr="yes"),
        TypeError,
        "from-name-rescale",
    ),
    case("alpha_bar", lambda: snr(torch.tensor([0.5, NAN])), id="snr-nan"),
    case("alpha_bar", lambda: snr(torch.tensor([1.5])), id="snr-range"),
    case(
        "num_train_timesteps",
        lambda: inference_timesteps(1000.0, 10),
        TypeError,
        "spacing-T",
    ),
    case(
        "num_inference_steps",
        lambda: inference_timesteps(1000, 10.0),
        TypeError,
        "spacing-N-float",
    ),
    case("num_inference_steps", lambda: inference_timesteps(1000, 0), id="spacing-N-0"),
    case(
        "num_inference_steps",
        lambda: inference_timesteps(1000, 1001),
        id="spacing-N-above-T",
    ),
    case(
        "spacing", lambda: inference_timesteps(1000, 10, "uniform"), id="spacing-name"
    ),
    case(
        "alpha_bar",
        lambda: sigma_from_alpha_bar(torch.tensor([0.9, NAN])),
        id="sigma-nan",
    ),
    case(
        "alpha_bar", lambda: sigma_from_alpha_bar(torch.tensor([[0.9]])), id="sigma-2d"
    ),
]


@pytest.mark.parametrize("call, error, name", SCHEDULES)
def test_schedules_reject_bad_input(call, error, name):
    assert_rejects(call, error, name)


def test_schedules_return_betas_inside_0_1():
    for betas in (linear_betas(50), sigmoid_betas(50), scaled_linear_betas(50)):
        assert bool(((betas > 0) & (betas < 1)).all())


# --- snippets/forward.py ----------------------------------------------------------------

FORWARD = [
    case(
        "values", lambda: broadcast_at([0.1, 0.2], 0, X), TypeError, "broadcast-values"
    ),
    case("t", lambda: broadcast_at(A_BAR, 1.5, X), TypeError, "broadcast-t-float"),
    case("x", lambda: broadcast_at(A_BAR, 0, "x"), TypeError, "broadcast-x"),
    case("x", lambda: corrupt(X_INT, torch.rand(2)), TypeError, "corrupt-x-int"),
    case("amount", lambda: corrupt(X, 0.5), TypeError, "corrupt-amount-float"),
    case(
        "amount", lambda: corrupt(X, torch.tensor([0.5, NAN])), id="corrupt-amount-nan"
    ),
    case(
        "amount",
        lambda: corrupt(X, torch.tensor([0.5, 1.5])),
        id="corrupt-amount-range",
    ),
    case("amount", lambda: corrupt(X, torch.rand(3)), id="corrupt-amount-shape"),
    case(
        "noise",
        lambda: corrupt(X, torch.rand(2), noise=torch.rand(2, 1, 4, 5)),
        id="corrupt-noise",
    ),
    case(
        "generator",
        lambda: corrupt(X, torch.rand(2), generator=0),
        TypeError,
        "corrupt-generator",
    ),
    case("x", lambda: gaussian_noise([0.0]), TypeError, "gaussian-x"),
    case(
        "generator",
        lambda: gaussian_noise(X, generator=1),
        TypeError,
        "gaussian-generator",
    ),
    case("x0", lambda: q_sample(X_INT, T, A_BAR), TypeError, "q-sample-x0-int"),
    case("x0", lambda: q_sample(X_NAN, T, A_BAR), id="q-sample-x0-nan"),
    case(
        "t",
        lambda: q_sample(X, torch.tensor([1.0, 2.0]), A_BAR),
        TypeError,
        "q-sample-t-float",
    ),
    case(
        "t", lambda: q_sample(X, torch.tensor([1, 100]), A_BAR), id="q-sample-t-range"
    ),
    case("alpha_bar", lambda: q_sample(X, T, A_BAR * NAN), id="q-sample-alpha-bar-nan"),
    case(
        "noise",
        lambda: q_sample(X, T, A_BAR, noise=torch.zeros(2, 1, 4, 1)),
        id="q-sample-noise",
    ),
    case(
        "generator",
        lambda: q_sample(X, T, A_BAR, generator="seed"),
        TypeError,
        "q-sample-generator",
    ),
    case(
        "x0",
        lambda: q_posterior_mean_variance(X_INT, X, T, A_BAR),
        TypeError,
        "posterior-x0",
    ),
    case(
        "x_t",
        lambda: q_posterior_mean_variance(X, torch.zeros(3, 1, 4, 4), T, A_BAR),
        id="posterior-x_t",
    ),
    case(
        "t",
        lambda: q_posterior_mean_variance(X, X, torch.tensor([0.5, 1.0]), A_BAR),
        TypeError,
        "posterior-t",
    ),
    case(
        "alpha_bar",
        lambda: q_posterior_mean_variance(X, X, T, A_BAR.reshape(10, 10)),
        id="posterior-alpha-bar",
    ),
    case(
        "t_prev",
        lambda: q_posterior_mean_variance(
            X, X, T, A_BAR, t_prev=torch.tensor([-5, -5])
        ),
        id="posterior-t-prev-negative",
    ),
    case(
        "t_prev",
        lambda: q_posterior_mean_variance(
            X, X, T, A_BAR, t_prev=torch.tensor([1.0, 2.0])
        ),
        TypeError,
        "posterior-t-prev-float",
    ),
    case(
        "t_prev",
        lambda: q_posterior_mean_variance(X, X, T, A_BAR, t_prev=T),
        id="posterior-t-prev-not-earlier",
    ),
    case("x0", lambda: training_target(X_INT, X, T, A_BAR), TypeError, "target-x0"),
    case(
        "noise",
        lambda: training_target(X, torch.zeros(2, 1, 4, 1), T, A_BAR),
        id="target-noise-shape",
    ),
    case(
        "t", lambda: training_target(X, X, torch.tensor([-1, 0]), A_BAR), id="target-t"
    ),
    case("alpha_bar", lambda: training_target(X, X, T, -A_BAR), id="target-alpha-bar"),
    case(
        "prediction_type",
        lambda: training_target(X, X, T, A_BAR, "x0"),
        id="target-prediction-type",
    ),
    case(
        "model_output",
        lambda: predict_x0_and_eps(X_NAN, X, T, A_BAR),
        id="predict-model-output-nan",
    ),
    case(
        "model_output",
        lambda: predict_x0_and_eps(torch.zeros(2, 2, 4, 4), X, T, A_BAR),
        id="predict-model-output-shape",
    ),
    case(
        "x_t", lambda: predict_x0_and_eps(X, X_INT, T, A_BAR), TypeError, "predict-x_t"
    ),
    case(
        "t",
        lambda: predict_x0_and_eps(X, X, torch.tensor([1, 2, 3]), A_BAR),
        id="predict-t",
    ),
    case(
        "alpha_bar",
        lambda: predict_x0_and_eps(X, X, T, A_BAR.long()),
        TypeError,
        "predict-alpha-bar",
    ),
    case(
        "prediction_type",
        lambda: predict_x0_and_eps(X, X, T, A_BAR, "noise"),
        id="predict-prediction-type",
    ),
]


@pytest.mark.parametrize("call, error, name", FORWARD)
def test_forward_rejects_bad_input(call, error, name):
    assert_rejects(call, error, name)


def test_q_sample_with_integer_images_is_refused_not_pure_noise():
    # an int x0 used to cast alpha_bar to 0 and return exactly the noise
    with pytest.raises(TypeError, match="x0 must be a floating-point tensor"):
        q_sample(torch.ones(2, 1, 4, 4, dtype=torch.int64), T, A_BAR)


# --- snippets/sampling.py, karras.py, dpm_solver.py -------------------------------------


def sampler_cases(sampler):
    def run(
        model=zero_model,
        x_T=torch.zeros(1, 1, 4, 4),
        schedule=SCHEDULE,
        steps=4,
        **options,
    ):
        return lambda: SAMPLERS[sampler](model, x_T, schedule, steps, **options)

    return [
        case("model", run(model=None), TypeError, f"{sampler}-model"),
        case(
            "x_T",
            run(x_T=torch.zeros(1, 1, 4, 4, dtype=torch.int64)),
            TypeError,
            f"{sampler}-x_T-int",
        ),
        case("x_T", run(x_T=torch.full((1, 1, 4, 4), NAN)), id=f"{sampler}-x_T-nan"),
        case("schedule", run(schedule=A_BAR), TypeError, f"{sampler}-schedule"),
        case(
            "num_inference_steps", run(steps=10.0), TypeError, f"{sampler}-steps-float"
        ),
        case("num_inference_steps", run(steps=0), id=f"{sampler}-steps-0"),
        case(
            "prediction_type",
            run(prediction_type="noise"),
            id=f"{sampler}-prediction-type",
        ),
        case("generator", run(generator=0), TypeError, f"{sampler}-generator"),
        case(
            "timestep_spacing", run(timestep_spacing="uniform"), id=f"{sampler}-spacing"
        ),
        case(
            "clip_sample", run(clip_sample="yes"), TypeError, f"{sampler}-clip-sample"
        ),
        case(
            "clip_sample_range",
            run(clip_sample_range=NAN),
            id=f"{sampler}-clip-range-nan",
        ),
        case(
            "clip_sample_range",
            run(clip_sample_range=0.0),
            id=f"{sampler}-clip-range-0",
        ),
    ]


def sampler_option(sampler, name, value, error=ValueError):
    x_T = torch.zeros(1, 1, 4, 4)
    return case(
        name,
        lambda: SAMPLERS[sampler](zero_model, x_T, SCHEDULE, 4, **{name: value}),
        error,
        f"{sampler}-{name}-{value}",
    )


SAMPLING = [
    *(c for name in SAMPLERS for c in sampler_cases(name)),
    sampler_option("ddpm", "variance_type", "learned"),
    sampler_option("ddim", "eta", NAN),
    sampler_option("ddim", "eta", -1.0),
    sampler_option("ddim", "eta", 3.0),
    sampler_option("ddim", "eta", "0"),
    sampler_option("euler", "s_churn", NAN),
    sampler_option("euler", "s_churn", -1.0),
    sampler_option("euler", "s_tmin", NAN),
    sampler_option("euler", "s_tmax", NAN),
    sampler_option("euler", "s_noise", NAN),
    case("model", lambda: naive_sample(None, X, 2), TypeError, "naive-model"),
    case("x", lambda: naive_sample(lambda x: x, X_INT, 2), TypeError, "naive-x"),
    case(
        "n_steps",
        lambda: naive_sample(lambda x: x, X, 2.5),
        TypeError,
        "naive-n-steps-float",
    ),
    case("n_steps", lambda: naive_sample(lambda x: x, X, 0), id="naive-n-steps-0"),
    case(
        "num_train_timesteps",
        lambda: dpm_solver_timesteps(100.0, 4),
        TypeError,
        "dpm-timesteps-T",
    ),
    case(
        "num_inference_steps",
        lambda: dpm_solver_timesteps(100, 4.0),
        TypeError,
        "dpm-timesteps-N",
    ),
    case(
        "spacing",
        lambda: dpm_solver_timesteps(100, 4, "uniform"),
        id="dpm-timesteps-spacing",
    ),
    case(
        "sigma",
        lambda: sigma_to_t(torch.tensor([NAN]), torch.ones(3)),
        id="sigma-to-t-sigma",
    ),
    case(
        "train_sigmas",
        lambda: sigma_to_t(torch.ones(1), torch.zeros(3)),
        id="sigma-to-t-train-sigmas",
    ),
    case("alpha_bar", lambda: karras_timesteps(A_BAR * NAN, 4), id="karras-alpha-bar"),
    case(
        "num_inference_steps",
        lambda: karras_timesteps(A_BAR, 4.0),
        TypeError,
        "karras-N",
    ),
    case("spacing", lambda: karras_timesteps(A_BAR, 4, "uniform"), id="karras-spacing"),
    case("rho", lambda: karras_timesteps(A_BAR, 4, rho=0), id="karras-rho-0"),
    case("rho", lambda: karras_timesteps(A_BAR, 4, rho=-7), id="karras-rho-negative"),
    case("rho", lambda: karras_timesteps(A_BAR, 4, rho=NAN), id="karras-rho-nan"),
    case(
        "model_output",
        lambda: denoise(torch.zeros(1, 1, 4, 5), X[:1], torch.tensor(1.0), "epsilon"),
        id="denoise-model-output",
    ),
    case(
        "x",
        lambda: denoise(X, X_INT, torch.tensor(1.0), "epsilon"),
        TypeError,
        "denoise-x",
    ),
    case(
        "sigma", lambda: denoise(X, X, torch.tensor(0.0), "epsilon"), id="denoise-sigma"
    ),
    case(
        "prediction_type",
        lambda: denoise(X, X, torch.tensor(1.0), "bogus"),
        id="denoise-prediction-type",
    ),
]


@pytest.mark.parametrize("call, error, name", SAMPLING)
def test_samplers_reject_bad_input(call, error, name):
    assert_rejects(call, error, name)


def test_ddim_eta_1_stays_finite_where_larger_eta_would_not():
    x_T = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    x = SAMPLERS["ddim"](
        zero_model,
        x_T,
        SCHEDULE,
        10,
        eta=1.0,
        generator=torch.Generator().manual_seed(1),
    )
    assert bool(x.isfinite().all())


# --- snippets/edm.py --------------------------------------------------------------------

SIGMAS = karras_sigmas(3)
DENOISER = Denoiser(ZeroNet())

EDM = [
    case("num_steps", lambda: karras_sigmas(3.0), TypeError, "karras-sigmas-num-steps"),
    case(
        "sigma_min",
        lambda: karras_sigmas(3, sigma_min=NAN),
        id="karras-sigmas-sigma-min",
    ),
    case(
        "sigma_max",
        lambda: karras_sigmas(3, sigma_max=NAN),
        id="karras-sigmas-sigma-max",
    ),
    case("rho", lambda: karras_sigmas(3, rho=NAN), id="karras-sigmas-rho"),
    case(
        "sigma",
        lambda: edm_preconditioning(torch.tensor([NAN])),
        id="precond-sigma-nan",
    ),
    case(
        "sigma", lambda: edm_preconditioning(torch.tensor([0.0])), id="precond-sigma-0"
    ),
    case(
        "sigma_data",
        lambda: edm_preconditioning(torch.tensor([1.0]), NAN),
        id="precond-sigma-data",
    ),
    case("net", lambda: Denoiser(None), TypeError, "denoiser-net"),
    case(
        "sigma_data",
        lambda: Denoiser(ZeroNet(), sigma_data=NAN),
        id="denoiser-sigma-data",
    ),
    case("x", lambda: DENOISER(X_INT, torch.ones(2)), TypeError, "denoiser-x"),
    case(
        "sigma", lambda: DENOISER(X, torch.tensor([1.0, NAN])), id="denoiser-sigma-nan"
    ),
    case(
        "batch_size",
        lambda: sample_training_sigma(2.5),
        TypeError,
        "training-sigma-batch",
    ),
    case(
        "P_mean",
        lambda: sample_training_sigma(2, P_mean=NAN),
        id="training-sigma-p-mean",
    ),
    case(
        "P_std", lambda: sample_training_sigma(2, P_std=NAN), id="training-sigma-p-std"
    ),
    case(
        "generator",
        lambda: sample_training_sigma(2, generator=0),
        TypeError,
        "training-sigma-generator",
    ),
    case("sigma", lambda: loss_weight(torch.tensor([NAN])), id="loss-weight-sigma"),
    case(
        "sigma_data",
        lambda: loss_weight(torch.ones(1), sigma_data=-1.0),
        id="loss-weight-sigma-data",
    ),
    case("denoiser", lambda: edm_loss(zero_model, X), TypeError, "edm-loss-denoiser"),
    case("x0", lambda: edm_loss(DENOISER, X_INT), TypeError, "edm-loss-x0"),
    case(
        "sigma",
        lambda: edm_loss(DENOISER, X, sigma=torch.tensor([1.0, NAN])),
        id="edm-loss-sigma",
    ),
    case(
        "noise",
        lambda: edm_loss(DENOISER, X, noise=torch.zeros(2, 1, 4, 1)),
        id="edm-loss-noise",
    ),
    case(
        "generator",
        lambda: edm_loss(DENOISER, X, generator=0),
        TypeError,
        "edm-loss-generator",
    ),
    case("x0", lambda: raw_network_target(X_NAN, X, torch.ones(2)), id="raw-target-x0"),
    case(
        "noise",
        lambda: raw_network_target(X, X_INT, torch.ones(2)),
        TypeError,
        "raw-target-noise",
    ),
    case(
        "sigma", lambda: raw_network_target(X, X, torch.ones(3)), id="raw-target-sigma"
    ),
    case(
        "sigma_data",
        lambda: raw_network_target(X, X, torch.ones(2), NAN),
        id="raw-target-sigma-data",
    ),
    case(
        "denoiser",
        lambda: edm_sample(None, X, SIGMAS),
        TypeError,
        "edm-sample-denoiser",
    ),
    case("noise", lambda: edm_sample(DENOISER, X_NAN, SIGMAS), id="edm-sample-noise"),
    case(
        "sigmas",
        lambda: edm_sample(DENOISER, X, torch.tensor([1.0, NAN, 0.0])),
        id="edm-sample-sigmas",
    ),
    case(
        "S_churn",
        lambda: edm_sample(DENOISER, X, SIGMAS, S_churn=NAN),
        id="edm-sample-s-churn",
    ),
    case(
        "S_tmin",
        lambda: edm_sample(DENOISER, X, SIGMAS, S_tmin=NAN),
        id="edm-sample-s-tmin",
    ),
    case(
        "S_tmax",
        lambda: edm_sample(DENOISER, X, SIGMAS, S_tmax=NAN),
        id="edm-sample-s-tmax",
    ),
    case(
        "S_noise",
        lambda: edm_sample(DENOISER, X, SIGMAS, S_noise=NAN),
        id="edm-sample-s-noise",
    ),
    case(
        "second_order",
        lambda: edm_sample(DENOISER, X, SIGMAS, second_order=1),
        TypeError,
        "edm-sample-second-order",
    ),
    case(
        "generator",
        lambda: edm_sample(DENOISER, X, SIGMAS, generator=0),
        TypeError,
        "edm-sample-generator",
    ),
    case(
        "sigma",
        lambda: alpha_bar_from_sigma(torch.tensor([NAN])),
        id="alpha-bar-from-sigma",
    ),
    case(
        "denoised",
        lambda: score_from_denoiser(X_NAN, X, torch.ones(2)),
        id="score-denoised",
    ),
    case(
        "x", lambda: score_from_denoiser(X, X_INT, torch.ones(2)), TypeError, "score-x"
    ),
    case("sigma", lambda: score_from_denoiser(X, X, torch.zeros(2)), id="score-sigma"),
]


@pytest.mark.parametrize("call, error, name", EDM)
def test_edm_rejects_bad_input(call, error, name):
    assert_rejects(call, error, name)


# --- snippets/flow_matching.py ----------------------------------------------------------

FLOW = [
    case("data", lambda: flow_path(X_INT, X, torch.zeros(2)), TypeError, "path-data"),
    case("noise", lambda: flow_path(X, X_NAN, torch.zeros(2)), id="path-noise"),
    case("t", lambda: flow_path(X, X, torch.tensor([0.5, NAN])), id="path-t-nan"),
    case(
        "convention",
        lambda: flow_path(X, X, torch.zeros(2), "sd3"),
        id="path-convention",
    ),
    case(
        "sigma_min",
        lambda: flow_path(X, X, torch.zeros(2), "paper", NAN),
        id="path-sigma-min",
    ),
    case("data", lambda: velocity_target(X_NAN, X), id="velocity-data"),
    case("noise", lambda: velocity_target(X, X_INT), TypeError, "velocity-noise"),
    case("convention", lambda: velocity_target(X, X, "sd3"), id="velocity-convention"),
    case(
        "sigma_min",
        lambda: velocity_target(X, X, "paper", 1.0),
        id="velocity-sigma-min",
    ),
    case("model", lambda: flow_matching_loss(None, X), TypeError, "loss-model"),
    case("data", lambda: flow_matching_loss(zero_model, X_INT), TypeError, "loss-data"),
    case(
        "t",
        lambda: flow_matching_loss(zero_model, X, t=torch.tensor([0.5, 1.5])),
        id="loss-t",
    ),
    case(
        "noise", lambda: flow_matching_loss(zero_model, X, noise=X_NAN), id="loss-noise"
    ),
    case(
        "generator",
        lambda: flow_matching_loss(zero_model, X, generator=0),
        TypeError,
        "loss-generator",
    ),
    case(
        "num_train_timesteps",
        lambda: flow_matching_loss(zero_model, X, num_train_timesteps=0),
        id="loss-T",
    ),
    case("sigmas", lambda: shift_sigmas(torch.tensor([NAN]), 3.0), id="shift-sigmas"),
    case("shift", lambda: shift_sigmas(torch.tensor([0.5]), NAN), id="shift-nan"),
    case(
        "num_inference_steps", lambda: flow_match_sigmas(4.0), TypeError, "fm-sigmas-N"
    ),
    case("num_train_timesteps", lambda: flow_match_sigmas(4, 0), id="fm-sigmas-T"),
    case("shift", lambda: flow_match_sigmas(4, shift=-3.0), id="fm-sigmas-shift"),
    case("model", lambda: flow_sample(None, X, 2), TypeError, "sample-model"),
    case("noise", lambda: flow_sample(zero_model, X_INT, 2), TypeError, "sample-noise"),
    case("num_inference_steps", lambda: flow_sample(zero_model, X, 0), id="sample-N"),
    case("shift", lambda: flow_sample(zero_model, X, 2, shift=NAN), id="sample-shift"),
    case(
        "num_train_timesteps",
        lambda: flow_sample(zero_model, X, 2, num_train_timesteps=2.5),
        TypeError,
        "sample-T",
    ),
    case(
        "sigmas",
        lambda: flow_sample(zero_model, X, 2, sigmas=torch.tensor([1.0, NAN])),
        id="sample-sigmas",
    ),
    case("t_diffusers", lambda: paper_time(torch.tensor([NAN])), id="paper-time"),
    case("v_diffusers", lambda: paper_velocity(X_INT), TypeError, "paper-velocity"),
    case(
        "v",
        lambda: predict_x0_from_velocity(X_NAN, X, torch.zeros(2)),
        id="x0-from-v-v",
    ),
    case(
        "x_t",
        lambda: predict_x0_from_velocity(X, X_INT, torch.zeros(2)),
        TypeError,
        "x0-from-v-x_t",
    ),
    case(
        "t",
        lambda: predict_x0_from_velocity(X, X, torch.tensor([0.0, 2.0])),
        id="x0-from-v-t",
    ),
]


@pytest.mark.parametrize("call, error, name", FLOW)
def test_flow_matching_rejects_bad_input(call, error, name):
    assert_rejects(call, error, name)


# --- snippets/guidance.py ---------------------------------------------------------------

LABELS = torch.tensor([0, 1])

GUIDANCE = [
    case(
        "class_labels",
        lambda: drop_labels(LABELS.float(), 0.1, 10),
        TypeError,
        "drop-labels",
    ),
    case("p_uncond", lambda: drop_labels(LABELS, NAN, 10), id="drop-p-uncond"),
    case(
        "null_label",
        lambda: drop_labels(LABELS, 0.1, 10.0),
        TypeError,
        "drop-null-label",
    ),
    case(
        "generator",
        lambda: drop_labels(LABELS, 0.1, 10, generator=0),
        TypeError,
        "drop-generator",
    ),
    case(
        "drop_mask",
        lambda: drop_labels(LABELS, 0.1, 10, drop_mask=torch.tensor([1, 0])),
        id="drop-mask",
    ),
    case("pred_cond", lambda: guided_prediction(X_NAN, X, 2.0), id="guided-pred-cond"),
    case(
        "pred_uncond",
        lambda: guided_prediction(X, X_INT, 2.0),
        TypeError,
        "guided-pred-uncond",
    ),
    case("guidance_scale", lambda: guided_prediction(X, X, NAN), id="guided-scale-nan"),
    case(
        "guidance_scale",
        lambda: guided_prediction(X, X, INF, "paper"),
        id="guided-scale-inf",
    ),
    case(
        "convention",
        lambda: guided_prediction(X, X, 2.0, "imagen"),
        id="guided-convention",
    ),
    case("model", lambda: cfg_model(None, LABELS, 2.0, 10), TypeError, "cfg-model"),
    case(
        "class_labels",
        lambda: cfg_model(zero_model, [0, 1], 2.0, 10),
        TypeError,
        "cfg-labels",
    ),
    case(
        "guidance_scale", lambda: cfg_model(zero_model, LABELS, NAN, 10), id="cfg-scale"
    ),
    case(
        "null_label", lambda: cfg_model(zero_model, LABELS, 2.0, 0), id="cfg-null-label"
    ),
    case(
        "convention",
        lambda: cfg_model(zero_model, LABELS, 2.0, 10, "x"),
        id="cfg-convention",
    ),
]


@pytest.mark.parametrize("call, error, name", GUIDANCE)
def test_guidance_rejects_bad_input(call, error, name):
    assert_rejects(call, error, name)


# --- snippets/unet.py and basic_unet.py -------------------------------------------------

UNETS = [
    case(
        "t",
        lambda: timestep_embedding(torch.tensor([1.0, NAN]), 8),
        id="embedding-t-nan",
    ),
    case(
        "t",
        lambda: timestep_embedding(torch.tensor([True]), 8),
        TypeError,
        "embedding-t-bool",
    ),
    case("dim", lambda: timestep_embedding(T, 8.0), TypeError, "embedding-dim-float"),
    case("dim", lambda: timestep_embedding(T, 2), id="embedding-dim-2-nan"),
    case(
        "flip_sin_to_cos",
        lambda: timestep_embedding(T, 8, flip_sin_to_cos="no"),
        TypeError,
        "embedding-flip",
    ),
    case(
        "downscale_freq_shift",
        lambda: timestep_embedding(T, 8, downscale_freq_shift=NAN),
        id="embedding-shift",
    ),
    case("scale", lambda: timestep_embedding(T, 8, scale=NAN), id="embedding-scale"),
    case(
        "max_period",
        lambda: timestep_embedding(T, 8, max_period=0),
        id="embedding-max-period",
    ),
    case(
        "in_channels",
        lambda: UNet(**TINY_UNET, in_channels=1.0),
        TypeError,
        "unet-in-channels",
    ),
    case(
        "out_channels",
        lambda: UNet(**TINY_UNET, out_channels=0),
        id="unet-out-channels",
    ),
    case(
        "channels",
        lambda: UNet(**{**TINY_UNET, "channels": [32.9]}),
        TypeError,
        "unet-channels-float",
    ),
    case(
        "channels",
        lambda: UNet(**{**TINY_UNET, "channels": 32}),
        TypeError,
        "unet-channels-int",
    ),
    case(
        "num_res_blocks",
        lambda: UNet(**TINY_UNET, num_res_blocks=True),
        TypeError,
        "unet-res-blocks",
    ),
    case(
        "attention_levels",
        lambda: UNet(**{**TINY_UNET, "attention_levels": [0.7]}),
        TypeError,
        "unet-attention-float",
    ),
    case(
        "attention_levels",
        lambda: UNet(**{**TINY_UNET, "attention_levels": [5]}),
        id="unet-attention-range",
    ),
    case(
        "attention_head_dim",
        lambda: UNet(**TINY_UNET, attention_head_dim=3),
        id="unet-head-dim",
    ),
    case(
        "mid_attention",
        lambda: UNet(**TINY_UNET, mid_attention="yes"),
        TypeError,
        "unet-mid-attention",
    ),
    case(
        "num_groups", lambda: UNet(**{**TINY_UNET, "num_groups": 0}), id="unet-groups"
    ),
    case("dropout", lambda: UNet(**TINY_UNET, dropout=NAN), id="unet-dropout"),
    case(
        "use_scale_shift_norm",
        lambda: UNet(**TINY_UNET, use_scale_shift_norm=1),
        TypeError,
        "unet-scale-shift",
    ),
    case("num_classes", lambda: UNet(**TINY_UNET, num_classes=2.5), id="unet-classes"),
    case(
        "flip_sin_to_cos",
        lambda: UNet(**TINY_UNET, flip_sin_to_cos=None),
        TypeError,
        "unet-flip",
    ),
    case(
        "downscale_freq_shift",
        lambda: UNet(**TINY_UNET, downscale_freq_shift=NAN),
        id="unet-shift",
    ),
    case(
        "sample_size",
        lambda: UNet(**{**TINY_UNET, "sample_size": "16"}),
        TypeError,
        "unet-sample-size",
    ),
    case(
        "x",
        lambda: UNet(**TINY_UNET)(torch.zeros(2, 1, 8, 8, dtype=torch.float64), T),
        TypeError,
        "unet-x-float64",
    ),
    case(
        "x",
        lambda: UNet(**TINY_UNET)(torch.zeros(2, 1, 8, 8, dtype=torch.int64), T),
        TypeError,
        "unet-x-int64",
    ),
    case(
        "x",
        lambda: UNet(**TINY_UNET)(torch.full((2, 1, 8, 8), NAN), T),
        id="unet-x-nan",
    ),
    case(
        "t",
        lambda: UNet(**TINY_UNET)(torch.zeros(2, 1, 8, 8), torch.tensor([1.0, NAN])),
        id="unet-t-nan",
    ),
    case(
        "class_labels",
        lambda: UNet(**TINY_UNET, num_classes=3)(
            torch.zeros(2, 1, 8, 8), T, torch.tensor([0, 9])
        ),
        id="unet-labels",
    ),
    case(
        "foo",
        lambda: diffusers_equivalent({"foo": 1}),
        TypeError,
        "diffusers-equivalent-config",
    ),
    case(
        "state_dict",
        lambda: convert_diffusers_state_dict([("a", 1)]),
        TypeError,
        "convert-state-dict",
    ),
    case("model", lambda: parameter_table("unet"), TypeError, "parameter-table"),
    case(
        "in_channels",
        lambda: BasicUNet(in_channels=1.5),
        TypeError,
        "basic-in-channels",
    ),
    case("out_channels", lambda: BasicUNet(out_channels=0), id="basic-out-channels"),
    case(
        "x",
        lambda: BasicUNet()(torch.zeros(1, 1, 8, 8, dtype=torch.float64)),
        TypeError,
        "basic-x-float64",
    ),
    case(
        "x",
        lambda: BasicUNet()(torch.zeros(1, 1, 8, 8, dtype=torch.int64)),
        TypeError,
        "basic-x-int64",
    ),
    case("x", lambda: BasicUNet()(torch.full((1, 1, 8, 8), NAN)), id="basic-x-nan"),
]


@pytest.mark.parametrize("call, error, name", UNETS)
def test_unets_reject_bad_input(call, error, name):
    assert_rejects(call, error, name)


# --- snippets/scratch.py ----------------------------------------------------------------

UNIT = torch.full((2, 1, 8, 8), 0.5)

SCRATCH = [
    case(
        "images", lambda: to_unit_interval(torch.tensor([0.0, NAN])), id="to-unit-nan"
    ),
    case(
        "images",
        lambda: to_unit_interval(torch.tensor([0, 1])),
        TypeError,
        "to-unit-int",
    ),
    case("model", lambda: scratch_loss(None, UNIT), TypeError, "loss-model"),
    case(
        "x",
        lambda: scratch_loss(ZeroNet(), torch.full((2, 1, 8, 8), NAN)),
        id="loss-x-nan",
    ),
    case(
        "amount",
        lambda: scratch_loss(ZeroNet(), UNIT, amount=0.5),
        TypeError,
        "loss-amount",
    ),
    case(
        "noise",
        lambda: scratch_loss(ZeroNet(), UNIT, noise=torch.zeros(2, 1, 8, 4)),
        id="loss-noise",
    ),
    case(
        "generator",
        lambda: scratch_loss(ZeroNet(), UNIT, generator=1),
        TypeError,
        "loss-generator",
    ),
    case("model", lambda: train_basic_unet(zero_model, UNIT), TypeError, "train-model"),
    case("images", lambda: train_basic_unet(ZeroNet(), UNIT * NAN), id="train-images"),
    case(
        "n_epochs",
        lambda: train_basic_unet(ZeroNet(), UNIT, n_epochs=1.5),
        TypeError,
        "train-epochs",
    ),
    case(
        "batch_size",
        lambda: train_basic_unet(ZeroNet(), UNIT, batch_size=0),
        id="train-batch-size",
    ),
    case(
        "learning_rate",
        lambda: train_basic_unet(ZeroNet(), UNIT, learning_rate=NAN),
        id="train-lr",
    ),
    case(
        "generator",
        lambda: train_basic_unet(ZeroNet(), UNIT, generator=0, progress_bar=False),
        TypeError,
        "train-generator",
    ),
    case(
        "progress_bar",
        lambda: train_basic_unet(ZeroNet(), UNIT, progress_bar="no"),
        TypeError,
        "train-progress-bar",
    ),
]


@pytest.mark.parametrize("call, error, name", SCRATCH)
def test_scratch_rejects_bad_input(call, error, name):
    assert_rejects(call, error, name)


# --- snippets/metrics.py (save_grid and fid_floor are tested with the data and the CLI) ---

DIGITS = torch.zeros(4, 1, 16, 16)

METRICS = [
    case(
        "x",
        lambda: DigitClassifier().features(torch.zeros(2, 1, 8, 8)),
        id="features-x-shape",
    ),
    case(
        "x",
        lambda: DigitClassifier()(torch.zeros(2, 1, 16, 16, dtype=torch.int64)),
        TypeError,
        "forward-x-int",
    ),
    case("epochs", lambda: train_classifier(epochs=0), id="train-epochs"),
    case(
        "batch_size",
        lambda: train_classifier(batch_size=2.5),
        TypeError,
        "train-batch-size",
    ),
    case("seed", lambda: train_classifier(seed=-1), id="train-seed"),
    case(
        "directory", lambda: load_classifier(directory=3), TypeError, "load-directory"
    ),
    case("retrain", lambda: load_classifier(retrain="no"), TypeError, "load-retrain"),
    case(
        "features_1",
        lambda: frechet_distance(
            torch.full((3, 2), NAN).numpy(), torch.zeros(3, 2).numpy()
        ),
        id="fid-features-1",
    ),
    case(
        "features_2",
        lambda: frechet_distance(
            torch.zeros(3, 2).numpy(), torch.full((3, 2), INF).numpy()
        ),
        id="fid-features-2",
    ),
    case(
        "samples", lambda: digit_metrics(torch.zeros(4, 1, 8, 8)), id="metrics-samples"
    ),
    case(
        "classifier",
        lambda: digit_metrics(DIGITS, classifier=nn.Linear(1, 1)),
        TypeError,
        "metrics-classifier",
    ),
    case(
        "reference",
        lambda: digit_metrics(DIGITS, DigitClassifier(), torch.zeros(4, 1, 8, 8)),
        id="metrics-reference",
    ),
]


@pytest.mark.parametrize("call, error, name", METRICS)
def test_metrics_reject_bad_input(call, error, name):
    assert_rejects(call, error, name)


# --- snippets/training.py: TrainConfig and the pieces of the step ------------------------

TRAIN_CONFIG = [
    case("steps", lambda: TrainConfig(steps=2.5), TypeError, "steps"),
    case("minutes", lambda: TrainConfig(minutes=NAN), id="minutes"),
    case(
        "batch_size",
        lambda: TrainConfig(steps=1, batch_size=2.5),
        TypeError,
        "batch-size",
    ),
    case(
        "learning_rate",
        lambda: TrainConfig(steps=1, learning_rate=NAN),
        id="learning-rate-nan",
    ),
    case(
        "learning_rate",
        lambda: TrainConfig(steps=1, learning_rate=INF),
        id="learning-rate-inf",
    ),
    case(
        "lr_schedule",
        lambda: TrainConfig(steps=1, lr_schedule="linear"),
        id="lr-schedule",
    ),
    case(
        "warmup_steps",
        lambda: TrainConfig(steps=1, warmup_steps=NAN),
        TypeError,
        "warmup-nan",
    ),
    case(
        "warmup_steps",
        lambda: TrainConfig(steps=1, warmup_steps=-1),
        id="warmup-negative",
    ),
    case(
        "weight_decay",
        lambda: TrainConfig(steps=1, weight_decay=NAN),
        id="weight-decay",
    ),
    case("grad_clip", lambda: TrainConfig(steps=1, grad_clip=NAN), id="grad-clip-nan"),
    case(
        "grad_clip",
        lambda: TrainConfig(steps=1, grad_clip=-1.0),
        id="grad-clip-negative",
    ),
    case("ema_decay", lambda: TrainConfig(steps=1, ema_decay=NAN), id="ema-decay"),
    case("schedule", lambda: TrainConfig(steps=1, schedule="quadratic"), id="schedule"),
    case(
        "num_train_timesteps",
        lambda: TrainConfig(steps=1, num_train_timesteps=1e12),
        TypeError,
        "num-train-timesteps",
    ),
    case(
        "prediction_type",
        lambda: TrainConfig(steps=1, prediction_type="x0"),
        id="prediction-type",
    ),
    case(
        "min_snr_gamma",
        lambda: TrainConfig(steps=1, min_snr_gamma=NAN),
        id="min-snr-gamma",
    ),
    case("p_uncond", lambda: TrainConfig(steps=1, p_uncond=NAN), id="p-uncond"),
    case(
        "random_flip",
        lambda: TrainConfig(steps=1, random_flip="false"),
        TypeError,
        "random-flip",
    ),
    case("seed", lambda: TrainConfig(steps=1, seed=2**70), id="seed"),
    case(
        "mixed_precision",
        lambda: TrainConfig(steps=1, mixed_precision="fp8"),
        id="mixed-precision",
    ),
    case(
        "checkpoint_every",
        lambda: TrainConfig(steps=1, checkpoint_every=1.5),
        TypeError,
        "checkpoint-every",
    ),
    case("log_every", lambda: TrainConfig(steps=1, log_every=0), id="log-every"),
    case(
        "alpha_bar_t",
        lambda: min_snr_weight(torch.tensor([NAN]), 5.0, "epsilon"),
        id="min-snr-alpha-bar",
    ),
    case(
        "gamma",
        lambda: min_snr_weight(torch.tensor([0.5]), NAN, "epsilon"),
        id="min-snr-gamma-nan",
    ),
    case(
        "prediction_type",
        lambda: min_snr_weight(torch.tensor([0.5]), 5.0, "x0"),
        id="min-snr-prediction-type",
    ),
    case(
        "step",
        lambda: learning_rate_at(1.5, 0.5, TrainConfig(steps=2)),
        TypeError,
        "lr-at-step",
    ),
    case(
        "progress",
        lambda: learning_rate_at(1, NAN, TrainConfig(steps=2)),
        id="lr-at-progress",
    ),
    case(
        "config",
        lambda: learning_rate_at(1, 0.5, {"learning_rate": 1.0}),
        TypeError,
        "lr-at-config",
    ),
    case("decay", lambda: ema_update({}, ZeroNet(), NAN, 1), id="ema-decay-nan"),
    case("step", lambda: ema_update({}, ZeroNet(), 0.9, -1), id="ema-step"),
]


@pytest.mark.parametrize("call, error, name", TRAIN_CONFIG)
def test_training_rejects_bad_input(call, error, name):
    assert_rejects(call, error, name)


# --- snippets/with_diffusers.py ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_unet2dmodel():
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8, 8),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )


def test_with_diffusers_rejects_bad_input(tiny_unet2dmodel, tmp_path):
    from diffusers import DDPMScheduler

    from snippets.with_diffusers import (
        course_transform,
        digits_dataset,
        pipeline_from_checkpoint,
        sample_loop,
        show_images,
        train_loop,
        unet2dmodel_from_checkpoint,
    )

    # scheduler_from_checkpoint with a bogus prediction_type: tests/snippets/test_checkpoint.py
    # (a checkpoint folder is only valid with its manifest, which that file's helpers rewrite)
    shipped = Path(__file__).resolve().parents[2] / "checkpoints" / "digits"
    scheduler = DDPMScheduler(num_train_timesteps=20)
    unet = tiny_unet2dmodel
    cases = [
        (
            lambda: unet2dmodel_from_checkpoint(shipped, use_ema="yes"),
            TypeError,
            "use_ema",
        ),
        (lambda: pipeline_from_checkpoint(shipped, use_ema=1), TypeError, "use_ema"),
        (lambda: digits_dataset("validation"), ValueError, "split"),
        (lambda: course_transform(image_size=16.0), TypeError, "image_size"),
        (lambda: course_transform(channels=2), ValueError, "channels"),
        (lambda: course_transform(random_flip="no"), TypeError, "random_flip"),
        (lambda: course_transform(generator=0), TypeError, "generator"),
        (
            lambda: train_loop(unet, scheduler, [], None, num_epochs=1.5),
            TypeError,
            "num_epochs",
        ),
        (
            lambda: train_loop(unet, scheduler, [], None, max_steps=0),
            ValueError,
            "max_steps",
        ),
        (lambda: sample_loop(unet, scheduler, batch_size=2.5), TypeError, "batch_size"),
        (
            lambda: sample_loop(unet, scheduler, 1, num_inference_steps=0),
            ValueError,
            "num_inference_steps",
        ),
        (
            lambda: sample_loop(unet, scheduler, 1, num_inference_steps=21),
            ValueError,
            "num_inference_steps",
        ),
        (
            lambda: sample_loop(unet, scheduler, 1, 2, class_labels=torch.tensor([0])),
            ValueError,
            "class_labels",
        ),
        (
            lambda: sample_loop(unet, scheduler, 1, 2, guidance_scale=NAN),
            ValueError,
            "guidance_scale",
        ),
        (
            lambda: sample_loop(unet, scheduler, 1, 2, generator=0),
            TypeError,
            "generator",
        ),
        (lambda: show_images(torch.zeros(4, 4)), ValueError, "images"),
        (lambda: show_images(torch.zeros(2, 1, 4, 4), nrow=0), ValueError, "nrow"),
        (lambda: show_images(torch.zeros(2, 1, 4, 4), scale=1.5), TypeError, "scale"),
    ]
    for call, error, name in cases:
        assert_rejects(call, error, name)


# --- the issue's named cases, each with the good input next to it -----------------------


def test_named_cases_from_issue_15_work_with_good_input():
    assert math.isfinite(timestep_embedding(T, 4).sum().item())
    assert UNet(**{**TINY_UNET, "channels": [8, 8]}).config["channels"] == [8, 8]
    assert corrupt(X, torch.full((2,), 0.5)).shape == X.shape
    assert TrainConfig(steps=1, batch_size=2).batch_size == 2
    sigmas, timesteps = karras_timesteps(A_BAR, 4, rho=1.0)
    assert sigmas.shape == (5,) and timesteps.shape == (4,)


# --- snippets/unet.py: the building blocks ----------------------------------------------

F8 = torch.zeros(2, 8, 4, 4)
EMB = torch.zeros(2, 16)
RES = ResBlock(8, 8, 16, num_groups=4)
UP = UpBlock(8, 8, [8, 8], 16, False, False, 4, 4, 0.0, False)

BLOCKS = [
    case("in_dim", lambda: TimeEmbedding(0, 16), id="time-emb-in-dim"),
    case("dim", lambda: TimeEmbedding(8, 16.0), TypeError, "time-emb-dim"),
    case(
        "emb",
        lambda: TimeEmbedding(8, 16)(torch.zeros(2, 4)),
        id="time-emb-emb-shape",
    ),
    case(
        "emb",
        lambda: TimeEmbedding(8, 16)(torch.zeros(2, 8, dtype=torch.float64)),
        TypeError,
        "time-emb-emb-float64",
    ),
    case("in_channels", lambda: ResBlock(0, 8, 16, 4), id="res-in-channels"),
    case("out_channels", lambda: ResBlock(8, 6, 16, 4), id="res-out-channels-groups"),
    case("emb_dim", lambda: ResBlock(8, 8, -1, 4), id="res-emb-dim"),
    case("num_groups", lambda: ResBlock(8, 8, 16, 2.0), TypeError, "res-groups"),
    case("dropout", lambda: ResBlock(8, 8, 16, 4, dropout=NAN), id="res-dropout"),
    case(
        "use_scale_shift_norm",
        lambda: ResBlock(8, 8, 16, 4, use_scale_shift_norm=1),
        TypeError,
        "res-scale-shift",
    ),
    case("x", lambda: RES(torch.zeros(2, 4, 4, 4), EMB), id="res-x-channels"),
    case("x", lambda: RES(F8.long(), EMB), TypeError, "res-x-int64"),
    case("x", lambda: RES(F8[0], EMB), id="res-x-3d"),
    case("emb", lambda: RES(F8, torch.zeros(3, 16)), id="res-emb-batch"),
    case("emb", lambda: RES(F8, EMB.double()), TypeError, "res-emb-float64"),
    case("channels", lambda: SelfAttention(0), id="attention-channels"),
    case(
        "head_dim", lambda: SelfAttention(8, head_dim=3, num_groups=4), id="attn-head"
    ),
    case(
        "num_groups", lambda: SelfAttention(8, 4, num_groups=3), id="attention-groups"
    ),
    case(
        "x",
        lambda: SelfAttention(8, 4, 4)(torch.zeros(2, 8, 4, 4, dtype=torch.float64)),
        TypeError,
        "attention-x-float64",
    ),
    case("x", lambda: SelfAttention(8, 4, 4)(X), id="attention-x-channels"),
    case("channels", lambda: Downsample(0), id="downsample-channels"),
    case("x", lambda: Downsample(8)(X), id="downsample-x"),
    case("channels", lambda: Upsample(2.5), TypeError, "upsample-channels"),
    case("x", lambda: Upsample(8)(X.long()), TypeError, "upsample-x"),
    case(
        "num_res_blocks",
        lambda: DownBlock(8, 8, 16, 0, False, True, 4, 4, 0.0, False),
        id="down-res-blocks",
    ),
    case(
        "attention",
        lambda: DownBlock(8, 8, 16, 1, "yes", True, 4, 4, 0.0, False),
        TypeError,
        "down-attention",
    ),
    case(
        "downsample",
        lambda: DownBlock(8, 8, 16, 1, False, 1, 4, 4, 0.0, False),
        TypeError,
        "down-downsample",
    ),
    case(
        "x",
        lambda: DownBlock(8, 8, 16, 1, False, True, 4, 4, 0.0, False)(X, EMB),
        id="down-x",
    ),
    case(
        "attention",
        lambda: MidBlock(8, 16, None, 4, 4, 0.0, False),
        TypeError,
        "mid-attention",
    ),
    case(
        "emb",
        lambda: MidBlock(8, 16, False, 4, 4, 0.0, False)(F8, torch.zeros(2, 8)),
        id="mid-emb",
    ),
    case(
        "skip_channels",
        lambda: UpBlock(8, 8, [], 16, False, False, 4, 4, 0.0, False),
        id="up-skips-empty",
    ),
    case(
        "skip_channels",
        lambda: UpBlock(8, 8, [8.0], 16, False, False, 4, 4, 0.0, False),
        TypeError,
        "up-skips-float",
    ),
    case(
        "upsample",
        lambda: UpBlock(8, 8, [8], 16, False, "no", 4, 4, 0.0, False),
        TypeError,
        "up-upsample",
    ),
    case("skips", lambda: UP(F8, (F8, F8), EMB), TypeError, "up-skips-tuple"),
    case("skips", lambda: UP(F8, [F8], EMB), id="up-skips-too-few"),
]


@pytest.mark.parametrize("call, error, name", BLOCKS)
def test_unet_blocks_reject_bad_input(call, error, name):
    assert_rejects(call, error, name)


def test_unet_blocks_accept_good_input():
    assert RES(F8, EMB).shape == F8.shape
    assert UP(F8, [F8, F8], EMB).shape == F8.shape
    assert TimeEmbedding(8, 16)(torch.zeros(2, 8)).shape == (2, 16)


# --- class labels wherever they enter ---------------------------------------------------

COND_UNET = UNet(**TINY_UNET, num_classes=3)
X8 = torch.zeros(2, 1, 8, 8)

CLASS_LABELS = [
    case(
        "class_labels",
        lambda: DENOISER(X, torch.ones(2), torch.tensor([0.0, 1.0])),
        TypeError,
        "denoiser-labels-float",
    ),
    case(
        "class_labels",
        lambda: DENOISER(X, torch.ones(2), torch.tensor([0, 1, 2])),
        id="denoiser-labels-shape",
    ),
    case(
        "class_labels",
        lambda: DENOISER(X, torch.ones(2), torch.tensor([-1, 0])),
        id="denoiser-labels-negative",
    ),
    case(
        "class_labels",
        lambda: edm_loss(DENOISER, X, class_labels=torch.tensor([0, 1, 2])),
        id="edm-loss-labels-shape",
    ),
    case(
        "class_labels",
        lambda: edm_loss(DENOISER, X, class_labels=torch.tensor([True, False])),
        TypeError,
        "edm-loss-labels-bool",
    ),
    case(
        "class_labels",
        lambda: COND_UNET(X8, T, torch.tensor([[0, 1]])),
        id="unet-labels-2d",
    ),
    case(
        "class_labels",
        lambda: COND_UNET(X8, T, [0, 1]),
        TypeError,
        "unet-labels-list",
    ),
    case(
        "class_labels",
        lambda: diffusion_loss(
            COND_UNET, X8, A_BAR, class_labels=torch.tensor([0.5, 1])
        ),
        TypeError,
        "diffusion-loss-labels",
    ),
    case("model", lambda: diffusion_loss(None, X8, A_BAR), TypeError, "loss-model"),
    case("x0", lambda: diffusion_loss(ZeroNet(), X8[0], A_BAR), id="loss-x0"),
    case(
        "alpha_bar",
        lambda: diffusion_loss(ZeroNet(), X8, A_BAR * NAN),
        id="loss-alpha-bar",
    ),
    case(
        "generator",
        lambda: diffusion_loss(ZeroNet(), X8, A_BAR, generator=0),
        TypeError,
        "loss-generator",
    ),
    case(
        "labels",
        lambda: train(COND_UNET, X8, torch.tensor([0, 3]), TrainConfig(steps=1)),
        id="train-labels-range",
    ),
    case(
        "labels",
        lambda: train(COND_UNET, X8, torch.tensor([0.0, 1.0]), TrainConfig(steps=1)),
        TypeError,
        "train-labels-float",
    ),
    case("images", lambda: train(COND_UNET, X8[0]), id="train-images"),
    case("model", lambda: train(zero_model, X8), TypeError, "train-model"),
    case(
        "config",
        lambda: train(ZeroNet(), X8, config={"steps": 1}),
        TypeError,
        "train-config",
    ),
    case(
        "resume",
        lambda: train(ZeroNet(), X8, config=TrainConfig(steps=1), resume="no"),
        TypeError,
        "train-resume",
    ),
]


@pytest.mark.parametrize("call, error, name", CLASS_LABELS)
def test_class_labels_are_checked_where_they_enter(call, error, name):
    assert_rejects(call, error, name)


def test_cfg_guided_closure_checks_its_inputs():
    guided = cfg_model(zero_model, LABELS, 2.0, 10)
    assert guided(X, T).shape == X.shape
    assert guided(X, torch.tensor(5)).shape == X.shape
    for call, error, name in [
        (lambda: guided(torch.zeros(3, 1, 4, 4), T), ValueError, "x"),
        (lambda: guided(X_NAN, T), ValueError, "x"),
        (lambda: guided(X_INT, T), TypeError, "x"),
        (lambda: guided(X, torch.tensor([1.0, NAN])), ValueError, "t"),
        (lambda: guided(X, torch.tensor([1, 2, 3])), ValueError, "t"),
        (lambda: guided(X, "5"), TypeError, "t"),
    ]:
        assert_rejects(call, error, name)


# --- snippets/inversion.py, sdedit.py, inpainting.py, interpolation.py -----------------

MASK = torch.ones(2, 1, 4, 4)
T0 = torch.tensor(3)


def t0_prev(value):
    return torch.tensor(value)


EDITING = [
    case("model", lambda: ddim_invert(None, X, SCHEDULE, 4), TypeError, "invert-model"),
    case("x0", lambda: ddim_invert(zero_model, X_NAN, SCHEDULE, 4), id="invert-x0"),
    case(
        "schedule",
        lambda: ddim_invert(zero_model, X, A_BAR, 4),
        TypeError,
        "invert-schedule",
    ),
    case(
        "num_inference_steps",
        lambda: ddim_invert(zero_model, X, SCHEDULE, 4.0),
        TypeError,
        "invert-steps",
    ),
    case(
        "num_inference_steps",
        lambda: ddim_invert(zero_model, X, SCHEDULE, 101),
        id="invert-steps-over-T",
    ),
    case(
        "prediction_type",
        lambda: ddim_invert(zero_model, X, SCHEDULE, 4, prediction_type="x"),
        id="invert-prediction-type",
    ),
    case("eta", lambda: ddim_invert(zero_model, X, SCHEDULE, 4, eta=NAN), id="inv-eta"),
    case(
        "timestep_spacing",
        lambda: ddim_invert(zero_model, X, SCHEDULE, 4, timestep_spacing="linspace"),
        id="invert-spacing",
    ),
    case(
        "clip_sample",
        lambda: ddim_invert(zero_model, X, SCHEDULE, 4, clip_sample=1),
        TypeError,
        "invert-clip",
    ),
    case(
        "clip_sample_range",
        lambda: ddim_invert(zero_model, X, SCHEDULE, 4, clip_sample_range=NAN),
        id="invert-clip-range",
    ),
    case(
        "eta",
        lambda: ddim_round_trip(zero_model, X, SCHEDULE, 4, eta=0.5),
        id="round-trip-eta",
    ),
    case(
        "num_inference_steps",
        lambda: img2img_timesteps(100, 0, 0.5),
        id="img2img-steps",
    ),
    case(
        "num_train_timesteps",
        lambda: img2img_timesteps(100.0, 4, 0.5),
        TypeError,
        "img2img-T",
    ),
    case("strength", lambda: img2img_timesteps(100, 4, NAN), id="img2img-strength"),
    case(
        "timestep_spacing",
        lambda: img2img_timesteps(100, 4, 0.5, "x"),
        id="img2img-spacing",
    ),
    case("model", lambda: sdedit(None, X, SCHEDULE, 0.5, 4), TypeError, "sdedit-model"),
    case("x0", lambda: sdedit(zero_model, X_INT, SCHEDULE, 0.5, 4), TypeError, "sd-x0"),
    case(
        "schedule",
        lambda: sdedit(zero_model, X, None, 0.5, 4),
        TypeError,
        "sdedit-schedule",
    ),
    case("strength", lambda: sdedit(zero_model, X, SCHEDULE, 1.5, 4), id="sd-strength"),
    case(
        "num_inference_steps",
        lambda: sdedit(zero_model, X, SCHEDULE, 0.5, 0),
        id="sdedit-steps",
    ),
    case(
        "sampler",
        lambda: sdedit(zero_model, X, SCHEDULE, 0.5, 4, sampler="euler"),
        id="sdedit-sampler",
    ),
    case(
        "prediction_type",
        lambda: sdedit(zero_model, X, SCHEDULE, 0.5, 4, prediction_type="v"),
        id="sdedit-prediction-type",
    ),
    case(
        "noise",
        lambda: sdedit(zero_model, X, SCHEDULE, 0.5, 4, noise=X[:1]),
        id="sdedit-noise",
    ),
    case(
        "generator",
        lambda: sdedit(zero_model, X, SCHEDULE, 0.5, 4, generator=0),
        TypeError,
        "sdedit-generator",
    ),
    case(
        "timestep_spacing",
        lambda: sdedit(zero_model, X, SCHEDULE, 0.5, 4, timestep_spacing="x"),
        id="sdedit-spacing",
    ),
    case("mask", lambda: check_mask([1, 0], X), TypeError, "mask-list"),
    case("mask", lambda: check_mask(MASK * 0.5, X), id="mask-values"),
    case("mask", lambda: check_mask(torch.ones(3, 1, 4, 4), X), id="mask-shape"),
    case("mask", lambda: check_mask(X_NAN, X), id="mask-nan"),
    case("x0", lambda: check_mask(MASK, X_INT), TypeError, "mask-x0"),
    case("model", lambda: inpaint(None, X, MASK, SCHEDULE, 4), TypeError, "inp-model"),
    case("x0", lambda: inpaint(zero_model, X_NAN, MASK, SCHEDULE, 4), id="inpaint-x0"),
    case(
        "mask",
        lambda: inpaint(zero_model, X, MASK[0], SCHEDULE, 4),
        id="inpaint-mask",
    ),
    case(
        "schedule",
        lambda: inpaint(zero_model, X, MASK, A_BAR, 4),
        TypeError,
        "inpaint-schedule",
    ),
    case(
        "num_inference_steps",
        lambda: inpaint(zero_model, X, MASK, SCHEDULE, 0),
        id="inpaint-steps",
    ),
    case(
        "prediction_type",
        lambda: inpaint(zero_model, X, MASK, SCHEDULE, 4, prediction_type="x"),
        id="inpaint-prediction-type",
    ),
    case(
        "generator",
        lambda: inpaint(zero_model, X, MASK, SCHEDULE, 4, generator=1),
        TypeError,
        "inpaint-generator",
    ),
    case(
        "x_T",
        lambda: inpaint(zero_model, X, MASK, SCHEDULE, 4, x_T=X[:1]),
        id="inpaint-x-T",
    ),
    case(
        "clip_sample",
        lambda: inpaint(zero_model, X, MASK, SCHEDULE, 4, clip_sample="yes"),
        TypeError,
        "inpaint-clip",
    ),
    case(
        "jump_length",
        lambda: repaint(zero_model, X, MASK, SCHEDULE, 4, jump_length=0),
        id="repaint-jump-length",
    ),
    case(
        "jump_n_sample",
        lambda: repaint(zero_model, X, MASK, SCHEDULE, 4, jump_n_sample=1.5),
        TypeError,
        "repaint-jump-n-sample",
    ),
    case(
        "x_T",
        lambda: repaint(zero_model, X, MASK, SCHEDULE, 4, x_T=X_NAN),
        id="repaint-x-T",
    ),
    case(
        "num_train_timesteps",
        lambda: repaint_timesteps(0, 4),
        id="repaint-timesteps-T",
    ),
    case(
        "num_inference_steps",
        lambda: repaint_timesteps(100, 101),
        id="repaint-timesteps-N",
    ),
    case(
        "model",
        lambda: inpaint_step(None, X, T0, t0_prev(2), X, MASK.bool(), SCHEDULE),
        TypeError,
        "step-model",
    ),
    case(
        "x",
        lambda: inpaint_step(
            zero_model, X_NAN, T0, t0_prev(2), X, MASK.bool(), SCHEDULE
        ),
        id="step-x",
    ),
    case(
        "t",
        lambda: inpaint_step(
            zero_model, X, torch.tensor(3.0), t0_prev(2), X, MASK.bool(), SCHEDULE
        ),
        TypeError,
        "step-t-float",
    ),
    case(
        "t",
        lambda: inpaint_step(
            zero_model, X, torch.tensor(100), t0_prev(2), X, MASK.bool(), SCHEDULE
        ),
        id="step-t-range",
    ),
    case(
        "t_prev",
        lambda: inpaint_step(zero_model, X, T0, t0_prev(3), X, MASK.bool(), SCHEDULE),
        id="step-t-prev",
    ),
    case(
        "t_prev",
        lambda: inpaint_step(zero_model, X, T0, t0_prev(-5), X, MASK.bool(), SCHEDULE),
        id="step-t-prev-negative",
    ),
    case(
        "x0",
        lambda: inpaint_step(
            zero_model, X, T0, t0_prev(2), X[:1], MASK.bool(), SCHEDULE
        ),
        id="step-x0",
    ),
    case(
        "mask",
        lambda: inpaint_step(zero_model, X, T0, t0_prev(2), X, MASK, SCHEDULE),
        TypeError,
        "step-mask",
    ),
    case(
        "schedule",
        lambda: inpaint_step(zero_model, X, T0, t0_prev(2), X, MASK.bool(), None),
        TypeError,
        "step-schedule",
    ),
    case(
        "prediction_type",
        lambda: inpaint_step(
            zero_model, X, T0, t0_prev(2), X, MASK.bool(), SCHEDULE, prediction_type="e"
        ),
        id="step-prediction-type",
    ),
    case(
        "generator",
        lambda: inpaint_step(
            zero_model, X, T0, t0_prev(2), X, MASK.bool(), SCHEDULE, generator=0
        ),
        TypeError,
        "step-generator",
    ),
    case(
        "clip_sample",
        lambda: inpaint_step(
            zero_model, X, T0, t0_prev(2), X, MASK.bool(), SCHEDULE, clip_sample=0
        ),
        TypeError,
        "step-clip",
    ),
    case("x0", lambda: lerp(X_NAN, X, 0.5), id="lerp-x0"),
    case("x1", lambda: lerp(X, X_INT, 0.5), TypeError, "lerp-x1"),
    case("x1", lambda: lerp(X, X[:1], 0.5), id="lerp-shape"),
    case("alpha", lambda: lerp(X, X, NAN), id="lerp-alpha-nan"),
    case("alpha", lambda: lerp(X, X, True), TypeError, "lerp-alpha-bool"),
    case("alpha", lambda: slerp(X, X, 1.5), id="slerp-alpha"),
    case("x0", lambda: slerp(torch.zeros(3), torch.zeros(3), 0.5), id="slerp-x0-1d"),
    case("dot_threshold", lambda: slerp(X, X, 0.5, NAN), id="slerp-threshold"),
]


@pytest.mark.parametrize("call, error, name", EDITING)
def test_editing_modules_reject_bad_input(call, error, name):
    assert_rejects(call, error, name)


def test_flow_sample_refuses_shift_with_explicit_sigmas():
    sigmas = torch.tensor([1.0, 0.5, 0.0])
    assert flow_sample(zero_model, X, 2, sigmas=sigmas).shape == X.shape
    assert_rejects(
        lambda: flow_sample(zero_model, X, 2, shift=3.0, sigmas=sigmas),
        ValueError,
        "shift",
    )
    assert_rejects(
        lambda: flow_sample(zero_model, X, 2, shift=NAN), ValueError, "shift"
    )


# --- snippets/checkpoint.py: generate ----------------------------------------------------


def test_generate_rejects_bad_input():
    from snippets.checkpoint import generate, load_checkpoint

    shipped = load_checkpoint(
        Path(__file__).resolve().parents[2] / "checkpoints/digits"
    )
    for call, error, name in [
        (lambda: generate("digits", 2), TypeError, "checkpoint"),
        (lambda: generate(shipped, 2.0), TypeError, "n"),
        (lambda: generate(shipped, 0), ValueError, "n"),
        (lambda: generate(shipped, 2, "plms"), ValueError, "sampler"),
        (lambda: generate(shipped, 2, "ddim", 0), ValueError, "num_inference_steps"),
        (
            lambda: generate(shipped, 2, class_labels=torch.tensor([0.0, 1.0])),
            TypeError,
            "class_labels",
        ),
        (
            lambda: generate(shipped, 2, class_labels=torch.tensor([0, 10])),
            ValueError,
            "class_labels",
        ),
        (
            lambda: generate(shipped, 2, class_labels=torch.tensor([0, 1, 2])),
            ValueError,
            "class_labels",
        ),
        (
            lambda: generate(shipped, 2, guidance_scale=NAN),
            ValueError,
            "guidance_scale",
        ),
        (lambda: generate(shipped, 2, generator=0), TypeError, "generator"),
        (lambda: generate(shipped, 2, batch_size=0), ValueError, "batch_size"),
    ]:
        assert_rejects(call, error, name)


# --- snippets/inversion.py, sdedit.py, inpainting.py, interpolation.py, sketch.py -------


STROKE = torch.tensor([[0.2, 0.2], [0.8, 0.8]])


def invert(**kw):
    args = dict(model=zero_model, x0=X, schedule=SCHEDULE, num_inference_steps=4)
    args.update(kw)
    return lambda: ddim_invert(**args)


def edit(**kw):
    args = dict(model=zero_model, x0=X, schedule=SCHEDULE, strength=0.5)
    args.update(num_inference_steps=4)
    args.update(kw)
    return lambda: sdedit(**args)


def fill(function, **kw):
    args = dict(model=zero_model, x0=X, mask=MASK, schedule=SCHEDULE)
    args.update(num_inference_steps=4)
    args.update(kw)
    return lambda: function(**args)


EDITING_BY_KEYWORD = [
    case("x0", invert(x0=X_INT), TypeError, "invert-x0-int"),
    case("x0", invert(x0=X_NAN), id="invert-x0-nan"),
    case("x0", invert(x0=X[0]), id="invert-x0-3d"),
    case("schedule", invert(schedule=A_BAR), TypeError, "invert-schedule"),
    case("num_inference_steps", invert(num_inference_steps=0), id="invert-steps-0"),
    case("prediction_type", invert(prediction_type="noise"), id="invert-prediction"),
    # a stochastic sampler cannot be inverted
    case("eta", invert(eta=0.5), id="invert-eta-stochastic"),
    case("eta", invert(eta="0"), id="invert-eta-str"),
    case("clip_sample", invert(clip_sample="yes"), TypeError, "invert-clip"),
    case("x0", edit(x0=X_INT, strength=0.0), TypeError, "sdedit-x0-int"),
    case("x0", edit(x0=X_NAN), id="sdedit-x0-nan"),
    case("schedule", edit(schedule=None), TypeError, "sdedit-schedule"),
    case("strength", edit(strength=1.5), id="sdedit-strength-above-1"),
    case("strength", edit(strength=-0.1), id="sdedit-strength-below-0"),
    case("strength", edit(strength=NAN), id="sdedit-strength-nan"),
    case("noise", edit(noise=torch.zeros(3, 1, 4, 4)), id="sdedit-noise-shape"),
    case("generator", edit(generator=0), TypeError, "sdedit-generator"),
    case(
        "num_train_timesteps",
        lambda: img2img_timesteps(100.0, 4, 0.5),
        TypeError,
        "img2img-T",
    ),
    *(
        c
        for f in (inpaint, repaint)
        for c in [
            case("model", fill(f, model=None), TypeError, f"{f.__name__}-model"),
            case("x0", fill(f, x0=X_INT), TypeError, f"{f.__name__}-x0-int"),
            case("x0", fill(f, x0=X_NAN), id=f"{f.__name__}-x0-nan"),
            case("mask", fill(f, mask=[1]), TypeError, f"{f.__name__}-mask-list"),
            case(
                "mask",
                fill(f, mask=torch.ones(2, 1, 4, 5)),
                id=f"{f.__name__}-mask-shape",
            ),
            case("mask", fill(f, mask=MASK * 0.5), id=f"{f.__name__}-mask-half"),
            case("schedule", fill(f, schedule=None), TypeError, f"{f.__name__}-sched"),
            case(
                "num_inference_steps",
                fill(f, num_inference_steps=0),
                id=f"{f.__name__}-steps",
            ),
            case(
                "prediction_type",
                fill(f, prediction_type="z"),
                id=f"{f.__name__}-prediction",
            ),
            case("generator", fill(f, generator=1), TypeError, f"{f.__name__}-gen"),
            case("x_T", fill(f, x_T=X[:1]), id=f"{f.__name__}-x_T-shape"),
            case(
                "clip_sample", fill(f, clip_sample=1), TypeError, f"{f.__name__}-clip"
            ),
        ]
    ),
    case(
        "jump_n_sample",
        fill(repaint, jump_n_sample=1.5),
        TypeError,
        "repaint-jump-n-sample",
    ),
    case(
        "num_train_timesteps",
        lambda: repaint_timesteps(100.5, 4),
        TypeError,
        "repaint-timesteps-T",
    ),
    case("alpha", lambda: lerp(X, X, 1.5), id="lerp-alpha"),
    case("x0", lambda: slerp(X_NAN, X, 0.5), id="slerp-x0-nan"),
    case("x1", lambda: slerp(X + 1, X, 0.5), id="slerp-x1-zero"),
    case(
        "dot_threshold",
        lambda: slerp(X + 1, X + 2, 0.5, dot_threshold=0),
        id="slerp-dot-threshold",
    ),
    case("strokes", lambda: rasterise_strokes([]), id="rasterise-strokes-empty"),
    case(
        "strokes",
        lambda: rasterise_strokes([torch.zeros(3, 3)]),
        id="rasterise-strokes-shape",
    ),
    case("size", lambda: rasterise_strokes([STROKE], size=1), id="rasterise-size"),
    case(
        "pen_width",
        lambda: rasterise_strokes([STROKE], pen_width=0),
        id="rasterise-pen-width",
    ),
    case(
        "labels",
        lambda: sketch_digits(torch.tensor([10])),
        id="sketch-labels-range",
    ),
    case(
        "labels",
        lambda: sketch_digits(torch.tensor([1.0])),
        TypeError,
        "sketch-labels-float",
    ),
    case(
        "jitter", lambda: sketch_digits(torch.tensor([1]), jitter=2), id="sketch-jitter"
    ),
    case(
        "generator",
        lambda: sketch_digits(torch.tensor([1]), generator=0),
        TypeError,
        "sketch-generator",
    ),
]


@pytest.mark.parametrize("call, error, name", EDITING_BY_KEYWORD)
def test_editing_rejects_bad_keyword_arguments(call, error, name):
    assert_rejects(call, error, name)


def test_editing_accepts_good_input():
    assert ddim_invert(zero_model, X, SCHEDULE, 4).shape == X.shape
    assert sdedit(zero_model, X, SCHEDULE, 0.5, 4).shape == X.shape
    assert torch.equal(inpaint(zero_model, X, MASK, SCHEDULE, 4), X)
    assert (
        repaint(zero_model, X, MASK.bool(), SCHEDULE, 4, jump_length=2).shape == X.shape
    )
    assert slerp(X + 1, X + 2, 0.5).shape == lerp(X, X, 0.5).shape == X.shape
    assert sketch_digits(torch.tensor([3])).shape == (1, 1, 16, 16)


# --- snippets/classifier_guidance.py and loss_guidance.py -------------------------------


class TenClasses(nn.Module):
    num_classes = 10

    def forward(self, x, t):
        return x.flatten(1)[:, :10] * 0


CLF = TenClasses()
CG_LABELS = torch.tensor([3, 7])
X16 = torch.zeros(2, 1, 16, 16)


class UnconditionalNet(nn.Module):
    config = {"num_classes": None}

    def forward(self, x, t, class_labels=None):
        return torch.zeros_like(x)


class ConditionalNet(UnconditionalNet):
    config = {"num_classes": 10}


def cg(**kwargs):
    args = dict(
        model=zero_model,
        classifier=CLF,
        class_labels=CG_LABELS,
        classifier_scale=1.0,
        alpha_bar=A_BAR,
    )
    return lambda: cg_model(**{**args, **kwargs})


def cg_ddpm(**kwargs):
    args = dict(
        model=zero_model,
        classifier=CLF,
        class_labels=CG_LABELS,
        x_T=X,
        schedule=SCHEDULE,
        num_inference_steps=2,
    )
    return lambda: cg_ddpm_sample(**{**args, **kwargs})


def loss_ddim(**kwargs):
    args = dict(
        model=zero_model,
        loss_fn=lambda x: ink_loss(x, 0.5),
        x_T=X,
        schedule=SCHEDULE,
        num_inference_steps=2,
        guidance_scale=1.0,
    )
    return lambda: loss_guided_ddim_sample(**{**args, **kwargs})


CLASSIFIER_GUIDANCE = [
    case("num_classes", lambda: NoisyDigitClassifier(num_classes=1)),
    case("width", lambda: NoisyDigitClassifier(width=0)),
    case("x", lambda: NoisyDigitClassifier()(X, T), id="noisy-classifier-x-shape"),
    case(
        "t",
        lambda: NoisyDigitClassifier()(X16, torch.tensor([1, 2, 3])),
        id="noisy-classifier-t-shape",
    ),
    case("classifier", lambda: TimeBlind(None), TypeError, "time-blind"),
    case(
        "schedule", lambda: train_noisy_classifier(None, 1), TypeError, "train-schedule"
    ),
    case("steps", lambda: train_noisy_classifier(SCHEDULE, 0), id="train-steps"),
    case(
        "learning_rate",
        lambda: train_noisy_classifier(SCHEDULE, 1, learning_rate=-1.0),
        id="train-lr",
    ),
    case("directory", lambda: load_noisy_classifier(3), TypeError, "load-directory"),
    case(
        "classifier",
        lambda: classifier_log_prob_grad(None, X, T, CG_LABELS),
        TypeError,
        "grad-classifier",
    ),
    case(
        "x_t", lambda: classifier_log_prob_grad(CLF, X_NAN, T, CG_LABELS), id="grad-x-t"
    ),
    case(
        "class_labels",
        lambda: classifier_log_prob_grad(CLF, X, T, torch.tensor([3, 10])),
        id="grad-labels-out-of-range",
    ),
    case(
        "class_labels",
        lambda: classifier_log_prob_grad(CLF, X, T, torch.tensor([3.0, 1.0])),
        TypeError,
        "grad-labels-float",
    ),
    case("model", cg(model=None), TypeError, "cg-model"),
    case("classifier", cg(classifier=None), TypeError, "cg-classifier"),
    case("classifier", cg(num_classes=5), id="cg-classifier-num-classes-mismatch"),
    case(
        "class_labels", cg(class_labels=torch.tensor([-1, 2])), id="cg-labels-negative"
    ),
    case(
        "class_labels", cg(class_labels=torch.tensor([0, 12])), id="cg-labels-too-large"
    ),
    case("classifier_scale", cg(classifier_scale=NAN), id="cg-scale-nan"),
    case("classifier_scale", cg(classifier_scale=-1.0), id="cg-scale-negative"),
    case("alpha_bar", cg(alpha_bar=A_BAR * 2), id="cg-alpha-bar"),
    case("prediction_type", cg(prediction_type="x"), id="cg-prediction-type"),
    case("x_T", cg_ddpm(x_T=X_NAN), id="cg-ddpm-x-t"),
    case("classifier_scale", cg_ddpm(classifier_scale=INF), id="cg-ddpm-scale"),
    case(
        "class_labels",
        cg_ddpm(class_labels=torch.tensor([1, 2, 3])),
        id="cg-ddpm-labels-batch",
    ),
    case("clip_sample", cg_ddpm(clip_sample=1), TypeError, "cg-ddpm-clip"),
    case(
        "model",
        lambda: cfg_model(UnconditionalNet(), LABELS, 3.0, 10),
        id="cfg-on-an-unconditional-model",
    ),
    case(
        "null_label",
        lambda: cfg_model(ConditionalNet(), LABELS, 3.0, 11),
        id="cfg-null-label-not-the-models",
    ),
    case("x", lambda: ink(torch.zeros(4, 4)), id="ink-x"),
    case("target", lambda: ink_loss(X, 1.5), id="ink-target"),
    case("loss_fn", loss_ddim(loss_fn=None), TypeError, "loss-fn"),
    case("loss_fn", loss_ddim(loss_fn=lambda x: x.sum()), id="loss-fn-not-per-image"),
    case("guidance_scale", loss_ddim(guidance_scale=NAN), id="loss-scale-nan"),
    case("guidance_scale", loss_ddim(guidance_scale=-2.0), id="loss-scale-negative"),
    case("gradient_through", loss_ddim(gradient_through="eps"), id="loss-through"),
    case("x_T", loss_ddim(x_T=X_INT), TypeError, "loss-x-t"),
]


@pytest.mark.parametrize("call, error, name", CLASSIFIER_GUIDANCE)
def test_classifier_and_loss_guidance_reject_bad_input(call, error, name):
    assert_rejects(call, error, name)


def test_classifier_and_loss_guidance_work_with_good_input():
    assert cg(num_classes=10)()(X, T).shape == X.shape
    assert cg_ddpm()().shape == X.shape
    assert loss_ddim()().shape == X.shape
    guided = cfg_model(ConditionalNet(), LABELS, 3.0, 10)
    assert guided(X, T).shape == X.shape


# --- snippets/finetuning.py -------------------------------------------------------------

_SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "digits"
_CKPT_CONFIG = {
    "schedule": {"name": "cosine", "num_train_timesteps": 1000},
    "prediction_type": "v_prediction",
}


def _finetuning_cases():
    from snippets.finetuning import (
        finetune_config,
        init_from_checkpoint,
        load_transformed_digits,
        transform_images,
    )

    unit = torch.zeros(2, 1, 4, 4)
    return [
        case("images", lambda: transform_images([[0.0]]), TypeError, "ft-images-type"),
        case("images", lambda: transform_images(X_INT), TypeError, "ft-images-int"),
        case("images", lambda: transform_images(X_NAN), id="ft-images-nan"),
        case("images", lambda: transform_images(unit + 2), id="ft-images-range"),
        case("images", lambda: transform_images(unit[0]), id="ft-images-ndim"),
        case("name", lambda: transform_images(unit, "fat"), id="ft-name"),
        case("name", lambda: transform_images(unit, None), id="ft-name-none"),
        case("split", lambda: load_transformed_digits("val"), id="ft-split"),
        case("name", lambda: load_transformed_digits("test", "fat"), id="ft-load-name"),
        case(
            "image_size",
            lambda: load_transformed_digits("test", "thick", 4),
            id="ft-load-size",
        ),
        case(
            "model",
            lambda: init_from_checkpoint(zero_model, _SHIPPED),
            TypeError,
            "ft-model-function",
        ),
        case(
            "model",
            lambda: init_from_checkpoint(ZeroNet(), _SHIPPED),
            TypeError,
            "ft-model-no-config",
        ),
        case(
            "directory",
            lambda: init_from_checkpoint(UNet(**TINY_UNET), 3),
            TypeError,
            "ft-directory",
        ),
        case(
            "checkpoint_config",
            lambda: finetune_config("checkpoints/digits", 10),
            TypeError,
            "ft-config-type",
        ),
        case(
            "checkpoint_config",
            lambda: finetune_config({"schedule": {"name": "cosine"}}, 10),
            id="ft-config-keys",
        ),
        case("steps", lambda: finetune_config(_CKPT_CONFIG, 0), id="ft-steps"),
        case(
            "learning_rate",
            lambda: finetune_config(_CKPT_CONFIG, 10, NAN),
            id="ft-lr",
        ),
        case(
            "warmup_steps",
            lambda: finetune_config(_CKPT_CONFIG, 10, 1e-4, -1),
            id="ft-warmup",
        ),
        case(
            "batch_size",
            lambda: finetune_config(_CKPT_CONFIG, 10, batch_size=0),
            id="ft-override",
        ),
    ]


@pytest.mark.parametrize("call, error, name", _finetuning_cases())
def test_finetuning_rejects_bad_input(call, error, name):
    assert_rejects(call, error, name)


def test_finetuning_good_input_next_to_the_bad():
    from snippets.finetuning import finetune_config, transform_images

    unit = torch.zeros(2, 1, 4, 4)
    assert transform_images(unit, "thick").shape == unit.shape
    config = finetune_config(_CKPT_CONFIG, 10, batch_size=8)
    assert (config.steps, config.batch_size, config.lr_schedule) == (10, 8, "constant")
    assert config.prediction_type == "v_prediction" and config.minutes is None


# --- the samplers' step functions and their ONNX export ----------------------------------

from snippets.dpm_solver import dpm_solver_pp_2m_step  # noqa: E402
from snippets.karras import euler_step  # noqa: E402
from snippets.onnx_export import (  # noqa: E402
    SamplerStep,
    example_inputs,
    export_step,
    step_schedule,
)
from snippets.sampling import ddim_step, ddpm_step  # noqa: E402


def _identity(x, t):
    return x


_t, _tp, _one = torch.tensor(5), torch.tensor(3), torch.tensor(1.0)
_half = torch.tensor(0.5)


def _dpm(**kw):
    args = dict(
        model=_identity,
        x=X,
        x0_prev=X,
        t=_t,
        alpha_t=_half,
        sigma_t=_half,
        alpha_next=_half,
        sigma_next=_half,
        h=_half,
        inv_r=_half,
    )
    return dpm_solver_pp_2m_step(**{**args, **kw})


STEPS = [
    case("model", lambda: ddpm_step(0, X, _t, _tp, A_BAR, X), TypeError, "ddpm-model"),
    case("x", lambda: ddpm_step(_identity, X * NAN, _t, _tp, A_BAR, X), id="ddpm-x"),
    case(
        "t",
        lambda: ddpm_step(_identity, X, _t * 1.0, _tp, A_BAR, X),
        TypeError,
        "ddpm-t",
    ),
    case(
        "t_prev",
        lambda: ddpm_step(_identity, X, _t, _t + 1, A_BAR, X),
        id="ddpm-t-prev",
    ),
    case(
        "alpha_bar",
        lambda: ddpm_step(_identity, X, _t, _tp, A_BAR + 1, X),
        id="ddpm-a-bar",
    ),
    case(
        "noise", lambda: ddpm_step(_identity, X, _t, _tp, A_BAR, X[:1]), id="ddpm-noise"
    ),
    case(
        "prediction_type",
        lambda: ddpm_step(_identity, X, _t, _tp, A_BAR, X, prediction_type="x"),
        id="ddpm-prediction-type",
    ),
    case(
        "model",
        lambda: ddim_step(0, X, _t, _tp, A_BAR, _one, 0.0, X),
        TypeError,
        "ddim-model",
    ),
    case(
        "x",
        lambda: ddim_step(_identity, X * NAN, _t, _tp, A_BAR, _one, 0.0, X),
        id="ddim-x",
    ),
    case(
        "t",
        lambda: ddim_step(_identity, X, _t * 1.0, _tp, A_BAR, _one, 0.0, X),
        TypeError,
        "ddim-t",
    ),
    case(
        "t_prev",
        lambda: ddim_step(_identity, X, _t, _tp * 1.0, A_BAR, _one, 0.0, X),
        TypeError,
        "ddim-t-prev",
    ),
    case(
        "alpha_bar",
        lambda: ddim_step(_identity, X, _t, _tp, A_BAR + 1, _one, 0.0, X),
        id="ddim-a-bar",
    ),
    case(
        "final_alpha_bar",
        lambda: ddim_step(_identity, X, _t, _tp, A_BAR, _one * 2, 0.0, X),
        id="ddim-final-a-bar",
    ),
    case(
        "eta",
        lambda: ddim_step(_identity, X, _t, _tp, A_BAR, _one, 1.5, X),
        id="ddim-eta",
    ),
    case(
        "noise",
        lambda: ddim_step(_identity, X, _t, _tp, A_BAR, _one, 0.0, X[:1]),
        id="ddim-noise",
    ),
    case(
        "prediction_type",
        lambda: ddim_step(
            _identity, X, _t, _tp, A_BAR, _one, 0.0, X, prediction_type="x"
        ),
        id="ddim-prediction-type",
    ),
    case(
        "model",
        lambda: euler_step(0, X, _t, _one, _one, _half, X),
        TypeError,
        "euler-model",
    ),
    case(
        "x",
        lambda: euler_step(_identity, X * NAN, _t, _one, _one, _half, X),
        id="euler-x",
    ),
    case(
        "sigma",
        lambda: euler_step(_identity, X, _t, _one * 0, _one, _half, X),
        id="euler-sigma",
    ),
    case(
        "sigma_hat",
        lambda: euler_step(_identity, X, _t, _one, _half, _half, X),
        id="euler-sigma-hat",
    ),
    case(
        "sigma_next",
        lambda: euler_step(_identity, X, _t, _one, _one, -_half, X),
        id="euler-sigma-next",
    ),
    case(
        "noise",
        lambda: euler_step(_identity, X, _t, _one, _one, _half, X[:1]),
        id="euler-noise",
    ),
    case(
        "prediction_type",
        lambda: euler_step(_identity, X, _t, _one, _one, _half, X, prediction_type="x"),
        id="euler-prediction-type",
    ),
    case("model", lambda: _dpm(model=0), TypeError, "dpm-model"),
    case("x", lambda: _dpm(x=X * NAN), id="dpm-x"),
    case("x0_prev", lambda: _dpm(x0_prev=X[:1]), id="dpm-x0-prev"),
    case("alpha_t", lambda: _dpm(alpha_t=-_half), id="dpm-alpha-t"),
    case("sigma_t", lambda: _dpm(sigma_t=_half * 0), id="dpm-sigma-t"),
    case("alpha_next", lambda: _dpm(alpha_next=_half * NAN), id="dpm-alpha-next"),
    case("sigma_next", lambda: _dpm(sigma_next=-_half), id="dpm-sigma-next"),
    case("h", lambda: _dpm(h=-_half), id="dpm-h"),
    case("inv_r", lambda: _dpm(inv_r=-_half), id="dpm-inv-r"),
    case(
        "prediction_type", lambda: _dpm(prediction_type="x"), id="dpm-prediction-type"
    ),
    case(
        "model",
        lambda: SamplerStep(0, A_BAR, "ddim", "epsilon", 10),
        TypeError,
        "step-model",
    ),
    case(
        "alpha_bar",
        lambda: SamplerStep(nn.Identity(), A_BAR + 1, "ddim", "epsilon", 10),
        id="step-a-bar",
    ),
    case(
        "sampler",
        lambda: SamplerStep(nn.Identity(), A_BAR, "heun", "epsilon", 10),
        id="step-sampler",
    ),
    case(
        "prediction_type",
        lambda: SamplerStep(nn.Identity(), A_BAR, "ddim", "x", 10),
        id="step-prediction-type",
    ),
    case(
        "null_label",
        lambda: SamplerStep(nn.Identity(), A_BAR, "ddim", "epsilon", 0),
        id="step-null",
    ),
    case("sampler", lambda: step_schedule("heun", SCHEDULE, 5), id="schedule-sampler"),
    case(
        "num_inference_steps",
        lambda: step_schedule("ddim", SCHEDULE, 0),
        id="schedule-steps",
    ),
    case("sampler", lambda: example_inputs("heun"), id="example-sampler"),
    case("batch", lambda: example_inputs("ddim", 0), id="example-batch"),
    case(
        "step",
        lambda: export_step(nn.Identity(), "/tmp/x.onnx"),
        TypeError,
        "export-step",
    ),
]


@pytest.mark.parametrize("call, error, name", STEPS)
def test_step_functions_and_export_reject_bad_input(call, error, name):
    assert_rejects(call, error, name)


# --- snippets/captions.py and snippets/latent_diffusion.py ------------------------------


@pytest.fixture(scope="module")
def tiny_sd_pipeline():
    from transformers import CLIPTextModel

    from snippets.captions import build_tokenizer, text_encoder_config
    from snippets.latent_diffusion import TINY, assemble_pipeline, build_unet, build_vae

    tokenizer = build_tokenizer()
    unet = build_unet(**TINY["unet"])
    config = text_encoder_config(tokenizer, unet.config.cross_attention_dim, 1)
    vae = build_vae(**TINY["vae"])
    return assemble_pipeline(vae, CLIPTextModel(config), tokenizer, unet)


def test_latent_diffusion_rejects_bad_input(tiny_sd_pipeline, tmp_path):
    from snippets.captions import (
        attribute_thresholds,
        bpe_vocabulary,
        build_tokenizer,
        check_prompt,
        ink,
        make_captions,
        slant,
        text_encoder_config,
    )
    from snippets.latent_diffusion import (
        encode_latents,
        generate,
        latent_scaling_factor,
        load_pipeline,
        read_record,
        reconstruction_error,
        scratch_sample,
        train_autoencoder,
        train_denoiser,
        train_mini_sd,
    )

    pipe = tiny_sd_pipeline
    vae, tok = pipe.vae, pipe.tokenizer
    th = {"ink": [0.2, 0.3], "slant": [-0.1, 0.1]}
    labels = torch.zeros(4, dtype=torch.long)
    z = torch.zeros(2, 4, 4, 4)
    mean, std = torch.zeros(4, 4, 4, 4), torch.ones(4, 4, 4, 4)
    caps = ["a two"] * 4

    def denoise(**kw):
        args = dict(
            unet=pipe.unet,
            text_encoder=pipe.text_encoder,
            tokenizer=tok,
            latent_mean=mean,
            latent_std=std,
            scaling_factor=1.0,
            captions=caps,
            steps=1,
            progress=False,
        )
        return train_denoiser(**{**args, **kw})

    cases = [
        (lambda: ink(torch.zeros(4, 3, 16, 16)), ValueError, "images"),
        (lambda: slant(torch.full((4, 1, 16, 16), NAN)), ValueError, "images"),
        (lambda: attribute_thresholds(DIGITS[:2]), ValueError, "images"),
        (lambda: make_captions(DIGITS, labels + 10, th), ValueError, "labels"),
        (lambda: make_captions(DIGITS.long(), labels, th), TypeError, "images"),
        (
            lambda: make_captions(DIGITS, labels, {"ink": [0.3]}),
            ValueError,
            "thresholds",
        ),
        (lambda: bpe_vocabulary(("Seven",)), ValueError, "words"),
        (lambda: bpe_vocabulary("seven"), TypeError, "words"),
        (lambda: build_tokenizer(max_length=2), ValueError, "max_length"),
        (lambda: check_prompt(["a two", 3], tok), TypeError, "prompt"),
        (lambda: check_prompt("a green two", tok), ValueError, "prompt"),
        (lambda: text_encoder_config(tok, hidden_size=0), ValueError, "hidden_size"),
        (lambda: text_encoder_config(tok, num_layers=1.5), TypeError, "num_layers"),
        (lambda: train_autoencoder(vae, DIGITS - 3, 1), ValueError, "images"),
        (lambda: train_autoencoder(vae, DIGITS, 0), ValueError, "steps"),
        (lambda: train_autoencoder(vae, DIGITS, 1, 0), ValueError, "batch_size"),
        (
            lambda: train_autoencoder(vae, DIGITS, 1, learning_rate=-1),
            ValueError,
            "learning_rate",
        ),
        (
            lambda: train_autoencoder(vae, DIGITS, 1, kl_weight=NAN),
            ValueError,
            "kl_weight",
        ),
        (
            lambda: train_autoencoder(vae, DIGITS, 1, generator=1),
            TypeError,
            "generator",
        ),
        (
            lambda: latent_scaling_factor(vae, torch.zeros(2, 3, 16, 16)),
            ValueError,
            "images",
        ),
        (lambda: reconstruction_error(vae, DIGITS + 3), ValueError, "images"),
        (lambda: encode_latents(vae, DIGITS[:0]), ValueError, "images"),
        (
            lambda: denoise(latent_mean=torch.zeros(4, 3, 4, 4)),
            ValueError,
            "latent_mean",
        ),
        (lambda: denoise(latent_std=-std), ValueError, "latent_std"),
        (lambda: denoise(scaling_factor=0.0), ValueError, "scaling_factor"),
        (lambda: denoise(captions=caps[:3]), ValueError, "captions"),
        (lambda: denoise(steps=0), ValueError, "steps"),
        (lambda: denoise(batch_size=0), ValueError, "batch_size"),
        (lambda: denoise(learning_rate=0.0), ValueError, "learning_rate"),
        (lambda: denoise(p_uncond=1.5), ValueError, "p_uncond"),
        (lambda: denoise(ema_decay=1.0), ValueError, "ema_decay"),
        (lambda: denoise(generator="g"), TypeError, "generator"),
        (lambda: generate(pipe, "a two", 0), ValueError, "num_inference_steps"),
        (lambda: generate(pipe, "a two", 2, NAN), ValueError, "guidance_scale"),
        (lambda: generate(pipe, "a two", 2, generator=3), TypeError, "generator"),
        (lambda: generate(pipe, "a two", 2, latents=z), ValueError, "latents"),
        (lambda: generate(pipe, "a red two", 2), ValueError, "prompt"),
        (lambda: scratch_sample(pipe, ["a two"], z), ValueError, "latents"),
        (lambda: scratch_sample(pipe, ["a two"] * 2, z, "plms"), ValueError, "sampler"),
        (
            lambda: scratch_sample(pipe, ["a two"] * 2, z, guidance_scale=INF),
            ValueError,
            "guidance_scale",
        ),
        (lambda: load_pipeline(tmp_path / "missing"), FileNotFoundError, "pipeline"),
        (lambda: read_record(tmp_path), FileNotFoundError, "save_pipeline"),
        (lambda: train_mini_sd(tmp_path, 0, 1), ValueError, "vae_steps"),
        (lambda: train_mini_sd(tmp_path, 1, 0), ValueError, "unet_steps"),
        (lambda: train_mini_sd(tmp_path, 1, 1, seed=-1), ValueError, "seed"),
        (
            lambda: train_mini_sd(tmp_path, 1, 1, checkpoint_every=-1),
            ValueError,
            "checkpoint_every",
        ),
        (lambda: train_mini_sd(tmp_path, 1, 1, tiny="yes"), TypeError, "tiny"),
    ]
    for call, error, name in cases:
        assert_rejects(call, error, name)


# --- fast_digits ---------------------------------------------------------------------------


def test_fast_digits_rejects_bad_input():
    from snippets.fast_digits import sample_fast_digits, upsample_digits
    from snippets.sampling import ddim_sample

    x8 = torch.zeros(1, 1, 8, 8)
    cases = [
        (lambda: upsample_digits(torch.zeros(1, 1, 16, 16)), ValueError, "x"),
        (lambda: upsample_digits(x8.int()), TypeError, "x"),
        (lambda: upsample_digits(x8 * NAN), ValueError, "x"),
        (lambda: upsample_digits(x8, image_size=0), ValueError, "image_size"),
        (lambda: upsample_digits(x8, image_size=2.5), TypeError, "image_size"),
        (lambda: sample_fast_digits(None, None, x8), TypeError, "sampler"),
        (lambda: sample_fast_digits(ddim_sample, None, x8[..., :4]), ValueError, "x_T"),
    ]
    for call, error, name in cases:
        assert_rejects(call, error, name)


# --- plot_loss_curve -------------------------------------------------------------------------


def test_plot_loss_curve_rejects_bad_input(tmp_path):
    from snippets.training import plot_loss_curve

    cases = [
        (lambda: plot_loss_curve([1.0], tmp_path / "x.jpg"), ValueError, "path"),
        (
            lambda: plot_loss_curve([1.0], tmp_path / "x.svg", window=0),
            ValueError,
            "window",
        ),
        (
            lambda: plot_loss_curve([1.0], tmp_path / "x.svg", width=0),
            ValueError,
            "width",
        ),
    ]
    for call, error, name in cases:
        assert_rejects(call, error, name)


# --- snippets/latent_diffusion.py: prompts, latents and checkpoints of the wrong kind ----------


def test_latent_diffusion_rejects_long_prompts_unknown_words_bad_latents_and_wrong_kinds(
    tiny_sd_pipeline, tmp_path
):
    from snippets.checkpoint import load_checkpoint
    from snippets.latent_diffusion import (
        generate,
        load_pipeline,
        save_pipeline,
        scratch_sample,
        verify_pipeline,
    )

    pipe = tiny_sd_pipeline
    folder = save_pipeline(pipe, tmp_path / "pipe")
    z = torch.zeros(2, 4, 4, 4)
    digits = Path(__file__).resolve().parents[2] / "checkpoints" / "digits"
    long_prompt = "a thin thick upright slanted thin seven"  # 8 tokens + 2 > 8
    other = tmp_path / "other"
    other.mkdir()
    (other / "model_index.json").write_text('{"_class_name": "LDMPipeline"}')
    cases = [
        # a prompt longer than the tokenizer's model_max_length
        (lambda: generate(pipe, long_prompt, 2), ValueError, "model_max_length"),
        (lambda: generate(pipe, ["a two", long_prompt], 2), ValueError, "prompt"),
        (lambda: scratch_sample(pipe, [long_prompt] * 2, z), ValueError, "prompt"),
        # unknown words, punctuation included; the vocabulary is named
        (lambda: generate(pipe, "a seven.", 2), ValueError, "seven."),
        (lambda: generate(pipe, "a red seven", 2), ValueError, "red"),
        (lambda: scratch_sample(pipe, ["a sept", "a two"], z), ValueError, "sept"),
        (lambda: generate(pipe, ["a two", None], 2), TypeError, "prompt"),
        # latents of the wrong shape, type or values
        (
            lambda: generate(pipe, ["a two"] * 2, 2, latents=z[:, :3]),
            ValueError,
            "latents",
        ),
        (
            lambda: generate(pipe, "a two", 2, latents=z[:1, :, :2]),
            ValueError,
            "latents",
        ),
        (lambda: generate(pipe, ["a two"] * 3, 2, latents=z), ValueError, "latents"),
        (
            lambda: generate(pipe, ["a two"] * 2, 2, latents=z.int()),
            TypeError,
            "latents",
        ),
        (
            lambda: generate(pipe, ["a two"] * 2, 2, latents=z * NAN),
            ValueError,
            "latents",
        ),
        (
            lambda: scratch_sample(pipe, ["a two"] * 2, z[..., :2]),
            ValueError,
            "latents",
        ),
        (lambda: scratch_sample(pipe, ["a two"] * 2, z[0]), ValueError, "latents"),
        # a checkpoint of one kind loaded as the other
        (lambda: load_pipeline(digits), ValueError, "load_checkpoint"),
        (lambda: verify_pipeline(digits), ValueError, "save_pipeline"),
        (lambda: load_checkpoint(folder), ValueError, "load_pipeline"),
        (lambda: load_pipeline(other), FileNotFoundError, "manifest.json"),
        (lambda: load_pipeline(tmp_path), ValueError, "model_index.json"),
    ]
    for call, error, name in cases:
        assert_rejects(call, error, name)


def test_sd_commands_refuse_other_checkpoints_and_resume(tmp_path, capsys):
    from snippets.__main__ import main

    digits = str(Path(__file__).resolve().parents[2] / "checkpoints" / "digits")
    assert main(["sample-sd", "--pipeline", digits, "--prompt", "a one"]) == 2
    assert "pixel-space checkpoint" in capsys.readouterr().err
    out = str(tmp_path / "sd")
    assert main(["train-sd", "--out", out, "--resume", "--tiny", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "cannot continue" in err
    assert not (tmp_path / "sd").exists()  # refused before any training


# --- the command line's default digits recipe and upsampled checkpoints -------------------------


def test_train_refuses_conflicting_model_options_naming_them(tmp_path, capsys):
    from snippets.__main__ import main

    folder = tmp_path / "images"
    folder.mkdir()
    run = tmp_path / "run"
    cases = [
        (["--preset", "fast-digits", "--image-size", "16"], "--image-size"),
        (["--preset", "fast-digits", "--data", str(folder)], "--preset"),
        (["--preset", "fast"], "--preset"),  # not a preset: argparse names it
    ]
    for flags, name in cases:
        capsys.readouterr()
        try:
            code = main(["train", "--steps", "1", "--out", str(run), *flags])
        except SystemExit as exit:
            code = exit.code
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and name in err, (flags, err)
        assert not run.exists()  # refused before anything is written


def test_upsampled_checkpoints_are_checked_naming_the_key(tmp_path):
    from snippets.checkpoint import read_config, save_checkpoint, validate_config
    from snippets.unet import UNet

    shipped = read_config(_SHIPPED)
    # a 16x16 model cannot be upsampled from 8x8, whatever the shipped model's size
    at_16 = dict(shipped, model=dict(shipped["model"], sample_size=16))
    on_16x16 = dict(at_16, data=dict(shipped["data"], upsample_to=16))
    zero = dict(shipped, data=dict(shipped["data"], upsample_to=0))
    tiny = dict(sample_size=8, channels=(8, 8), num_res_blocks=1, num_groups=4)
    tiny.update(attention_levels=(), mid_attention=False)
    model = UNet(**tiny)
    config = {
        "model_class": "UNet",
        "model": model.config,
        "schedule": {"name": "cosine", "num_train_timesteps": 1000},
        "prediction_type": "v_prediction",
        "data": {"data": "digits", "image_size": 8, "upsample_to": 16},
    }
    eight = save_checkpoint(tmp_path / "eight", model, config)
    assert (
        validate_config(read_config(eight))["data"]["upsample_to"] == 16
    )  # valid at 8x8
    cases = [
        (lambda: validate_config(on_16x16), ValueError, "data.upsample_to"),
        (lambda: validate_config(zero), ValueError, "data.upsample_to"),
    ]
    for call, error, name in cases:
        assert_rejects(call, error, name)
