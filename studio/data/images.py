"""Image datasets: class-folder directories, ``.zip`` archives, ``.npz``.

Archives are read member by member in memory after every name, type and
size has been checked; nothing is extracted to disk. Image sets are planned
from the image headers before any image is decoded: every image within the
pixel limit, one size for the whole set, and the decoded set (float32) within
``STUDIO_MAX_DECODED_BYTES``; then the images are decoded into one
preallocated array.
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from studio.data.dataset import Dataset, limit
from studio.errors import StudioError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
GRAY_MODES = ("L", "LA", "1", "I;16", "I", "F")  # decoded to one channel; every other mode to RGB
MAX_DECODED_BYTES = 2 * 2**30


def _pixel_limit_error(name: str, width: int, height: int, max_pixels: int) -> StudioError:
    return StudioError(
        f"image {name!r} is {width}x{height}, over the limit of {max_pixels} pixels; "
        "resize it or raise STUDIO_MAX_IMAGE_PIXELS"
    )


ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")  # modes with an alpha channel (dropped on decoding)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode one image to float32 (C, H, W) in [0, 1].

    An alpha channel (transparency) is dropped, as PIL's ``convert("RGB")``
    / ``convert("L")`` in torchvision's ``ImageFolder`` drops it: each pixel
    keeps its stored colour. :func:`decode_image_alpha` also says whether
    the file had one.
    """
    return decode_image_alpha(data, name)[0]


