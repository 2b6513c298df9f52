"""The one error type for bad user input: it names the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """A manifest, config or environment file that cannot be used as written."""

    def __init__(self, file: str | Path, field: str, problem: str, fix: str) -> None:
        self.file = str(file)
        self.field = field or "(document)"
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.file}: field '{self.field}': {problem}. Fix: {fix}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str, str]]:
        # raised in a worker process, it crosses back by pickle with all four parts
        return (type(self), (self.file, self.field, self.problem, self.fix))


class InputErrors(ValueError):
    """Several input errors reported together, so a user fixes them in one pass."""

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
