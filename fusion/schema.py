"""JSON Schema (draft 2020-12) of an assessment response: `Assessment.to_dict()` plus its `schema_version`.

Write the published copy with `python -m orthoepy.fusion.schema docs/response.schema.json`.
The schema is inlined (no $defs/$ref) so that it can be embedded as-is in the service's OpenAPI document.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..encoder.corpus import SENTENCE_ASPECTS, WORD_ASPECTS
from .diagnosis import WORD_ERROR_TYPES

RESPONSE_SCHEMA_VERSION = "1.1"  # 1.1: words[].error_type
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
        "heard": {"type": ["string", "null"], "description": "the phone the recogniser heard most in this segment"},
        "heard_probability": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "mispronounced": {"type": "boolean", "description": "score below the mispronunciation threshold"},
    }, "one canonical phone of a word")


def word_schema() -> dict:
    properties = {"text": {"type": "string"}}
    properties |= {aspect: _score(10, f"word {aspect} score, 0-10") for aspect in WORD_ASPECTS}
    properties["error_type"] = {"enum": list(WORD_ERROR_TYPES),
                                "description": "what the evidence says went wrong with the word, if anything"}
    properties["phones"] = {"type": "array", "items": phone_schema()}
    return _closed_object(properties, "one word of the text, with its phones")


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
