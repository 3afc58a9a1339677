"""Zip archives from users (zipped shapefiles, .xlsx workbooks): refuse bombs before unpacking.

A few kilobytes of zip can expand to gigabytes. Before GDAL or openpyxl read an
archive, its directory is checked: the total unpacked size, and the packing ratio of
every large member (real boundary files and workbooks pack 2 to 50 times; zeros pack
1,000 times).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

MAX_UNPACKED_BYTES = 1 << 30  # 1 GiB in all
MAX_RATIO = 200  # unpacked / packed, for members over RATIO_FROM_BYTES
RATIO_FROM_BYTES = 16 << 20
MAX_MEMBERS = 10_000


class ArchiveTooLarge(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_archive(path: Path, max_unpacked: int = MAX_UNPACKED_BYTES) -> None:
    """Raise :class:`ArchiveTooLarge` if the zip at ``path`` would unpack to too much.

    A file that is not a zip at all is left to its reader, which says so in its own words.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return
    if len(members) > MAX_MEMBERS:
        raise ArchiveTooLarge(
            "archive_too_many_files", f"压缩包中的文件过多（超过 {MAX_MEMBERS} 个）"
        )
    total = sum(m.file_size for m in members)
    bomb = any(
        m.file_size > RATIO_FROM_BYTES and m.file_size > MAX_RATIO * max(m.compress_size, 1)
        for m in members
    )
    if total > max_unpacked or bomb:
        raise ArchiveTooLarge(
            "archive_too_large",
            f"压缩包解压后过大（{total / (1 << 20):,.0f} MB，压缩比异常或超过 "
            f"{max_unpacked / (1 << 20):,.0f} MB），疑似“压缩炸弹”，已拒绝",
        )
