"""Shared test helpers: the real speechocean762 fixture (skipped where absent) and synthetic signals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "speechocean762" / "fixture"


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    if not (FIXTURE_DIR / "scores.json").is_file():
        pytest.skip(f"real-speech fixture not found at {FIXTURE_DIR} (clone the repo beside shared/ to run it)")
    return FIXTURE_DIR


def tone(seconds: float = 1.0, hz: float = 220.0, rate: int = 16_000, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture
def one_torch_thread():
    """Tiny torch models on one thread: on two threads shared with other jobs their matmuls ran ~100x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
