"""Photos from the field: checked by content, re-encoded without metadata, stored by hash.

A phone's photo carries EXIF with the GPS position of the person who took it, the
device and the time; none of it is kept. The picture is decoded with Pillow (the
name and the declared type are not trusted), refused if it is not JPEG, PNG or WebP,
too large, too many pixels (a decompression bomb) or broken, turned upright by its
EXIF orientation, shrunk to a sensible size and written as a fresh JPEG with no
metadata at all. Files are named by the SHA-256 of what is stored, written
atomically, and never served directly: the views check the case scope first.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from webapp.errors import AppError

ACCEPTED_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
THUMB_SIDE = 320
JPEG_QUALITY = 85


@dataclass(frozen=True)
class PhotoLimits:
    max_bytes: int = 10 * 1024 * 1024
    # Pixels decoded into memory: 60 MP is more than any phone camera (50 MP sensors).
    max_pixels: int = 60_000_000
    max_side: int = 20_000
    # The stored copy's longest side: enough to read a sign or a face, not a raw print.
    stored_side: int = 2560


@dataclass(frozen=True)
class StoredPhoto:
    sha256: str
    size_bytes: int
    width: int
    height: int
    original_format: str
    original_bytes: int


class PhotoRefused(AppError):
    """A photo that cannot be stored; the code says why (the rest of a report is unaffected)."""


def _refuse(code: str, message: str, message_en: str, status: int = 400) -> PhotoRefused:
    return PhotoRefused(code, message, status, message_en)


def read_limited(stream: BinaryIO, limits: PhotoLimits) -> bytes:
    """Read an upload, refusing it as soon as it passes ``limits.max_bytes``."""
    data = stream.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        mb = limits.max_bytes / (1024 * 1024)
        raise _refuse(
            "photo_too_large", f"照片过大：每张不超过 {mb:g} MB", "photo larger than the limit", 413
        )
    if not data:
        raise _refuse("photo_empty", "照片文件是空的", "empty file")
    return data


def clean_image(data: bytes, limits: PhotoLimits) -> tuple[bytes, bytes, tuple[int, int], str]:
    """Decode, check and re-encode a photo; return (JPEG bytes, thumbnail bytes, size, format)."""
    with warnings.catch_warnings():
        # Pillow only warns between its own limit and twice that: make it an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        # A corrupt EXIF block only warns (the photo is read without it, and its metadata
        # is dropped anyway): the same whatever the process's warning filter says.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        try:
            img = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb() from None
        except UnidentifiedImageError:
            raise _wrong_type() from None
        except (OSError, SyntaxError, ValueError):
            raise _broken() from None
        fmt = img.format or ""
        if fmt not in ACCEPTED_FORMATS:
            raise _wrong_type()
        width, height = img.size
        if width * height > limits.max_pixels or max(width, height) > limits.max_side:
            raise _bomb()
        try:
            if fmt == "JPEG":
                # Let libjpeg decode at a reduced scale: faster, and far less memory.
                img.draft("RGB", (limits.stored_side, limits.stored_side))
            img.load()
            img = ImageOps.exif_transpose(img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb() from None
        except Exception:  # decoders of untrusted bytes fail in many ways: all mean "broken"
            raise _broken() from None

    img = _flatten(img)
    if max(img.size) > limits.stored_side:
        img.thumbnail((limits.stored_side, limits.stored_side), Image.Resampling.LANCZOS)
    stored = _jpeg(img)
    thumb_img = img.copy()
    thumb_img.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    return stored, _jpeg(thumb_img), img.size, ACCEPTED_FORMATS[fmt]


def _flatten(img: Image.Image) -> Image.Image:
    """RGB on white: transparency (PNG, WebP) has no place in a JPEG."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _jpeg(img: Image.Image) -> bytes:
    # A fresh RGB image has no ``info``: no EXIF, no XMP, no ICC, no comments are written.
    img.info = {}
    out = io.BytesIO()
    img.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return out.getvalue()


def _wrong_type() -> PhotoRefused:
    return _refuse(
        "photo_type", "只能上传 JPEG、PNG 或 WebP 格式的照片", "only JPEG, PNG or WebP images", 415
    )


def _broken() -> PhotoRefused:
    return _refuse(
        "photo_broken", "照片文件已损坏或不完整，无法打开", "the image is damaged or truncated"
    )


def _bomb() -> PhotoRefused:
    return _refuse(
        "photo_too_many_pixels",
        "照片像素过多（尺寸异常），无法处理",
        "the image has too many pixels (possible decompression bomb)",
        413,
    )


def photo_path(root: Path, sha256: str, thumb: bool = False) -> Path:
    """Where the photo with this hash is stored (two-level fan-out by hash prefix)."""
    return root / sha256[:2] / f"{sha256}{'.thumb' if thumb else ''}.jpg"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_photo(root: Path, data: bytes, limits: PhotoLimits) -> StoredPhoto:
    """Clean ``data`` and write it (and its thumbnail) under ``root``; return what was stored.

    The same picture stored twice is one file: its name is the hash of its content.
    """
    stored, thumb, (width, height), fmt = clean_image(data, limits)
    digest = hashlib.sha256(stored).hexdigest()
    path = photo_path(root, digest)
    if not path.exists():
        _write_atomic(photo_path(root, digest, thumb=True), thumb)
        _write_atomic(path, stored)
    return StoredPhoto(digest, len(stored), width, height, fmt, len(data))
