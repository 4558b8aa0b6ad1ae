"""GPU check of the scorer: parity (CPU vs CUDA outputs) and throughput, or a clear "no GPU here".

Loads a model directory's scorer.onnx twice, in an onnxruntime session on the CPU provider and in one on the
CUDA provider, scores the same synthetic utterances (the model's input shapes, fixed seed) through both, and
reports the largest absolute difference per output (phone 0-2, word and sentence 0-10; the service rounds to
0.01) and utterances per second at one batch size. Also reports whether torch sees a GPU.

    python recipes/local/gpu_check.py [--model fusion/models/default] [--n 256] [--out gpu_check.json]

Exit status: 0 when the check ran and parity holds (every difference <= --tolerance), 1 when it does not hold,
3 when there is no GPU to check (onnxruntime lists no CUDAExecutionProvider, e.g. the CPU build `onnxruntime`
instead of `onnxruntime-gpu`, the `orthoepy[gpu]` extra), with the reason printed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO / "fusion" / "models" / "default"
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
NO_GPU_EXIT = 3


def gpu_status() -> dict:
    """What this machine offers: onnxruntime's providers and whether torch sees a CUDA device."""
    import onnxruntime as ort
    import torch

    return {"onnxruntime": ort.__version__, "providers": ort.get_available_providers(),
            "torch_cuda": torch.cuda.is_available(),
            "torch_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def no_gpu_reason(status: dict) -> str | None:
    """Why the check cannot run here, or None when onnxruntime has the CUDA provider."""
    if CUDA in status["providers"]:
        return None
    return (f"no GPU check: onnxruntime {status['onnxruntime']} lists {status['providers']} (no {CUDA}; install "
            f"onnxruntime-gpu, the orthoepy[gpu] extra, on a machine with an NVIDIA GPU); "
            f"torch.cuda.is_available() = {status['torch_cuda']}")


def time_predict(model, examples, batch_size: int, repeats: int) -> tuple[list, float]:
    """(predictions, best seconds over `repeats` full passes after one warm-up pass)."""
    predictions = model.predict(examples, batch_size)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict(examples, batch_size)
        best = min(best, time.perf_counter() - started)
    return predictions, best


def max_differences(a: list, b: list) -> dict[str, float]:
    return {name: float(max(np.abs(getattr(x, name) - getattr(y, name)).max() for x, y in zip(a, b)))
            for name in ("phone", "word", "sentence")}


def run_check(model_dir: Path, n: int, batch_size: int, repeats: int) -> dict:
    from orthoepy.encoder.scorer.onnx_export import ONNX_FILE, OnnxScorerModel, synthetic_examples
    from orthoepy.encoder.scorer.pipeline import Scorer

    scorer = Scorer.from_pretrained(model_dir, backend="torch")
    rng = np.random.default_rng(0)
    examples = synthetic_examples(scorer.model.config, rng.integers(3, 20, n).tolist(), seed=0)
    report = {"model": str(model_dir), "n_utterances": n, "batch_size": batch_size}
    outputs = {}
    for name, providers in (("cpu", [CPU]), ("cuda", [CUDA, CPU])):
        session = OnnxScorerModel(model_dir / ONNX_FILE, providers=providers)
        report[f"{name}_providers"] = session.session.get_providers()
        outputs[name], seconds = time_predict(session, examples, batch_size, repeats)
        report[f"{name}_utterances_per_s"] = round(n / seconds, 1)
    report["max_abs_difference"] = max_differences(outputs["cpu"], outputs["cuda"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model directory with scorer.onnx")
    parser.add_argument("--n", type=int, default=256, help="synthetic utterances (default 256)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best is reported")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest allowed CPU-CUDA difference")
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if not (args.model / "scorer.onnx").is_file():
        parser.error(f"{args.model} has no scorer.onnx (run `orthoepy export-onnx --model {args.model}`)")
    status = gpu_status()
    reason = no_gpu_reason(status)
    report = {"status": status, "gpu": reason is None}
    if reason is None:
        report |= run_check(args.model, args.n, args.batch_size, args.repeats)
        report["parity"] = max(report["max_abs_difference"].values()) <= args.tolerance
        if CUDA not in report["cuda_providers"]:  # listed, but the session could not use it (CUDA/cuDNN libraries?)
            reason = f"no GPU check: the session asked for {CUDA} fell back to {report['cuda_providers']}"
            report |= {"gpu": False, "reason": reason}
            print(reason, file=sys.stderr)
    else:
        report["reason"] = reason
        print(reason, file=sys.stderr)
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return NO_GPU_EXIT if reason else (0 if report["parity"] else 1)


if __name__ == "__main__":
    sys.exit(main())
