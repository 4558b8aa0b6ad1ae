"""Utterance-level pool of handcrafted candidate features (fluency, rhythm, prosody, GOP statistics).

A Lasso later selects the subset the scorer uses, so the pool is deliberately broad. The names are
fixed: a switched-off group yields zeros under the same names.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..alignment import Alignment, LoopPhone, PhoneSegment
from ..audio import Audio
from .prosody import (
    SUMMARY_KEYS as PROSODY_SUMMARY_KEYS,
    mean_or_zero,
    safe_ratio,
    segment_durations,
    speech_span,
    std_or_zero,
    word_boundary_gaps,
)
from .records import FeatureBlock, GroupOutput

PAUSE_MIN_S = 0.05  # shorter inter-word gaps are aligner jitter, not pauses
LONG_PAUSE_S = (0.25, 0.5)
SHORT_PHONE_S = 0.04
LONG_PHONE_S = 0.3
LOOP_FRAME_S = 0.01
SILENCE_LABEL = "SIL"

# For each group: column family -> (column names in order of preference, thresholds for "share below").
# A name ending in "*" takes the row-wise minimum of all columns with that prefix.
GroupColumns = dict[str, tuple[tuple[str, ...], tuple[float, ...]]]
LIKELIHOOD_GOP_COLUMNS: GroupColumns = {
    "gop": (("lik_gop",), (-1.0, -2.0, -4.0)),
    "aligned": (("aligned_lik_per_frame",), (-1.0, -2.0, -4.0)),
    "relative": (("lik_gop_minus_utt_mean",), (-1.0, -2.0, -4.0)),
    "agree": (("loop_agreement",), (0.5,)),
    "loop_silence": (("loop_silence_share",), (0.5,)),
}
POSTERIOR_GOP_COLUMNS: GroupColumns = {
    "lpp": (("lpp",), (-0.5, -1.0, -2.0, -4.0)),
    "lpr_min": (("lpr_*",), (-1.0, -2.0, -4.0)),  # lpp minus the best phone's: 0 when the canonical phone wins
    "max_frame_lp": (("max_frame_lp",), (-1.0, -3.0)),
    "entropy": (("entropy",), ()),
    "blank": (("blank_share",), ()),
}
GROUP_COLUMNS: dict[str, GroupColumns] = {
    "likelihood_gop": LIKELIHOOD_GOP_COLUMNS,
    "posterior_gop": POSTERIOR_GOP_COLUMNS,
}
EMBEDDING_GROUPS = ("whisper",)  # per-phone vectors without named scores: summarised by shape only
# frame_summary keys taken over as they are (0 when the group or the key is missing).
GROUP_SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "likelihood_gop": (
        "loop_agreement", "mean_lik_gop", "min_lik_gop", "loop_phone_rate", "pause_count", "pause_time",
        "speech_share",
    ),
    "posterior_gop": (
        "mean_lpp", "heard_match_share", "blank_frame_share", "phone_rate", "speech_phone_rate",
        "greedy_agreement",
    ),
    "prosody": PROSODY_SUMMARY_KEYS,
}
# Per-phone prosody columns summarised by mean and std over phones.
PROSODY_PHONE_COLUMNS = (
    "dur_rel_utt", "f0_rel_median_st", "f0_range_st", "f0_slope_st_per_s", "f0_voiced_ratio",
    "int_std_db", "int_rel_utt_db", "zero_crossing_rate", "hf_emphasis_db",
)

Features = dict[str, float]


@dataclass(frozen=True)
class Utterance:
    """Alignment facts every feature family needs, computed once."""

    duration: float
    segments: list[PhoneSegment]
    durations: np.ndarray  # per phone, s
    is_vowel: np.ndarray  # bool per phone
    stress: np.ndarray  # per phone; -1 where none
    word_index: np.ndarray  # per phone, 0..n_words-1
    word_durations: np.ndarray  # first phone start to last phone end
    word_phone_counts: np.ndarray
    gaps: np.ndarray  # silence at each word boundary, s
    pauses: np.ndarray  # gaps of at least PAUSE_MIN_S
    leading_silence: float
    trailing_silence: float
    loop: list[LoopPhone]
    fallback: bool
    speech_start: float
    speech_end: float

    @property
    def n_phones(self) -> int:
        return len(self.segments)

    @property
    def n_words(self) -> int:
        return len(self.word_durations)

    @property
    def span(self) -> float:
        return self.segments[-1].end - self.segments[0].start if self.segments else 0.0


def build_utterance(audio: Audio, alignment: Alignment) -> Utterance:
    segments = alignment.segments
    word_index = np.unique([s.phone.word_index for s in segments], return_inverse=True)[1].astype(int)
    n_words = int(word_index.max()) + 1 if len(segments) else 0
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    word_starts = np.full(n_words, np.inf)
    word_ends = np.full(n_words, -np.inf)
    np.minimum.at(word_starts, word_index, starts)
    np.maximum.at(word_ends, word_index, ends)
    gaps = np.array([gap for _, gap in word_boundary_gaps(segments)])
    speech_start, speech_end = speech_span(alignment, audio)
    return Utterance(
        duration=audio.duration,
        segments=segments,
        durations=segment_durations(segments),
        is_vowel=np.array([s.phone.is_vowel for s in segments], dtype=bool),
        stress=np.array([-1 if s.phone.stress is None else s.phone.stress for s in segments], dtype=int),
        word_index=word_index,
        word_durations=np.maximum(word_ends - word_starts, 0.0),
        word_phone_counts=np.bincount(word_index, minlength=n_words),
        gaps=gaps,
        pauses=gaps[gaps >= PAUSE_MIN_S],
        leading_silence=max(0.0, starts[0]) if len(segments) else 0.0,
        trailing_silence=max(0.0, audio.duration - ends[-1]) if len(segments) else 0.0,
        loop=alignment.loop,
        fallback=alignment.fallback,
        speech_start=speech_start,
        speech_end=speech_end,
    )


# ---------------------------------------------------------------- generic statistics


def _percentile(q: float) -> Callable[[np.ndarray], float]:
    return lambda v: float(np.percentile(v, q))


STATISTICS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda v: float(v.mean()),
    "std": lambda v: float(v.std()),
    "cv": lambda v: safe_ratio(float(v.std()), float(abs(v.mean()))),
    "min": lambda v: float(v.min()),
    "max": lambda v: float(v.max()),
    "p10": _percentile(10),
    "p25": _percentile(25),
    "p50": _percentile(50),
}


def describe(prefix: str, values: np.ndarray, stats: tuple[str, ...]) -> Features:
    """Named statistics of values; all 0 when values is empty."""
    values = np.asarray(values, dtype=np.float64)
    return {f"{prefix}_{stat}": STATISTICS[stat](values) if len(values) else 0.0 for stat in stats}


def masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    """Mean of values where mask holds; 0 when values is empty (its group is off) or nothing is selected."""
    return mean_or_zero(values[mask]) if len(values) else 0.0


def per_word(values: np.ndarray, word_index: np.ndarray, reduce: Callable[[np.ndarray], float]) -> np.ndarray:
    """reduce() over each word's phones; empty when values is."""
    if not len(values):
        return np.zeros(0)
    return np.array([reduce(values[word_index == w]) for w in np.unique(word_index)])


