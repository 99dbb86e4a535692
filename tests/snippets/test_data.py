"""Tests of snippets/data.py on the bundled digits and on data the tests write themselves."""

from __future__ import annotations

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
