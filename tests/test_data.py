"""The data loaders: offline fallback (the default source only), honest errors, the Hub check
(through a local HTTP server, never the internet), cache, odd and broken files, batches."""
import http.server
import socket
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import course_utils as cu
from course_utils import data_sources, image_prep
from course_utils.butterfly_art import draw_butterfly


def test_butterflies_offline_standin(capsys):
    data = cu.load_butterflies(size=32, limit=40)
    out = capsys.readouterr().out
    assert "Offline" in out and "stand-in" in out and out.count("\n") == 1  # one clear line
    assert data.source.startswith("offline")
    assert data.images.shape == (40, 3, 32, 32) and data.images.dtype == torch.float32
    assert data.images.min() >= -1 and data.images.max() <= 1
    assert data.images.std() > 0.2  # real pictures, not a flat colour


def test_standin_is_deterministic_and_symmetric():
    a, b = np.asarray(draw_butterfly(7, 64)), np.asarray(draw_butterfly(7, 64))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, np.asarray(draw_butterfly(8, 64)))
    # Mirror symmetry up to the small tilt and grain: the left-right flip is close.
    assert np.abs(a.astype(float) - a[:, ::-1].astype(float)).mean() < 40


def test_cache_is_reused_on_second_load(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    first = cu.load_butterflies(size=16, limit=12)
    (cache_file,) = tmp_path.glob("*.pt")
    monkeypatch.setattr(data_sources, "draw_butterfly", None)  # drawing again would fail: the cache must answer
    second = cu.load_butterflies(size=16, limit=12)
    assert torch.equal(first.images, second.images)


def test_mnist_offline_real_digits(capsys):
    data = cu.load_mnist(limit=200)
    assert "Offline" in capsys.readouterr().out
    assert data.images.shape == (200, 1, 28, 28)
    assert 0 <= data.images.min() and data.images.max() <= 1
    assert data.labels.shape == (200,) and data.labels.dtype == torch.int64
    assert len(set(data.labels.tolist())) == 10  # shuffled: every digit present
    assert data.classes == [str(i) for i in range(10)]
    assert cu.load_mnist(limit=5, value_range=(-1, 1)).images.min() == -1


def test_mnist_full_offline_set_and_fashion_needs_the_hub(capsys):
    assert len(cu.load_mnist()) == 5000
    assert "Offline: using the 5,000 real MNIST digits" in capsys.readouterr().out
    # FashionMNIST is a choice the learner made: offline it is an error, not digits in disguise.
    with pytest.raises(data_sources.DataSourceError, match="zalando-datasets/fashion_mnist.*HF_HUB_OFFLINE=1"):
        cu.load_mnist("fashion_mnist", limit=10)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="fashion_mnist"):
        cu.load_mnist("cifar")


def test_a_named_hub_data_set_never_falls_back(capsys, monkeypatch):
    # Offline and nothing cached: the default falls back, a name the learner chose does not.
    with pytest.raises(data_sources.DataSourceError) as error:
        cu.load_butterflies(size=16, source="someone/no-such-butterflies", limit=4)
    message = str(error.value)
    assert "'someone/no-such-butterflies'" in message and "HF_HUB_OFFLINE=1 is set and no copy is cached" in message
    assert "unset HF_HUB_OFFLINE" in message and "folder" in message  # what to do
    assert capsys.readouterr().out == ""  # no "Offline: using the stand-in" note
    with pytest.raises(data_sources.DataSourceError, match="If you meant a folder: there is no 'my_images' in"):
        cu.load_butterflies(size=16, source="my_images")  # a folder that does not exist, or a Hub name?
    # Online but out of reach: the same, with the reason.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(data_sources, "hub_reachable", lambda: False)
    with pytest.raises(data_sources.DataSourceError, match="cannot be reached.*HTTPS_PROXY"):
        cu.load_butterflies(size=16, source="huggan/smithsonian_butterflies_subset", limit=4)
    assert cu.load_butterflies(size=16, limit=4).source.startswith("offline")  # the default still falls back


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A fake Hub endpoint and a fake proxy in one: records each request line, answers 200 (CONNECT: 502)."""

    def _answer(self, status: int) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self._answer(200)

    def do_GET(self):
        self._answer(200)

    def do_CONNECT(self):  # an HTTPS request through the proxy: the proxy cannot reach the host
        self._answer(502)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def online(monkeypatch):
    """Not offline, no proxies but the test's, a fresh huggingface_hub session and hub_reachable cache."""
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read once when huggingface_hub was imported
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        for spelling in (name, name.lower()):
            monkeypatch.delenv(spelling, raising=False)
    huggingface_hub.close_session()  # the next session reads the proxies from the environment again
    data_sources.hub_reachable.cache_clear()
    yield monkeypatch
    huggingface_hub.close_session()
    data_sources.hub_reachable.cache_clear()


