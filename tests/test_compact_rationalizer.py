"""The compact rationalizer on a tiny random Llama: audio injection, SFT / Bounded DPO / SimPO steps, save/load."""
from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch

from orthoepy.rationalizer.compact import (AUDIO_PLACEHOLDER, CompactBackboneError, load_compact_base,
                                           save_tiny_compact_base)
from orthoepy.rationalizer.data import RationaleExample, pool_words, render_prompt, heard_by_position
from orthoepy.rationalizer.model import Rationalizer, RationalizerDirectoryError, RationalizerSettings
from orthoepy.rationalizer.records import PhoneScore, ScoreSheet, WordScore
from orthoepy.rationalizer.rubric import Rubric, RubricWriter, perturb
from orthoepy.rationalizer.training import RationalizerTrainingPlan, pad_audio, train_preference, train_sft

AUDIO_DIM = 8
PHONE_SET = ("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY",
             "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y",
             "Z", "ZH")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return save_tiny_compact_base(tmp_path_factory.mktemp("tiny-base"))


def _sheet(low_word: int = 1) -> ScoreSheet:
    words = []
    for i, text in enumerate(["we", "call", "it"]):
        accuracy = 3.0 if i == low_word else 9.0
        phone = PhoneScore("K" if i == 1 else "IH1", 0.4 if i == low_word else 1.9, "G" if i == low_word else None)
        words.append(WordScore(text, accuracy, 10.0, accuracy, (phone,), "Mispronunciation" if i == low_word else "None"))
    return ScoreSheet("we call it", dict(accuracy=6.0, completeness=10.0, fluency=7.0, prosodic=7.0, total=6.5),
                      tuple(words))


def _examples(tokenizer, n: int = 4) -> list[RationaleExample]:
    rubric, writer, rng = Rubric(), RubricWriter(seed=0), random.Random(0)
    out = []
    for i in range(n):
        sheet = _sheet(low_word=i % 3)
        chosen = writer.write(sheet, variant=i)
        rejected, kind = perturb(chosen, sheet, rubric, rng)
        states = np.random.default_rng(i).normal(size=(len(sheet.words), AUDIO_DIM)).astype(np.float32)
        out.append(RationaleExample(f"u{i}", sheet, render_prompt(tokenizer, sheet, rubric), states, chosen, rejected, kind))
    return out


def _prompt_inputs(tokenizer, n_words: int):
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Recording: " + AUDIO_PLACEHOLDER * n_words}],
                                         add_generation_prompt=True, tokenize=False)
    return tokenizer(text, return_tensors="pt", add_special_tokens=False)


def test_audio_features_replace_the_placeholder_embeddings(tiny_base):
    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    inputs = _prompt_inputs(tokenizer, 3)
    a, b = torch.randn(1, 3, AUDIO_DIM, generator=torch.Generator().manual_seed(0)), torch.randn(1, 3, AUDIO_DIM)
    with torch.no_grad():
        logits_a = model(**inputs, audio_features=a).logits
        logits_b = model(**inputs, audio_features=b).logits
        logits_a2 = model(**inputs, audio_features=a.clone()).logits
    assert not torch.allclose(logits_a[0, -1], logits_b[0, -1])  # the model hears the audio
    assert torch.equal(logits_a, logits_a2)
    first_placeholder = int((inputs["input_ids"][0] == model.config.audio_token_id).nonzero()[0])
    assert torch.equal(logits_a[0, :first_placeholder], logits_b[0, :first_placeholder])  # causal: nothing before it


def test_placeholder_count_must_match_the_audio(tiny_base):
    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    with pytest.raises(ValueError, match="3 audio placeholders .* 2 audio feature vectors"):
        model(**_prompt_inputs(tokenizer, 3), audio_features=torch.zeros(1, 2, AUDIO_DIM))


