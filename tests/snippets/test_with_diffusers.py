"""Tests of snippets/with_diffusers.py: the shipped checkpoint as a DDPMPipeline, the course's loops."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel

from snippets.checkpoint import load_checkpoint, save_checkpoint
from snippets.data import load_digits
from snippets.guidance import cfg_model
from snippets.sampling import ddim_sample, ddpm_sample
from snippets.schedules import SCHEDULE_NAMES, NoiseSchedule
from snippets.unet import UNet
from snippets.with_diffusers import (
    BETA_SCHEDULES,
    DEFAULT_BETAS,
    course_transform,
    digits_dataset,
    fold_class_label,
    pipeline_from_checkpoint,
    sample_loop,
    scheduler_from_checkpoint,
    show_images,
    train_loop,
    unet2dmodel_from_checkpoint,
)

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "checkpoints" / "digits"
TINY = dict(
    sample_size=8,
    channels=(8, 16),
    num_res_blocks=1,
    attention_levels=(),
    num_groups=4,
    mid_attention=False,
)


@pytest.fixture(scope="module")
def ours():
    return load_checkpoint(DIGITS)


@pytest.fixture(scope="module")
def unet():
    return unet2dmodel_from_checkpoint(DIGITS)


@pytest.fixture(scope="module")
def pipeline():
    return pipeline_from_checkpoint(DIGITS)


def _tiny_checkpoint(directory, schedule="linear", num_classes=None):
    torch.manual_seed(0)
    model = UNet(**TINY, num_classes=num_classes)
    config = {
        "model_class": "UNet",
        "model": model.config,
        "schedule": {"name": schedule, "num_train_timesteps": 50},
        "prediction_type": "epsilon",
        "training": {},
    }
    save_checkpoint(
        directory, model, config, training_state={"step": 1, "seconds": 0.0}
    )
    return model


# -- the shipped checkpoint as diffusers building blocks -------------------------------------------


def test_unet2dmodel_from_checkpoint_equals_our_unet(ours, unet):
    x = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0, 500, 999])
    labels = torch.tensor([3, 7, 10])  # 10 = the null class
    with torch.no_grad():
        torch.testing.assert_close(
            unet(x, t, class_labels=labels).sample,
            ours.model(x, t, class_labels=labels),
            atol=1e-5,
            rtol=1e-5,
        )
    assert unet.config.num_class_embeds == 11


def test_scheduler_from_checkpoint_has_the_checkpoints_schedule(ours):
    scheduler = scheduler_from_checkpoint(DIGITS)
    assert isinstance(scheduler, DDPMScheduler)
    assert scheduler.config.prediction_type == ours.prediction_type == "v_prediction"
    torch.testing.assert_close(scheduler.alphas_cumprod, ours.schedule.alpha_bar)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_every_schedule_name_maps_to_the_same_ddpmscheduler_alpha_bar(name):
    scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule=BETA_SCHEDULES[name],
        **DEFAULT_BETAS.get(name, {}),
    )
    torch.testing.assert_close(
        scheduler.alphas_cumprod,
        NoiseSchedule.from_name(name, 1000).alpha_bar,
        atol=1e-6,
        rtol=1e-5,
    )


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_scheduler_from_checkpoint_for_every_schedule_name(tmp_path, name):
    _tiny_checkpoint(tmp_path / "ckpt", name)
    scheduler = scheduler_from_checkpoint(tmp_path / "ckpt")
    assert torch.equal(
        scheduler.betas, load_checkpoint(tmp_path / "ckpt").schedule.betas
    )


def test_unconditional_checkpoint_with_linear_schedule(tmp_path):
    model = _tiny_checkpoint(tmp_path / "ckpt", "linear")
    pipeline = pipeline_from_checkpoint(tmp_path / "ckpt")
    torch.testing.assert_close(
        pipeline.scheduler.alphas_cumprod,
        NoiseSchedule.from_name("linear", 50).alpha_bar,
    )
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 40])
    with torch.no_grad():
        torch.testing.assert_close(
            pipeline.unet(x, t).sample, model(x, t), atol=1e-5, rtol=1e-5
        )
    with pytest.raises(ValueError, match="unconditional"):
        pipeline_from_checkpoint(tmp_path / "ckpt", class_label=3)


def test_fold_class_label_equals_passing_the_label(unet):
    x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([10, 200, 600, 990])
    folded = fold_class_label(unet, 7)
    assert folded.class_embedding is None and folded.config.num_class_embeds is None
    with torch.no_grad():
        torch.testing.assert_close(
            folded(x, t).sample,
            unet(x, t, class_labels=torch.full((4,), 7)).sample,
            atol=1e-5,
            rtol=1e-5,
        )
        other = unet(x, t, class_labels=torch.full((4,), 1)).sample
    assert (folded(x, t).sample - other).abs().max() > 1e-3  # the label really matters
    assert unet.class_embedding is not None  # the original is untouched


def test_fold_class_label_rejects_bad_labels_and_unconditional_models(unet):
    for label in (-1, 11, 2.5, True):
        with pytest.raises(ValueError, match="class_label must be an integer in"):
            fold_class_label(unet, label)
    plain = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        layers_per_block=1,
        down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2,
    )
    with pytest.raises(ValueError, match="num_class_embeds"):
        fold_class_label(plain, 0)


def test_missing_or_broken_checkpoint_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        pipeline_from_checkpoint(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):
        unet2dmodel_from_checkpoint(tmp_path / "nowhere")
    _tiny_checkpoint(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "ema.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="ema.safetensors"):
        pipeline_from_checkpoint(tmp_path / "ckpt")


# -- sampling: pipeline, hand-written loop, our samplers -------------------------------------------


def test_pipeline_equals_our_ddpm_sampler_on_the_same_noise(ours, pipeline):
    images = pipeline(
        batch_size=3,
        num_inference_steps=10,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    ).images
    generator = torch.Generator().manual_seed(0)
    x_T = torch.randn((3, 1, ours.image_size, ours.image_size), generator=generator)
    null = torch.full((3,), ours.num_classes)
    with torch.no_grad():
        x0 = ddpm_sample(
            lambda x, t: ours.model(x, t, class_labels=null),
            x_T,
            ours.schedule,
            10,
            prediction_type=ours.prediction_type,
            generator=generator,
        )
    torch.testing.assert_close(images, (x0 / 2 + 0.5).clamp(0, 1), atol=1e-4, rtol=0)
    assert images.std() > 0.1  # not a blank canvas


def test_hand_written_loop_equals_the_pipeline(pipeline):
    images = pipeline(
        batch_size=2,
        num_inference_steps=8,
        generator=torch.Generator().manual_seed(5),
        output_type="pt",
    ).images
    x0 = sample_loop(
        pipeline.unet,
        pipeline.scheduler,
        2,
        8,
        generator=torch.Generator().manual_seed(5),
    )
    torch.testing.assert_close((x0 / 2 + 0.5).clamp(0, 1), images, atol=1e-6, rtol=0)


def test_loop_with_labels_and_guidance_equals_our_sampler_with_cfg(ours, unet):
    labels = torch.tensor([0, 4, 9])
    scheduler = scheduler_from_checkpoint(DIGITS)
    x0 = sample_loop(
        unet,
        scheduler,
        3,
        6,
        class_labels=labels,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(1),
    )
    generator = torch.Generator().manual_seed(1)
    x_T = torch.randn((3, 1, ours.image_size, ours.image_size), generator=generator)
    expected = ddpm_sample(
        cfg_model(ours.model, labels, 3.0, ours.num_classes),
        x_T,
        ours.schedule,
        6,
        prediction_type=ours.prediction_type,
        generator=generator,
    )
    torch.testing.assert_close(x0, expected, atol=1e-4, rtol=0)


def test_loop_with_a_ddim_scheduler_from_config_equals_our_ddim(ours, pipeline):
    scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)
    x0 = sample_loop(
        pipeline.unet, scheduler, 2, 5, generator=torch.Generator().manual_seed(3)
    )
    generator = torch.Generator().manual_seed(3)
    x_T = torch.randn((2, 1, ours.image_size, ours.image_size), generator=generator)
    null = torch.full((2,), ours.num_classes)
    with torch.no_grad():
        expected = ddim_sample(
            lambda x, t: ours.model(x, t, class_labels=null),
            x_T,
            ours.schedule,
            5,
            prediction_type=ours.prediction_type,
            generator=generator,
        )
    torch.testing.assert_close(x0, expected, atol=1e-4, rtol=0)


def test_sample_loop_rejects_bad_labels(unet, pipeline):
    scheduler = scheduler_from_checkpoint(DIGITS)
    with pytest.raises(ValueError, match="class_labels are required"):
        sample_loop(unet, scheduler, 2, 2)
    with pytest.raises(ValueError, match="class_labels are required"):
        sample_loop(pipeline.unet, scheduler, 2, 2, class_labels=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        sample_loop(unet, scheduler, 2, 2, class_labels=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"in \[0, 11\)"):
        sample_loop(unet, scheduler, 2, 2, class_labels=torch.tensor([1, 11]))
    with pytest.raises(ValueError, match="guidance_scale needs"):
        sample_loop(pipeline.unet, scheduler, 2, 2, guidance_scale=3.0)
    with pytest.raises(ValueError, match="batch_size"):
        sample_loop(pipeline.unet, scheduler, 0, 2)


def test_save_pretrained_and_from_pretrained_round_trip(pipeline, tmp_path):
    pipeline.save_pretrained(tmp_path / "ddpm-digits")
    assert (
        tmp_path / "ddpm-digits" / "unet" / "diffusion_pytorch_model.safetensors"
    ).is_file()
    loaded = DDPMPipeline.from_pretrained(tmp_path / "ddpm-digits")
    a = pipeline(
        batch_size=2,
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    )
    b = loaded(
        batch_size=2,
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    )
    torch.testing.assert_close(a.images, b.images, atol=0, rtol=0)
    assert loaded.scheduler.config.prediction_type == "v_prediction"


# -- data -------------------------------------------------------------------------------------------


def test_digits_dataset_holds_the_train_split_as_pil_images():
    dataset = digits_dataset("train")
    x, y = load_digits("train", image_size=8)
    assert len(dataset) == len(x) and dataset.column_names == ["image", "label"]
    assert dataset["label"] == y.tolist()
    dataset.set_transform(course_transform(image_size=8))
    first = torch.stack([dataset[i]["images"] for i in range(5)])
    torch.testing.assert_close(
        first, x[:5], atol=1 / 255 + 1e-6, rtol=0
    )  # only the 8-bit rounding differs


def test_course_transform_with_a_dataloader():
    dataset = digits_dataset("test")
    dataset.set_transform(course_transform(image_size=16, channels=3))
    batch = next(
        iter(torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=False))
    )
    assert batch["images"].shape == (8, 3, 16, 16)
    assert (
        batch["images"].min() >= -1
        and batch["images"].max() <= 1
        and batch["images"].max() > 0.5
    )
    torch.testing.assert_close(
        batch["images"][:, 0], batch["images"][:, 2]
    )  # gray in RGB


def test_course_transform_flips_about_half_the_images_with_a_generator():
    images = digits_dataset("test")[:200]["image"]
    plain = torch.stack(course_transform(8)({"image": images})["images"])
    flipped = torch.stack(
        course_transform(
            8, random_flip=True, generator=torch.Generator().manual_seed(0)
        )({"image": images})["images"]
    )
    is_flipped = (flipped == plain.flip(-1)).flatten(1).all(1) & ~(
        flipped == plain
    ).flatten(1).all(1)
    is_same = (flipped == plain).flatten(1).all(1)
    assert bool((is_flipped | is_same).all())
    assert 60 < int(is_flipped.sum()) < 140


def test_course_transform_rejects_bad_arguments():
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        course_transform(16, channels=2)
    with pytest.raises(ValueError, match="image_size"):
        course_transform(0)
    with pytest.raises(ValueError, match="no 'image' column"):
        course_transform(8)({"img": []})


# -- training ---------------------------------------------------------------------------------------


def _tiny_unet2dmodel():
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(16, 32),
        norm_num_groups=8,
        layers_per_block=1,
        down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2,
    )


def _digits_loader(batch_size=16):
    dataset = digits_dataset("train")
    dataset.set_transform(course_transform(image_size=8))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )


def test_train_loop_loss_falls():
    unet = _tiny_unet2dmodel()
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2"
    )
    optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-3)
    losses = train_loop(
        unet,
        scheduler,
        _digits_loader(),
        optimizer,
        num_epochs=5,
        max_steps=40,
        generator=torch.Generator().manual_seed(0),
    )
    assert len(losses) == 40
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.7 * first, (first, last)
    assert not unet.training


def test_train_loop_regresses_on_the_schedulers_target():
    # with a zero learning rate the first loss is the MSE between the untrained output and the target
    for prediction_type in ("epsilon", "v_prediction", "sample"):
        unet = _tiny_unet2dmodel()
        scheduler = DDPMScheduler(
            num_train_timesteps=100, prediction_type=prediction_type
        )
        x0 = load_digits("train", image_size=8)[0][:4]
        loader = [{"images": x0}]
        loss = train_loop(
            unet,
            scheduler,
            loader,
            torch.optim.SGD(unet.parameters(), lr=0.0),
            generator=torch.Generator().manual_seed(0),
        )[0]
        generator = torch.Generator().manual_seed(0)
        noise = torch.randn(x0.shape, generator=generator)
        t = torch.randint(0, 100, (4,), generator=generator)
        a = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        target = {
            "epsilon": noise,
            "v_prediction": a.sqrt() * noise - (1 - a).sqrt() * x0,
            "sample": x0,
        }
        with torch.no_grad():
            output = unet(a.sqrt() * x0 + (1 - a).sqrt() * noise, t).sample
        assert loss == pytest.approx(
            (output - target[prediction_type]).square().mean().item(), rel=1e-4
        )


def test_train_loop_rejects_bad_arguments():
    unet = _tiny_unet2dmodel()
    scheduler = DDPMScheduler(num_train_timesteps=100)
    optimizer = torch.optim.AdamW(unet.parameters())
    with pytest.raises(ValueError, match="num_epochs"):
        train_loop(unet, scheduler, [], optimizer, num_epochs=0)
    with pytest.raises(ValueError, match="max_steps"):
        train_loop(unet, scheduler, [], optimizer, max_steps=0)
    with pytest.raises(ValueError, match="'images'"):
        train_loop(unet, scheduler, [{"image": torch.zeros(2, 1, 8, 8)}], optimizer)


def test_show_images_tiles_and_upscales():
    image = show_images(torch.zeros(6, 1, 16, 16), nrow=3, scale=2)
    assert image.size == (2 * (3 * 17 + 1), 2 * (2 * 17 + 1))


def test_a_pipeline_from_an_8x8_model_samples_at_8x8_and_upsamples_to_the_digits(
    fast_digits_checkpoint,
):
    from snippets.fast_digits import upsample_digits

    pipeline = pipeline_from_checkpoint(fast_digits_checkpoint)
    pipeline.set_progress_bar_config(disable=True)
    images = pipeline(
        batch_size=2,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="pt",
    ).images
    assert images.shape == (2, 1, 8, 8)
    assert upsample_digits(images * 2 - 1).shape == (2, 1, 16, 16)
