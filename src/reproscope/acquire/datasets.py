"""Datasets: a local mirror, an archive URL, or generated; always checked by content digest."""

from __future__ import annotations

import csv
import fnmatch
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from reproscope.acquire.fetch import (
    FetchError,
    directory_digest,
    fetch_url,
    redact_url,
    safe_extract,
)
from reproscope.errors import InputError
from reproscope.runtime.atomic import check_no_link, remove_tree
from reproscope.runtime.digests import sha256_file

MAX_REGEX_CHARS = 200
MAX_UNBOUNDED_REPEATS = 2
MAX_NAME_CHARS = 255  # a file name longer than any file system allows is refused unmatched
MAX_LABEL_FILE_BYTES = 256 * 1024**2
MAX_LABEL_FIELD_CHARS = 4096
# Pseudo-file systems a mirror may not lie in: their files change as read or never end.
SPECIAL_TREES = ("/proc", "/sys", "/dev", "/run")

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


RECORDED = "recorded_digest.json"


def recorded_digest(path: Path, digest: str, log: Any) -> str:
    """The digest recorded for a mirror that has none in the config (licensed data the
    user owns); the first run records the one it computed and says so."""
    if path.is_file():
        return json.loads(path.read_text())["content_digest"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"content_digest": digest}, indent=1))
    message = (
        f"RECORDED the content digest {digest} in {path}: the config gives none, so every "
        "later run checks the files against this one"
    )
    log.write(message + "\n")
    print(f"reproscope: {message}", file=sys.stderr)
    return digest


def materialise(
    name: str, spec: dict[str, Any], workdir: Path, config_file: str, log: Any
) -> dict[str, Any]:
    """Find or fetch the dataset, verify its digest, and return its index."""
    field = f"datasets.{name}"
    mirror = Path(spec["mirror"]) if spec.get("mirror") else None
    extracted = workdir / "files"
    try:
        check_no_link(extracted)
    except OSError as exc:
        raise InputError(config_file, field, str(exc), "remove the link") from None
    if mirror is not None and _special_tree(mirror):
        raise InputError(
            config_file,
            f"{field}.mirror",
            f"{mirror} lies in {_special_tree(mirror)}, a pseudo-file system whose files "
            "change as they are read or never end",
            "point 'mirror' at a folder of image files",
        )
    fetched = False
    try:
        if spec.get("generator"):
            root = extracted
            remove_tree(root)
            generate_synthetic(root, spec.get("n_images", 24))
            source = f"generated:{spec['generator']}"
        elif mirror is not None and mirror.is_dir():
            root, source = mirror, f"mirror:{mirror}"
            log.write(f"using the local mirror {mirror}\n")
        elif spec.get("url"):
            log.write(f"mirror {mirror} absent; fetching {redact_url(spec['url'])}\n")
            archive = workdir / ("archive" + "".join(Path(spec["url"]).suffixes[-2:]))
            check_no_link(archive)
            fetched = True
            try:
                fetch_url(spec["url"], archive, None, verified_elsewhere=True)
                remove_tree(extracted)
                safe_extract(archive, extracted)
            finally:
                archive.unlink(missing_ok=True)
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
        expected = spec.get("content_digest") or recorded_digest(workdir / RECORDED, digest, log)
        if expected != "generated" and digest != expected:
            where = (
                "content_digest"
                if spec.get("content_digest")
                else f"mirror (recorded in {workdir / RECORDED})"
            )
            raise InputError(
                config_file,
                f"{field}.{where}",
                f"the files at {root} have digest {digest}, not {expected}",
                "the dataset changed: restore it, or update the digest on purpose"
                + ("" if spec.get("content_digest") else f" by deleting {workdir / RECORDED}"),
            )
    except FetchError as exc:
        if fetched:
            remove_tree(extracted)  # no partial or unverified tree stays behind
        where = f"{field}.url" if fetched else (f"{field}.mirror" if mirror else field)
        fix = "fix the dataset's source as the problem says"
        raise InputError(config_file, where, str(exc).rstrip("."), fix) from None
    except BaseException:
        if fetched:
            remove_tree(extracted)
        raise
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
    labels, sources = read_labels(root, files, spec["labels"], config_file, f"{field}.labels")
    # the labels file decides results as much as the images do
    labels_sha256 = (
        sha256_file(labels_file(root, spec["labels"])) if "file" in spec["labels"] else None
    )
    return {
        "dataset": name,
        "root": str(root),
        "source": source,
        "content_digest": digest,
        "digest_recorded": not spec.get("content_digest"),
        "pattern": spec["files"],
        "limit": spec.get("limit"),
        "files": files,
        "labels": labels,
        "label_sources": sources,
        "labels_sha256": labels_sha256,
        "n_images": len(files),
        "class_counts": dict(sorted(Counter(labels).items(), key=lambda kv: str(kv[0]))),
    }


