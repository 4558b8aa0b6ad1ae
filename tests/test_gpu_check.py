"""GPU provider choice, checked on the CPU: CUDA preferred when onnxruntime lists it, else CPU; gpu_check.py says
clearly when there is no GPU."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import onnxruntime as ort
import pytest

from orthoepy.encoder.scorer.onnx_export import OnnxScorerModel, default_providers
from orthoepy.fusion.assessor import DEFAULT_MODEL_DIR

CHECK = Path(__file__).resolve().parents[1] / "recipes" / "local" / "gpu_check.py"
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("available, expected", [
    ([CUDA, CPU], [CUDA, CPU]),
    (["TensorrtExecutionProvider", CUDA, CPU], [CUDA, CPU]),
    ([CPU], [CPU]),
    (["AzureExecutionProvider", CPU], [CPU]),
])
def test_cuda_is_preferred_when_listed(monkeypatch, available, expected):
    monkeypatch.setattr(ort, "get_available_providers", lambda: available)
    assert default_providers() == expected


def test_shipped_scorer_session_uses_what_this_build_has():
    onnx = DEFAULT_MODEL_DIR / "scorer.onnx"
    if not onnx.is_file():
        pytest.skip(f"no shipped scorer.onnx at {onnx}")
    session = OnnxScorerModel(onnx).session
    expected = [CUDA, CPU] if CUDA in ort.get_available_providers() else [CPU]
    assert session.get_providers() == expected


def test_no_gpu_reason():
    check = load_gpu_check()
    status = {"onnxruntime": "1.0", "providers": [CPU], "torch_cuda": False}
    assert "no CUDAExecutionProvider" in check.no_gpu_reason(status) and "onnxruntime-gpu" in check.no_gpu_reason(status)
    assert check.no_gpu_reason({**status, "providers": [CUDA, CPU]}) is None


def test_gpu_check_says_so_without_a_gpu(capsys):
    if CUDA in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider: run recipes/local/gpu_check.py for the real check")
    assert load_gpu_check().main([]) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith("no GPU check:") and '"gpu": false' in captured.out
