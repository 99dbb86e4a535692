"""Tests for snippets/unet.py: the time-conditioned UNet."""

import json
import re
from pathlib import Path

import pytest
import torch
from diffusers.models.embeddings import get_timestep_embedding

from snippets.unet import (
    COURSE_CONFIG,
    DIGITS_CONFIG,
    UNet,
    convert_diffusers_state_dict,
    diffusers_equivalent,
    digits_unet2dmodel,
    parameter_table,
    timestep_embedding,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(
    in_channels=1,
    out_channels=1,
    channels=(8, 16),
    num_res_blocks=1,
    attention_levels=(1,),
    attention_head_dim=4,
    num_groups=4,
)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def perturb_output_conv(model: UNet, seed: int = 0) -> UNet:
    """The output conv starts at zero (so every gradient upstream of it is zero at step 0); give it
    random weights so the output depends on the input."""
    with torch.no_grad():
        model.conv_out.weight.copy_(
            0.1 * randn(*model.conv_out.weight.shape, seed=seed)
        )
        model.conv_out.bias.copy_(
            0.1 * randn(*model.conv_out.bias.shape, seed=seed + 1)
        )
    return model


# --- timestep embedding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dim, options",
    [
        (32, {}),
        (32, dict(flip_sin_to_cos=True, downscale_freq_shift=0)),
        (64, dict(flip_sin_to_cos=True, downscale_freq_shift=1, scale=2.5)),
        (33, dict(max_period=500)),
        (
            128,
            dict(
                flip_sin_to_cos=False,
                downscale_freq_shift=0.5,
                scale=0.1,
                max_period=20000,
            ),
        ),
    ],
)
def test_timestep_embedding_matches_diffusers(dim, options):
    t = torch.tensor([0, 1, 17, 250.5, 999])
    ours = timestep_embedding(t, dim, **options)
    theirs = get_timestep_embedding(t, dim, **options)
    assert ours.shape == (5, dim)
    assert (ours - theirs).abs().max() <= 1e-6


def test_timestep_embedding_at_t0_is_zeros_then_ones():
    emb = timestep_embedding(torch.zeros(1), 16)
    assert torch.equal(emb, torch.cat([torch.zeros(1, 8), torch.ones(1, 8)], dim=1))


def test_timestep_embedding_rejects_non_1d_timesteps():
    with pytest.raises(ValueError, match="1-D"):
        timestep_embedding(torch.zeros(2, 1), 16)


# --- shapes, parameters, config ------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, size",
    [
        (DIGITS_CONFIG, (16, 16)),
        (DIGITS_CONFIG, (8, 20)),
        (dict(TINY, in_channels=3, out_channels=3, use_scale_shift_norm=True), (12, 4)),
        (
            dict(
                TINY,
                channels=(8, 8, 16),
                attention_levels=(0, 2),
                mid_attention=False,
                num_res_blocks=3,
            ),
            (8, 8),
        ),
        (dict(TINY, channels=(8,), attention_levels=()), (5, 7)),
    ],
)
def test_output_shape_equals_input_shape(config, size):
    model = UNet(**config)
    x = randn(2, config["in_channels"], *size)
    assert model(x, torch.tensor([3, 700])).shape == x.shape


def test_output_channels_can_differ_from_input_channels():
    model = UNet(**dict(TINY, in_channels=3, out_channels=6))
    assert model(randn(2, 3, 8, 8), 10).shape == (2, 6, 8, 8)


def test_output_conv_is_zero_initialised_so_the_untrained_model_predicts_zero():
    model = UNet(**TINY)
    assert torch.equal(model(randn(2, 1, 8, 8), 5), torch.zeros(2, 1, 8, 8))


@pytest.mark.parametrize(
    "config",
    [DIGITS_CONFIG, dict(DIGITS_CONFIG, num_classes=10, use_scale_shift_norm=True)],
)
def test_matches_diffusers_unet2dmodel_with_the_same_weights(config):
    torch.manual_seed(0)
    theirs = diffusers_equivalent(config).eval()
    ours = UNet(**config).eval()
    assert n_params(ours) == n_params(theirs)
    ours.load_state_dict(convert_diffusers_state_dict(theirs.state_dict()), strict=True)
    x, t = randn(3, 1, 16, 16), torch.tensor([0, 421, 999])
    labels = (
        {"class_labels": torch.tensor([0, 7, 10])} if config.get("num_classes") else {}
    )
    with torch.no_grad():
        expected = theirs(x, t, **labels).sample
        torch.testing.assert_close(ours(x, t, **labels), expected, atol=1e-5, rtol=1e-5)
    assert expected.abs().max() > 0.1  # a real comparison, not two zeros


