"""What the aggregation and diagnosis rules take of the study as params (summaries of
manifests and variants, the diagnosed jobs): a change here re-runs those rules only."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from typing import Any

from reproscope.plan import jobs
from reproscope.plan.study import Study


def canonical(value: Any) -> Any:
    """Keys sorted at every level, so reordering a YAML file does not look like a change
    to Snakemake's params rerun trigger."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def for_report(value: Any) -> Any:
    """Params of a rule whose outputs go into `snakemake --report`: Snakemake writes every
    such job's params, as text, into a `<script>` block of the HTML report without
    escaping, so manifest text (claims.source: `</script><svg onload=...>`) would become
    live markup. Every string (keys too) is HTML-escaped (`&`, `<`, `>`), which leaves no
    `<` at all; the rule's script gets the text back with `from_report`."""
    if isinstance(value, dict):
        return {for_report(k): for_report(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [for_report(v) for v in value]
    if isinstance(value, str):
        return html.escape(value, quote=False)
    return value


def from_report(value: Any) -> Any:
    """The params as the manifests and config wrote them (the inverse of `for_report`)."""
    if isinstance(value, dict):
        return {from_report(k): from_report(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [from_report(v) for v in value]
    if isinstance(value, str):
        return html.unescape(value)
    return value


def manifest_summaries(study: Study, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What aggregation needs of each manifest: its claims, labels and label offset."""
    return {
        name: {
            "claims": study.manifest(name).data.get("claims"),
            "labels": str(study.manifest(name).labels_path),
            "label_offset": study.manifest(name).outputs["label_offset"],
        }
        for name in names
    }


def variant_summaries(study: Study, kind: str | None = None) -> dict[str, dict[str, Any]]:
    """Each variant's base, kind, changed field and overrides (of one kind where named)."""
    return {
        name: {k: v[k] for k in ("base", "kind", "field", "overrides")}
        for name, v in study.variants.items()
        if kind in (None, v["kind"])
    }


def diagnosis_jobs(study: Study, python: Callable[[str], str]) -> dict[str, dict[str, Any]]:
    """Per diagnosed manifest: its data, label list, environment's python and the accuracy
    job of its first system and device (the greedy rounds run variants of it)."""
    found = {}
    for name in study.config.get("diagnose", []):
        m = study.manifest(name)
        system = (study.settings.get("systems") or list(study.systems))[0]
        env, device = study.env_of(name), study.settings["devices"][0]
        found[name] = {
            "data": m.data,
            "job": jobs.inference_job(study, "accuracy", system, name, env, device).to_dict(),
            "python": python(env),
            "labels": str(m.labels_path),
            "group": {"env": env, "device": device, "system": system},
        }
    return found
