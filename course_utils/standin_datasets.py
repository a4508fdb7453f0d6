"""The offline stand-in butterflies as a 🤗 ``datasets.Dataset``, encoded like the Hub's.

"Introduction to Diffusers" shows the standard input pipeline (``load_dataset`` ->
``with_transform`` -> ``DataLoader``) next to the course's preprocessed tensors. Offline it needs a
data set that behaves like the Hub's: an ``image`` column of JPEG files, decoded on every access.
This makes one from the drawn butterflies, scaled up to the size of the Smithsonian photos
(1600 x 1200 by default), so that decoding costs about what it costs online.
"""
from __future__ import annotations

import io

from PIL import Image

from .butterfly_art import draw_butterflies


def butterfly_standin_dataset(n: int, size: tuple[int, int] = (1600, 1200), quality: int = 90):
    """``n`` drawn butterflies as a ``datasets.Dataset`` with one ``image`` column of JPEG bytes."""
    from datasets import Dataset, Features
    from datasets import Image as ImageFeature

    encoded = []
    for picture in draw_butterflies(n, size=128):
        buffer = io.BytesIO()
        picture.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(buffer, format="JPEG", quality=quality)
        encoded.append({"bytes": buffer.getvalue(), "path": None})
    return Dataset.from_dict({"image": encoded}, features=Features({"image": ImageFeature()}))
