"""A self-contained HTML report of an evaluation: the metrics table and plots (images embedded)."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..corpus import SENTENCE_ASPECTS, Utterance  # noqa: E402


def write_report(metrics: dict, predictions: dict, out: str | Path, labels: list[Utterance] | None = None) -> Path:
    """metrics/predictions as `orthoepy evaluate` writes them; labels (optional) add predicted-vs-human plots."""
    sections = [_metrics_table(metrics), _distribution_plot(predictions)]
    if labels:
        sections.append(_scatter_plot(predictions, {u.utt_id: u for u in labels}))
    body = "\n".join(sections)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>orthoepy evaluation report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th:first-child,td:first-child{{text-align:left}}</style>
</head><body><h1>orthoepy evaluation report</h1>
<p>{metrics.get("n_utterances", len(predictions))} utterances.</p>{body}</body></html>"""
    out = Path(out)
    out.write_text(page)
    return out


def _metrics_table(metrics: dict) -> str:
    rows = []
    for aspect, cal in metrics.get("calibrated", {}).items():
        raw = metrics.get("raw", {}).get(aspect, {})
        cells = [_num(cal.get("pcc")), _num(cal.get("scc")), _num(cal.get("mse")), _num(raw.get("pcc")), str(cal.get("n", ""))]
        rows.append(f"<tr><td>{html.escape(aspect)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    mdd = metrics.get("mdd")
    mdd_text = "" if not mdd else (f"<p>Mispronunciation detection: precision {_num(mdd['precision'])}, "
                                   f"recall {_num(mdd['recall'])}, F1 {_num(mdd['f1'])}.</p>")
    return ("<h2>Metrics</h2><table><tr><th>aspect</th><th>PCC</th><th>SCC</th><th>MSE</th><th>raw PCC</th><th>n</th></tr>"
            + "".join(rows) + "</table>" + mdd_text)


def _distribution_plot(predictions: dict) -> str:
    fig, axes = plt.subplots(1, len(SENTENCE_ASPECTS) + 1, figsize=(20, 3.2))
    phones = [a for u in predictions.values() for w in u["words"] for a in w["phones-accuracy"]]
    axes[0].hist(phones, bins=40, range=(0, 2))
    axes[0].set_title("phone accuracy")
    for ax, aspect in zip(axes[1:], SENTENCE_ASPECTS):
        ax.hist([u[aspect] for u in predictions.values()], bins=40, range=(0, 10))
        ax.set_title(aspect)
    return "<h2>Predicted score distributions</h2>" + _embed(fig)


def _scatter_plot(predictions: dict, labels: dict[str, Utterance]) -> str:
    shared = [k for k in predictions if k in labels]
    fig, axes = plt.subplots(1, len(SENTENCE_ASPECTS) + 1, figsize=(20, 3.4))
    phone_pred = [a for k in shared for w in predictions[k]["words"] for a in w["phones-accuracy"]]
    phone_true = [a for k in shared for a in (labels[k].phone_accuracy or [np.nan] * len(labels[k].canonical_phones))]
    _scatter(axes[0], phone_true, phone_pred, "phone accuracy", 2)
    for ax, aspect in zip(axes[1:], SENTENCE_ASPECTS):
        true = [getattr(labels[k].sentence, aspect) for k in shared]
        _scatter(ax, [np.nan if t is None else t for t in true], [predictions[k][aspect] for k in shared], aspect, 10)
    return "<h2>Predicted vs human</h2>" + _embed(fig)


def _scatter(ax, true, pred, title: str, top: float) -> None:
    ax.scatter(true, pred, s=4, alpha=0.3)
    ax.plot([0, top], [0, top], "k--", lw=1)
    ax.set(title=title, xlabel="human", ylabel="predicted", xlim=(0, top), ylim=(0, top))


def _embed(fig) -> str:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=70)
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"