def pairwise_variability(durations: np.ndarray) -> tuple[float, float]:
    """(normalised PVI, raw PVI) of successive interval durations (Grabe & Low 2002)."""
    if len(durations) < 2:
        return 0.0, 0.0
    differences = np.abs(np.diff(durations))
    pair_means = 0.5 * (durations[1:] + durations[:-1])
    return float(100.0 * np.mean(differences / np.maximum(pair_means, 1e-9))), float(differences.mean())


def interval_rhythm(prefix: str, durations: np.ndarray) -> Features:
    """delta (std), Varco (100 std / mean), nPVI and rPVI of one kind of interval."""
    npvi, rpvi = pairwise_variability(durations)
    return {
        f"{prefix}_delta_s": std_or_zero(durations),
        f"{prefix}_varco": 100.0 * safe_ratio(std_or_zero(durations), mean_or_zero(durations)),
        f"{prefix}_npvi": npvi,
        f"{prefix}_rpvi_s": rpvi,
    }


# ---------------------------------------------------------------- families computed from the alignment


def global_features(u: Utterance) -> Features:
    return {
        "utt_duration_s": u.duration,
        "utt_speech_span_s": u.span,
        "utt_n_phones": float(u.n_phones),
        "utt_n_words": float(u.n_words),
        "utt_n_vowels": float(u.is_vowel.sum()),
        "utt_phones_per_word": safe_ratio(u.n_phones, u.n_words),
        "utt_alignment_fallback": float(u.fallback),
        "utt_leading_silence_s": u.leading_silence,
        "utt_trailing_silence_s": u.trailing_silence,
        "utt_edge_silence_share": safe_ratio(u.leading_silence + u.trailing_silence, u.duration),
        "utt_speech_region_share": safe_ratio(u.speech_end - u.speech_start, u.duration),
    }