def decode_image_alpha(data: bytes, name: str) -> tuple:
    """:func:`decode_image` and what it dropped: ``(image, alpha)``.

    Returns
    -------
    image : ndarray of shape (C, H, W), float32 in [0, 1]
    alpha : int
        0: the file has no alpha channel (nor a palette transparency);
        1: it has one, every pixel opaque; 2: it has transparent pixels,
        whose stored colour the image now shows.
    """
    from PIL import Image, UnidentifiedImageError

    max_pixels = limit("STUDIO_MAX_IMAGE_PIXELS", 4096 * 4096)
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise _pixel_limit_error(name, img.width, img.height, max_pixels)
            img.load()
            if img.mode in GRAY_MODES:
                arr = np.asarray(img.convert("L"), dtype=np.float32)[None] / 255.0
            else:
                arr = np.asarray(img.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
            alpha = 0
            if img.mode in ALPHA_MODES or "transparency" in img.info:
                alpha = 2 if np.asarray(img.convert("RGBA").getchannel("A")).min() < 255 else 1
    except StudioError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise StudioError(f"image {name!r} could not be decoded ({type(exc).__name__}); the file is damaged or not an image") from None
    return arr, alpha


def image_shape(source, name: str, max_pixels: int) -> tuple:
    """(C, H, W) that :func:`decode_image` will return, from the image's header alone (nothing decoded).

    Parameters
    ----------
    source : bytes, path or binary file
    name : str
        For messages.
    max_pixels : int
        An image with more pixels is refused here.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as img:
            width, height, mode = img.width, img.height, img.mode
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise StudioError(f"image {name!r} could not be decoded ({type(exc).__name__}); the file is damaged or not an image") from None
    if width * height > max_pixels:
        raise _pixel_limit_error(name, width, height, max_pixels)
    return (1 if mode in GRAY_MODES else 3, height, width)


def plan_stack(shapes, names: list, source: str) -> tuple:
    """Check an image set from its headers; return the stack's shape (N, C, H, W).

    Refused: no images, images of different sizes, and a set whose decoded
    float32 array would exceed ``STUDIO_MAX_DECODED_BYTES`` (default 2 GiB)
    -- many images each within the pixel limit can still add up to more
    memory than the machine has. ``shapes`` may be a lazy iterable: the
    check stops at the first image over the total. A set that mixes grey (1
    channel) and colour (3 channels) images is stacked as RGB (C = 3), as
    torchvision's ``ImageFolder`` (PIL ``convert("RGB")``) reads every file:
    :func:`_decode_into` copies a grey image's value to the three channels.
    """
    max_bytes = limit("STUDIO_MAX_DECODED_BYTES", MAX_DECODED_BYTES)
    first: dict = {}
    channels = set()
    total = 0
    count = 0
    for shape, nm in zip(shapes, names):
        first.setdefault(shape[1:], (nm, shape))
        channels.add(shape[0])
        total += 4 * max(channels) * shape[1] * shape[2]  # float32 bytes (grey counted as RGB once colour is seen)
        count += 1
        if total > max_bytes:
            raise StudioError(
                f"the images in {source!r} decode to more than {max_bytes} bytes (the first {count} alone need "
                f"{total}), over the limit; use fewer or smaller images, or raise STUDIO_MAX_DECODED_BYTES"
            )
    if not count:
        raise StudioError(
            f"{source!r} holds no images; expected class folders such as cat/1.png, dog/2.png "
            f"with files ending in {', '.join(IMAGE_SUFFIXES)}"
        )
    if len(first) > 1:
        desc = "; ".join(f"{nm} is {s[0]}x{s[1]}x{s[2]} (CxHxW)" for nm, s in list(first.values())[:3])
        raise StudioError(f"images in {source!r} differ in size ({desc}); resize them to one size")
    (size,) = first
    c = max(channels)
    if count * 4 * c * size[0] * size[1] > max_bytes:  # grey images seen before the first colour one, now RGB
        raise StudioError(
            f"the images in {source!r} decode to more than {max_bytes} bytes as RGB, over the limit; use fewer or "
            "smaller images, or raise STUDIO_MAX_DECODED_BYTES"
        )
    return (count, c) + tuple(size)


def _decode_into(x: np.ndarray, i: int, data: bytes, name: str) -> tuple:
    """Decode one image into ``x[i]``.

    Returns
    -------
    grey_into_rgb : bool
        A grey image went into an RGB stack (its value in every channel).
    alpha : int
        :func:`decode_image_alpha`'s alpha code (0 none, 1 opaque, 2 with transparent pixels).

    An image whose decoded shape differs from its header is refused.
    """
    arr, alpha = decode_image_alpha(data, name)  # (C, H, W)
    grey_into_rgb = arr.shape[0] == 1 and x.shape[1] == 3 and arr.shape[1:] == x.shape[2:]
    if arr.shape != x.shape[1:] and not grey_into_rgb:
        raise StudioError(f"image {name!r} decodes to {arr.shape}, not the {x.shape[1:]} its header declares; the file is damaged")
    x[i] = arr  # (1, H, W) broadcasts to the three channels
    return grey_into_rgb, alpha


def decode_all(x: np.ndarray, blobs) -> list:
    """Decode ``(bytes, name)`` pairs into ``x`` (N, C, H, W) in order; return the Dataset notes on what changed."""
    flags = [_decode_into(x, i, blob, name) for i, (blob, name) in enumerate(blobs)]
    alpha = [a for _, a in flags]
    return mixed_note(sum(g for g, _ in flags), len(x)) + alpha_note(sum(a > 0 for a in alpha),
                                                                     sum(a == 2 for a in alpha), len(x))


def mixed_note(grey: int, total: int) -> list:
    """The Dataset note for a set with ``grey`` greyscale images among ``total`` stacked as RGB."""
    if not grey:
        return []
    return [f"{grey} of {total} images are greyscale and the rest colour: the greyscale ones were converted to RGB "
            "(the grey value in all three channels), as torchvision's ImageFolder does"]


def alpha_note(with_alpha: int, transparent: int, total: int) -> list:
    """The Dataset note for ``with_alpha`` of ``total`` images that had an alpha channel, ``transparent`` of them
    with transparent pixels (empty when none had one)."""
    if not with_alpha:
        return []
    which = ("the image has" if total == 1 else f"{with_alpha} of {total} images {'has' if with_alpha == 1 else 'have'}")
    seen = ("every pixel opaque" if not transparent else
            f"{transparent} of them with transparent pixels, which now show their stored colour"
            if with_alpha > 1 else "with transparent pixels, which now show their stored colour")
    return [f"{which} an alpha (transparency) channel ({seen}); the alpha channel was dropped, as torchvision's "
            "ImageFolder drops it (PIL convert), so the model never sees transparency"]


def to_grey(x: np.ndarray) -> np.ndarray:
    """RGB images (N, 3, H, W) in [0, 1] to grey (N, 1, H, W) with ITU-R 601-2 luma, as PIL's ``convert("L")``.

    Images read from 8-bit files (every value a multiple of 1/255) get
    exactly PIL's integer result, ``(19595 R + 38470 G + 7471 B + 32768) >> 16``;
    other values the same weights in floating point.
    """
    q = np.rint(x * 255.0)
    if np.array_equal((q / 255.0).astype(np.float32), x.astype(np.float32)):
        v = q.astype(np.int64)
        luma = (19595 * v[:, 0] + 38470 * v[:, 1] + 7471 * v[:, 2] + 0x8000) >> 16
        return (luma[:, None].astype(np.float32) / 255.0).astype(np.float32)
    return (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).astype(np.float32)


def convert_channels(data: Dataset, channels: int):
    """``data`` with its images converted to ``channels`` (grey <-> RGB), or None when that is not a conversion.

    Grey to RGB copies the grey value to the three channels (PIL
    ``convert("RGB")``); RGB to grey takes the luma (PIL ``convert("L")``,
    :func:`to_grey`). A note in the returned Dataset's ``notes`` says so.
    """
    have = data.image_shape[0]
    if (have, channels) == (1, 3):
        x = np.repeat(data.x, 3, axis=1)
        note = f"The model takes RGB images: the {len(data)} greyscale images were converted to RGB (the grey value in all three channels)"
    elif (have, channels) == (3, 1):
        x = to_grey(data.x)
        note = (f"The model takes greyscale images: the {len(data)} RGB images were converted to grey "
                "(ITU-R 601-2 luma, as PIL's convert('L'))")
    else:
        return None
    return Dataset(
        kind="image", x=np.ascontiguousarray(x, dtype=np.float32), y=data.y, label=data.label,
        class_names=data.class_names, names=data.names, name=data.name, notes=list(data.notes) + [note],
    )


def check_archive(zf: zipfile.ZipFile, source: str) -> list:
    """Refuse an unsafe archive from its central directory alone; return its entries.

    Nothing is read or extracted here. Refused: more entries than
    ``STUDIO_MAX_ZIP_MEMBERS``, a total uncompressed size over
    ``STUDIO_MAX_ZIP_BYTES``, a member compressed more than 1000:1 (a zip
    bomb), absolute paths or ``..``, symbolic links.
    """
    max_members = limit("STUDIO_MAX_ZIP_MEMBERS", 100_000)
    max_total = limit("STUDIO_MAX_ZIP_BYTES", 2 * 2**30)
    infos = zf.infolist()
    if len(infos) > max_members:
        raise StudioError(
            f"archive {source!r} has {len(infos)} entries, over the limit of {max_members}; "
            "raise STUDIO_MAX_ZIP_MEMBERS to allow more"
        )
    total = 0
    for info in infos:
        name = info.filename
        path = PurePosixPath(name.replace("\\", "/"))
        if (
            name.startswith(("/", "\\")) or path.is_absolute() or ".." in path.parts
            or (len(name) > 1 and name[1] == ":") or "\x00" in name
        ):
            raise StudioError(f"archive {source!r} has an unsafe path {name!r} (absolute or with '..'); it was refused")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise StudioError(f"archive {source!r} contains a symbolic link {name!r}; links are refused")
        total += info.file_size
        if total > max_total:
            raise StudioError(
                f"archive {source!r} uncompresses to more than {max_total} bytes, over the limit (a zip bomb?); "
                "raise STUDIO_MAX_ZIP_BYTES if it is genuine"
            )
        if info.file_size > 2**20 and info.file_size > 1000 * max(info.compress_size, 1):
            raise StudioError(
                f"archive {source!r} member {name!r} has a compression ratio over 1000 (a zip bomb?); it was refused"
            )
    return infos


def _check_members(zf: zipfile.ZipFile, source: str) -> list:
    """Refuse unsafe archives before reading anything; return image members."""
    members = []
    for info in check_archive(zf, source):
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if info.is_dir() or path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            members.append((info, path))
    return members


def _class_layout(paths: list, source: str):
    """(class name per file, sorted class list) from class-folder paths."""
    parents = [p.parent for p in paths]
    depth = {len(p.parts) for p in parents}
    if 0 in depth:
        raise StudioError(
            f"{source!r} has images outside class folders; put each image in a folder named after its class"
        )
    # allow one common top folder (archive of a folder)
    tops = {p.parts[0] for p in parents}
    strip = 1 if len(tops) == 1 and all(len(p.parts) >= 2 for p in parents) else 0
    classes_of = [p.parts[strip] if len(p.parts) > strip else p.parts[-1] for p in parents]
    return classes_of, sorted(set(classes_of))


def load_zip(data: bytes, source: str) -> Dataset:
    max_images = limit("STUDIO_MAX_ROWS", 2_000_000)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise StudioError(f"{source!r} is not a valid zip archive; zip the class folders again") from None
    with zf:
        members = _check_members(zf, source)
        if len(members) > max_images:
            raise StudioError(f"{source!r} has {len(members)} images, over the limit of {max_images}; raise STUDIO_MAX_ROWS")
        members.sort(key=lambda m: str(m[1]))
        classes_of, classes = _class_layout([p for _, p in members], source)
        max_pixels = limit("STUDIO_MAX_IMAGE_PIXELS", 4096 * 4096)
        names = [str(path) for _, path in members]
        shape = plan_stack((_member_shape(zf, info, source, max_pixels) for info, _ in members),
                           [info.filename for info, _ in members], source)
        x = np.empty(shape, dtype=np.float32)  # (N, C, H, W)
        notes = decode_all(x, ((_read_member(zf, info, source), info.filename) for info, _ in members))
    labels = [classes.index(c) for c in classes_of]
    return Dataset(kind="image", x=x, y=np.asarray(labels, dtype=np.int64), label="class", class_names=list(classes),
                   names=names, name=source, notes=notes)


def _read_member(zf: zipfile.ZipFile, info, source: str) -> bytes:
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise StudioError(f"archive {source!r} member {info.filename!r} is damaged ({type(exc).__name__})") from None


def _member_shape(zf: zipfile.ZipFile, info, source: str, max_pixels: int) -> tuple:
    """A member's (C, H, W) from its header, read through the archive's stream (only the first bytes inflate)."""
    try:
        with zf.open(info) as fh:
            return image_shape(fh, info.filename, max_pixels)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        raise StudioError(f"archive {source!r} member {info.filename!r} is damaged ({type(exc).__name__})") from None


def load_folder(root: Path) -> Dataset:
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_symlink() and p.is_file()
    )
    max_images = limit("STUDIO_MAX_ROWS", 2_000_000)
    if len(files) > max_images:
        raise StudioError(f"{root.name!r} has {len(files)} images, over the limit of {max_images}; raise STUDIO_MAX_ROWS")
    rel = [PurePosixPath(p.relative_to(root).as_posix()) for p in files]
    if rel and all(len(r.parts) == 1 for r in rel):
        raise StudioError(f"{root.name!r} has images outside class folders; put each image in a folder named after its class")
    classes_of = [r.parts[0] for r in rel]
    classes = sorted(set(classes_of))
    max_pixels = limit("STUDIO_MAX_IMAGE_PIXELS", 4096 * 4096)
    names = [str(r) for r in rel]
    shape = plan_stack((image_shape(p, nm, max_pixels) for p, nm in zip(files, names)), names, root.name)
    x = np.empty(shape, dtype=np.float32)  # (N, C, H, W)
    notes = decode_all(x, ((p.read_bytes(), nm) for p, nm in zip(files, names)))
    labels = [classes.index(c) for c in classes_of]
    return Dataset(kind="image", x=x, y=np.asarray(labels, dtype=np.int64), label="class", class_names=list(classes),
                   names=names, name=root.name, notes=notes)


def _read_npz(data: bytes, source: str) -> dict:
    """Every array of an ``.npz``, checked before it is read.

    The archive passes :func:`check_archive`; each member's ``.npy`` header
    is read first: object (pickled) arrays are refused, and an array whose
    declared size exceeds its member's real size, or the row limits, is
    refused without allocating it.
    """
    from numpy.lib import format as npformat

    max_cells = limit("STUDIO_MAX_NPZ_VALUES", 2 * 10**9)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise StudioError(f"{source!r} is not a valid .npz file (not a zip archive); save it with np.savez") from None
    arrays = {}
    with zf:
        infos = check_archive(zf, source)
        for info in infos:
            if info.is_dir() or not info.filename.endswith(".npy"):
                continue
            key = info.filename[: -len(".npy")]
            try:
                with zf.open(info) as fh:
                    version = npformat.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = npformat.read_array_header_1_0(fh, max_header_size=10_000)
                    elif version == (2, 0):
                        shape, _, dtype = npformat.read_array_header_2_0(fh, max_header_size=10_000)
                    else:
                        raise ValueError(f"unsupported .npy version {version}")
                    header_end = fh.tell() if fh.seekable() else None
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError, SyntaxError, TypeError) as exc:
                raise StudioError(f"{source!r}: member {info.filename!r} is not a valid .npy array ({type(exc).__name__})") from None
            if dtype.hasobject:
                raise StudioError(
                    f"{source!r} stores Python objects (pickled arrays, in {key!r}), which are refused; "
                    "save plain numeric or text arrays"
                )
            cells = int(np.prod(shape, dtype=object))
            if cells > max_cells:
                raise StudioError(
                    f"{source!r}: array {key!r} declares {cells} values, over the limit of {max_cells}; "
                    "raise STUDIO_MAX_NPZ_VALUES if it is genuine"
                )
            if header_end is not None and cells * dtype.itemsize > info.file_size - header_end:
                raise StudioError(f"{source!r}: array {key!r} is truncated (its header promises more data than the file holds)")
            try:
                with zf.open(info) as fh:
                    arrays[key] = npformat.read_array(fh, allow_pickle=False)
            except MemoryError:
                raise StudioError(f"{source!r}: array {key!r} needs more memory than is free; load a smaller file") from None
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
                raise StudioError(f"{source!r}: array {key!r} is damaged ({type(exc).__name__}); save the file again") from None
    return arrays


def _npz_names(values, what: str, source: str):
    if values is None:
        return None
    if values.ndim != 1 or values.dtype.kind not in "Uiu" or len(values) == 0:
        raise StudioError(f"{source!r}: {what!r} must be a 1-D array of names")
    return [str(v) for v in values]


def load_npz(data: bytes, source: str) -> Dataset:
    """``.npz`` with ``x`` (and optional ``y``, ``feature_names``, ``class_names``).

    ``x`` of shape (n, features) is a table; (n, H, W) grayscale images;
    (n, C, H, W) or (n, H, W, C) images. Integer images are scaled by 1/255.
    """
    arrays = _read_npz(data, source)
    if "x" not in arrays:
        raise StudioError(
            f"{source!r} has no array named 'x' (it has {', '.join(sorted(arrays)) or 'none'}); "
            "save it with np.savez(path, x=..., y=...)"
        )
    x, y = arrays["x"], arrays.get("y")
    feature_names = _npz_names(arrays.get("feature_names"), "feature_names", source)
    class_names = _npz_names(arrays.get("class_names"), "class_names", source)
    if x.ndim == 0:
        raise StudioError(f"{source!r}: 'x' is a single number; expected (n, features), (n, H, W) or (n, C, H, W)")
    if y is not None and y.ndim != 1:
        raise StudioError(f"{source!r}: 'y' must be one label per row (1-D), got shape {y.shape}")
    if y is not None and y.dtype.kind not in "biufU":
        raise StudioError(f"{source!r}: 'y' must hold numbers or text labels, got dtype {y.dtype}")
    if x.dtype.kind == "b":
        x = x.astype(np.uint8)
    if x.dtype.kind not in "biuf":
        raise StudioError(f"{source!r}: 'x' must be numeric, got dtype {x.dtype}")
    if len(x) == 0:
        raise StudioError(f"{source!r}: 'x' has no rows")
    max_rows = limit("STUDIO_MAX_ROWS", 2_000_000)
    if len(x) > max_rows:
        raise StudioError(f"{source!r}: 'x' has {len(x)} rows, over the limit of {max_rows}; sample it or raise STUDIO_MAX_ROWS")
    if y is not None and len(y) != len(x):
        raise StudioError(f"{source!r}: 'y' has {len(y)} entries but 'x' has {len(x)} rows")
    if x.ndim == 2 and x.dtype.kind == "f" and np.isinf(x).any():
        raise StudioError(f"{source!r}: 'x' contains infinite values; replace them")
    if x.ndim != 2 and x.dtype.kind == "f" and not np.isfinite(x).all():
        raise StudioError(f"{source!r}: the images in 'x' contain NaN or infinite values; clean them first")
    if x.ndim == 2:
        import pandas as pd

        from studio.data.tabular import table_dataset

        names = feature_names or [f"x{i}" for i in range(x.shape[1])]
        if len(names) != x.shape[1]:
            raise StudioError(f"{source!r}: {len(names)} feature_names for {x.shape[1]} columns")
        frame = pd.DataFrame(x.astype(np.float64), columns=names)
        label = None
        if y is not None:
            frame["__label__"] = y
            label = "__label__"
        ds = table_dataset(frame, name=source, label=label)
        ds.label = "y" if y is not None else None
        if class_names:
            ds.class_names = class_names
        return ds
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise StudioError(f"{source!r}: 'x' has shape {x.shape}; expected (n, features), (n, H, W) or (n, C, H, W)")
    if x.shape[1] not in (1, 3, 4) and x.shape[-1] in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    if x.shape[1] not in (1, 3, 4):
        raise StudioError(f"{source!r}: images in 'x' have {x.shape[1]} channels; expected 1, 3 or 4 (shape {x.shape})")
    max_pixels = limit("STUDIO_MAX_IMAGE_PIXELS", 4096 * 4096)
    if x.shape[2] * x.shape[3] > max_pixels:
        raise StudioError(
            f"{source!r}: images are {x.shape[3]}x{x.shape[2]}, over the limit of {max_pixels} pixels; "
            "resize them or raise STUDIO_MAX_IMAGE_PIXELS"
        )
    if x.dtype.kind in "biu":
        x = x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    if y is None:
        labels = None
    else:
        labels = np.asarray(y)
    classes = class_names or ([str(c) for c in np.unique(labels)] if labels is not None else None)
    return Dataset(kind="image", x=x, y=labels, label="y" if labels is not None else None, class_names=classes,
                   names=[f"{i}" for i in range(len(x))], name=source)
