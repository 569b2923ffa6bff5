"""What every backend is: a small frozen object with its own options and checks, stored with the study."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import optuna

from nas.engine.config import StudyConfig

__all__ = ["Backend"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Backend:
    """A way to run a study's trials. Subclasses add their options as fields, check them in ``__post_init__``,
    check them against the study in :meth:`check`, and run trials in :meth:`run`."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """The stored form: ``{"kind": ..., **options}``."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Backend:
        options = {k: v for k, v in data.items() if k != "kind"}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"backend {cls.kind!r}: unknown option {unknown[0]!r}; known options: "
                             f"{', '.join(sorted(known)) or 'none'}")
        return cls(**options)

    def replace(self, **changes: Any) -> Backend:
        return dataclasses.replace(self, **changes)

    def check(self, config: StudyConfig) -> None:
        """Refuse (with the field named) a study this backend cannot run. Called before anything runs."""

    def run(self, study: optuna.Study, url: str, config: StudyConfig, *, verbose: bool) -> None:
        """Run trials until the study reaches ``config.n_trials`` finished trials."""
        raise NotImplementedError
