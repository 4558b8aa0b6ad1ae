"""orthoepy: automatic pronunciation assessment of L2 English speech.

    from orthoepy import Assessor
    result = Assessor.from_pretrained().assess("learner.wav", "We call it bear")

`Assessor` and `Assessment` are imported on first use (PEP 562), so `import orthoepy` stays cheap: the models,
torch and ESPnet load only when they are asked for. The subpackages are `orthoepy.encoder`,
`orthoepy.rationalizer` and `orthoepy.fusion` (mapped from the repository's top-level folders in pyproject.toml).
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs only; at run time __getattr__ imports lazily
    from .fusion.assessor import Assessment, Assessor

__all__ = ["Assessor", "Assessment"]
_LAZY = {"Assessor": "orthoepy.fusion.assessor", "Assessment": "orthoepy.fusion.assessor"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'orthoepy' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