def test_parameter_counts_of_the_presets_match_diffusers():
    # DIGITS: the 1.6M-parameter UNet2DModel(block_out_channels=(32, 64, 64), ...);
    # COURSE: the course's UNet2DModel(block_out_channels=(64, 128, 128, 256), ...)
    assert (
        n_params(UNet(**DIGITS_CONFIG))
        == n_params(diffusers_equivalent(DIGITS_CONFIG))
        == 1_623_169
    )
    assert (
        n_params(UNet(**COURSE_CONFIG))
        == n_params(diffusers_equivalent(COURSE_CONFIG))
        == 18_536_323
    )


def test_the_literal_digits_unet2dmodel_is_the_diffusers_equivalent_of_the_preset():
    literal, derived = digits_unet2dmodel(), diffusers_equivalent(DIGITS_CONFIG)
    assert {k: v.shape for k, v in literal.state_dict().items()} == {
        k: v.shape for k, v in derived.state_dict().items()
    }
    for key in (
        "block_out_channels",
        "down_block_types",
        "up_block_types",
        "layers_per_block",
        "attention_head_dim",
        "norm_num_groups",
        "resnet_time_scale_shift",
        "flip_sin_to_cos",
        "freq_shift",
        "add_attention",
    ):
        assert literal.config[key] == derived.config[key], key


def test_course_config_matches_the_course_unet2dmodel():
    course = diffusers_equivalent(COURSE_CONFIG).config
    assert course.block_out_channels == (64, 128, 128, 256)
    assert course.layers_per_block == 2
    assert course.down_block_types == (
        "DownBlock2D",
        "DownBlock2D",
        "AttnDownBlock2D",
        "AttnDownBlock2D",
    )
    assert course.up_block_types == (
        "AttnUpBlock2D",
        "AttnUpBlock2D",
        "UpBlock2D",
        "UpBlock2D",
    )
    assert (course.sample_size, course.in_channels, course.out_channels) == (32, 3, 3)


def test_parameter_table_sums_to_the_total():
    model = UNet(**dict(DIGITS_CONFIG, num_classes=10))
    rows = parameter_table(model)
    assert sum(count for _, count in rows) == n_params(model)
    assert [name for name, _ in rows] == [
        "time_embedding",
        "class_embedding",
        "conv_in",
        "down_blocks.0",
        "down_blocks.1",
        "down_blocks.2",
        "mid_block",
        "up_blocks.0",
        "up_blocks.1",
        "up_blocks.2",
        "conv_norm_out",
        "conv_out",
    ]
    assert (
        dict(rows)["class_embedding"] == 11 * 128
    )  # 10 classes + the null class, 4 * 32 dims


def test_docs_page_parameter_table_matches_the_code():
    page = (ROOT / "docs/unit1/unet.md").read_text()
    shown = {
        name: int(count.replace(",", ""))
        for name, count in re.findall(
            r"^\| `([\w.]+)` \| ([\d,]+) \|", page, flags=re.M
        )
    }
    expected = dict(parameter_table(UNet(**DIGITS_CONFIG)))
    expected["total"] = n_params(UNet(**DIGITS_CONFIG))
    assert shown == expected


def test_config_is_json_serialisable_and_rebuilds_the_model():
    model = UNet(**dict(TINY, num_classes=3, dropout=0.1))
    config = json.loads(json.dumps(model.config))
    assert config == model.config
    rebuilt = UNet(**config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }


# --- gradients, determinism, conditioning ---------------------------------------------------------