def test_hub_reachable_asks_the_endpoint_once_per_process(online, local_server):
    online.setenv("HF_ENDPOINT", f"http://127.0.0.1:{local_server.server_port}")  # a mirror, as in mainland China
    assert data_sources.hub_reachable() is True
    assert data_sources.hub_reachable() is True
    assert local_server.seen == ["HEAD /"]  # asked once, answered from the cache the second time


def test_hub_reachable_goes_through_the_proxy(online, local_server):
    proxy = f"http://127.0.0.1:{local_server.server_port}"
    online.setenv("HF_ENDPOINT", "http://hub.invalid")  # a name no resolver knows: only the proxy can answer
    online.setenv("HTTP_PROXY", proxy)
    assert data_sources.hub_reachable() is True
    assert local_server.seen == ["HEAD http://hub.invalid/"]


def test_hub_reachable_over_https_asks_the_proxy_and_believes_its_answer(online, local_server):
    online.setenv("HF_ENDPOINT", "https://hub.invalid")
    online.setenv("HTTPS_PROXY", f"http://127.0.0.1:{local_server.server_port}")
    assert data_sources.hub_reachable() is False  # the proxy answered 502: it cannot reach the Hub
    assert local_server.seen == ["CONNECT hub.invalid:443"]


def test_hub_unreachable_is_quick(online):
    online.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert data_sources.hub_reachable(timeout=1.0) is False


def test_a_silent_endpoint_is_given_up_on_in_bounded_time(online):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        online.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        assert data_sources.hub_reachable(timeout=0.5) is False
        assert time.monotonic() - started < 10  # bounded (timeout + 1 s), not a hang; generous for a busy machine


@pytest.fixture
def odd_folder(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(tmp_path / "rgb.jpg")
    Image.fromarray(rng.integers(0, 255, (33, 21), dtype=np.uint8), "L").save(tmp_path / "gray.png")
    rgba = Image.new("RGBA", (40, 40), (255, 0, 0, 0))  # fully transparent: must become white
    rgba.save(tmp_path / "clear.png")
    Image.new("P", (17, 90), 3).save(tmp_path / "palette.gif")
    Image.new("CMYK", (64, 48), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "sub" / "nested.bmp")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "notes.txt").write_text("not an image, ignored")
    return tmp_path


def test_folder_of_odd_images(odd_folder):
    with pytest.warns(UserWarning, match="broken.jpg"):
        data = cu.load_butterflies(size=24, source=odd_folder)
    assert data.images.shape == (6, 3, 24, 24)  # every image but the broken one
    assert data.source.startswith("folder")
    files = [p.name for p in image_prep.list_image_files(odd_folder)]
    clear = data.images[files.index("clear.png") - (files.index("clear.png") > files.index("broken.jpg"))]
    assert torch.allclose(clear, torch.ones_like(clear))  # transparent laid on white


def test_folder_grayscale_for_one_channel(odd_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images = image_prep.load_folder(odd_folder, size=10, channels=1)
    assert images.shape == (6, 1, 10, 10) and images.dtype == torch.uint8


def test_empty_and_missing_folders_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="put .jpg or .png files there"):
        cu.load_butterflies(source=tmp_path)
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="all unreadable"), pytest.warns(UserWarning):
        image_prep.load_folder(tmp_path, 8)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cu.load_butterflies(source=tmp_path / "nope")


def test_corrupt_cache_file_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    cu.load_butterflies(size=8, limit=3)
    for f in tmp_path.glob("*.pt"):
        f.write_bytes(b"truncated")
    again = cu.load_butterflies(size=8, limit=3)
    assert again.images.shape == (3, 3, 8, 8)
    assert all(f.stat().st_size > 100 for f in tmp_path.glob("*.pt"))  # rebuilt and stored again


def test_batches_shapes_flips_and_determinism():
    images = torch.arange(10 * 1 * 2 * 3, dtype=torch.float32).view(10, 1, 2, 3)
    labels = torch.arange(10)
    batches = cu.BatchIterator(images, 4, labels=labels, seed=0)
    assert len(batches) == 3
    seen = []
    for x, y in batches:
        for xi, yi in zip(x, y):
            original = images[yi]
            assert torch.equal(xi, original) or torch.equal(xi, original.flip(-1))
        seen += y.tolist()
    assert sorted(seen) == list(range(10))  # one epoch covers every image once
    flipped = sum(not torch.equal(x, images[y]) for xb, yb in batches for x, y in zip(xb, yb))
    assert 0 < flipped < 10
    first = [x for x, _ in cu.BatchIterator(images, 4, labels=labels, seed=1)]
    second = [x for x, _ in cu.BatchIterator(images, 4, labels=labels, seed=1)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert len(cu.BatchIterator(images, 4, drop_last=True)) == 2
    unflipped = next(iter(cu.BatchIterator(images, 10, shuffle=False, flip=False)))
    assert torch.equal(unflipped, images)
    with pytest.raises(ValueError, match="empty"):
        cu.BatchIterator(images[:0], 4)
