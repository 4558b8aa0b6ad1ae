"""JSON Schema (draft 2020-12) of an assessment response: `Assessment.to_dict()` plus its `schema_version`.

Write the published copy with `python -m orthoepy.fusion.schema docs/response.schema.json`.
The schema is inlined (no $defs/$ref) so that it can be embedded as-is in the service's OpenAPI document.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..encoder.corpus import SENTENCE_ASPECTS, WORD_ASPECTS
from .diagnosis import INSERTION_KINDS, WORD_ERROR_TYPES
from .rationale import RATIONALE_SOURCES

RESPONSE_SCHEMA_VERSION = "1.6"  # 1.1: words[].error_type; 1.2: rationale; 1.3: verification, insertions, heard_word;
# 1.4: phones[].heard_nbest; 1.5: audio_warnings, error types Monotone and Reversal; 1.6: heard / heard_nbest are
# the segmentation-free n-best (the phones likeliest at the position, the canonical one among them)
SCHEMA_ID = f"urn:orthoepy:schema:response:{RESPONSE_SCHEMA_VERSION}"


def _score(maximum: float, description: str) -> dict:
    return {"type": "number", "minimum": 0, "maximum": maximum, "description": description}


def _closed_object(properties: dict, description: str) -> dict:
    return {"type": "object", "description": description, "properties": properties,
            "required": list(properties), "additionalProperties": False}


def phone_schema() -> dict:
    return _closed_object({
        "phone": {"type": "string", "description": "canonical ARPAbet phone with stress digit, e.g. AO0"},
        "score": _score(2, "phone accuracy, 0 (wrong or missing) to 2 (correct)"),
        "start": {"type": "number", "minimum": 0, "description": "start time in seconds"},
        "end": {"type": "number", "minimum": 0, "description": "end time in seconds"},
        "heard": {"type": ["string", "null"], "description": "the phone likeliest said at this position (the first of "
                  "heard_nbest); the canonical phone itself when the audio supports it best"},
        "heard_probability": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "mispronounced": {"type": "boolean", "description": "score below the mispronunciation threshold"},
        "heard_nbest": {"type": "array", "maxItems": 3, "description": "the phones likeliest said at this position, "
                        "best first (the first is `heard`): the CTC phone recogniser's likelihood of the text with "
                        "this phone read as each phone, normalised over the phones (segmentation-free, so it does "
                        "not lag the alignment); empty without a phone recogniser",
                        "items": _closed_object({"phone": {"type": "string"},
                                                 "probability": {"type": "number", "minimum": 0, "maximum": 1}},
                                                "a phone and its probability at this position")},
    }, "one canonical phone of a word")


def word_schema() -> dict:
    properties = {"text": {"type": "string"}}
    properties |= {aspect: _score(10, f"word {aspect} score, 0-10") for aspect in WORD_ASPECTS}
    properties["error_type"] = {"enum": list(WORD_ERROR_TYPES),
                                "description": "what the evidence says went wrong with the word, if anything"}
    properties["phones"] = {"type": "array", "items": phone_schema()}
    properties["heard_word"] = {"type": ["string", "null"],
                                "description": "the word heard in this word's place when it was not read as written"}
    return _closed_object(properties, "one word of the text, with its phones")


def insertion_schema() -> dict:
    return _closed_object({
        "text": {"type": "string", "description": "the extra word heard"},
        "start": {"type": "number", "minimum": 0, "description": "start time in seconds"},
        "end": {"type": "number", "minimum": 0, "description": "end time in seconds"},
        "kind": {"enum": list(INSERTION_KINDS)},
        "after_word": {"type": "integer", "minimum": -1, "description": "index of the word it follows, -1 before the first"},
    }, "a word heard that is not in the text")


def verification_schema() -> dict:
    unit = {"type": "number", "minimum": 0, "maximum": 1}
    verification = _closed_object({
        "speech_found": {"type": "boolean"},
        "speech_seconds": {"type": "number", "minimum": 0, "description": "voice activity found, seconds"},
        "language": {"type": "string", "description": "language identified by Whisper (ISO 639-1)"},
        "language_probability": unit,
        "transcript": {"type": "string", "description": "what a free recogniser heard, never told the text"},
        "share_read": {**unit, "description": "share of the text's words that were read"},
        "matches_text": {"type": "boolean", "description": "the recording is a reading of this text"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "insertions": {"type": "array", "items": insertion_schema()},
    }, "the reading verification: speech, language, and which words were read")
    return {**verification, "type": ["object", "null"]}


def rationale_schema() -> dict:
    unit = {"type": "number", "minimum": 0, "maximum": 1}
    checks = _closed_object({"sentence": {**unit, "description": "sentence-aspect judgements consistent with the scores"},
                             "sentence_coverage": {**unit, "description": "sentence aspects judged"},
                             "word_f1": {**unit, "description": "words named as problems vs words scored low"},
                             "phone_f1": {**unit, "description": "phones named as problems vs phones scored low"},
                             "numbers": {**unit, "description": "quoted numbers that agree with the scores"}},
                            "agreement of the returned text with the returned scores")
    rationale = _closed_object({
        "text": {"type": "string", "description": "the explanation of the scores, for the learner"},
        "source": {"enum": list(RATIONALE_SOURCES), "description": "model: generated and faithful; model_constrained: "
                   "regenerated under constraints after a contradiction; rubric: the deterministic rubric text"},
        "faithful": {"type": "boolean", "description": "the faithfulness check passed on the returned text"},
        "checks": checks,
        "note": {"type": "string", "description": "why the first generated text was not returned, if it was not"},
        "seconds": {"type": "number", "minimum": 0, "description": "generation time, all attempts"},
        "attempts": {"type": "array", "items": {"enum": list(RATIONALE_SOURCES)}},
    }, "the rationale, checked against the scores before it is returned")
    return {**rationale, "type": ["object", "null"]}


def response_schema() -> dict:
    """The schema of one assessment response (the /v1/assess body and `orthoepy assess --json`)."""
    sentence = _closed_object({a: _score(10, f"sentence {a} score, 0-10") for a in SENTENCE_ASPECTS},
                              "sentence-level scores")
    properties = {
        "schema_version": {"const": RESPONSE_SCHEMA_VERSION},
        "text": {"type": "string", "description": "the text the speaker read, as given"},
        "sentence": sentence,
        "words": {"type": "array", "items": word_schema()},
        "alignment_fallback": {"type": "boolean",
                               "description": "forced alignment failed; phone times are a uniform estimate"},
        "model": {"type": "string", "description": "name of the scoring model"},
        "timings": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0},
                    "description": "seconds spent per processing stage"},
        "rationale": rationale_schema(),
        "verification": verification_schema(),
        "insertions": {"type": "array", "items": insertion_schema()},
        "audio_warnings": {"type": "array", "items": {"type": "string"},
                           "description": "what about the recording (sample rate, clipping, level) makes the scores "
                                          "less reliable; empty when nothing does"},
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "orthoepy assessment response", **_closed_object(properties, "one assessed recording")}


def schema_json() -> str:
    return json.dumps(response_schema(), indent=2) + "\n"


def write_schema(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_json())
    return path


if __name__ == "__main__":
    print(write_schema(sys.argv[1] if len(sys.argv) > 1 else "docs/response.schema.json"))
