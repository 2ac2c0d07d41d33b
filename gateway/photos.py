"""Photos people send (an inspection's evidence, a guard's report): checked by their first bytes and
size, then written and synced before the record naming them commits."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MAX_PHOTO_BYTES = 2 * 1024 * 1024  # 2 MB a photo
MAX_PHOTOS = 5  # photos a record

#: Image types by their first bytes (the extension a phone gives a file proves nothing).
_MAGIC: tuple[tuple[str, str, Callable[[bytes], bool]], ...] = (
    ("image/jpeg", "jpg", lambda b: b[:3] == b"\xff\xd8\xff"),
    ("image/png", "png", lambda b: b[:8] == b"\x89PNG\r\n\x1a\n"),
    ("image/webp", "webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
)



def image_type(data: bytes) -> tuple[str, str] | None:
    """(MIME type, extension) of a JPEG, PNG or WebP by its magic bytes; None for anything else."""
    for mime, ext, test in _MAGIC:
        if test(data):
            return mime, ext
    return None


def check_photos(photos: Sequence[bytes]) -> list[str]:
    """Every problem with the photos of an inspection or a report, one line each (nothing: they may be stored)."""
    problems = []
    if len(photos) > MAX_PHOTOS:
        problems.append(f"{len(photos)} photos: at most {MAX_PHOTOS} at a time")
    for i, p in enumerate(photos, 1):
        if not isinstance(p, bytes | bytearray | memoryview):
            problems.append(f"photo {i}: not a file's bytes")
            continue
        if len(p) > MAX_PHOTO_BYTES:
            problems.append(f"photo {i}: {len(p)} bytes, over the limit of {MAX_PHOTO_BYTES} (2 MB)")
        if image_type(bytes(p[:12])) is None:
            problems.append(f"photo {i}: not a JPEG, PNG or WebP image")
    return problems


def save_photos(folder: Path, photos: Sequence[bytes]) -> list[dict[str, Any]]:
    """Written (and synced) before the record that names them commits; a folder left by a record that
    never committed carries the id the next record gets, so it is emptied first."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stored = []
    try:
        for i, p in enumerate(photos, 1):
            data = bytes(p)
            mime, ext = image_type(data[:12]) or ("", "")
            name = f"{i}.{ext}"
            with open(folder / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            stored.append({"name": name, "type": mime, "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return stored

