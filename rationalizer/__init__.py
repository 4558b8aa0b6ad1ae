"""Rationalizer: explains the encoder's scores in words, faithfully.

- records: ScoreSheet / WordScore / PhoneScore, the typed input (from the scorer via fusion, or from labels);
- sheets: a ScoreSheet from speechocean762 labels, optionally noised (targets that match scorer-fed inference);
- bands: the one score-to-band table (edges, band words, colours) the rubric, the CLI and the learner page share;
- rubric: bands, problem words and phones, the prompt, the deterministic rubric writer (targets, fallback text)
  and perturbations (rejected rationales for preference pairs); mentions: the free-text parser they share;
- tips: articulation tips per (expected, heard) phone confusion from tips.csv, with a fallback per phone;
- faithfulness: does a rationale agree with the scores, per granularity; corpus summaries;
- compact: SmolLM2-135M-Instruct hearing the scorer's phone-encoder states through a projector (soft prefix);
- audio_llm: the full-scale path (Qwen2-Audio by id or local path, LoRA, 4-bit where available);
- data / training / pipeline: examples, trl SFT, Bounded DPO (bounded_dpo) or SimPO, the training recipe;
- model: the trained bundle (`Rationalizer.from_pretrained`, `explain`).
"""
