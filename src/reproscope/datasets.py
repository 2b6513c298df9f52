"""Datasets: a local mirror, an archive URL, or generated; always checked by content digest."""

from __future__ import annotations

import fnmatch
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from reproscope.errors import InputError
from reproscope.fetch import directory_digest, fetch_url, redact_url, safe_extract

SYNTHETIC_CLASSES = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (230, 220, 30),
    "cyan": (30, 210, 220),
    "magenta": (210, 30, 210),
}


def generate_synthetic(root: Path, n_images: int, seed: int = 0) -> None:
    """JPEGs of noisy solid colours, `<colour>_<i>.jpg`, of varied sizes; deterministic."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = sorted(SYNTHETIC_CLASSES)
    for i in range(n_images):
        colour = names[i % len(names)]
        h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        noise = rng.normal(0, 12, size=(h, w, 3))
        pixels = np.clip(np.asarray(SYNTHETIC_CLASSES[colour]) + noise, 0, 255).astype(np.uint8)
        if i % 5 == 4:  # some grayscale files, as in real datasets
            Image.fromarray(pixels).convert("L").save(root / f"{colour}_{i:04d}.jpg", quality=95)
        else:
            Image.fromarray(pixels).save(root / f"{colour}_{i:04d}.jpg", quality=95)


def _files(root: Path, pattern: str) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and fnmatch.fnmatchcase(p.relative_to(root).as_posix(), pattern)
    )


def _single_child(directory: Path) -> Path:
    children = list(directory.iterdir())
    return children[0] if len(children) == 1 and children[0].is_dir() else directory


def materialise(
    name: str, spec: dict[str, Any], workdir: Path, config_file: str, log: Any
) -> dict[str, Any]:
    """Find or fetch the dataset, verify its digest, and return its index."""
    field = f"datasets.{name}"
    mirror = Path(spec["mirror"]) if spec.get("mirror") else None
    if spec.get("generator"):
        root = workdir / "files"
        shutil.rmtree(root, ignore_errors=True)
        generate_synthetic(root, spec.get("n_images", 24))
        source = f"generated:{spec['generator']}"
    elif mirror is not None and mirror.is_dir():
        root, source = mirror, f"mirror:{mirror}"
        log.write(f"using the local mirror {mirror}\n")
    elif spec.get("url"):
        log.write(f"mirror {mirror} absent; fetching {redact_url(spec['url'])}\n")
        archive = workdir / ("archive" + "".join(Path(spec["url"]).suffixes[-2:]))
        fetch_url(spec["url"], archive, None, verified_elsewhere=True)
        extracted = workdir / "files"
        shutil.rmtree(extracted, ignore_errors=True)
        safe_extract(archive, extracted)
        archive.unlink()
        root, source = _single_child(extracted), f"url:{redact_url(spec['url'])}"
    else:
        raise InputError(
            config_file,
            f"{field}.mirror",
            f"{mirror} does not exist and no url is given",
            "add 'url' or point 'mirror' at the files",
        )
    digest = "sha256:" + directory_digest(root, (spec["files"],))
    log.write(f"content digest {digest}\n")
    if spec["content_digest"] != "generated" and digest != spec["content_digest"]:
        raise InputError(
            config_file,
            f"{field}.content_digest",
            f"the files at {root} have digest {digest}",
            "the dataset changed: restore it, or update the digest on purpose",
        )
    files = _files(root, spec["files"])
    if spec.get("limit"):
        files = files[: spec["limit"]]
    if not files:
        raise InputError(
            config_file,
            f"{field}.files",
            f"no file in {root} matches {spec['files']!r}",
            "fix the glob",
        )
    regex = re.compile(spec["labels"]["filename_regex"])
    labels = []
    for f in files:
        match = regex.search(Path(f).name)
        if not match:
            raise InputError(
                config_file,
                f"{field}.labels.filename_regex",
                f"{f!r} does not match",
                "fix the regex or the file glob",
            )
        labels.append(match.group(1))
    return {
        "dataset": name,
        "root": str(root),
        "source": source,
        "content_digest": digest,
        "pattern": spec["files"],
        "limit": spec.get("limit"),
        "files": files,
        "labels": labels,
    }
