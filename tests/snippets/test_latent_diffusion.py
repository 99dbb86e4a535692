"""Tests for snippets/latent_diffusion.py: the three parts, the pipeline round trip, sampler parity.

One tiny pipeline (`train-sd --tiny`, 3 steps per stage) is trained through the CLI, offline, and
shared by the tests; they check behaviour (round trip, parity, errors), not sample quality.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may reach a hub

import pytest
import torch

from snippets.__main__ import main
from snippets.data import load_digits
from snippets.latent_diffusion import (
    SCHEDULE,
    TINY,
    build_vae,
    generate,
    latent_scaling_factor,
    load_pipeline,
    read_record,
    scratch_sample,
    train_autoencoder,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini-sd") / "pipe"
    argv = ["train-sd", "--out", str(out), "--tiny", "--no-progress"]
    argv += ["--vae-steps", "3", "--unet-steps", "3", "--checkpoint-every", "0"]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def pipe(folder):
    return load_pipeline(folder)


def latents(n=2, seed=0):
    return torch.randn(n, 4, 4, 4, generator=torch.Generator().manual_seed(seed))


def test_pipeline_folder_holds_every_part_and_the_local_vocabulary(folder):
    names = {p.name for p in folder.iterdir()}
    assert {"vae", "text_encoder", "tokenizer", "unet", "scheduler"} <= names
    assert {"vocab.json", "merges.txt"} <= {
        p.name for p in (folder / "tokenizer").iterdir()
    }
    record = read_record(folder)
    assert record["latent_shape"] == [4, 4, 4]
    assert record["unet_steps_done"] == 3


def test_reloaded_pipeline_samples_the_same_images(pipe, folder, tmp_path):
    from snippets.latent_diffusion import save_pipeline

    prompts = ["a thick seven", "an upright two"]
    first = generate(pipe, prompts, 4, 3.0, latents=latents())
    again = load_pipeline(save_pipeline(pipe, tmp_path / "copy"))
    second = generate(again, prompts, 4, 3.0, latents=latents())
    assert first.shape == (2, 1, 16, 16) and first.abs().max() <= 1
    torch.testing.assert_close(first, second)


def test_scratch_dpm_solver_matches_the_pipeline_scheduler(pipe):
    prompts = ["a thin five", "a six"]
    theirs = generate(pipe, prompts, 5, 2.5, latents=latents(seed=1))
    ours = scratch_sample(pipe, prompts, latents(seed=1), "dpmsolver++", 5, 2.5)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_scratch_ddim_matches_ddimscheduler_in_the_pipeline(folder):
    from diffusers import DDIMScheduler

    pipe = load_pipeline(folder)
    pipe.scheduler = DDIMScheduler(**SCHEDULE, clip_sample=False)
    theirs = generate(pipe, ["a one"], 6, 4.0, latents=latents(1, seed=2))
    ours = scratch_sample(
        pipe, ["a one"], latents(1, seed=2), "ddim", 6, 4.0, clip_sample=False
    )
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_autoencoder_loss_falls_and_scaling_factor_gives_unit_std():
    torch.manual_seed(0)
    x = load_digits("train")[0][:32]
    vae = build_vae(**TINY["vae"])
    g = torch.Generator().manual_seed(0)
    losses = train_autoencoder(vae, x, 12, 32, 3e-3, generator=g, progress=False)
    assert sum(losses[-3:]) < sum(losses[:3])
    scale = latent_scaling_factor(vae, x, torch.Generator().manual_seed(1))
    z = vae.encode(x).latent_dist.sample(torch.Generator().manual_seed(1))
    assert (z * scale).std().item() == pytest.approx(1.0, abs=1e-4)


def test_bad_prompts_latents_and_checkpoints_are_refused(pipe, folder, capsys):
    from snippets.checkpoint import load_checkpoint

    with pytest.raises(ValueError, match="unknown word 'red'"):
        generate(pipe, "a red seven", 2)
    with pytest.raises(ValueError, match="model_max_length"):
        generate(pipe, "a thin thin thin thin thin seven", 2)
    with pytest.raises(ValueError, match="latents"):
        generate(pipe, "a seven", 2, latents=torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="pixel-space checkpoint"):
        load_pipeline(os.path.join(REPO, "checkpoints", "digits"))
    with pytest.raises((FileNotFoundError, ValueError), match="model_index.json"):
        load_checkpoint(folder)
    assert main(["sample-sd", "--pipeline", str(folder), "--prompt", "a blue one"]) == 2
    assert "unknown word 'blue'" in capsys.readouterr().err


def test_cli_samples_one_row_per_prompt(folder, tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    argv = ["sample-sd", "--pipeline", str(folder), "--prompt", "a two", "--prompt"]
    argv += ["a nine", "--n", "3", "--steps", "2", "--scale", "1", "--out", str(out)]
    assert main(argv) == 0
    width, height = Image.open(out).size
    assert width > height > 16


def test_default_parts_fit_together():
    from transformers import CLIPTextModel

    from snippets.captions import build_tokenizer, text_encoder_config
    from snippets.latent_diffusion import build_unet

    unet, tokenizer = build_unet(), build_tokenizer()
    config = text_encoder_config(tokenizer, unet.config.cross_attention_dim)
    states = CLIPTextModel(config)(tokenizer(["a two"], return_tensors="pt").input_ids)
    out = unet(latents(1), 10, encoder_hidden_states=states.last_hidden_state).sample
    assert out.shape == (1, 4, 4, 4) and torch.isfinite(out).all()


def test_saved_folder_has_a_manifest_of_every_file(folder):
    import json

    from snippets.latent_diffusion import (
        MANIFEST_FILE,
        PIPELINE_FORMAT,
        verify_pipeline,
    )

    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["format"] == PIPELINE_FORMAT
    files = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST_FILE
    }
    assert set(manifest["files"]) == files
    assert "unet/diffusion_pytorch_model.safetensors" in files
    assert verify_pipeline(folder) == manifest
    assert not list(folder.parent.glob(".tmp-save-*"))  # no staging folder left


@pytest.mark.parametrize(
    "damage, error, message",
    [
        ("flip", ValueError, "unet/diffusion_pytorch_model.safetensors: corrupt"),
        ("truncate", ValueError, "text_encoder/model.safetensors: corrupt"),
        (
            "delete",
            FileNotFoundError,
            "vae/diffusion_pytorch_model.safetensors: missing",
        ),
        ("manifest", FileNotFoundError, "manifest.json: missing"),
    ],
)
def test_corrupt_or_missing_files_are_named_on_load(
    folder, tmp_path, damage, error, message
):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    if damage == "flip":
        path = copy / "unet" / "diffusion_pytorch_model.safetensors"
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path = copy / "text_encoder" / "model.safetensors"
        path.write_bytes(path.read_bytes()[:-10])
    elif damage == "delete":
        (copy / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    else:
        (copy / "manifest.json").unlink()
    with pytest.raises(error, match=message):
        load_pipeline(copy)
    assert main(["sample-sd", "--pipeline", str(copy), "--prompt", "a one"]) == 2


def test_a_file_added_later_is_not_checked_and_a_resave_replaces_the_folder(
    pipe, folder, tmp_path
):
    import shutil

    from snippets.latent_diffusion import save_pipeline

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "README.md").write_text("notes\n")
    load_pipeline(copy)  # a README next to the parts is fine
    save_pipeline(pipe, copy, {"note": "again"})
    assert read_record(copy)["note"] == "again" and not (copy / "README.md").exists()
    assert not (tmp_path / "copy.old").exists()


def test_checkpoints_of_one_kind_are_refused_as_the_other(folder):
    from snippets.checkpoint import load_checkpoint

    with pytest.raises(ValueError, match="pixel-space checkpoint"):
        load_pipeline(os.path.join(REPO, "checkpoints", "digits"))
    with pytest.raises(ValueError, match="diffusers pipeline folder.*load_pipeline"):
        load_checkpoint(folder)  # it has a manifest.json too, of another format
    assert main(["sample", "--checkpoint", str(folder), "--out", "/dev/null"]) == 2


def test_shipped_pipeline_verifies():
    from snippets.latent_diffusion import verify_pipeline

    verify_pipeline(os.path.join(REPO, "checkpoints", "mini-sd"))
