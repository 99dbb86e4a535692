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
from snippets.karras import denoise, karras_timesteps, sigma_to_t
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
from snippets.training import (
    TrainConfig,
    ema_update,
    learning_rate_at,
    min_snr_weight,
)
from snippets.unet import (
    UNet,
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
