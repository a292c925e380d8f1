"""Small named edits that turn the valid network into a malformed one: the corpus's cases are
data (which file, which edit, what the error must say), and these are their verbs.

Each edit is a function of the data directory. Lines are numbered as in an editor (1 is the
header).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd

Edit = Callable[[Path], None]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def replace_line(file: str, line: int, text: str) -> Edit:
    def edit(root: Path) -> None:
        lines = _lines(root / file)
        lines[line - 1] = text
        (root / file).write_text("\n".join(lines), encoding="utf-8")

    return edit


def insert_line(file: str, line: int, text: str) -> Edit:
    """``text`` becomes line ``line``; what was there moves down."""

    def edit(root: Path) -> None:
        lines = _lines(root / file)
        lines.insert(line - 1, text)
        (root / file).write_text("\n".join(lines), encoding="utf-8")

    return edit


def substitute(file: str, old: str, new: str, count: int = -1) -> Edit:
    def edit(root: Path) -> None:
        text = (root / file).read_text(encoding="utf-8")
        assert old in text, (file, old)
        (root / file).write_text(text.replace(old, new, count), encoding="utf-8")

    return edit


def bytes_at_line(file: str, line: int, data: bytes) -> Edit:
    """Append raw ``data`` (not UTF-8, say) to the end of line ``line``'s last cell."""

    def edit(root: Path) -> None:
        raw = (root / file).read_bytes().split(b"\n")
        raw[line - 1] = raw[line - 1] + data
        (root / file).write_bytes(b"\n".join(raw))

    return edit


def write_bytes(file: str, data: bytes) -> Edit:
    def edit(root: Path) -> None:
        (root / file).write_bytes(data)

    return edit


def write_text(file: str, text: str) -> Edit:
    return write_bytes(file, text.encode("utf-8"))


def gzip_as(file: str) -> Edit:
    """The file gzipped but keeping its plain name (a ``.csv`` that is really ``.csv.gz``)."""

    def edit(root: Path) -> None:
        (root / file).write_bytes(gzip.compress((root / file).read_bytes()))

    return edit


def gzip_to(file: str) -> Edit:
    """``NAME.csv`` replaced by ``NAME.csv.gz``."""

    def edit(root: Path) -> None:
        (root / (file + ".gz")).write_bytes(gzip.compress((root / file).read_bytes()))
        (root / file).unlink()

    return edit


def rename(file: str, new: str) -> Edit:
    def edit(root: Path) -> None:
        (root / file).rename(root / new)

    return edit


def remove(file: str) -> Edit:
    def edit(root: Path) -> None:
        (root / file).unlink()

    return edit


def crlf(file: str) -> Edit:
    def edit(root: Path) -> None:
        data = (root / file).read_bytes()
        (root / file).write_bytes(data.replace(b"\n", b"\r\n"))

    return edit


def bom(file: str) -> Edit:
    def edit(root: Path) -> None:
        (root / file).write_bytes(b"\xef\xbb\xbf" + (root / file).read_bytes())

    return edit


def to_parquet(
    file: str,
    change: Callable[[pd.DataFrame], pd.DataFrame] = lambda f: f,
    *,
    index: bool = False,
    keep: bool = False,
) -> Edit:
    """The CSV table rewritten as ``NAME.parquet`` after ``change`` (ids kept as text); the CSV
    is removed unless ``keep``."""

    def edit(root: Path) -> None:
        frame = pd.read_csv(root / file, dtype=str, keep_default_na=False)
        frame = change(frame)
        target = root / (file.removesuffix(".csv") + ".parquet")
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=index)
        target.write_bytes(buffer.getvalue())
        if not keep:
            (root / file).unlink()

    return edit


def both(*edits: Edit) -> Edit:
    def edit(root: Path) -> None:
        for one in edits:
            one(root)

    return edit
