"""evals: reproduce a model card's benchmark table.

`evals.load_run(path)` reads a run directory into pandas DataFrames (see evals.frames); it is
resolved lazily, so `import evals` and the command line do not import pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.frames import RunFrames, load_run

__all__ = ["RunFrames", "load_run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from evals import frames

        return getattr(frames, name)
    raise AttributeError(f"module 'evals' has no attribute '{name}'")
