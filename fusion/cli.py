"""The `orthoepy` command line."""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import Callable

from ..encoder.audio import AudioError, load_audio
from ..encoder.corpus import SPLITS, CorpusError, load_corpus, resolve_corpus_dir
from ..encoder.features.frontend import OPTIONAL_GROUPS, PHONE_GROUPS, FrontEnd, FrontEndConfig, FrontEndError, PhoneFeatures
from ..encoder.features.store import extract_utterances
from ..encoder.lexicon import Lexicon, TextError, check_length
from ..rationalizer.pipeline import RationalizerRecipe
from .batch import ENGINES, BatchError, EngineOptions
from .rationale import RATIONALE_MODES

class UsageError(ValueError):
    """A command's input file is unusable; the message says which and why."""


USER_ERRORS = (AudioError, CorpusError, TextError, FrontEndError, FileNotFoundError, UsageError, BatchError)
SCORER_PIPELINE = f"{__package__.rpartition('.')[0]}.encoder.scorer.pipeline"  # torch + sklearn: ~2.5 s to import


def is_user_error(err: BaseException) -> bool:
    """A bad input or model directory (one clear line, exit 2), as opposed to a bug (a traceback).

    ModelDirectoryError lives in the scorer pipeline, which is imported only by commands that load a model; when it
    is not imported, no such error can have been raised.
    """
    pipeline = sys.modules.get(SCORER_PIPELINE)
    return isinstance(err, USER_ERRORS + ((pipeline.ModelDirectoryError,) if pipeline else ()))