def rate_features(u: Utterance) -> Features:
    phonation = float(u.durations.sum()) if u.n_phones else 0.0
    n_vowels = float(u.is_vowel.sum())
    return {
        "rate_phones_per_s": safe_ratio(u.n_phones, u.duration),
        "rate_words_per_s": safe_ratio(u.n_words, u.duration),
        "rate_vowels_per_s": safe_ratio(n_vowels, u.duration),
        "rate_phones_per_span_s": safe_ratio(u.n_phones, u.span),
        "rate_words_per_span_s": safe_ratio(u.n_words, u.span),
        "articulation_rate_phones_per_s": safe_ratio(u.n_phones, phonation),
        "articulation_rate_vowels_per_s": safe_ratio(n_vowels, phonation),
        "articulation_rate_words_per_s": safe_ratio(u.n_words, phonation),
        "phonation_time_ratio": safe_ratio(phonation, u.duration),
        "phonation_span_ratio": safe_ratio(phonation, u.span),
    }


def pause_features(u: Utterance) -> Features:
    n_pauses = len(u.pauses)
    n_runs = n_pauses + 1 if u.n_phones else 0
    run_words = _words_per_run(u)
    features = describe("pause", u.pauses, ("mean", "std", "max", "p50"))
    features.update({
        "pause_count": float(n_pauses),
        "pause_total_s": float(u.pauses.sum()),
        "pause_share_of_span": safe_ratio(float(u.pauses.sum()), u.span),
        "pause_per_word": safe_ratio(n_pauses, u.n_words),
        "pause_per_s": safe_ratio(n_pauses, u.duration),
        "pause_boundary_gap_mean_s": mean_or_zero(u.gaps),
        "pause_boundary_share": safe_ratio(n_pauses, len(u.gaps)),
        "run_mean_phones": safe_ratio(u.n_phones, n_runs),
        "run_mean_words": safe_ratio(u.n_words, n_runs),
        "run_max_words": float(run_words.max()) if len(run_words) else 0.0,
        "run_mean_s": safe_ratio(u.span - float(u.pauses.sum()), n_runs),
    })
    for threshold in LONG_PAUSE_S:
        label = f"{round(threshold * 1000)}ms"
        features[f"pause_count_over_{label}"] = float((u.gaps > threshold).sum())
        features[f"pause_total_over_{label}_s"] = float(u.gaps[u.gaps > threshold].sum())
    return features


def _words_per_run(u: Utterance) -> np.ndarray:
    """Number of words in each stretch between pauses."""
    if not u.n_words:
        return np.zeros(0)
    is_pause = np.concatenate([[True], u.gaps >= PAUSE_MIN_S]) if len(u.gaps) else np.array([True])
    run_id = np.cumsum(is_pause)
    return np.bincount(run_id)[1:].astype(float)


