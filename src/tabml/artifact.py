"""Read the `report` artifact of a pull request's run as untrusted data, for `tabml.comment`.

A fork controls what its run uploads, so only named files are read: `report.md`, `pr.json` and
the PNG images the report shows. Each is opened part by part without following a symlink and
must be a regular file with a plain name, within a size limit, UTF-8 text or a real PNG. Nothing
else in the directory is opened. Standard library only, like `tabml.comment`.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import zlib
from pathlib import Path

PR_LIMIT = 4_096
IMAGE_LIMIT = 5 * 2**20
IMAGES = 32
PIXELS = 16_384  # largest width or height taken for a plot
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
# One to three plain path parts, a PNG at the end: no dot files, `..`, absolute paths or URLs.
PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}"
IMAGE_NAME = re.compile(rf"(?:{PART}/){{0,2}}{PART}\.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOFOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class ArtifactError(Exception):
    """A file of the artifact is not taken; the message says which and why."""


def read_plain(root: Path, name: str, limit: int) -> bytes:
    """The bytes of `root/name`, a regular file reached without following any symlink."""
    parts = name.split("/")
    fds: list[int] = []
    try:
        fds.append(os.open(root, NOFOLLOW | os.O_DIRECTORY))
        for part in parts[:-1]:
            fds.append(os.open(part, NOFOLLOW | os.O_DIRECTORY, dir_fd=fds[-1]))
        fds.append(os.open(parts[-1], NOFOLLOW, dir_fd=fds[-1]))
        info = os.fstat(fds[-1])
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactError(f"`{name}` is not a regular file")
        if info.st_size > limit:
            raise ArtifactError(f"`{name}` has {info.st_size} bytes, more than {limit}")
        with os.fdopen(fds.pop(), "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise ArtifactError(f"`{name}` is larger than {limit} bytes")
        return data
    except OSError as exc:
        raise ArtifactError(f"`{name}` cannot be read as a plain file ({exc.strerror})") from None
    finally:
        for fd in fds:
            os.close(fd)


def check_png(data: bytes) -> None:
    """Raise unless `data` starts like a PNG: signature, then a sound IHDR chunk."""
    if not data.startswith(PNG_MAGIC) or len(data) < 33:
        raise ArtifactError("not a PNG image")
    length, kind = struct.unpack(">I4s", data[8:16])
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    (crc,) = struct.unpack(">I", data[29:33])
    if length != 13 or kind != b"IHDR" or zlib.crc32(data[12:29]) != crc:
        raise ArtifactError("not a PNG image (no valid IHDR header)")
    if not (0 < width <= PIXELS and 0 < height <= PIXELS) or colour not in (0, 2, 3, 4, 6):
        raise ArtifactError(f"not a plausible PNG image ({width}x{height}, colour {colour})")
    if depth not in (1, 2, 4, 8, 16):
        raise ArtifactError(f"not a plausible PNG image (bit depth {depth})")


def collect(report_dir: Path, copy: Path, report: str) -> dict[str, str]:
    """Copy the images the report shows into `copy`; the ones left out, with the reason."""
    left_out: dict[str, str] = {}
    targets = list(dict.fromkeys(target for _, target in IMAGE.findall(report)))
    for count, target in enumerate(targets):
        try:
            if not IMAGE_NAME.fullmatch(target) or ".." in target:  # opened part by part
                raise ArtifactError("not a file name inside the report")
            if count >= IMAGES:
                raise ArtifactError(f"more than {IMAGES} images")
            data = read_plain(report_dir, target, IMAGE_LIMIT)
            check_png(data)
        except ArtifactError as exc:
            left_out[target] = str(exc)
            continue
        (copy / target).parent.mkdir(parents=True, exist_ok=True)
        (copy / target).write_bytes(data)
    return left_out


def claimed_pr(report_dir: Path) -> int:
    """The pull request `pr.json` names, read when GitHub's event lists none (a fork's run).

    A claim only: the caller checks that the pull request has the tested commit at its head.
    """
    try:
        claimed = json.loads(read_plain(report_dir, "pr.json", PR_LIMIT).decode("utf-8"))
        claimed = claimed["number"]
    except (ArtifactError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"no pull request number in the event or the artifact ({exc})"
        ) from None
    if not isinstance(claimed, int) or isinstance(claimed, bool) or claimed <= 0:
        raise ArtifactError(f"the artifact names an invalid pull request: {claimed!r}")
    return claimed