@pytest.mark.parametrize(
    "config", [DIGITS_CONFIG, dict(TINY, num_classes=3, use_scale_shift_norm=True)]
)
def test_gradients_reach_every_parameter(config):
    torch.manual_seed(0)
    model = perturb_output_conv(UNet(**config))
    labels = {"class_labels": torch.tensor([0, 3])} if config.get("num_classes") else {}
    x = randn(2, 1, 16, 16)
    model(x, torch.tensor([10, 900]), **labels).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_deterministic_under_a_fixed_seed():
    config = dict(TINY, dropout=0.5)
    x, t = randn(2, 1, 8, 8), torch.tensor([1, 2])
    outputs = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        model = perturb_output_conv(
            UNet(**config)
        ).train()  # dropout active: uses the global seed too
        outputs.append(model(x, t))
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[0], outputs[2])


def test_scalar_timestep_is_broadcast_to_the_batch():
    torch.manual_seed(0)
    model = perturb_output_conv(UNet(**TINY))
    x = randn(3, 1, 8, 8)
    expected = model(x, torch.full((3,), 250.0))
    torch.testing.assert_close(model(x, 250), expected)
    torch.testing.assert_close(model(x, torch.tensor(250)), expected)


def test_output_depends_on_the_timestep_and_the_class():
    torch.manual_seed(0)
    model = perturb_output_conv(UNet(**dict(TINY, num_classes=2)))
    x = randn(1, 1, 8, 8)
    out = model(x, 10, class_labels=torch.tensor([0]))
    assert not torch.allclose(out, model(x, 500, class_labels=torch.tensor([0])))
    assert not torch.allclose(out, model(x, 10, class_labels=torch.tensor([1])))
    assert not torch.allclose(
        out, model(x, 10, class_labels=torch.tensor([2]))
    )  # the null class


def test_the_batch_elements_do_not_interact():
    torch.manual_seed(0)
    model = perturb_output_conv(UNet(**TINY)).eval()
    x, t = randn(4, 1, 8, 8), torch.tensor([1, 2, 3, 4])
    torch.testing.assert_close(model(x, t)[1:2], model(x[1:2], t[1:2]))


# --- bad inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x_shape, t, labels, message",
    [
        (
            (2, 1, 14, 16),
            torch.tensor([1, 2]),
            None,
            r"divisible by 2\^\(levels-1\) = 4",
        ),
        ((2, 1, 16, 10), torch.tensor([1, 2]), None, "divisible"),
        (
            (2, 3, 16, 16),
            torch.tensor([1, 2]),
            None,
            "3 channels but the model expects in_channels=1",
        ),
        ((1, 16, 16), torch.tensor([1]), None, r"shape \(B, C, H, W\)"),
        (
            (2, 1, 16, 16),
            torch.tensor([1, 2, 3]),
            None,
            r"t must be a number or have shape \(B,\) = \(2,\)",
        ),
        ((2, 1, 16, 16), torch.tensor([[1], [2]]), None, "t must be a number"),
        ((2, 1, 16, 16), torch.tensor([1, 2]), torch.tensor([0, 1]), "unconditional"),
    ],
)
def test_bad_input_raises_a_clear_error(x_shape, t, labels, message):
    model = UNet(**DIGITS_CONFIG)
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(x_shape), t, class_labels=labels)


@pytest.mark.parametrize(
    "labels, message",
    [
        (None, "class_labels are required"),
        (torch.tensor([0, 4]), r"must be in \[0, 3\]"),
        (torch.tensor([-1, 0]), r"must be in \[0, 3\]"),
        (torch.tensor([0.0, 1.0]), "class_labels must be an integer tensor"),
        (torch.tensor([0, 1, 2]), r"class_labels must have shape \(2,\)"),
    ],
)
def test_bad_class_labels_raise_a_clear_error(labels, message):
    model = UNet(**dict(TINY, num_classes=3))
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(2, 1, 8, 8), torch.tensor([1, 2]), class_labels=labels)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(channels=()), "non-empty"),
        (dict(channels=(8, 10)), "divisible by num_groups=4"),
        (
            dict(attention_levels=(2,)),
            r"attention_levels \[2\] out of range for 2 levels",
        ),
        (dict(attention_head_dim=3), "attention_head_dim=3 must divide"),
        (dict(dropout=1.0), r"dropout must be a finite number in \[0, 1\)"),
        (dict(num_classes=0), "num_classes must be None or a positive int"),
        (dict(num_res_blocks=0), "num_res_blocks must be an integer >= 1"),
    ],
)
def test_bad_config_raises_a_clear_error(changes, message):
    with pytest.raises(ValueError, match=message):
        UNet(**{**TINY, **changes})
