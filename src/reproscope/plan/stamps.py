"""Stamp files written while the workflow plans: declared inputs that hold what jobs use
of their code, their manifest and the study settings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from reproscope.plan import jobs
from reproscope.plan.study import Study
from reproscope.runtime import layout
from reproscope.runtime.atomic import write_text


def write_if_changed(path: str, content: dict[str, Any]) -> bool:
    """Write content as canonical JSON unless the file already holds it.

    Stamps written this way are declared inputs of the jobs they describe: their file time
    moves only when what the jobs use changed, so Snakemake re-plans those jobs even
    without its metadata (.snakemake/), and with it, their checksum keeps an edit that
    was undone from re-running anything.
    """
    text = json.dumps(content, indent=1, sort_keys=True) + "\n"
    target = Path(path)
    try:
        if target.read_text() == text:
            return False
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
    write_text(target, text)
    return True


def code_stamp(rule: str, code: str) -> str:
    """The stamp of a rule's code (its script's text or its shell command), rewritten
    when that changes; returns its path.

    Snakemake's own code trigger compares a script's file time with the outputs', which
    a fresh clone resets, so the workflow profile leaves that trigger out (see
    profiles/default) and this content hash replaces it.
    """
    write_if_changed(layout.code_stamp(rule), {"sha256": hashlib.sha256(code.encode()).hexdigest()})
    return layout.code_stamp(rule)


def write_job_stamps(study: Study, names: list[str]) -> None:
    """What the inference jobs use of each manifest in names and of the study settings:
    an edit re-plans exactly the jobs that use it, even without .snakemake/."""
    for name in names:
        write_if_changed(layout.manifest_stamp(name), jobs.manifest_parts(study, name))
    for mode in jobs.MODE_SETTINGS:
        write_if_changed(layout.settings_stamp(mode), jobs.mode_settings(study, mode))
