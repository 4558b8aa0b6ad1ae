"""An `orthoepy assess-batch` manifest of the first N utterances of a speechocean762 folder (the fixture by default).

    python recipes/local/fixture_manifest.py --n 12 --out /tmp/scale/manifest.jsonl

Audio paths are absolute, so the manifest can live anywhere. Raises SystemExit with a message when the folder
has no scores.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "data" / "speechocean762" / "fixture"


def manifest_lines(corpus: Path, n: int) -> list[str]:
    """One JSON line per utterance (sorted ids): id, absolute audio path, text."""
    scores = json.loads((corpus / "scores.json").read_text())
    ids = [i for i in sorted(scores) if (corpus / f"{i}.flac").is_file()][:n]
    return [json.dumps({"id": i, "audio": str((corpus / f"{i}.flac").resolve()), "text": scores[i]["text"]})
            for i in ids]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=FIXTURE, help="folder with scores.json and <id>.flac files")
    parser.add_argument("--n", type=int, default=12, help="utterances (default 12)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not (args.corpus / "scores.json").is_file():
        parser.error(f"{args.corpus} has no scores.json (a flat speechocean762 folder: scores.json + <id>.flac)")
    lines = manifest_lines(args.corpus, args.n)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(line + "\n" for line in lines))
    print(f"{len(lines)} utterances -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