class LazyParser(argparse.ArgumentParser):
    """A subcommand parser whose options are added only when that subcommand is chosen (or its --help asked).

    The train-scorer options show TrainingPlan's defaults, and importing TrainingPlan costs seconds (torch):
    building them lazily keeps every other command quick to start, e.g. to reject a missing audio file.
    """

    def __init__(self, *args, build: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._build = build

    def parse_known_args(self, args=None, namespace=None):
        if self._build is not None:
            build, self._build = self._build, None
            build(self)
        return super().parse_known_args(args, namespace)


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns its exit status: 0, 1 (assess-batch: some items failed) or 2 (a user error).

    A user error is one line on stderr (`orthoepy: error: ...`); with `assess --json` stdout also gets
    {"error": "<the same message>"}. A bug raises (a traceback), after {"error": "internal error: ..."} with --json.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except Exception as err:
        user_error = is_user_error(err)
        if getattr(args, "json", False):  # `assess --json`: stdout holds one JSON object whatever happens
            print(json.dumps({"error": str(err) if user_error else f"internal error: {type(err).__name__}: {err}"}))
        if not user_error:
            raise
        print(f"orthoepy: error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orthoepy", description="Pronunciation assessment of L2 English speech")
    sub = parser.add_subparsers(title="commands", parser_class=LazyParser)

    feats = sub.add_parser("features", help="extract front-end features of a corpus split into a feature store")
    feats.add_argument("--corpus", help="speechocean762 directory (default: $SO762_DIR)")
    feats.add_argument("--split", choices=SPLITS, required=True)
    feats.add_argument("--out", required=True, help="output directory")
    feats.add_argument("--nj", type=int, default=os.cpu_count(), help="parallel workers (default: all cores)")
    feats.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local processes, or --nj Ray actors (pip install 'orthoepy[ray]')")
    feats.add_argument("--address", help="with --engine ray: a running Ray cluster (default: start a local Ray)")
    feats.add_argument("--limit", type=int, help="only the first N utterances of the split")
    feats.add_argument("--cache", help="cache directory (default: $ORTHOEPY_CACHE/features or ~/.cache/orthoepy/features)")
    _add_group_options(feats)
    feats.set_defaults(run=_run_features)

    sub.add_parser("train-scorer", help="train the scorer on a feature store (train + dev splits)",
                   build=_train_scorer_options)

    evaluate = sub.add_parser("evaluate", help="score a corpus split with a trained model: metrics and predictions")
    evaluate.add_argument("--corpus", help="speechocean762 directory (default: $SO762_DIR)")
    evaluate.add_argument("--split", choices=SPLITS, required=True)
    evaluate.add_argument("--model", help="model directory from train-scorer (default: the shipped model)")
    evaluate.add_argument("--features", help="feature store of the split (default: extract now, using the cache)")
    evaluate.add_argument("--out", required=True, help="metrics JSON to write")
    evaluate.add_argument("--predictions", help="predictions JSON to write, in the corpus's scores.json schema")
    evaluate.add_argument("--nj", type=int, default=os.cpu_count())
    evaluate.set_defaults(run=_run_evaluate)

    report = sub.add_parser("report", help="an HTML report with plots from `orthoepy evaluate` outputs")
    report.add_argument("--metrics", required=True, help="metrics JSON from evaluate")
    report.add_argument("--predictions", required=True, help="predictions JSON from evaluate")
    report.add_argument("--out", required=True, help="HTML file to write")
    report.add_argument("--corpus", help="corpus whose labels add predicted-vs-human plots (default: $SO762_DIR if set)")
    report.set_defaults(run=_run_report)

    export = sub.add_parser("export-onnx", help="export a trained scorer's network to ONNX (used by onnxruntime)")
    export.add_argument("--model", required=True, help="model directory from train-scorer")
    export.add_argument("--out", help="ONNX file to write (default: MODEL/scorer.onnx, which `evaluate` then uses)")
    export.set_defaults(run=_run_export_onnx)

    assess = sub.add_parser("assess", help="score one recording against the text read (scores + phone diagnosis)")
    _add_input_options(assess)
    assess.add_argument("--model", help="model directory (default: the shipped model)")
    assess.add_argument("--json", action="store_true",
                        help='print the assessment as JSON (on failure: {"error": "..."} and a non-zero exit status)')
    _add_rationale_option(assess)
    assess.set_defaults(run=_run_assess)

    _add_batch_command(sub)

    front = sub.add_parser("frontend", help="align one recording to its text and print the per-phone features")
    _add_input_options(front)
    _add_group_options(front)
    front.set_defaults(run=_run_frontend)

    serve = sub.add_parser("serve", help="run the HTTP assessment service and the learner page")
    serve.add_argument("--model", help="model directory (default: the shipped model)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="assessor worker processes, each loads the models and assesses one request at a time "
                            "(default: 1)")
    serve.add_argument("--threads", action="store_true",
                       help="run the workers as threads of the server process instead (less memory, no speed-up)")
    serve.add_argument("--max-queue", type=int, default=16, help="requests that may wait for a worker before 503 (default: 16)")
    serve.add_argument("--max-upload-mb", type=float, default=16.0, help="largest request body in MiB (default: 16)")
    _add_rationale_option(serve)
    serve.set_defaults(run=_run_serve)

    _add_rationalizer_commands(sub)
    return parser


def _train_scorer_options(train: argparse.ArgumentParser) -> None:
    from ..encoder.scorer.pipeline import TrainingPlan

    train.add_argument("--features", required=True, help="directory holding train/ and dev/ feature stores")
    train.add_argument("--out", required=True, help="model directory to write")
    train.add_argument("--corpus", help="speechocean762 directory for the labels (default: $SO762_DIR)")
    plan = TrainingPlan()
    train.add_argument("--seed", type=int, default=plan.seed)
    train.add_argument("--no-mtp", action="store_true", help="skip multi-task pretraining of the phone encoder")
    train.add_argument("--no-handcrafted", action="store_true", help="no handcrafted utterance features")
    train.add_argument("--n-handcrafted", type=int, default=plan.n_handcrafted, help="features the Lasso keeps")
    train.add_argument("--groups", help="comma-separated phone feature groups (default: all in the store)")
    train.add_argument("--epochs", type=int, default=plan.epochs)
    train.add_argument("--mtp-epochs", type=int, default=plan.mtp_epochs)
    train.add_argument("--patience", type=int, default=plan.patience, help="epochs without a better dev score before stopping")
    train.add_argument("--lr", type=float, default=plan.lr)
    train.add_argument("--dropout", type=float, default=plan.dropout)
    train.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    train.add_argument("--calibration", choices=("pchip", "isotonic"), default=plan.calibration,
                       help="per-aspect calibration fitted on dev: pchip = smooth and strictly increasing (no "
                            "plateaus), isotonic = the step function of earlier models (default: %(default)s)")
    train.add_argument("--validation", choices=("dev", "folds"), default=plan.validation,
                       help="dev = early stopping and calibration on the dev split; folds = speaker "
                            "cross-validation over train: calibration and the MDD threshold on out-of-fold "
                            "predictions, the model retrained on all of train (default: %(default)s)")
    train.add_argument("--folds", type=int, default=plan.n_folds, help="speaker folds with --validation folds")
    train.add_argument("--fold", type=int, help="with --validation folds: train this fold only and save its "
                                                "out-of-fold predictions under OUT/folds/ (run folds in parallel, "
                                                "then once without --fold)")
    train.add_argument("--augmented-items", help="items.json of recipes/local/augment_features.py: error-augmented "
                                                 "training items (train side only)")
    train.add_argument("--augmented-features", help="the augmented items' feature store")
    train.add_argument("--augment-share", type=float, default=plan.augment_share,
                       help="share of the augmented items to use (default: %(default)s)")
    train.add_argument("--no-calibrate-on-augmented", action="store_true",
                       help="with --validation folds: fit the calibration maps on the real utterances' out-of-fold "
                            "predictions only (default: the augmented items' too)")
    train.add_argument("--augmented-calibration-weight", type=float, default=plan.augmented_calibration_weight,
                       help="weight of an augmented item against a real utterance in the calibration fit "
                            "(default: %(default)s)")
    train.add_argument("--augmented-support-quantile", type=float, default=plan.augmented_support_quantile,
                       help="augmented items whose raw output is below this quantile of the real utterances' "
                            "weigh 1 in the calibration fit whatever --augmented-calibration-weight says "
                            "(default: %(default)s)")
    train.add_argument("--augmented-weight-levels", default="phone,word,sentence",
                       help="levels whose calibration maps use --augmented-calibration-weight and "
                            "--augmented-support-quantile; elsewhere augmented items weigh 1 (default: %(default)s)")
    train.add_argument("--feature-clip", type=float, default=plan.feature_clip,
                       help="clip standardised features to +-this many train standard deviations; 0 = no clipping "
                            "(default: %(default)s)")
    train.add_argument("--recalibrate-only", action="store_true",
                       help="with --validation folds: keep OUT's trained network and fold results, refit the "
                            "calibration (e.g. with another --augmented-calibration-weight) and the reports")
    train.add_argument("--correlation-on-augmented", action="store_true",
                       help="let the loss's batch-correlation terms see the augmented items (default: real "
                            "utterances only)")
    train.add_argument("--class-weights-from-real", action="store_true",
                       help="count the phone class weights over the real utterances only (default: the "
                            "augmented items' replaced phones count too)")
    train.set_defaults(run=_run_train_scorer)


def _add_batch_command(sub) -> None:
    batch = sub.add_parser("assess-batch", help="assess a JSONL manifest (id, audio, text) into a JSONL file; resumable")
    batch.add_argument("manifest", help="JSONL file: one {\"id\", \"audio\", \"text\"} per line; relative audio paths "
                                        "are resolved against the manifest's folder")
    batch.add_argument("--out", required=True, help="JSONL output; ids already assessed in it are skipped")
    batch.add_argument("--model", help="model directory (default: the shipped model)")
    _add_rationale_option(batch)
    _add_engine_options(batch)
    batch.set_defaults(run=_run_assess_batch)


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: one assessor in this process; ray: --workers Ray actors (default: local)")
    parser.add_argument("--workers", type=int, default=1, help="Ray actors, each loading the models (default: 1)")
    parser.add_argument("--address", help="a running Ray cluster, e.g. ray://HOST:10001 or auto "
                                          "(default: start a local Ray with workers x cpus-per-worker CPUs)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="Ray num_cpus per actor (default: 1)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="Ray num_gpus per actor (default: 0)")


def _run_assess_batch(args: argparse.Namespace) -> int:
    from .batch import run_batch

    options = EngineOptions(args.engine, args.model, args.rationale, args.workers, args.address,
                            args.cpus_per_worker, args.gpus_per_worker)
    with library_output_to_stderr():
        summary = run_batch(args.manifest, args.out, options)
    print(f"{summary.assessed} assessed, {summary.errors} errors, {summary.skipped} already done -> {args.out} "
          f"(models loaded in {summary.load_s:.1f} s; {summary.per_second:.2f} utterances/s)")
    return 1 if summary.errors else 0


def _add_rationale_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rationale", choices=RATIONALE_MODES, default="auto",
                        help="auto: the model directory's rationalizer when it loads, else the rubric text; "
                             "model: the rationalizer, or an error when it cannot load (its texts still pass the "
                             "faithfulness guard, which may return the rubric text); rubric; none (default: auto)")


