"""An uploaded single image as the instance the Local page explains.

Decoding reuses the image loader (:mod:`studio.data.images`: Pillow, the
``STUDIO_MAX_IMAGE_PIXELS`` limit, damaged files refused with a
:class:`StudioError`); the image is then converted to the model's channels
and resized to its input size, and wrapped in a one-row image
:class:`~studio.data.Dataset` that any local image method can explain.
"""

from __future__ import annotations

import numpy as np

from studio.errors import StudioError

UPLOAD_SUFFIXES = ("png", "jpg", "jpeg")
LUMA = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
"""ITU-R 601 weights, the ones Pillow's ``convert("L")`` uses."""


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(C, H, W) in [0, 1] with ``C`` in {1, 3} -> (channels, H, W).

    Colour to grey uses the ITU-R 601 luma weights; grey to colour repeats
    the one channel.
    """
    have = image.shape[0]
    if have == channels:
        return image
    if have == 3 and channels == 1:
        return np.tensordot(LUMA, image, axes=1)[None].astype(np.float32)  # (1, H, W)
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=0)
    raise StudioError(f"the image has {have} channel(s) and the model expects {channels}; "
                      "upload a grey or an RGB image")


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(C, H, W) float -> (C, height, width), each channel resampled with Pillow.

    Shrinking averages the pixels each output pixel covers (``BOX``);
    enlarging interpolates (``BILINEAR``).
    """
    from PIL import Image

    if image.shape[1:] == (height, width):
        return image
    shrink = image.shape[1] >= height and image.shape[2] >= width
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(ch, dtype=np.float32), mode="F")
                      .resize((width, height), method)) for ch in image]
    return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)  # (C, height, width)


def image_instance(blob: bytes, name: str, model, data):
    """A one-row Dataset holding the uploaded image, fitted to ``model``.

    Parameters
    ----------
    blob : bytes
        The PNG or JPEG file.
    name : str
        Its file name (shown, escaped, in the app).
    model : Model
        The loaded image model; its card's ``input_size`` (or else the loaded
        dataset's image size) gives channels, height and width.
    data : Dataset
        The loaded image dataset (class names, and the size when the card
        has none).

    Returns
    -------
    Dataset
        kind ``"image"``, ``x`` of shape (1, C, H, W) float32 in [0, 1], no
        label; aligned to ``model``.

    Raises
    ------
    StudioError
        The file is not a PNG/JPEG image, is over the pixel limit, cannot be
        decoded, or the model cannot run on it.
    """
    from studio.data.dataset import Dataset
    from studio.data.images import decode_image

    if data.kind != "image":
        raise StudioError("an uploaded image can be explained only with an image model and dataset")
    if not str(name).lower().endswith(tuple("." + s for s in UPLOAD_SUFFIXES)):
        raise StudioError(f"{name!r} is not a PNG or JPEG file; upload a .png or .jpg image")
    c, h, w = (tuple(model.input_size) if getattr(model, "input_size", None) else data.image_shape)
    image = decode_image(blob, name)  # (C0, H0, W0) in [0, 1]
    if image.shape[0] not in (1, 3):  # e.g. RGBA decoded by the loader as RGB already; anything else refused
        raise StudioError(f"image {name!r} has {image.shape[0]} channels; upload a grey or an RGB image")
    x = resize(to_channels(image, int(c)), int(h), int(w))[None]  # (1, C, H, W)
    one = Dataset(kind="image", x=x, y=None, class_names=data.class_names, names=[str(name)], name=str(name))
    return one.aligned_to(model)
