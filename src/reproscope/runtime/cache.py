"""The geometric cache: uint8 NHWC pixels of a dataset in chunk files plus `cache.json`.

Env-side (standard library and numpy only). One cache per (dataset, geometric spec);
inference jobs read it a chunk at a time and apply the per-pixel stages
(reproscope.runtime.tensorize) as batches are formed, so memory does not grow with the dataset.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

INDEX = "cache.json"
CHUNK_IMAGES = 1000


class Cache:
    """Read side: images [start, stop) as uint8, one chunk mapped at a time."""

    def __init__(self, index_path: str | Path) -> None:
        self.index_path = Path(index_path)
        self.index = json.loads(self.index_path.read_text())
        folder = self.index_path.parent / self.index["chunks_dir"]
        self.files = [folder / c["file"] for c in self.index["chunks"]]
        self.starts = np.cumsum([0] + [c["n_images"] for c in self.index["chunks"]])

    def content_sha256(self) -> str:
        """A digest of the pixels (each chunk's sha256) and what made them, leaving out
        timing, so identical caches built twice have the same digest."""
        content = {k: self.index[k] for k in ("n_images", "shape", "dtype", "chunks", "spec")}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    def __len__(self) -> int:
        return int(self.index["n_images"])

    def pixels(self, start: int, stop: int) -> np.ndarray:
        """A copy of images [start, stop), gathered across chunk boundaries."""
        stop = min(stop, len(self))
        parts = []
        for k, path in enumerate(self.files):
            lo, hi = max(start, self.starts[k]), min(stop, self.starts[k + 1])
            if lo < hi:
                chunk = np.load(path, mmap_mode="r")
                parts.append(np.array(chunk[lo - self.starts[k] : hi - self.starts[k]]))
                del chunk
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

    def first(self, n: int) -> np.ndarray:
        """The first n images, or all when the set is smaller."""
        return self.pixels(0, min(n, len(self)))


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
