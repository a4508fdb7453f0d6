"""The loaders never change data silently: one test per probe of the reliability review (D3, D10,
D21-D26, D32-D34, D37), each reproducing the fault it fixes."""
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import course_utils as cu
from course_utils import image_prep, settings


@pytest.fixture
def own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _folder(tmp_path, count=3, size=8):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (size, size), (40 * i, 0, 0)).save(folder / f"{i}.png")
    return folder


def test_d3_a_failed_cache_write_warns_and_leaves_no_temporary_file(own_cache, monkeypatch):
    def disk_full(tensors, path):  # what torch.save does on a full disk: part of the file, then an error
        with open(path, "wb") as file:
            file.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 768 vs 662")

    monkeypatch.setattr(image_prep.torch, "save", disk_full)
    with pytest.warns(UserWarning, match="Could not cache"):
        data = cu.load_butterflies(size=8, limit=3)
    assert data.images.shape == (3, 3, 8, 8)
    assert not [p for p in own_cache.iterdir() if ".tmp" in p.name]


def test_d32_a_cache_file_with_other_tensors_is_rebuilt(own_cache):
    good = cu.load_butterflies(size=8, limit=4).images
    (cache_file,) = own_cache.glob("*.pt")
    for wrong in ({"images": torch.zeros(3, 8, 8, dtype=torch.uint8)},  # another shape
                  {"images": torch.rand(4, 3, 8, 8)},  # float, not uint8
                  {"pixels": torch.zeros(4, 3, 8, 8, dtype=torch.uint8)}):  # no "images"
        torch.save(wrong, cache_file)
        assert torch.equal(cu.load_butterflies(size=8, limit=4).images, good), wrong.keys()


def test_d33_an_empty_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert settings.cache_dir() == tmp_path / ".cache" / "diffusion-course"
    monkeypatch.setenv("COURSE_CACHE", "")
    assert settings.cache_dir().is_absolute()


def test_d10_exif_rotated_photos_are_turned_upright(tmp_path, own_cache):
    # Stored landscape with a blue top-left pixel; EXIF orientation 6 tells viewers to turn it 90°
    # clockwise, which puts that pixel at the top right.
    pixels = np.zeros((16, 32, 3), np.uint8)
    pixels[:, :] = (255, 0, 0)
    pixels[:8, :8] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(pixels).save(folder / "phone.jpg", exif=exif, quality=95, subsampling=0)
    image = cu.load_butterflies(size=16, source=folder).images[0]
    top_right = image[:, 0, -1]
    assert top_right[2] > 0.5 and top_right[0] < -0.5  # blue, as a viewer shows it, not red


def test_d25_sixteen_bit_images_keep_their_brightness(tmp_path, own_cache):
    folder = tmp_path / "deep"
    folder.mkdir()
    Image.fromarray(np.full((8, 8), 30000, np.uint16)).save(folder / "flat.png")
    Image.fromarray(np.linspace(0, 1000, 64).reshape(8, 8).astype(np.uint16)).save(folder / "dark.png")
    images = image_prep.load_folder(folder, size=8)
    dark, flat = images[0].float(), images[1].float()  # sorted by name
    assert abs(flat.mean() - 30000 / 257) < 1.5  # mid-grey, not stretched to black
    assert dark.max() <= 5  # dark stays dark, not stretched to full range


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="file names there must be valid Unicode")
def test_d21_a_file_name_that_is_not_utf8_loads(tmp_path, own_cache):
    folder = _folder(tmp_path, count=2)
    Image.new("RGB", (8, 8), "blue").save(os.fsdecode(os.fsencode(str(folder)) + b"/bad\xff.png"))
    assert cu.load_butterflies(size=8, source=folder).images.shape == (3, 3, 8, 8)


@pytest.mark.parametrize("bad", [dict(size=0), dict(size=-1), dict(size=32.5), dict(size="32"), dict(size=10000),
                                 dict(size=True), dict(crop="centre")])
def test_d22_d34_a_bad_size_or_crop_names_the_argument(bad, tmp_path):
    name = next(iter(bad))
    folder = _folder(tmp_path)
    for source in (folder, None):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            cu.load_butterflies(source=source, **{"size": 8, **bad})


@pytest.mark.parametrize("limit", [0, -1, "5", 2.5])
def test_d23_a_bad_limit_is_an_error_not_fewer_images(limit, tmp_path):
    folder = _folder(tmp_path)
    for load in (lambda: cu.load_butterflies(size=8, source=folder, limit=limit),
                 lambda: cu.load_butterflies(size=8, limit=limit), lambda: cu.load_mnist(limit=limit)):
        with pytest.raises(ValueError, match="^limit must be"):
            load()


def test_load_mnist_checks_its_value_range():
    with pytest.raises(ValueError, match="^value_range must be"):
        cu.load_mnist(limit=4, value_range=(0,))


def test_d24_symlinked_sub_folders_are_searched(tmp_path, own_cache):
    elsewhere = _folder(tmp_path, count=4)
    folder = tmp_path / "mine"
    folder.mkdir()
    Image.new("RGB", (8, 8), "blue").save(folder / "own.png")
    (folder / "linked").symlink_to(elsewhere, target_is_directory=True)
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # a loop is followed once, not forever
    assert len(image_prep.list_image_files(folder)) == 5
    assert len(cu.load_butterflies(size=8, source=folder)) == 5


def test_d26_batches_of_three_dimensional_images_keep_their_shape():
    images = torch.arange(10 * 2 * 3, dtype=torch.float32).view(10, 2, 3)
    for batch in cu.BatchIterator(images, 4, seed=0):
        assert batch.ndim == 3
        for image in batch:
            assert any(torch.equal(image, original) or torch.equal(image, original.flip(-1)) for original in images)
    with pytest.raises(ValueError, match="labels"):
        cu.BatchIterator(images, 4, labels=torch.arange(3))


def test_d37_a_relative_folder_that_does_not_exist_is_not_taken_for_a_hub_name(tmp_path, monkeypatch):
    (tmp_path / "imgs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="imgs/nope"):
        cu.load_butterflies(size=8, source="imgs/nope")



def test_seed_everything_checks_the_seed():
    with pytest.raises(ValueError, match="^seed must be"):
        settings.seed_everything(-1)