def _repeat_nodes(parsed: Any, inside: bool) -> str | None:
    """Why a parsed regex can backtrack exponentially (a quantified piece that holds
    another quantifier or an alternation), or None."""
    from re import _constants as c  # type: ignore[attr-defined]

    for op, arg in parsed:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, high, body = arg
            repeats = high is c.MAXREPEAT or high > 1
            if repeats and inside:
                return "a quantifier inside a quantified group (nested quantifiers)"
            why = _repeat_nodes(body, inside or repeats)
            if why:
                return why
        elif op is c.BRANCH:
            if inside:
                return "an alternation ('|') inside a quantified group"
            for branch in arg[1]:
                why = _repeat_nodes(branch, inside)
                if why:
                    return why
        elif op is c.SUBPATTERN:
            why = _repeat_nodes(arg[-1], inside)
            if why:
                return why
        elif op in (c.ASSERT, c.ASSERT_NOT):
            why = _repeat_nodes(arg[1], inside)
            if why:
                return why
        elif op is c.GROUPREF or op is getattr(c, "GROUPREF_EXISTS", None):
            return "a back-reference"
    return None


def regex_problem(pattern: str) -> str | None:
    """Why a dataset's filename_regex could take more than linear time on a file name
    (too long, nested quantifiers, alternation under a quantifier, back-references), or
    None. Python's re backtracks: '^(a+)+$' takes seconds on a 25-character name."""
    from re import _parser  # type: ignore[attr-defined]

    if len(pattern) > MAX_REGEX_CHARS:
        return f"is {len(pattern)} characters long, over {MAX_REGEX_CHARS}"
    try:
        parsed = _parser.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"is not a regular expression ({exc})"
    why = _repeat_nodes(parsed, False)
    if why is None and _unbounded_repeats(parsed) > MAX_UNBOUNDED_REPEATS:
        why = f"more than {MAX_UNBOUNDED_REPEATS} unbounded quantifiers ('*', '+', '{{n,}}')"
    return None if why is None else f"holds {why}, which can backtrack for seconds per name"


def _unbounded_repeats(parsed: Any) -> int:
    """How many quantifiers without an upper bound a parsed regex holds: k of them in a row
    cost up to n**k steps per name, so their number is bounded too."""
    from re import _constants as c  # type: ignore[attr-defined]

    count = 0
    for op, arg in parsed:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            count += arg[1] is c.MAXREPEAT
            count += _unbounded_repeats(arg[2])
        elif op is c.BRANCH:
            count += sum(_unbounded_repeats(branch) for branch in arg[1])
        elif op is c.SUBPATTERN:
            count += _unbounded_repeats(arg[-1])
        elif op in (c.ASSERT, c.ASSERT_NOT):
            count += _unbounded_repeats(arg[1])
    return count


def _special_tree(path: Path) -> str | None:
    resolved = Path(os.path.realpath(path))
    for tree in SPECIAL_TREES:
        if resolved == Path(tree) or Path(tree) in resolved.parents:
            return tree
    return None


Label = str | int  # a class id (synset) or a class index into the model's label list