def _add_rationalizer_commands(sub) -> None:
    train = sub.add_parser("train-rationalizer", help="train the compact rationalizer: SFT, then Bounded DPO / SimPO")
    train.add_argument("--features", required=True, help="directory holding the train/ feature store")
    train.add_argument("--scorer", required=True, help="trained scorer directory (its phone states are the audio)")
    train.add_argument("--out", required=True, help="output directory: sft/, bounded_dpo/, simpo/")
    train.add_argument("--corpus", help="speechocean762 directory for the labels (default: $SO762_DIR)")
    recipe = RationalizerRecipe()
    train.add_argument("--n-sft", type=int, default=recipe.n_sft, help="train utterances for SFT")
    train.add_argument("--n-pairs", type=int, default=recipe.n_pairs, help="preference pairs (other utterances)")
    train.add_argument("--sft-variants", type=int, default=recipe.sft_variants,
                       help="SFT examples per utterance (phrasings and sheet draws)")
    train.add_argument("--phrasing", choices=("plain", "varied"), default=recipe.phrasing,
                       help="target wording: plain (one fixed, short wording, no numbers: faster generation) "
                            "or varied (several wordings, some numbers; v0.3's targets)")
    train.add_argument("--preference", default=",".join(recipe.preference),
                       help="comma-separated preference stages after SFT: bounded_dpo, simpo (or empty)")
    train.add_argument("--base-model", help="a save_pretrained Llama folder instead of SmolLM2-135M-Instruct; "
                                            f"'{TINY_BASE}': a tiny random one (smoke runs, no weights needed)")
    train.add_argument("--threads", type=int, help="torch threads")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=_run_train_rationalizer)

    evaluate = sub.add_parser("evaluate-rationales", help="faithfulness of rationales on a corpus split")
    evaluate.add_argument("--corpus", help="speechocean762 directory (default: $SO762_DIR)")
    evaluate.add_argument("--split", choices=SPLITS, default="test")
    evaluate.add_argument("--model", required=True, help="scorer model directory (its rationalizer/ is the default system)")
    evaluate.add_argument("--rationalizer", action="append", default=[], metavar="NAME=DIR",
                          help="a rationalizer to evaluate (repeatable); 'rubric' names the rubric writer "
                               "(default: the model directory's rationalizer/ and the rubric)")
    evaluate.add_argument("--features", help="feature store of the split (default: extract from the audio)")
    evaluate.add_argument("--limit", type=int, default=100, help="a seeded sample of this many utterances (default 100)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--nj", type=int, default=1, help="feature extraction workers when --features is absent")
    evaluate.add_argument("--exclude", help="utterances to leave out before sampling: a rationalizer directory's "
                                            "training_report.json (its training utterances) or a file of ids, "
                                            "one per line")
    evaluate.add_argument("--out", required=True, help="JSON file to write")
    evaluate.set_defaults(run=_run_evaluate_rationales)


