"""Tests of snippets/data.py on the bundled digits and on data the tests write themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from snippets.data import (
    load_data,
    load_digits,
    load_hf_dataset,
    load_image_folder,
    load_sample_photos,
    save_grid,
)


def test_digits_are_scaled_resized_and_split_once():
    train_x, train_y = load_digits("train")
    test_x, test_y = load_digits("test")
    assert train_x.shape == (1438, 1, 16, 16) and test_x.shape == (359, 1, 16, 16)
    assert train_x.min() >= -1 and train_x.max() <= 1 and train_x.min() == -1
    assert set(train_y.tolist()) == set(range(10))
    # the split is fixed by the seed and the two halves do not overlap
    assert torch.equal(load_digits("test")[0], test_x)
    flat = {tuple(v.tolist()) for v in load_digits("train", image_size=8)[0].flatten(1)}
    assert not flat & {
        tuple(v.tolist()) for v in load_digits("test", image_size=8)[0].flatten(1)
    }
    assert not torch.equal(load_digits("test", seed=1)[0], test_x)


def test_digits_at_8x8_are_the_original_pixels_scaled():
    from sklearn.datasets import load_digits as sklearn_digits

    x, _ = load_digits("all", image_size=8)
    expected = (
        torch.tensor(sklearn_digits().images, dtype=torch.float32)[:, None] / 8 - 1
    )
    assert torch.equal(x, expected)


@pytest.mark.parametrize(
    "kwargs", [dict(split="val"), dict(test_fraction=1.0), dict(image_size=0)]
)
def test_digits_reject_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        load_digits(**kwargs)


def test_sample_photos_are_square_rgb_in_range():
    photos = load_sample_photos(32)
    assert photos.shape == (2, 3, 32, 32)
    assert photos.min() >= -1 and photos.max() <= 1 and photos.std() > 0.1


def _write_pngs(folder):
    folder.mkdir()
    # a wide image: black edges, a white middle half -> the center crop is white
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, 15:45] = 255
    Image.fromarray(wide).save(folder / "a_wide.png")
    (folder / "sub").mkdir()
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(folder / "sub" / "b_gray.png")
    (folder / "notes.txt").write_text("not an image")


def test_image_folder_resizes_center_crops_and_scales(tmp_path):
    _write_pngs(tmp_path / "imgs")
    x = load_image_folder(tmp_path / "imgs", image_size=10, channels=3)
    assert x.shape == (2, 3, 10, 10)
    assert torch.allclose(x[0], torch.ones(3, 10, 10), atol=0.02)  # the white middle
    assert torch.allclose(x[1], torch.full((3, 10, 10), 128 / 127.5 - 1), atol=0.02)
    assert load_image_folder(tmp_path / "imgs", image_size=4, channels=1).shape == (
        2,
        1,
        4,
        4,
    )


def test_image_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        load_image_folder(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="x.png"):
        load_image_folder(tmp_path / "bad")


def test_hf_dataset_saved_to_disk_loads_with_labels(tmp_path):
    import datasets

    images = [Image.fromarray(np.full((12, 12, 3), v, np.uint8)) for v in (0, 255, 51)]
    datasets.Dataset.from_dict({"img": images, "label": [2, 0, 1]}).save_to_disk(
        str(tmp_path / "ds")
    )
    x, y = load_hf_dataset(
        tmp_path / "ds", image_size=8, image_column="img", label_column="label"
    )
    assert x.shape == (3, 3, 8, 8) and y.tolist() == [2, 0, 1]
    assert torch.allclose(
        x[:, 0, 0, 0], torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]), atol=1e-6
    )
    with pytest.raises(ValueError, match="no column 'image'"):
        load_hf_dataset(tmp_path / "ds")
    # load_data tells a saved dataset from a folder of images
    assert load_data(str(tmp_path / "ds"), 8, 1, "img", "label")[0].shape == (
        3,
        1,
        8,
        8,
    )
    _write_pngs(tmp_path / "imgs")
    x, y = load_data(str(tmp_path / "imgs"), image_size=6)
    assert x.shape == (2, 3, 6, 6) and y is None
    assert load_data("digits")[0].shape == (1438, 1, 16, 16)


def test_save_grid_tiles_and_scales(tmp_path):
    images = torch.linspace(-1, 1, 5 * 16 * 16).reshape(5, 1, 16, 16)
    path = save_grid(images, tmp_path / "g" / "grid.png", nrow=3, scale=2)
    grid = np.asarray(Image.open(path))
    assert grid.shape == ((2 * 17 + 1) * 2, (3 * 17 + 1) * 2)
    assert grid[2, 2] == 0 and grid.max() == 255
    with pytest.raises(ValueError):
        save_grid(torch.zeros(2, 2, 4, 4), tmp_path / "bad.png")


def test_load_data_is_offline_unless_asked_for_the_hub(tmp_path, monkeypatch):
    import datasets

    def no_network(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub (offline)\nretries exhausted")

    monkeypatch.setattr(datasets, "load_dataset", no_network)
    with pytest.raises(ValueError, match="'digitz' is not 'digits'.*hf:NAME"):
        load_data("digitz")  # a typo never reaches the Hub
    with pytest.raises(ValueError, match="hf:NAME"):
        load_data(str(tmp_path / "missing-folder"))
    with pytest.raises(ValueError) as err:
        load_data("hf:huggan/smithsonian_butterflies_subset")
    assert "ConnectionError: Couldn't reach the Hub" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(image_size=0), "image_size"),
        (dict(image_size=-16), "image_size"),
        (dict(image_size=16.0), "image_size"),
        (dict(channels=2), "channels"),
        (dict(channels=True), "channels"),
    ],
)
def test_load_data_rejects_bad_sizes_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        load_data("digits", **kwargs)


def test_sixteen_bit_greyscale_pngs_are_rescaled_not_clipped(tmp_path):
    folder = tmp_path / "deep"
    folder.mkdir()
    ramp = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    Image.fromarray(ramp).save(folder / "ramp.png")
    assert Image.open(folder / "ramp.png").mode.startswith("I;16")
    x = load_image_folder(folder, image_size=8, channels=1)[0, 0]
    assert torch.allclose(x, torch.tensor(ramp / 65535 * 2 - 1, dtype=torch.float32))
    assert (x == 1).float().mean() < 0.05  # not 98 % white, as a clipping convert gave
    rgb = load_image_folder(folder, image_size=8, channels=3)[0]
    assert torch.equal(rgb[0], rgb[2]) and torch.allclose(rgb[1], x)


def _png_header_only(path, width, height):
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_a_clear_error(tmp_path):
    (tmp_path / "bomb").mkdir()
    _png_header_only(tmp_path / "bomb" / "huge.png", 100_000, 100_000)  # 10^10 pixels
    with pytest.raises(ValueError, match="cannot read image .*huge.png"):
        load_image_folder(tmp_path / "bomb")


def test_save_grid_replaces_a_good_file_only_with_a_whole_one(tmp_path, monkeypatch):
    images = torch.zeros(4, 1, 4, 4)
    path = save_grid(images, tmp_path / "grid.png")
    good = path.read_bytes()

    def disk_full(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG truncated")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_grid(torch.ones(4, 1, 4, 4), path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]


@pytest.mark.parametrize(
    "images, kwargs, message",
    [
        (torch.zeros(0, 1, 4, 4), {}, "B>=1"),
        (torch.zeros(2, 2, 4, 4), {}, "1 or 3"),
        (torch.full((2, 1, 4, 4), float("nan")), {}, "NaN"),
        (torch.zeros(2, 1, 4, 4), dict(scale=0), "scale"),
        (torch.zeros(2, 1, 4, 4), dict(scale=1.5), "scale"),
        (torch.zeros(2, 1, 4, 4), dict(nrow=0), "nrow"),
        ([[0.0]], {}, "tensor"),
    ],
)
def test_save_grid_rejects_bad_input_naming_it(tmp_path, images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        save_grid(images, tmp_path / "g.png", **kwargs)
    assert not (tmp_path / "g.png").exists()


def test_save_grid_path_must_name_a_png_file(tmp_path):
    for bad in (tmp_path, tmp_path / "grid", tmp_path / "folder.png"):
        if bad.name == "folder.png":
            bad.mkdir()
        with pytest.raises(ValueError, match="must name a .png file"):
            save_grid(torch.zeros(1, 1, 4, 4), bad)
