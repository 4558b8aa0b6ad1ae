"""The `orthoepy` command line."""
from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import resources
from pathlib import Path

from ..encoder.audio import AudioError, load_audio
from ..encoder.corpus import SPLITS, CorpusError, load_corpus, resolve_corpus_dir
from ..encoder.features.frontend import PHONE_GROUPS, FrontEnd, FrontEndConfig, FrontEndError, PhoneFeatures
from ..encoder.features.store import extract_utterances
from ..encoder.lexicon import Lexicon, TextError

USER_ERRORS = (AudioError, CorpusError, TextError, FrontEndError, FileNotFoundError)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except USER_ERRORS as err:
        print(f"orthoepy: error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orthoepy", description="Pronunciation assessment of L2 English speech")
    sub = parser.add_subparsers(title="commands")

    feats = sub.add_parser("features", help="extract front-end features of a corpus split into a feature store")
    feats.add_argument("--corpus", help="speechocean762 directory (default: $SO762_DIR)")
    feats.add_argument("--split", choices=SPLITS, required=True)
    feats.add_argument("--out", required=True, help="output directory")
    feats.add_argument("--nj", type=int, default=os.cpu_count(), help="parallel workers (default: all cores)")
    feats.add_argument("--limit", type=int, help="only the first N utterances of the split")
    feats.add_argument("--cache", help="cache directory (default: $ORTHOEPY_CACHE/features or ~/.cache/orthoepy/features)")
    _add_group_options(feats)
    feats.set_defaults(run=_run_features)

    front = sub.add_parser("frontend", help="align one recording to its text and print the per-phone features")
    front.add_argument("audio", nargs="?", help="audio file (WAV, FLAC, OGG, MP3)")
    front.add_argument("--text", help="the text the speaker read")
    front.add_argument("--demo", action="store_true", help="use the bundled sample")
    front.add_argument("--corpus", help="use this corpus's lexicon before CMUdict (default: $SO762_DIR if set)")
    _add_group_options(front)
    front.set_defaults(run=_run_frontend)
    return parser


def _add_group_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--groups", default=",".join(PHONE_GROUPS), help=f"comma-separated feature groups (default: all of {','.join(PHONE_GROUPS)})")
    parser.add_argument("--no-utterance-pool", action="store_true", help="skip the utterance-level handcrafted pool")
    parser.add_argument("--whisper", default="base", choices=("base", "tiny.en"), help="Whisper encoder size")


def _config(args: argparse.Namespace) -> FrontEndConfig:
    groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
    return FrontEndConfig(groups=groups, utterance_pool=not args.no_utterance_pool, whisper_size=args.whisper)


def _run_features(args: argparse.Namespace) -> int:
    config = _config(args)
    utterances = load_corpus(args.corpus, args.split)
    if args.limit is not None:
        utterances = utterances[: args.limit]
    manifest = extract_utterances(utterances, args.out, config, nj=args.nj, cache_dir=args.cache)
    done, failed = len(manifest["utterances"]), len(manifest["failures"])
    print(f"{done} utterances -> {args.out} ({len(manifest['fallbacks'])} alignment fallbacks, {failed} failures)")
    for utt_id, error in manifest["failures"].items():
        print(f"  failed {utt_id}: {error}", file=sys.stderr)
    return 0 if done else 1


def _run_frontend(args: argparse.Namespace) -> int:
    audio_path, text = _frontend_input(args)
    corpus = args.corpus or os.environ.get("SO762_DIR")
    lexicon = Lexicon.from_corpus(resolve_corpus_dir(corpus)) if corpus else Lexicon()
    pronunciation = lexicon.pronounce(text)
    audio = load_audio(audio_path)
    features = FrontEnd(_config(args)).extract(audio, pronunciation.canonical)
    print(format_phone_table(features, pronunciation.words))
    return 0


def _frontend_input(args: argparse.Namespace) -> tuple[Path | str, str]:
    if args.demo:
        sample = resources.files("orthoepy.fusion") / "samples"
        meta = json.loads((sample / "demo.json").read_text())
        return Path(str(sample / meta["audio"])), meta["text"]
    if not args.audio or not args.text:
        raise FrontEndError("give an audio file and --text \"...\" (or --demo)")
    return args.audio, args.text


def format_phone_table(features: PhoneFeatures, words: tuple[str, ...]) -> str:
    """A readable per-phone table: timing, GOP values and what the recogniser heard."""
    lines = [f"{'word':<12} {'phone':<6} {'start':>6} {'end':>6} {'lik_gop':>8} {'lpp':>7}  heard (p)"]
    lik = _column(features, "likelihood_gop", ("lik_gop", "aligned_loglik_per_frame"))
    lpp = _column(features, "posterior_gop", ("lpp",))
    for i, phone in enumerate(features.phones):
        heard = features.heard[i] if features.heard else None
        heard_text = f"{heard.base} ({heard.probability:.2f})" if heard else "-"
        word = words[phone.word_index] if phone.position in ("B", "S") else ""
        lines.append(f"{word:<12} {phone.symbol:<6} {features.starts[i]:6.2f} {features.ends[i]:6.2f} "
                     f"{_fmt(lik, i):>8} {_fmt(lpp, i):>7}  {heard_text}")
    dims = ", ".join(f"{g} {b.values.shape[1]}" for g, b in features.blocks.items())
    pool = 0 if features.utterance is None else features.utterance.values.shape[1]
    status = f"fallback ({features.alignment_note})" if features.alignment_fallback else "forced alignment"
    lines.append(f"\n{len(features.phones)} phones, {features.duration:.2f} s, {status}; dims per phone: {dims}; utterance pool {pool}")
    lines.append("times: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in features.timings.items()))
    return "\n".join(lines)


def _column(features: PhoneFeatures, group: str, candidates: tuple[str, ...]):
    block = features.blocks.get(group)
    if block is None:
        return None
    index = next((block.names.index(c) for c in candidates if c in block.names), None)
    return None if index is None else block.values[:, index]


def _fmt(column, i: int) -> str:
    return "-" if column is None else f"{column[i]:.2f}"