def class_intervals(u: Utterance) -> tuple[np.ndarray, np.ndarray]:
    """Durations of vocalic and consonantal intervals: runs of same-class phones, broken by pauses."""
    vocalic: list[float] = []
    consonantal: list[float] = []
    run_total, run_is_vowel = 0.0, None
    for i, segment in enumerate(u.segments):
        broken = i > 0 and segment.start - u.segments[i - 1].end >= PAUSE_MIN_S
        if run_is_vowel is not None and (u.is_vowel[i] != run_is_vowel or broken):
            (vocalic if run_is_vowel else consonantal).append(run_total)
            run_total = 0.0
        run_total += u.durations[i]
        run_is_vowel = bool(u.is_vowel[i])
    if run_is_vowel is not None:
        (vocalic if run_is_vowel else consonantal).append(run_total)
    return np.array(vocalic), np.array(consonantal)


def rhythm_features(u: Utterance) -> Features:
    vocalic, consonantal = class_intervals(u)
    total = float(vocalic.sum() + consonantal.sum())
    features = {
        "rhythm_percent_v": 100.0 * safe_ratio(float(vocalic.sum()), total),
        "rhythm_n_vocalic_intervals": float(len(vocalic)),
        "rhythm_n_consonantal_intervals": float(len(consonantal)),
        "rhythm_mean_vocalic_interval_s": mean_or_zero(vocalic),
        "rhythm_mean_consonantal_interval_s": mean_or_zero(consonantal),
    }
    features.update(interval_rhythm("rhythm_vocalic", vocalic))
    features.update(interval_rhythm("rhythm_consonantal", consonantal))
    features.update(interval_rhythm("rhythm_word", u.word_durations))
    features.update(interval_rhythm("rhythm_phone", u.durations))
    return features


def duration_features(u: Utterance) -> Features:
    vowel_durations = u.durations[u.is_vowel]
    consonant_durations = u.durations[~u.is_vowel]
    features = describe("dur_phone", u.durations, ("mean", "std", "cv", "min", "max", "p50"))
    features.update(describe("dur_vowel", vowel_durations, ("mean", "std", "cv", "max")))
    features.update(describe("dur_consonant", consonant_durations, ("mean", "std", "cv", "max")))
    features.update(describe("dur_word", u.word_durations, ("mean", "std", "cv", "max")))
    features.update(describe("dur_word_per_phone", safe_divide(u.word_durations, u.word_phone_counts),
                             ("mean", "std", "max")))
    features.update({
        "dur_vowel_consonant_ratio": safe_ratio(mean_or_zero(vowel_durations), mean_or_zero(consonant_durations)),
        "dur_short_phone_share": mean_or_zero((u.durations < SHORT_PHONE_S).astype(float)),
        "dur_long_phone_share": mean_or_zero((u.durations > LONG_PHONE_S).astype(float)),
    })
    features.update(final_lengthening_features(u))
    return features


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def final_lengthening_features(u: Utterance) -> Features:
    """Word-final and utterance-final phones relative to the rest (native speech lengthens them)."""
    positions = np.array([s.phone.position for s in u.segments])
    word_final = (positions == "E") | (positions == "S")
    last_word = u.word_index == (u.n_words - 1)
    last_vowel = np.flatnonzero(u.is_vowel)[-1:] if u.n_phones else np.zeros(0, int)
    return {
        "final_word_phone_lengthening": safe_ratio(mean_or_zero(u.durations[word_final]),
                                                   mean_or_zero(u.durations[~word_final])),
        "final_utt_word_lengthening": safe_ratio(mean_or_zero(u.durations[last_word]),
                                                 mean_or_zero(u.durations[~last_word])),
        "final_utt_vowel_lengthening": safe_ratio(float(u.durations[last_vowel].sum()),
                                                  mean_or_zero(u.durations[u.is_vowel])),
        "final_utt_phone_lengthening": safe_ratio(float(u.durations[-1]) if u.n_phones else 0.0,
                                                  mean_or_zero(u.durations)),
    }


# ---------------------------------------------------------------- families that read group outputs