def read_labels(
    root: Path, files: list[str], spec: dict[str, Any], config_file: str, field: str
) -> tuple[list[Label], list[str]]:
    """Each file's label and where it was read ("<labels file>:<line>", the folder, or the
    file name), in the order of files.

    Layouts: `filename_regex` (first group of a regex on the file name), `imagefolder`
    (the first folder of the file's path), or `file` with `format` csv (file,label with a
    header row), kaggle-loc (LOC_val_solution.csv: ImageId, PredictionString whose first
    token is the synset) or caffe (val.txt: "<file> <class index>" per line).
    """
    if "filename_regex" in spec:
        problem = regex_problem(spec["filename_regex"])
        if problem:
            raise InputError(
                config_file,
                f"{field}.filename_regex",
                problem,
                "write a plain regex such as '^(n\\d{8})_' (no nested quantifiers, "
                f"at most {MAX_UNBOUNDED_REPEATS} unbounded ones)",
            )
        regex = re.compile(spec["filename_regex"])
        labels: list[Label] = []
        for f in files:
            name = Path(f).name
            match = regex.search(name) if len(name) <= MAX_NAME_CHARS else None
            if not match:
                raise InputError(
                    config_file,
                    f"{field}.filename_regex",
                    f"{f!r} does not match",
                    "fix the regex or the file glob",
                )
            labels.append(match.group(1))
        return labels, list(files)
    if spec.get("imagefolder"):
        for f in files:
            if "/" not in f:
                raise InputError(
                    config_file,
                    f"{field}.imagefolder",
                    f"{f!r} is not inside a class folder",
                    "put each image in a folder named by its class, or narrow 'files'",
                )
        return [f.split("/", 1)[0] for f in files], [f.split("/", 1)[0] + "/" for f in files]
    path = labels_file(root, spec)
    if not path.is_file():
        raise InputError(
            config_file, f"{field}.file", f"{path} does not exist", "point it at the labels file"
        )
    table = _label_lines(path, spec["format"], config_file, field)
    labels, sources = [], []
    for f in files:
        key = next((k for k in (f, Path(f).name, Path(f).stem) if k in table), None)
        if key is None:
            raise InputError(
                path,
                f.rsplit("/", 1)[-1],
                f"no line gives the label of the image {f!r}",
                f"add it to {path.name}, or leave the image out with the dataset's 'files' glob",
            )
        label, line = table[key]
        labels.append(label)
        sources.append(f"{path}:{line}")
    return labels, sources


def labels_file(root: Path, spec: dict[str, Any]) -> Path:
    return Path(spec["file"]) if Path(spec["file"]).is_absolute() else root / spec["file"]


def _read_label_text(path: Path, field: str) -> str:
    """The labels file as text: a regular file, capped, UTF-8 (the error names the byte)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise InputError(
            path, "(document)", f"cannot read it ({exc.strerror})", "fix the path"
        ) from None
    if not path.is_file():
        raise InputError(
            path, "(document)", "is not a regular file", f"point {field}.file at a labels file"
        )
    if info.st_size > MAX_LABEL_FILE_BYTES:
        raise InputError(
            path,
            "(document)",
            f"is {info.st_size} bytes, over {MAX_LABEL_FILE_BYTES}",
            "point it at the labels file itself",
        )
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            path,
            f"line {line}",
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8",
            "save the file as UTF-8 (iconv -f latin1 -t utf-8)",
        ) from None


def _label_lines(
    path: Path, form: str, config_file: str, field: str
) -> dict[str, tuple[Label, int]]:
    """file key -> (label, line number) of a labels file."""
    table: dict[str, tuple[Label, int]] = {}
    lines = [line.removesuffix("\r") for line in _read_label_text(path, field).split("\n")]
    if form == "caffe":
        rows = ((n, line.split()) for n, line in enumerate(lines, 1) if line.strip())
    else:
        rows = ((n, row) for n, row in enumerate(_csv_rows(lines, path), 1) if n > 1 and row)
    for n, row in rows:
        problem = None
        if len(row) < 2:
            problem = "has fewer than two columns"
        elif any(len(cell) > MAX_LABEL_FIELD_CHARS for cell in row):
            problem = f"has a field longer than {MAX_LABEL_FIELD_CHARS} characters"
        elif form == "caffe" and not (row[1].isascii() and row[1].isdigit()):
            problem = f"class index {row[1]!r} is not a non-negative integer (digits 0-9)"
        elif form == "kaggle-loc" and not row[1].split():
            problem = "has an empty PredictionString"
        if problem:
            raise InputError(
                path,
                f"line {n}",
                problem,
                f"fix the line, or set {field}.format to the file's layout",
            )
        if form == "caffe":
            label: Label = int(row[1])
        elif form == "kaggle-loc":
            label = row[1].split()[0]
        else:
            label = row[1].strip()
        table[row[0].strip()] = (label, n)
    return table


def _csv_rows(lines: list[str], path: Path) -> Any:
    """csv rows of the lines, one per line; a broken line is an InputError naming it."""
    for n, line in enumerate(lines, 1):
        if len(line) > 4 * MAX_LABEL_FIELD_CHARS:
            raise InputError(
                path,
                f"line {n}",
                f"is {len(line)} characters long, over {4 * MAX_LABEL_FIELD_CHARS}",
                "fix the line (a labels line holds a file name and its label)",
            )
        try:
            yield next(csv.reader([line]), [])
        except csv.Error as exc:
            raise InputError(
                path, f"line {n}", f"is not CSV ({exc})", "fix the quoting of the line"
            ) from None