def test_a_placeholder_after_the_prompt_pass_is_a_plain_token(tiny_base):
    # prompt-lookup decoding copies prompt tokens, placeholders included, into later steps as candidates
    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    inputs = _prompt_inputs(tokenizer, 3)
    audio = torch.randn(1, 3, AUDIO_DIM)
    copied = torch.tensor([[model.config.audio_token_id] * 2])
    with torch.no_grad():
        past = model(**inputs, audio_features=audio, use_cache=True).past_key_values
        with_audio = model(input_ids=copied, audio_features=audio, past_key_values=copy.deepcopy(past)).logits
        plain = model(input_ids=copied, past_key_values=copy.deepcopy(past)).logits
    assert torch.equal(with_audio, plain)


def test_prompt_lookup_decoding_gives_the_greedy_text(tiny_base):
    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    sheet, states = _sheet(), np.random.default_rng(0).normal(size=(3, AUDIO_DIM)).astype(np.float32)
    greedy = Rationalizer(model, tokenizer, RationalizerSettings(audio_dim=AUDIO_DIM, max_new_tokens=12,
                                                                 quoted_words=False))
    lookup = Rationalizer(model, tokenizer, RationalizerSettings(audio_dim=AUDIO_DIM, max_new_tokens=12,
                                                                 quoted_words=False, prompt_lookup_tokens=4))
    assert lookup.explain(sheet, states).text == greedy.explain(sheet, states).text


def test_generate_passes_the_audio_on(tiny_base):
    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    inputs = _prompt_inputs(tokenizer, 2)
    out = model.generate(**inputs, audio_features=torch.randn(1, 2, AUDIO_DIM), max_new_tokens=5, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_missing_base_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CompactBackboneError, match="no config.json"):
        load_compact_base(AUDIO_DIM, tmp_path)


def test_pool_words_and_heard_positions():
    states = np.arange(10, dtype=np.float32).reshape(5, 2)
    pooled = pool_words(states, [0, 0, 1, 2, 2], 3)
    assert np.allclose(pooled, [[1, 2], [4, 5], [7, 8]])
    assert heard_by_position([0, 0, 1], ["P", "B", "T"]) == {(0, 0): "P", (0, 1): "B", (1, 0): "T"}
    with pytest.raises(ValueError):
        pool_words(states, [0, 1], 2)


def test_pad_audio_masks_the_padding():
    features, mask = pad_audio([np.ones((2, 3)), np.ones((1, 3))])
    assert features.shape == (2, 2, 3) and mask.tolist() == [[True, True], [True, False]]
    assert float(features[1, 1].abs().sum()) == 0.0