TINY_BASE = "tiny-random"


def _run_train_rationalizer(args: argparse.Namespace) -> int:
    from ..rationalizer.pipeline import choose_utterances, train_rationalizer
    from .rationale_sources import labelled_train_ids, training_sources

    preference = tuple(p.strip() for p in args.preference.split(",") if p.strip())
    base_model = args.base_model
    if base_model == TINY_BASE:
        from ..rationalizer.compact import save_tiny_compact_base

        base_model = str(save_tiny_compact_base(Path(args.out) / TINY_BASE, seed=args.seed).resolve())
    recipe = RationalizerRecipe(n_sft=args.n_sft, n_pairs=args.n_pairs, sft_variants=args.sft_variants,
                                preference=preference, base_model=base_model, threads=args.threads,
                                seed=args.seed, phrasing=args.phrasing)
    sft_ids, pair_ids = choose_utterances(labelled_train_ids(args.features, args.corpus), recipe)
    sources = training_sources(args.features, args.corpus, args.scorer, sft_ids + pair_ids)
    from ..encoder.scorer.pipeline import network_fingerprint

    report = train_rationalizer(sources[:len(sft_ids)], sources[len(sft_ids):], args.out, recipe,
                                scorer_fingerprint=network_fingerprint(args.scorer))
    print("minutes per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in report["minutes"].items()))
    return 0


def _run_evaluate_rationales(args: argparse.Namespace) -> int:
    from .rationale import RATIONALIZER_DIR
    from .rationale_eval import RUBRIC_SYSTEM, evaluate_rationales

    systems = dict(_named_directory(item) for item in args.rationalizer) or {
        "model": str(Path(args.model) / RATIONALIZER_DIR), RUBRIC_SYSTEM: RUBRIC_SYSTEM}
    result = evaluate_rationales(args.corpus, args.split, args.model, systems, args.out, args.features,
                                 args.limit, args.seed, nj=args.nj, exclude=_excluded_ids(args.exclude))
    print(format_rationale_table(result))
    return 0


def _excluded_ids(path: str | None) -> list[str]:
    if path is None:
        return []
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--exclude: no such file: {path}")
    text = file.read_text()
    if file.suffix == ".json":
        try:
            report = json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(f"--exclude: {path} is not valid JSON ({err})") from None
        if not isinstance(report, dict) or "utterances" not in report:
            raise UsageError(f"--exclude: {path} lists no training utterances (a training report written before "
                             f"they were recorded?)")
        return [u for ids in report["utterances"].values() for u in ids]
    return [line.strip() for line in text.splitlines() if line.strip()]


def _named_directory(item: str) -> tuple[str, str]:
    if item == "rubric":
        return "rubric", "rubric"
    name, sep, directory = item.partition("=")
    if not sep or not name or not directory:
        raise UsageError(f"--rationalizer wants NAME=DIR (or 'rubric'), not {item!r}")
    return name, directory


def format_rationale_table(result: dict) -> str:
    lines = [f"{result['n']} {result['split']} utterances; agreement with the scores given (self) and with the labels (gold):",
             f"{'system':<14} {'ref':<5} {'sentence':>8} {'word F1':>8} {'phone F1':>8} {'numbers':>8} {'faithful':>8}"]
    for name, summary in result["systems"].items():
        for ref in ("self", "gold"):
            s = summary[ref]
            lines.append(f"{name:<14} {ref:<5} {s['sentence']['agreement']:8.3f} {s['word']['agreement']:8.3f} "
                         f"{s['phone']['agreement']:8.3f} {s['numbers']['agreement']:8.3f} {s['faithful_fraction']:8.3f}")
    return "\n".join(lines)


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", nargs="?", help="audio file (WAV, FLAC, OGG, MP3)")
    parser.add_argument("--text", help="the text the speaker read")
    parser.add_argument("--demo", action="store_true", help="use the bundled sample")
    parser.add_argument("--corpus", help="use this corpus's lexicon before CMUdict (default: $SO762_DIR if set)")


def _add_group_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--groups", default=",".join(PHONE_GROUPS), help=f"comma-separated feature groups (default: all of {','.join(PHONE_GROUPS)}; optional: {','.join(OPTIONAL_GROUPS)})")
    parser.add_argument("--no-utterance-pool", action="store_true", help="skip the utterance-level handcrafted pool")
    parser.add_argument("--whisper", default="base", choices=("base", "tiny.en"), help="Whisper encoder size")
    defaults = FrontEndConfig()
    parser.add_argument("--ctc-context-frames", type=int, default=defaults.ctc_context_frames,
                        help="frames added on each side of a phone when pooling CTC posteriors")
    parser.add_argument("--ctc-lag-frames", type=int, default=defaults.ctc_lag_frames,
                        help="frames the CTC pooling window is moved later (the recogniser's spikes lag)")
    parser.add_argument("--indomain-gop-dir", default=None,
                        help="in-domain recogniser folder for the optional indomain_gop group (train features for a "
                             "scorer must be cross-fitted instead: recipes/local/indomain_gop.py)")


def _config(args: argparse.Namespace) -> FrontEndConfig:
    groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
    return FrontEndConfig(groups=groups, utterance_pool=not args.no_utterance_pool, whisper_size=args.whisper,
                          ctc_context_frames=args.ctc_context_frames, ctc_lag_frames=args.ctc_lag_frames,
                          indomain_gop_dir=args.indomain_gop_dir)


def _run_features(args: argparse.Namespace) -> int:
    config = _config(args)
    utterances = load_corpus(args.corpus, args.split)
    if args.limit is not None:
        utterances = utterances[: args.limit]
    manifest = extract_utterances(utterances, args.out, config, nj=args.nj, cache_dir=args.cache,
                                  engine=args.engine, address=args.address)
    done, failed = len(manifest["utterances"]), len(manifest["failures"])
    print(f"{done} utterances -> {args.out} ({len(manifest['fallbacks'])} alignment fallbacks, {failed} failures)")
    for utt_id, error in manifest["failures"].items():
        print(f"  failed {utt_id}: {error}", file=sys.stderr)
    return 0 if done else 1


def _run_train_scorer(args: argparse.Namespace) -> int:
    from ..encoder.scorer.pipeline import TrainingPlan, train_scorer

    groups = tuple(g.strip() for g in args.groups.split(",")) if args.groups else None
    plan = TrainingPlan(seed=args.seed, mtp=not args.no_mtp, handcrafted=not args.no_handcrafted,
                        n_handcrafted=args.n_handcrafted, groups=groups, mtp_epochs=args.mtp_epochs,
                        epochs=args.epochs, patience=args.patience, lr=args.lr, dropout=args.dropout,
                        threads=args.threads, calibration=args.calibration, validation=args.validation,
                        n_folds=args.folds, only_fold=args.fold, augmented_items=args.augmented_items,
                        augmented_features=args.augmented_features, augment_share=args.augment_share,
                        calibrate_on_augmented=not args.no_calibrate_on_augmented,
                        correlation_on_augmented=args.correlation_on_augmented,
                        augmented_calibration_weight=args.augmented_calibration_weight,
                        augmented_support_quantile=args.augmented_support_quantile,
                        reuse_network=args.recalibrate_only, feature_clip=args.feature_clip or None,
                        augmented_weight_levels=tuple(v.strip() for v in args.augmented_weight_levels.split(",")),
                        class_weights_on_augmented=not args.class_weights_from_real)
    if train_scorer(args.features, args.corpus, args.out, plan) is None:
        print(f"fold {args.fold} -> {Path(args.out) / 'folds' / f'fold{args.fold}'}")
        return 0
    report = json.loads((Path(args.out) / "training_report.json").read_text())
    if "cv" in report:
        print(f"model -> {args.out}; out-of-fold over train (calibrated):")
        print(format_metrics(report["cv"]["calibrated"]))
    print(f"model -> {args.out}; dev (calibrated):")
    print(format_metrics(report["dev"]["calibrated"]))
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    import tempfile

    from ..encoder.features.store import FeatureStore
    from ..encoder.scorer.evaluation import evaluate_split
    from ..encoder.scorer.pipeline import Scorer
    from .assessor import frontend_config

    from .assessor import DEFAULT_MODEL_DIR

    utterances = load_corpus(args.corpus, args.split)  # a bad --corpus fails before the model loads
    scorer = Scorer.from_pretrained(args.model or DEFAULT_MODEL_DIR)
    with tempfile.TemporaryDirectory() as scratch:
        features = args.features
        if features is None:
            features = scratch
            extract_utterances(utterances, scratch, frontend_config(scorer), nj=args.nj)  # as the model was trained
        evaluation = evaluate_split(scorer, FeatureStore(features), utterances)
    Path(args.out).write_text(json.dumps(evaluation.metrics, indent=1))
    if args.predictions:
        Path(args.predictions).write_text(json.dumps(evaluation.predictions, indent=1))
    print(f"{evaluation.metrics['n_utterances']} {args.split} utterances (calibrated):")
    print(format_metrics(evaluation.metrics["calibrated"]))
    mdd = evaluation.metrics["mdd"]
    print(f"mispronunciation detection: precision {mdd['precision']:.3f} recall {mdd['recall']:.3f} F1 {mdd['f1']:.3f}")
    return 0


def _run_export_onnx(args: argparse.Namespace) -> int:
    from ..encoder.scorer.onnx_export import ONNX_FILE, export_onnx
    from ..encoder.scorer.pipeline import Scorer

    scorer = Scorer.from_pretrained(args.model, backend="torch")
    out = Path(args.out) if args.out else Path(args.model) / ONNX_FILE
    difference = export_onnx(scorer.model, out)
    print(f"{out} (max abs difference to torch on a sample batch: {difference:.2e})")
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from ..encoder.scorer.report import write_report

    metrics, predictions = (_read_json(Path(p)) for p in (args.metrics, args.predictions))
    corpus = args.corpus or os.environ.get("SO762_DIR")
    labels = [u for u in load_corpus(corpus) if u.utt_id in predictions] if corpus else None
    print(write_report(metrics, predictions, args.out, labels))
    return 0


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UsageError(f"{path} is not valid JSON: {err}") from None


def format_metrics(table: dict) -> str:
    lines = [f"{'aspect':<22} {'PCC':>6} {'SCC':>6} {'MSE':>7} {'n':>6}"]
    for aspect, m in table.items():
        pcc, scc = ("-" if m[k] is None else f"{m[k]:.3f}" for k in ("pcc", "scc"))
        lines.append(f"{aspect:<22} {pcc:>6} {scc:>6} {m['mse']:7.3f} {m['n']:>6}")
    return "\n".join(lines)


def _run_assess(args: argparse.Namespace) -> int:
    audio_path, text = _frontend_input(args)
    load_audio(audio_path)  # a missing or undecodable file fails here, in well under a second, before any model
    lexicon = _lexicon(args)
    lexicon.pronounce(text)  # likewise text without a pronounceable word (TextError)
    check_length(lexicon.readings(text))  # and a text too long for the scorer
    with library_output_to_stderr():
        from .assessor import Assessor, format_assessment  # torch, sklearn, ESPnet: seconds

        assessor = Assessor.from_pretrained(args.model, lexicon=lexicon, rationale=args.rationale)
        result = assessor.assess(audio_path, text)  # decoded again: the response notes the input's own sample rate
    print(result.to_json(indent=1) if args.json else format_assessment(result))
    return 0


@contextlib.contextmanager
def library_output_to_stderr():
    """Keep stdout for the command's result (`orthoepy assess --json | python -m json.tool` must parse).

    Libraries print notices on stdout while models load (ESPnet: "Failed to import Flash Attention ..."): they go
    to stderr inside this block, where progress bars already are; FutureWarnings from the libraries are dropped.
    """
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..encoder.scorer.pipeline import ModelDirectoryError
    from .assessor import DEFAULT_MODEL_DIR, Assessor
    from .service import create_app

    model = Path(args.model) if args.model else DEFAULT_MODEL_DIR
    if not model.is_dir():
        raise ModelDirectoryError(f"model directory not found: {model}")
    if args.workers < 1 or args.max_queue < 0 or args.max_upload_mb <= 0:
        print("orthoepy: error: --workers and --max-upload-mb must be positive, --max-queue at least 0", file=sys.stderr)
        return 2
    # picklable, for processes; warm: each worker assesses the bundled sample once before it takes requests
    factory = functools.partial(Assessor.from_pretrained, model, rationale=args.rationale, warm=True)
    app = create_app(factory, max_upload_bytes=int(args.max_upload_mb * 2**20), max_queue=args.max_queue,
                     workers=args.workers, processes=not args.threads)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


def _lexicon(args: argparse.Namespace) -> Lexicon:
    corpus = args.corpus or os.environ.get("SO762_DIR")
    return Lexicon.from_corpus(resolve_corpus_dir(corpus)) if corpus else Lexicon()


def _run_frontend(args: argparse.Namespace) -> int:
    audio_path, text = _frontend_input(args)
    pronunciation = _lexicon(args).pronounce(text)
    audio = load_audio(audio_path)
    features = FrontEnd(_config(args)).extract(audio, pronunciation.canonical)
    print(format_phone_table(features, pronunciation.words))
    return 0


def _frontend_input(args: argparse.Namespace) -> tuple[Path | str, str]:
    if args.demo:
        sample = resources.files("orthoepy.fusion") / "samples"
        meta = json.loads((sample / "demo.json").read_text())
        return Path(str(sample / meta["audio"])), meta["text"]
    if not args.audio:
        raise FrontEndError("give an audio file and --text \"...\" (or --demo)")
    if args.text is None:
        raise FrontEndError(f"give the sentence read in {args.audio} with --text \"...\"")
    if not args.text.strip():
        raise FrontEndError("the text is empty: give the sentence that was read with --text \"...\"")
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
