"""The geometric cache: uint8 NHWC pixels of a dataset in chunk files plus `cache.json`.

Env-side (standard library and numpy only). One cache per (dataset, geometric spec);
inference jobs read it a chunk at a time and apply the per-pixel stages
(reproscope.runtime.tensorize) as batches are formed, so memory does not grow with the dataset.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from reproscope.runtime.integrity import Damaged, rebuild_fix

INDEX = "cache.json"
CHUNK_IMAGES = 1000
_READ = 8 << 20  # bytes read and hashed at a time
_HEADER_MAX = 65536 + 10  # the longest .npy header of format 1.0, which NpyWriter writes
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


class Cache:
    """Read side: images [start, stop) as uint8, one chunk held at a time.

    Each chunk is read whole into memory the first time a range touches it, hashed as its
    bytes arrive, and used only when its sha256 is the one ``cache.json`` recorded when the
    chunk was written (``Damaged`` otherwise): the pixels a job uses are the bytes that were
    checked, and the cost follows the chunks the job reads.
    """

    def __init__(self, index_path: str | Path) -> None:
        self.index_path = Path(index_path)
        self.index = json.loads(self.index_path.read_text())
        folder = self.index_path.parent / self.index["chunks_dir"]
        self.files = [folder / c["file"] for c in self.index["chunks"]]
        self.starts = np.cumsum([0] + [c["n_images"] for c in self.index["chunks"]])
        self.verified: dict[int, str] = {}  # chunk -> the sha256 of the bytes read
        self.verify_seconds = 0.0  # time spent hashing what was read
        self._held: tuple[int, np.ndarray] | None = None

    def content_sha256(self) -> str:
        """A digest of the pixels (each chunk's sha256) and what made them, leaving out
        timing, so identical caches built twice have the same digest. A chunk this object
        has read enters with the digest of the bytes read (equal to the recorded one, or
        the read stopped)."""
        content = {k: self.index[k] for k in ("n_images", "shape", "dtype", "chunks", "spec")}
        content["chunks"] = [
            {**c, "sha256": self.verified.get(k, c["sha256"])}
            for k, c in enumerate(self.index["chunks"])
        ]
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    def __len__(self) -> int:
        return int(self.index["n_images"])

    def chunk(self, k: int) -> np.ndarray:
        """Chunk k's images, read and checked against the recorded sha256 (held until
        another chunk is read)."""
        if self._held is not None and self._held[0] == k:
            return self._held[1]
        self._held = None  # at most one chunk in memory
        path, expected = self.files[k], self.index["chunks"][k]["sha256"]
        fix = rebuild_fix(self.index_path, self.index_path.parent)
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            data = np.empty(size, dtype=np.uint8)
            view = memoryview(data)
            digest, at, hashing = hashlib.sha256(), 0, 0.0
            while at < size and (n := f.readinto(view[at : at + _READ])):
                t0 = time.perf_counter()
                digest.update(view[at : at + n])
                hashing += time.perf_counter() - t0
                at += n
        self.verify_seconds += hashing
        actual = digest.hexdigest()
        if actual != expected:
            raise Damaged(path, expected, actual, fix)
        header = io.BytesIO(view[: min(size, _HEADER_MAX)].tobytes())
        read_header = _HEADER_READERS.get(np.lib.format.read_magic(header))
        shape, fortran, dtype = read_header(header) if read_header else ((), True, None)
        want = (int(self.index["chunks"][k]["n_images"]), *self.index["shape"])
        if tuple(shape) != want or fortran or dtype != np.uint8:
            raise Damaged(path, expected, f"{actual} (matching, but shape {shape})", fix)
        pixels = data[header.tell() :].reshape(want)
        self.verified[k] = actual
        self._held = (k, pixels)
        return pixels

    def pixels(self, start: int, stop: int) -> np.ndarray:
        """A copy of images [start, stop), gathered across chunk boundaries."""
        stop = min(stop, len(self))
        parts = []
        for k in range(len(self.files)):
            lo, hi = max(start, self.starts[k]), min(stop, self.starts[k + 1])
            if lo < hi:
                chunk = self.chunk(k)
                parts.append(np.array(chunk[lo - self.starts[k] : hi - self.starts[k]]))
        if not parts:
            return np.zeros((0, *self.index["shape"]), dtype=np.uint8)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def batches(
        self, batch_size: int, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """(offset, pixels) for offsets start, start + batch_size, ... below stop."""
        stop = len(self) if stop is None else min(stop, len(self))
        for offset in range(start, stop, batch_size):
            yield offset, self.pixels(offset, min(offset + batch_size, stop))
        self._held = None

    def first(self, n: int) -> np.ndarray:
        """The first n images, or all when the set is smaller (no chunk is held after)."""
        try:
            return self.pixels(0, min(n, len(self)))
        finally:
            self._held = None


class NpyWriter:
    """A .npy file of known shape written row block by row block through the file, so
    that, unlike a memory map, the written rows do not stay in the process's memory."""

    def __init__(self, path: str | Path, dtype: Any, shape: tuple[int, ...]) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 (closed by close())
        self.dtype, self.shape, self.rows = np.dtype(dtype), shape, 0
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(self.file, {**header, "shape": shape})

    def write(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        assert block.shape[1:] == self.shape[1:], (block.shape, self.shape)
        self.file.write(block.tobytes())
        self.rows += len(block)

    def close(self) -> None:
        self.file.close()
        if self.rows != self.shape[0]:
            raise ValueError(f"{self.file.name}: {self.rows} rows written of {self.shape[0]}")
