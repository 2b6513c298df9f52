"""The geometric cache: uint8 NHWC pixels of a dataset in chunk files plus `cache.json`.

Env-side (standard library and numpy only). One cache per (dataset, geometric spec);
inference jobs read it a chunk at a time and apply the per-pixel stages
(reproscope.tensorize) as batches are formed, so memory does not grow with the dataset.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reproscope.fetch import sha256_file

INDEX = "cache.json"
CHUNK_IMAGES = 1000


def _timed(make: Callable[[Any], np.ndarray], item: Any) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    pixels = make(item)
    return pixels, time.perf_counter() - start


def write_cache(
    items: Sequence[Any],
    make: Callable[[Any], np.ndarray],
    shape: tuple[int, ...],
    chunks_dir: Path,
    index_path: Path,
    workers: int = 1,
    chunk_images: int = CHUNK_IMAGES,
    log: Any = None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """make(item) -> uint8 array of `shape` for every item, in order, written in chunks.

    With workers > 1 the items are made in worker processes (decoding and resizing hold
    the GIL for part of their time, so threads do not scale), and each worker writes its
    rows straight into the chunk files, so no pixels pass through this process; make must
    be picklable.
    """
    shutil.rmtree(chunks_dir, ignore_errors=True)
    chunks_dir.mkdir(parents=True)
    started = time.perf_counter()
    seconds: list[float] = []
    starts = range(0, len(items), chunk_images)
    paths = [chunks_dir / f"{k:05d}.npy" for k in range(len(starts))]
    sizes = [len(items[first : first + chunk_images]) for first in starts]
    chunks = []
    pool = None
    if workers > 1:
        for path, size in zip(paths, sizes, strict=True):  # the files now, rows by workers
            np.lib.format.open_memmap(path, "w+", np.uint8, (size, *shape)).flush()
        # fork: a Snakemake script is no importable __main__, so spawn and forkserver
        # cannot start workers there. The caller must not have started thread pools
        # (OpenCV's, a framework's) a fork could copy in a locked state; the preprocess
        # rule's process has none.
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_single_threaded)
    try:
        # One stream over every item: the workers go on with the next chunk while this
        # process hashes the last one.
        if pool:
            tasks = ((x, paths[i // chunk_images], i % chunk_images) for i, x in enumerate(items))
            made = pool.imap(_WriteRow(make), tasks, chunksize=8)
        else:
            made = (_timed(make, x) for x in items)
        for path, size, first in zip(paths, sizes, starts, strict=True):
            out = None if pool else np.lib.format.open_memmap(path, "w+", np.uint8, (size, *shape))
            for i in range(size):
                if out is None:
                    seconds.append(next(made))
                else:
                    out[i], s = next(made)
                    seconds.append(s)
            if out is not None:
                out.flush()
                del out
            chunks.append({"file": path.name, "n_images": size, "sha256": sha256_file(path)})
            if log is not None:
                done = first + size
                rate = done / (time.perf_counter() - started)
                log.write(f"{done}/{len(items)} images ({rate:.0f} img/s)\n")
                log.flush()
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    wall = time.perf_counter() - started
    index = {
        "n_images": len(items),
        "shape": list(shape),
        "dtype": "uint8",
        "chunks_dir": chunks_dir.name,
        "chunks": chunks,
        "spec": spec,
        "seconds_per_image": float(np.median(seconds)) if seconds else 0.0,
        "wall_s": wall,
        "images_per_s": len(items) / wall if wall > 0 else None,
        "workers": workers,
    }
    tmp = index_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, index_path)
    return index


class _WriteRow:
    """A worker's task: make one item's pixels and write them into their chunk's row (the
    file's pages are shared, so the parent hashes what the workers wrote). Returns the
    seconds make took."""

    def __init__(self, make: Callable[[Any], np.ndarray]) -> None:
        self.make = make
        self.chunk: tuple[Path, np.ndarray] | None = None  # this worker's open chunk

    def __call__(self, task: tuple[Any, Path, int]) -> float:
        item, path, row = task
        pixels, s = _timed(self.make, item)
        if self.chunk is None or self.chunk[0] != path:
            self.chunk = (path, np.load(path, mmap_mode="r+"))
        self.chunk[1][row] = pixels
        return s


def _single_threaded() -> None:
    """One process per core: keep libraries inside each worker to one thread."""
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


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