def _lora_and_projector(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_sft_then_bounded_dpo_then_save_and_reload(tiny_base, tmp_path):
    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    examples = _examples(tokenizer)
    plan = RationalizerTrainingPlan(batch_size=2, sft_lr=1e-2, preference_lr=1e-2, progress=False, logging_steps=1,
                                    max_length=4096)  # byte-level tokens: long prompts
    tuned = train_sft(model, tokenizer, examples, plan, max_steps=1)
    trainable = _lora_and_projector(tuned)
    assert any("audio_projector" in n for n in trainable) and any("lora_" in n for n in trainable)
    tuned = train_preference(tuned, tokenizer, examples, plan, "bounded_dpo", max_steps=1)
    after = _lora_and_projector(tuned)
    assert any(not torch.equal(trainable[n], after[n]) for n in trainable if n in after)
    assert list(tuned.peft_config) == ["default"]  # the frozen reference copy is gone again

    settings = RationalizerSettings(audio_dim=AUDIO_DIM, base_model=str(tiny_base), max_new_tokens=8)
    rationalizer = Rationalizer(tuned, tokenizer, settings)
    first = rationalizer.explain(examples[0].sheet, examples[0].word_states)
    rationalizer.save_pretrained(tmp_path / "rat")
    loaded = Rationalizer.from_pretrained(tmp_path / "rat")  # LoRA merged into the base weights for serving
    again = loaded.explain(examples[0].sheet, examples[0].word_states)
    assert first.text == again.text and first.new_tokens > 0
    unmerged = Rationalizer.from_pretrained(tmp_path / "rat", merge=False)
    assert unmerged.explain(examples[0].sheet, examples[0].word_states).text == again.text
    assert any(getattr(m, "merged", False) for m in loaded.model.modules())
    assert not any(getattr(m, "merged", False) for m in unmerged.model.modules())


def test_simpo_step_runs_and_moves_the_adapter(tiny_base):
    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    examples = _examples(tokenizer)
    plan = RationalizerTrainingPlan(batch_size=2, sft_lr=1e-2, preference_lr=1e-2, progress=False, max_length=4096)
    tuned = train_sft(model, tokenizer, examples, plan, max_steps=1)
    before = _lora_and_projector(tuned)
    tuned = train_preference(tuned, tokenizer, examples, plan, "simpo", max_steps=1)
    after = _lora_and_projector(tuned)
    assert any(not torch.equal(before[n], after[n]) for n in before if n in after)


def test_unknown_preference_method_and_bad_directory(tiny_base, tmp_path):
    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    with pytest.raises(ValueError, match="preference method"):
        train_preference(model, tokenizer, _examples(tokenizer), RationalizerTrainingPlan(), "ppo")
    with pytest.raises(RationalizerDirectoryError):
        Rationalizer.from_pretrained(tmp_path)


def test_a_rationalizer_refuses_another_scorers_phone_states(tiny_base, tmp_path):
    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    from peft import get_peft_model
    from orthoepy.rationalizer.training import lora_config
    settings = RationalizerSettings(audio_dim=AUDIO_DIM, base_model=str(tiny_base), scorer_fingerprint="aaaa")
    Rationalizer(get_peft_model(model, lora_config(RationalizerTrainingPlan())), tokenizer, settings
                 ).save_pretrained(tmp_path / "rat")
    assert Rationalizer.from_pretrained(tmp_path / "rat", scorer_fingerprint="aaaa").settings.scorer_fingerprint == "aaaa"
    with pytest.raises(RationalizerDirectoryError, match="another scorer"):
        Rationalizer.from_pretrained(tmp_path / "rat", scorer_fingerprint="bbbb")


def test_explain_checks_the_word_states(tiny_base):
    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    from peft import get_peft_model
    from orthoepy.rationalizer.training import lora_config
    rationalizer = Rationalizer(get_peft_model(model, lora_config(RationalizerTrainingPlan())), tokenizer,
                                RationalizerSettings(audio_dim=AUDIO_DIM, max_new_tokens=4))
    with pytest.raises(ValueError, match="2 word states for 3 words"):
        rationalizer.explain(_sheet(), np.zeros((2, AUDIO_DIM)))


def test_examples_take_the_scorer_sheet_or_noised_labels(tiny_base):
    from pathlib import Path

    from orthoepy.encoder.corpus import SentenceLabels, Utterance, WordLabel
    from orthoepy.rationalizer.data import ExampleSource, corpus_examples

    _, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    words = (WordLabel("we", ("W", "IY1"), (2.0, 2.0), 10.0, 10.0, 10.0),
             WordLabel("call", ("K", "AO1", "L"), (0.0, 2.0, 2.0), 4.0, 10.0, 4.0),
             WordLabel("it", ("IH1", "T"), (2.0, 2.0), 10.0, 10.0, 10.0))
    utterance = Utterance("u1", "s1", "train", Path("u1.wav"), "we call it", words, SentenceLabels(7, 10, 8, 8, 7))
    source = ExampleSource(utterance, np.zeros((7, AUDIO_DIM), np.float32), (0, 0, 1, 1, 1, 2, 2),
                           ("W", "IY", "G", "AO", "L", "IH", "T"), predicted=_sheet(low_word=2))
    from_scorer = corpus_examples([source], tokenizer, predicted_rate=1.0)[0]
    from_labels = corpus_examples([source], tokenizer, predicted_rate=0.0)[0]
    assert from_scorer.sheet == _sheet(low_word=2) and '"it"' in from_scorer.chosen
    assert from_labels.sheet.words[1].phones[0].heard == "G" and '"call"' in from_labels.chosen
    assert from_labels.word_states.shape == (3, AUDIO_DIM)


def test_repeated_sentences_are_dropped():
    from orthoepy.rationalizer.model import without_repeated_sentences

    looped = 'Fluency is fair. "will" needs work. "not" needs work. "will" needs work. "will" needs work. "'
    assert without_repeated_sentences(looped) == 'Fluency is fair. "will" needs work. "not" needs work.'


def test_open_quotes_are_found_as_the_rationale_parser_reads_them():
    from orthoepy.rationalizer.constraints import open_quote

    assert open_quote('Work on "ca') == ("ca", '"')
    assert open_quote('Work on "call" and') is None
    assert open_quote("You said 'we") == ("we", "'") and open_quote("You didn't say") is None
    assert open_quote("Then “it") == ("it", "”") and open_quote("Then “it” was") is None
    assert open_quote('Say "it\nnow') is None  # a quote does not run over a line


def test_a_quoted_word_can_only_be_a_word_of_the_text(tiny_base):
    from peft import get_peft_model

    from orthoepy.rationalizer.training import lora_config

    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    rationalizer = Rationalizer(get_peft_model(model, lora_config(RationalizerTrainingPlan())), tokenizer,
                                RationalizerSettings(audio_dim=AUDIO_DIM, max_new_tokens=12))
    states = np.random.default_rng(0).normal(size=(3, AUDIO_DIM)).astype(np.float32)
    free = rationalizer.explain(_sheet(), states, prefix='Work on "', quoted_words=False).text
    constrained = rationalizer.explain(_sheet(), states, prefix='Work on "', quoted_words=True).text
    quoted = constrained[len('Work on "'):].split('"')
    assert len(quoted) > 1 and quoted[0].lower() in {"we", "call", "it"}, constrained  # the quote closed on a word
    assert free != constrained  # the random model alone writes bytes, not a word of the text


def test_open_phone_mentions_are_found_and_numbers_are_not_phones():
    from orthoepy.rationalizer.constraints import PhoneSymbols, open_phone

    assert open_phone('In "call", /K') == ("K", 11)
    assert open_phone('In "call", /K/ sounded like /') == ("", 28)
    assert open_phone("Accuracy (3/") is None and open_phone("/K/") is None and open_phone("a/b") is None
    symbols = PhoneSymbols.symbols
    processor = PhoneSymbols.__new__(PhoneSymbols)
    processor.word_phones, processor.any_word = {"call": {"K", "AO", "L"}, "it": {"IH", "T"}}, {"K", "AO", "L", "IH", "T"}
    processor.heard = {("call", "K"): "G"}
    assert symbols(processor, 'In "call", ') == {"K", "AO", "L"}
    assert symbols(processor, 'In "call", /K/ sounded like ') == {"G"}  # what the sheet says was heard
    # the sheet has nothing: any phone but the one mentioned ("/L/ came out as /L/" says nothing)
    assert symbols(processor, 'In "call", /L/ came out as ') == set(PHONE_SET) - {"L"}
    assert symbols(processor, "Accuracy is fair. ") == {"K", "AO", "L", "IH", "T"}


def test_a_phone_mention_can_only_be_a_phone_of_the_quoted_word(tiny_base):
    from peft import get_peft_model

    from orthoepy.rationalizer.training import lora_config

    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    rationalizer = Rationalizer(get_peft_model(model, lora_config(RationalizerTrainingPlan())), tokenizer,
                                RationalizerSettings(audio_dim=AUDIO_DIM, max_new_tokens=6, quoted_words=False))
    states = np.random.default_rng(0).normal(size=(3, AUDIO_DIM)).astype(np.float32)
    prefix = 'In "call", /'
    free = rationalizer.explain(_sheet(), states, prefix=prefix, phone_symbols=False).text
    constrained = rationalizer.explain(_sheet(), states, prefix=prefix, phone_symbols=True).text
    symbol = constrained[len(prefix):].split("/")[0]
    assert symbol == "K" and constrained[len(prefix) + 1] == "/", constrained  # call's only phone in the sheet
    assert free != constrained
    heard_prefix = 'In "call", /K/ sounded like /'
    heard = rationalizer.explain(_sheet(), states, prefix=heard_prefix, phone_symbols=True).text
    assert heard[len(heard_prefix):].startswith("G/"), heard  # what the sheet says was heard for call's /K/


def test_with_problem_phones_only_a_mention_names_a_phone_the_sheet_marks_low(tiny_base):
    from dataclasses import replace

    from peft import get_peft_model

    from orthoepy.rationalizer.training import lora_config

    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    lora = get_peft_model(model, lora_config(RationalizerTrainingPlan()))
    settings = RationalizerSettings(audio_dim=AUDIO_DIM, max_new_tokens=4, quoted_words=False)
    sheet = _sheet()
    phones = (PhoneScore("K", 1.9), PhoneScore("AO1", 1.8), PhoneScore("L", 0.3))  # only /L/ below the threshold
    sheet = replace(sheet, words=(sheet.words[0], replace(sheet.words[1], phones=phones), sheet.words[2]))
    before = 'In "call", '
    allowed = {only: Rationalizer(lora, tokenizer, replace(settings, problem_phones_only=only))
               ._phone_symbols(0, sheet, "").symbols(before) for only in (False, True)}
    assert allowed == {False: {"K", "AO", "L"}, True: {"L"}}
    # two low phones, but the rubric names only the worst max_phones_per_word of a word: those
    capped = (PhoneScore("K", 0.9), PhoneScore("AO1", 0.2), PhoneScore("L", 0.3))
    sheet3 = replace(sheet, words=(sheet.words[0], replace(sheet.words[1], phones=capped), sheet.words[2]))
    rubric_names = Rationalizer(lora, tokenizer, replace(settings, problem_phones_only=True))
    assert rubric_names._phone_symbols(0, sheet3, "").symbols(before) == {"AO", "L"}  # max_phones_per_word = 2
    # an omitted word, or one read as another word, is not named sound by sound: its zeroed phones are no hint
    omitted = replace(sheet, words=(sheet.words[0], replace(sheet.words[1], error_type="Omission"), sheet.words[2]))
    with_heard = replace(sheet, words=(sheet.words[0], replace(sheet.words[1], heard_word="CUT"), sheet.words[2]))
    only = Rationalizer(lora, tokenizer, replace(settings, problem_phones_only=True))
    assert only._phone_symbols(0, omitted, "").symbols(before) == {"K", "AO", "L"}
    assert only._phone_symbols(0, with_heard, "").symbols(before) == {"K", "AO", "L"}
    # a word with no phone below the threshold keeps all of its phones
    assert only._phone_symbols(0, sheet, "").symbols('In "we", ') == {"IH"}
    states = np.random.default_rng(0).normal(size=(3, AUDIO_DIM)).astype(np.float32)
    text = only.explain(sheet, states, prefix=before + "/", phone_symbols=True).text
    assert text[len(before) + 1:].startswith("L/"), text


def test_with_problem_words_only_a_quote_names_a_word_the_sheet_marks_low(tiny_base):
    from dataclasses import replace

    from peft import get_peft_model

    from orthoepy.rationalizer.training import lora_config

    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    lora = get_peft_model(model, lora_config(RationalizerTrainingPlan()))
    settings = RationalizerSettings(audio_dim=AUDIO_DIM, max_new_tokens=4, phone_symbols=False)

    def quotable(sheet, only):
        return Rationalizer(lora, tokenizer, replace(settings, problem_words_only=only))._quoted_words(0, sheet, "").words

    assert quotable(_sheet(), False) == ["call", "it", "we"]
    assert quotable(_sheet(), True) == ["call"]  # the only word below the thresholds
    assert quotable(_sheet(low_word=-1), True) == ["call", "it", "we"]  # no problem word: any word of the text
    quotes = Rationalizer(lora, tokenizer, replace(settings, problem_words_only=True))._quoted_words(0, _sheet(), "")
    assert quotes.allowed_for('Work on "') and quotes.allowed_for('In "call", /K/ sounded like /G/ (as in "') is None
    states = np.random.default_rng(0).normal(size=(3, AUDIO_DIM)).astype(np.float32)
    only = Rationalizer(lora, tokenizer, replace(settings, problem_words_only=True))
    text = only.explain(_sheet(), states, prefix='Work on "', max_new_tokens=8).text
    assert text.startswith('Work on "call"'), text


def test_a_tip_after_a_phone_clause_is_that_sounds_tip(tiny_base):
    from dataclasses import replace

    from peft import get_peft_model

    from orthoepy.rationalizer.tips import tip
    from orthoepy.rationalizer.training import lora_config

    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    lora = get_peft_model(model, lora_config(RationalizerTrainingPlan()))
    settings = RationalizerSettings(audio_dim=AUDIO_DIM, max_new_tokens=60, quoted_words=False, phone_symbols=False)
    states = np.random.default_rng(0).normal(size=(3, AUDIO_DIM)).astype(np.float32)
    prefix = 'In "call", /K/ sounded like /G/ ('
    texts = {on: Rationalizer(lora, tokenizer, replace(settings, tip_text=on)).explain(_sheet(), states, prefix=prefix).text
             for on in (False, True)}
    assert texts[True].startswith(prefix + tip("K", "G").text + ")"), texts[True]
    assert not texts[False].startswith(prefix + tip("K", "G").text), texts[False]  # the random model alone does not


def test_a_words_lead_is_followed_by_a_sound(tiny_base):
    from dataclasses import replace

    from peft import get_peft_model

    from orthoepy.rationalizer.constraints import SoundClause, TokenPieces
    from orthoepy.rationalizer.training import lora_config

    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    clause = SoundClause(tokenizer, TokenPieces(tokenizer), 0)
    assert clause.allowed_for('In "call",') and clause.allowed_for('Fair. In "call" (4.2/10), ')
    assert clause.allowed_for('In "call", /K/ was unclear') is None and clause.allowed_for('Accuracy is fair,') is None
    lora = get_peft_model(model, lora_config(RationalizerTrainingPlan()))
    settings = RationalizerSettings(audio_dim=AUDIO_DIM, max_new_tokens=3, quoted_words=False, phone_symbols=False,
                                    tip_text=False)
    states = np.random.default_rng(0).normal(size=(3, AUDIO_DIM)).astype(np.float32)
    texts = {on: Rationalizer(lora, tokenizer, replace(settings, sound_clause=on)).explain(
        _sheet(), states, prefix='In "call",').text for on in (False, True)}
    assert texts[True].startswith('In "call", /'), texts[True]
    assert not texts[False].startswith('In "call", /'), texts[False]  # the random model alone does not


def test_coverage_lists_what_the_answer_has_not_named_yet():
    from orthoepy.rationalizer.constraints import Coverage

    cover = Coverage(None, 0, ["eyes", "gentle"], [("eyes", "Z")], ["her", "eyes", "gentle"], [2])
    assert cover.missing('Accuracy is poor. "gentle" was unclear.') == ['"eyes"', '/Z/ in "eyes"']
    assert cover.missing('Accuracy is poor. In "eyes", /Z/ sounded like /R/. "gentle" was unclear.') == []
    assert '"gentle"' in cover.missing('Accuracy is poor. In "eyes", /Z/ was unclear.')


def test_coverage_masks_the_end_until_the_problems_are_named(tiny_base):
    import torch

    from orthoepy.rationalizer.constraints import Coverage

    _, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    eos = tokenizer.eos_token_id
    cover = Coverage(tokenizer, 0, ["call"], [("call", "K")], ["we", "call", "it"], [eos])
    ids = lambda text: torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    scores = cover(ids('Accuracy is fair.'), torch.zeros(1, len(tokenizer)))
    assert scores[0, eos] == float("-inf") and scores[0, eos - 1] == 0
    done = cover(ids('Accuracy is fair. In "call", /K/ was unclear.'), torch.zeros(1, len(tokenizer)))
    assert done[0, eos] == 0


def test_missing_first_opens_the_next_sentence_on_what_is_still_missing(tiny_base):
    from orthoepy.rationalizer.constraints import Coverage, MissingFirst, TokenPieces

    _, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    cover = Coverage(tokenizer, 0, ["face", "she's"], [("she's", "Z")], ["face", "she's", "own"], [2])
    assert cover.next_opening('Overall, the score is fair.') == ' "face"'
    assert cover.next_opening('Overall, the score is fair. "face" was unclear.') == ' In "she\'s", /Z/'
    assert cover.next_opening('Overall, fair. "face" was unclear. In "she\'s", /Z/ was unclear.') is None
    breaks = Coverage(tokenizer, 0, ["home"], [], ["go", "home"], [2], openings={"home": ' There was a pause before "home"'})
    assert breaks.next_opening("Overall, the score is good.") == ' There was a pause before "home"'
    assert breaks.next_opening('Overall, good. There was a pause before "home"; keep going.') is None
    first = MissingFirst(tokenizer, TokenPieces(tokenizer), 0, cover)
    pieces = lambda ids: {tokenizer.decode([i]) for i in ids}
    assert first.allowed_for("Accuracy is fair.") is None  # the judgements come first
    opening = pieces(first.allowed_for("Accuracy is fair. Overall, the score is fair."))
    assert opening and all(' "face"'.startswith(p) for p in opening)
    assert first.allowed_for('Overall, the score is fair. "face" was') is None  # the sentence is the model's


def test_sound_clause_quotes_only_words_with_sounds_to_name(tiny_base):
    from orthoepy.rationalizer.constraints import QuotedWords, TokenPieces

    _, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    quoted = QuotedWords(tokenizer, TokenPieces(tokenizer), 0, ["can", "with"], clause_words=["with"])
    pieces = lambda ids: {tokenizer.decode([i]) for i in ids}
    in_clause, whole_word = pieces(quoted.allowed_for('Fair. In "')), pieces(quoted.allowed_for('Fair. "'))
    assert any("w" in p for p in in_clause) and not any(p.startswith("c") for p in in_clause)
    assert any(p.startswith("c") for p in whole_word)
    assert any(p != p.lower() for p in whole_word)  # mixed-case pieces ("Can") as well, unless lower_case
    sentences = QuotedWords(tokenizer, TokenPieces(tokenizer), 0, ["can", "with"], clause_words=["with"],
                            whole_word_sentences=True)
    opening, after_before = pieces(sentences.allowed_for('Fair. "')), pieces(sentences.allowed_for('A pause before "'))
    assert any(p.startswith("c") for p in opening) and not any(p.startswith("w") for p in opening)
    assert any(p.startswith("w") for p in after_before)  # not a sentence's start: any word
    lower = QuotedWords(tokenizer, TokenPieces(tokenizer), 0, ["can", "with"], lower_case=True)
    allowed = pieces(lower.allowed_for('Fair. "'))
    assert allowed and all(p == p.lower() for p in allowed) and any(p.startswith("c") for p in allowed)


def test_tips_after_the_wrong_sound_are_found():
    from orthoepy.rationalizer.rubric import misplaced_tips, tip_after
    from orthoepy.rationalizer.tips import tip

    right = f'In "car", /AA/ sounded like /AH/ ({tip("AA", "AH").text}).'
    wrong = f'In "car", /AA/ sounded like /AH/ ({tip("AY").text}).'
    assert misplaced_tips(right) == [] and len(misplaced_tips(wrong)) == 1
    assert tip_after('In "car", /AA/ was unclear (') == tip("AA") and tip_after('Accuracy (') is None


def test_whole_word_openings_are_the_rubrics_sentences():
    from orthoepy.rationalizer.model import _opening

    word = lambda error, heard=None: WordScore("Tea,", 3.0, 10.0, 3.0, (), error, heard)
    assert _opening(word("Mispronunciation", "COFFEE")) == ' "tea" was heard as another word, coffee; say it as written.'
    assert _opening(word("UnexpectedBreak")) == ' There was a pause before "tea"; keep going without stopping.'
    assert _opening(word("Omission", "COFFEE")) == ' "tea" was left out; read every word.'
    assert _opening(word("Mispronunciation")) == ' "tea"'


def test_evaluator_rejects_a_word_described_as_something_else_than_what_happened_to_it():
    from orthoepy.rationalizer.faithfulness import FaithfulnessEvaluator
    from orthoepy.rationalizer.rubric import RubricWriter

    words = (WordScore("six", 9.0, 10.0, 9.0, (PhoneScore("S", 1.9, None),), "UnexpectedBreak"),
             WordScore("and", 0.0, 10.0, 0.0, (PhoneScore("AH0", 0.0, None),), "Omission"),
             WordScore("tea", 3.0, 10.0, 3.0, (PhoneScore("T", 1.9, None),), "Mispronunciation", "COFFEE"))
    sheet = ScoreSheet("six and tea", dict(accuracy=6.0, completeness=6.7, fluency=7.0, prosodic=7.0, total=6.5), words)
    evaluator = FaithfulnessEvaluator()
    garbled = evaluator.evaluate('Accuracy is fair. "six" was unclear. "and" was unclear. "tea" was unclear.', sheet)
    assert len(garbled.false_claims) == 3 and not garbled.is_faithful()
    for variant in range(12):  # the rubric's own texts, either phrasing, say what happened
        text = RubricWriter(seed=variant, phrasing=("plain", "varied")[variant % 2]).write(sheet, variant=variant)
        assert evaluator.evaluate(text, sheet).false_claims == (), text


def test_a_number_is_one_of_the_sheets_and_a_count_gives_the_words_read(tiny_base):
    import torch

    from orthoepy.rationalizer.constraints import SheetNumbers, TokenPieces, sheet_numbers

    _, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    assert sheet_numbers("accuracy 8.8 (excellent), fluency 9, poor <4, words 0-10") == ["8.8", "9", "4", "0", "10"]
    numbers = SheetNumbers(tokenizer, TokenPieces(tokenizer), 0, ["8.8", "9", "10"], read=9, total=10)
    digit = lambda d: tokenizer(d, add_special_tokens=False)["input_ids"][0]

    def allowed(answer: str) -> set[str]:
        scores = numbers(torch.tensor([tokenizer(answer, add_special_tokens=False)["input_ids"]]),
                         torch.zeros(1, len(tokenizer)))
        return {d for d in "0123456789." if scores[0, digit(d)] == 0}

    assert allowed("Accuracy is ") == {"1", "8", "9", "."}  # a number starts as one of the sheet's does
    assert allowed("Accuracy is 8") == {"."} and allowed("Accuracy is 8.") == {"8"}  # "8" alone is not on it
    assert "0" in allowed("Overall 1") and allowed("Overall 10") == {"."}  # "10" is complete: a full stop may follow
    assert allowed("In AH") == set("0123456789.")  # a phone's stress digit is no number
    assert allowed("9 of ") - {"."} == {"1"} and allowed("9 of 1") == {"0"}  # the count: read of total
    numbers.of = [digit("x")]  # the tiny tokenizer spells " of" byte by byte: a stand-in token for it
    assert numbers.rule("Fluency 8.8")[1][-1:] == numbers.of  # " of" follows no number but the words read
    assert numbers.of[0] not in numbers.rule("Then 9")[1]
    ids = torch.tensor([tokenizer("Only 8", add_special_tokens=False)["input_ids"]])
    must_go_on = numbers(ids, torch.zeros(1, len(tokenizer)))
    assert (must_go_on[0] == 0).sum() == 1  # "8" must become "8.8": only the point is left
