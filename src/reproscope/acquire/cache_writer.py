"""The write side of the geometric cache (reproscope.runtime.cache reads it): every item's
uint8 pixels made, in worker processes where asked, and written in chunk files with their
sha256 into `cache.json`."""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reproscope.runtime.atomic import remove_tree, write_text
from reproscope.runtime.cache import CHUNK_IMAGES
from reproscope.runtime.digests import sha256_file


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
    remove_tree(chunks_dir)
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
    # Written last and whole: the chunks' digests are what every read checks against.
    write_text(index_path, json.dumps(index, indent=1))
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
