"""The geometric cache: uint8 chunks built in processes, finished batch by batch, must give
the bytes that preprocessing each image on its own gives, for every spec of the study.

Real images from the imagenet-sample mirror (beside the repository; skipped without it).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from reproscope.acquire.preprocess import (
    build_cache,
    geometric_spec,
    preprocess_image,
    spec_hash,
    spec_of,
)
from reproscope.plan.ablation import apply_overrides
from reproscope.runtime.cache import Cache
from reproscope.runtime.tensorize import finish, tensor_spec
from tests.tinystudy import REPO

MIRROR = REPO.parent / "shared" / "data" / "imagenet-sample"
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"{MIRROR} is absent")


def study_specs() -> dict[str, dict]:
    """Every model's and every ablation variant's preprocessing spec in the default study."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    manifests = {p.stem: yaml.safe_load(p.read_text()) for p in (REPO / "manifests").glob("*.yaml")}
    specs = {name: spec_of(data["inputs"]) for name, data in manifests.items()}
    ablations = config["ablations"]
    for variant, entry in ablations["variants"].items():
        base = manifests[entry.get("model", ablations["model"])]
        specs[variant] = spec_of(apply_overrides(base, entry["overrides"])["inputs"])
    return specs


def images(n: int) -> list[Path]:
    """n photos spread over the classes, grayscale and CMYK ones included when present."""
    files = sorted(MIRROR.glob("n*.JPEG"))
    return files[:: max(1, len(files) // n)][:n]


@needs_mirror
def test_cache_gives_the_per_image_bytes_for_every_study_spec(tmp_path: Path) -> None:
    paths = images(36)
    specs = study_specs()
    geometries = {spec_hash(geometric_spec(s)): geometric_spec(s) for s in specs.values()}
    assert len(geometries) < len(specs)  # variants share caches
    caches = {}
    for key, geometry in geometries.items():
        # chunks of 7 and batches of 5: batches straddle chunk boundaries
        build_cache(paths, geometry, tmp_path / key, workers=2, chunk_images=7)
        caches[key] = Cache(tmp_path / key / "cache.json")
    for name, spec in specs.items():
        cache = caches[spec_hash(geometric_spec(spec))]
        assert cache.index["dtype"] == "uint8" and len(cache) == len(paths)
        batched = np.concatenate([finish(px, tensor_spec(spec)) for _, px in cache.batches(5)])
        reference = np.stack([preprocess_image(p, spec) for p in paths])
        assert batched.dtype == reference.dtype and batched.shape == reference.shape, name
        assert batched.tobytes() == reference.tobytes(), name


def test_cache_chunks_ranges_and_digest(tmp_path: Path) -> None:
    from reproscope.acquire.cache_writer import write_cache

    data = np.random.default_rng(0).integers(0, 256, (23, 4, 5, 3), dtype=np.uint8)
    index = write_cache(
        range(23), data.__getitem__, (4, 5, 3), tmp_path / "c", tmp_path / "i.json", chunk_images=10
    )
    assert [c["n_images"] for c in index["chunks"]] == [10, 10, 3]
    cache = Cache(tmp_path / "i.json")
    assert np.array_equal(cache.pixels(8, 21), data[8:21])
    assert np.array_equal(cache.first(100), data)
    offsets = [o for o, _ in cache.batches(6, start=4, stop=20)]
    assert offsets == [4, 10, 16]
    assert np.array_equal(np.concatenate([p for _, p in cache.batches(6, 4, 20)]), data[4:20])
    again = tmp_path / "again"
    again.mkdir()
    write_cache(
        range(23), data.__getitem__, (4, 5, 3), again / "c", again / "i.json", chunk_images=10
    )
    assert Cache(again / "i.json").content_sha256() == cache.content_sha256()
    changed = copy.deepcopy(data)
    changed[22, 0, 0, 0] ^= 1
    write_cache(
        range(23), changed.__getitem__, (4, 5, 3), again / "c", again / "i.json", chunk_images=10
    )
    assert Cache(again / "i.json").content_sha256() != cache.content_sha256()


def test_default_study_cache_without_diagnosis_fits_1_5_gb() -> None:
    """results/preprocess of the default study's models and ablations: one uint8 cache
    per geometric spec, 1000 images of 224x224x3 each (the diagnosis adds its own)."""
    from reproscope.plan.study import load_study

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["manifests"] = str(REPO / "manifests")
    config["environments"] = {k: str(REPO / v) for k, v in config["environments"].items()}
    study = load_study(config, "config/config.yaml")
    names = [*study.settings["models"], *study.variants]
    kept = {
        study.preprocess_hash(n)
        for n in names
        if study.variants.get(n, {}).get("kind") != "diagnosis"
    }
    sizes = {tuple(study.manifest(n).inputs["size"]) for n in names}
    assert sizes == {(224, 224)}
    assert len(kept) * 1000 * 224 * 224 * 3 <= 1.5e9


def test_a_damaged_chunk_is_refused_when_read(tmp_path: Path) -> None:
    """A chunk is checked against its recorded sha256 as it is read: ranges of intact chunks
    are served, a range touching the damaged one stops with the file, both digests and the
    command that rebuilds the cache; the digest recorded is that of the chunks read."""
    from reproscope.acquire.cache_writer import write_cache
    from reproscope.runtime.digests import sha256_file
    from reproscope.runtime.integrity import Damaged

    data = np.random.default_rng(1).integers(0, 256, (25, 4, 4, 3), dtype=np.uint8)
    index = tmp_path / "cache.json"
    write_cache(range(25), data.__getitem__, (4, 4, 3), tmp_path / "chunks", index, chunk_images=10)
    recorded = Cache(index).content_sha256()
    chunk = tmp_path / "chunks" / "00001.npy"
    expected = sha256_file(chunk)
    damaged = bytearray(chunk.read_bytes())
    damaged[-7] ^= 0xFF  # a pixel, the file's size and header kept
    chunk.write_bytes(bytes(damaged))
    cache = Cache(index)
    assert np.array_equal(cache.pixels(0, 10), data[:10])
    assert np.array_equal(cache.pixels(20, 25), data[20:])
    assert cache.verify_seconds > 0 and sorted(cache.verified) == [0, 2]
    assert cache.content_sha256() == recorded  # the chunks read matched their records
    with pytest.raises(Damaged) as caught:
        cache.pixels(8, 12)
    message = str(caught.value)
    assert str(chunk) in message and expected in message and sha256_file(chunk) in message
    assert f"snakemake --forcerun {index}" in message and "Fix:" in message
    with pytest.raises(Damaged):
        list(Cache(index).batches(4))
