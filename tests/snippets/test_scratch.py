"""Tests for snippets/scratch.py: the course's from-scratch training of BasicUNet."""

import math

import pytest
import torch
from torch import nn

from snippets.basic_unet import BasicUNet
from snippets.data import load_digits
from snippets.scratch import scratch_loss, to_unit_interval, train_basic_unet


@pytest.fixture(scope="module")
def small_digits():
    """96 real digits at 8x8 (BasicUNet pools twice, 8 is divisible by 4), in [0, 1]."""
    images, _ = load_digits("train", image_size=8)
    return to_unit_interval(images[:96])


class Identity(nn.Module):
    """A 'network' that returns its input; it has one unused parameter so that Adam can be built."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x + 0 * self.unused


def test_to_unit_interval_maps_digits_background_to_zero_and_ink_to_at_most_one():
    images, _ = load_digits("train", image_size=8)
    mapped = to_unit_interval(images)
    torch.testing.assert_close(mapped, (images + 1) / 2)
    assert mapped.min() == 0.0  # the background (-1) becomes 0, as in MNIST
    assert 0.9 < mapped.max() <= 1.0


def test_to_unit_interval_rejects_values_outside_minus_one_one():
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        to_unit_interval(torch.tensor([0.0, 1.5]))


def test_scratch_loss_of_the_identity_is_amount_squared_times_the_noise_gap():
    # identity model: pred - x = a (u - x), so the MSE is the mean of a^2 (u - x)^2
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 8, 8, generator=g)
    u = torch.rand(4, 1, 8, 8, generator=g)
    amount = torch.tensor([0.0, 0.25, 0.5, 1.0])
    loss = scratch_loss(Identity(), x, amount=amount, noise=u)
    expected = (amount[:, None, None, None] ** 2 * (u - x) ** 2).mean()
    torch.testing.assert_close(loss, expected)


def test_scratch_loss_is_zero_for_a_perfect_model_and_no_noise():
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    assert scratch_loss(Identity(), x, amount=torch.zeros(3)).item() == 0.0


def test_scratch_loss_draws_amount_and_noise_from_the_generator():
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    losses = [
        scratch_loss(Identity(), x, generator=torch.Generator().manual_seed(s))
        for s in (5, 5, 6)
    ]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


def test_tiny_training_run_loss_falls(small_digits):
    torch.manual_seed(0)
    losses = train_basic_unet(
        BasicUNet(),
        small_digits[:64],
        n_epochs=4,
        batch_size=16,
        generator=torch.Generator().manual_seed(0),
        progress_bar=False,
    )
    assert len(losses) == 4 * 4
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4  # first and last epoch
    assert last < 0.7 * first, (first, last)


def test_steps_per_epoch_count_the_last_partial_batch(small_digits):
    losses = train_basic_unet(
        Identity(), small_digits, n_epochs=2, batch_size=40, progress_bar=False
    )
    assert len(losses) == 2 * math.ceil(96 / 40)


def test_same_seed_same_run_other_seed_other_run(small_digits):
    runs = []
    for seed in (0, 0, 1):
        torch.manual_seed(0)  # same initial weights in all three runs
        model = BasicUNet()
        losses = train_basic_unet(
            model,
            small_digits[:32],
            n_epochs=2,
            batch_size=16,
            generator=torch.Generator().manual_seed(seed),
            progress_bar=False,
        )
        runs.append((losses, model.state_dict()))
    (l0, w0), (l1, w1), (l2, _) = runs
    assert l0 == l1
    for name in w0:
        torch.testing.assert_close(w0[name], w1[name], rtol=0, atol=0)
    assert l0 != l2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_epochs": 0}, "n_epochs"),
        ({"n_epochs": 1.5}, "n_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
    ],
)
def test_train_rejects_bad_arguments(small_digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_basic_unet(Identity(), small_digits, progress_bar=False, **kwargs)


def test_train_rejects_images_in_minus_one_one_and_names_the_fix():
    images, _ = load_digits("train", image_size=8)
    with pytest.raises(ValueError, match="to_unit_interval"):
        train_basic_unet(Identity(), images[:8], progress_bar=False)


@pytest.mark.parametrize("shape", [(8, 8), (2, 8, 8), (0, 1, 8, 8)])
def test_loss_rejects_batches_that_are_not_b_c_h_w(shape):
    with pytest.raises(ValueError, match="shape|empty"):
        scratch_loss(Identity(), torch.zeros(shape))


def test_loss_rejects_an_amount_of_the_wrong_shape():
    with pytest.raises(ValueError, match="amount"):
        scratch_loss(Identity(), torch.zeros(2, 1, 8, 8), amount=torch.zeros(3))
