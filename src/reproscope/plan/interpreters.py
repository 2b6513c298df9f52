"""The interpreter a job of an environment runs, and the conda file Snakemake activates for
it: one mechanism per run (--sdm conda: Snakemake's conda; else the prefix build_env
makes, see rules/envs.smk)."""

from __future__ import annotations

from pathlib import Path

from reproscope.acquire.envs import HOST
from reproscope.runtime import layout

#: The host's interpreter, by the variable the workflow sets: never an absolute path.
HOST_PYTHON = '"$REPROSCOPE_HOST_PYTHON"'


class Interpreters:
    def __init__(self, env_files: dict[str, str], use_conda: bool) -> None:
        self.env_files = env_files  # env name -> its environment file, as the config names it
        self.use_conda = use_conda
        self._resolved: dict[str, str] = {}  # asked once per inference job

    def python(self, env: str) -> str:
        """The interpreter a job of env runs: relative to the workdir, or an environment
        variable (the host's), never an absolute path in params."""
        if self.use_conda:
            return "python"
        if env == HOST:
            return HOST_PYTHON
        return layout.prefix_python(env)

    def conda_file(self, env: str) -> str | None:
        """With --sdm conda, env's environment file (absolute); else None."""
        if not self.use_conda:
            return None
        path = self._resolved.get(env)
        if path is None:
            path = self._resolved[env] = str(Path(self.env_files[env]).resolve())
        return path