def column(groups: dict[str, GroupOutput], group: str, patterns: tuple[str, ...], n_phones: int) -> np.ndarray | None:
    """The per-phone column of a group's block that a pattern names; None when the group or the name is missing."""
    block = block_of(groups, group, n_phones)
    if block is None:
        return None
    names = [name.lower() for name in block.names]
    for pattern in patterns:
        if pattern.endswith("*"):
            matching = [i for i, name in enumerate(names) if name.startswith(pattern[:-1])]
            if matching:
                return block.values[:, matching].min(axis=1)
    index = _match_column(names, tuple(p for p in patterns if not p.endswith("*")))
    return None if index is None else block.values[:, index]


def block_of(groups: dict[str, GroupOutput], group: str, n_phones: int) -> FeatureBlock | None:
    """A group's block as finite float64, or None when the group is off or its rows do not match the phones."""
    output = groups.get(group)
    if output is None or output.block.values.shape[0] != n_phones:
        return None
    values = np.nan_to_num(output.block.values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return FeatureBlock(output.block.names, values)


def _match_column(names: list[str], wanted: tuple[str, ...]) -> int | None:
    """Index of the first wanted name that the block has."""
    return next((names.index(w) for w in wanted if w in names), None)


def score_column_features(prefix: str, values: np.ndarray | None, thresholds: tuple[float, ...],
                          u: Utterance) -> Features:
    """Distribution of one per-phone score over the utterance, its words and its phone classes."""
    present = values is not None and len(values) > 0
    values = values if present else np.zeros(0)
    features = describe(prefix, values, ("mean", "std", "min", "p10", "p25", "p50"))
    for threshold in thresholds:
        share_below = mean_or_zero((values < threshold).astype(float))
        features[f"{prefix}_share_below_{_threshold_label(threshold)}"] = share_below
    word_means = per_word(values, u.word_index, np.mean)
    features.update({
        f"{prefix}_word_min_mean": mean_or_zero(per_word(values, u.word_index, np.min)),
        f"{prefix}_word_mean_min": float(word_means.min()) if len(word_means) else 0.0,
        f"{prefix}_vowel_mean": masked_mean(values, u.is_vowel),
        f"{prefix}_consonant_mean": masked_mean(values, ~u.is_vowel),
        f"{prefix}_available": float(present),
    })
    return features


def _threshold_label(threshold: float) -> str:
    """-0.5 -> 'm0p5': names stay identifier-like."""
    return f"{threshold:g}".replace("-", "m").replace(".", "p")


def group_column_features(u: Utterance, groups: dict[str, GroupOutput]) -> Features:
    features: Features = {}
    for group, families in GROUP_COLUMNS.items():
        for family, (patterns, thresholds) in families.items():
            values = column(groups, group, patterns, u.n_phones)
            features.update(score_column_features(f"{group}_{family}", values, thresholds, u))
    return features


def group_summary_features(groups: dict[str, GroupOutput]) -> Features:
    features: Features = {}
    for group, keys in GROUP_SUMMARY_KEYS.items():
        summary = groups[group].frame_summary if group in groups else {}
        for key in keys:
            features[f"{group}_summary_{key}"] = float(summary.get(key, 0.0))
    return features


def prosody_phone_features(u: Utterance, groups: dict[str, GroupOutput]) -> Features:
    features: Features = {}
    for name in PROSODY_PHONE_COLUMNS:
        features.update(describe(f"prosody_phone_{name}", prosody_column(u, groups, name), ("mean", "std")))
    voiced_ratio = prosody_column(u, groups, "f0_voiced_ratio")
    slope = prosody_column(u, groups, "f0_slope_st_per_s")
    last_word = u.word_index == (u.n_words - 1)
    features.update({
        "prosody_vowel_voiced_ratio": masked_mean(voiced_ratio, u.is_vowel),
        "prosody_consonant_voiced_ratio": masked_mean(voiced_ratio, ~u.is_vowel),
        "prosody_final_word_f0_slope_st_per_s": masked_mean(slope, last_word),
    })
    return features


def prosody_column(u: Utterance, groups: dict[str, GroupOutput], name: str) -> np.ndarray:
    """A prosody column by exact name; empty when the group is off."""
    values = column(groups, "prosody", (name,), u.n_phones)
    return values if values is not None else np.zeros(0)


def heard_features(u: Utterance, groups: dict[str, GroupOutput]) -> Features:
    """How often the phone recogniser heard the canonical phone (from GroupOutput.heard)."""
    output = groups.get("posterior_gop")
    heard = output.heard if output is not None and output.heard and len(output.heard) == u.n_phones else []
    match = np.array([h.base == s.phone.base for h, s in zip(heard, u.segments)], dtype=float)
    probability = np.array([h.probability for h in heard], dtype=float)
    word_all_match = per_word(match, u.word_index, np.min)
    return {
        "heard_match_share": mean_or_zero(match),
        "heard_match_share_vowels": masked_mean(match, u.is_vowel),
        "heard_match_share_consonants": masked_mean(match, ~u.is_vowel),
        "heard_word_all_match_share": mean_or_zero(word_all_match),
        "heard_probability_mean": mean_or_zero(probability),
        "heard_probability_matched_mean": masked_mean(probability, match > 0),
    }


def embedding_features(u: Utterance, groups: dict[str, GroupOutput]) -> Features:
    """Shape of per-phone embedding blocks: norm level and spread, similarity of neighbouring phones."""
    features: Features = {}
    for group in EMBEDDING_GROUPS:
        block = block_of(groups, group, u.n_phones)
        vectors = block.values if block is not None else np.zeros((0, 1))
        norms = np.linalg.norm(vectors, axis=1)
        unit = vectors / np.maximum(norms, 1e-9)[:, None]
        neighbour_cosine = np.sum(unit[1:] * unit[:-1], axis=1)
        features.update(describe(f"{group}_norm", norms, ("mean", "std", "min")))
        features.update(describe(f"{group}_neighbour_cosine", neighbour_cosine, ("mean", "max")))
    return features


def stress_features(u: Utterance, groups: dict[str, GroupOutput]) -> Features:
    """Primary-stressed vs unstressed vowels: duration, pitch and loudness contrasts."""
    stressed = u.is_vowel & (u.stress == 1)
    unstressed = u.is_vowel & (u.stress == 0)
    pitch = column(groups, "prosody", ("f0_mean_st",), u.n_phones)
    voiced = prosody_column(u, groups, "f0_voiced_ratio")
    loudness = column(groups, "prosody", ("int_mean_db",), u.n_phones)
    pitched = voiced > 0 if len(voiced) else np.zeros(u.n_phones, dtype=bool)
    features = {
        "stress_stressed_vowel_share": safe_ratio(float(stressed.sum()), float(u.is_vowel.sum())),
        "stress_duration_ratio": safe_ratio(mean_or_zero(u.durations[stressed]), mean_or_zero(u.durations[unstressed])),
        "stress_pitch_contrast_st": _contrast(pitch, stressed & pitched, unstressed & pitched),
        "stress_intensity_contrast_db": _contrast(loudness, stressed, unstressed),
    }
    for label, values in (("duration", u.durations), ("pitch", pitch), ("intensity", loudness)):
        features[f"stress_peak_match_{label}"] = _stress_peak_match(u, values)
    return features


def _contrast(values: np.ndarray | None, first: np.ndarray, second: np.ndarray) -> float:
    if values is None or not first.any() or not second.any():
        return 0.0
    return float(values[first].mean() - values[second].mean())


def _stress_peak_match(u: Utterance, values: np.ndarray | None) -> float:
    """Share of multi-vowel words whose primary-stressed vowel has the largest value among its vowels."""
    if values is None:
        return 0.0
    matches: list[float] = []
    for word in range(u.n_words):
        vowels = np.flatnonzero((u.word_index == word) & u.is_vowel)
        if len(vowels) >= 2 and (u.stress[vowels] == 1).sum() == 1:
            matches.append(float(u.stress[vowels[np.argmax(values[vowels])]] == 1))
    return mean_or_zero(np.array(matches))


def loop_features(u: Utterance) -> Features:
    """Agreement of the free phone loop with the canonical phones, and its silences and scores."""
    loop = [p for p in u.loop if p.end > p.start]
    speech = [p for p in loop if p.base != SILENCE_LABEL]
    internal_silences = np.array([p.end - p.start for p in loop if p.base == SILENCE_LABEL
                                  and p.start > u.speech_start and p.end < u.speech_end])
    agree, path_minus_loop = _loop_alignment_agreement(u, loop)
    loop_frames = sum(p.end - p.start for p in loop) / LOOP_FRAME_S
    path_scores = np.array([s.path_score for s in u.segments])
    features = {
        "loop_agreement": mean_or_zero(agree),
        "loop_agreement_vowels": masked_mean(agree, u.is_vowel),
        "loop_agreement_consonants": masked_mean(agree, ~u.is_vowel),
        "loop_phone_count_ratio": safe_ratio(len(speech), u.n_phones),
        "loop_phones_per_s": safe_ratio(len(speech), u.duration),
        "loop_internal_silence_total_s": float(internal_silences.sum()),
        "loop_internal_silence_count": float((internal_silences >= PAUSE_MIN_S).sum()),
        "loop_score_per_frame": safe_ratio(sum(p.score for p in loop), loop_frames),
    }
    features.update(describe("align_path_score", path_scores, ("mean", "std", "min", "p10")))
    features.update(describe("align_path_minus_loop", path_minus_loop, ("mean", "min", "p10")))
    return features


def _loop_alignment_agreement(u: Utterance, loop: list[LoopPhone]) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: does the most-overlapping loop phone match it, and path score minus overlapping loop score."""
    if not loop or not u.n_phones:
        return np.zeros(0), np.zeros(0)
    seg_start = np.array([s.start for s in u.segments])[:, None]
    seg_end = np.array([s.end for s in u.segments])[:, None]
    loop_start = np.array([p.start for p in loop])[None, :]
    loop_end = np.array([p.end for p in loop])[None, :]
    overlap = np.maximum(0.0, np.minimum(seg_end, loop_end) - np.maximum(seg_start, loop_start))
    best = overlap.argmax(axis=1)
    loop_bases = np.array([p.base for p in loop])
    bases = np.array([s.phone.base for s in u.segments])
    agree = ((loop_bases[best] == bases) & (overlap.max(axis=1) > 0)).astype(float)
    loop_per_frame = np.array([p.score for p in loop]) / np.maximum((loop_end - loop_start)[0] / LOOP_FRAME_S, 1.0)
    weights = overlap.sum(axis=1)
    loop_score = safe_divide(overlap @ loop_per_frame, weights)
    path_scores = np.array([s.path_score for s in u.segments])
    return agree, (path_scores - loop_score)[weights > 0]


# ---------------------------------------------------------------- the pool


def pool_features(audio: Audio, alignment: Alignment, groups: dict[str, GroupOutput]) -> Features:
    u = build_utterance(audio, alignment)
    features: Features = {}
    for family in (global_features, rate_features, pause_features, rhythm_features, duration_features,
                   loop_features):
        features.update(family(u))
    for group_family in (stress_features, prosody_phone_features, group_column_features, heard_features,
                         embedding_features):
        features.update(group_family(u, groups))
    features.update(group_summary_features(groups))
    return features


@cache
def pool_names() -> tuple[str, ...]:
    """The fixed names, read off a run on an empty utterance: every family emits the same keys for any input."""
    empty = Alignment(segments=[], loop=[], fallback=True, note="", speech_start=0.0, speech_end=0.0)
    return tuple(pool_features(Audio(np.zeros(1, np.float32)), empty, {}))


class UtterancePool:
    """Utterance-level candidate features for Lasso selection."""

    name = "utterance_pool"

    def names(self) -> tuple[str, ...]:
        return pool_names()

    def extract(self, audio: Audio, alignment: Alignment,
                groups: dict[str, GroupOutput]) -> tuple[tuple[str, ...], np.ndarray]:
        features = pool_features(audio, alignment, groups)
        names = pool_names()
        if tuple(features) != names:
            raise RuntimeError(f"pool emitted names that differ from the fixed list: "
                               f"{sorted(set(features) ^ set(names))}")
        vector = np.array([features[n] for n in names], dtype=np.float64)
        return names, np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
