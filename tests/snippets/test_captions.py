"""Tests for snippets/captions.py: measured attributes, captions, the local BPE vocabulary."""

from __future__ import annotations

import json

import pytest
import torch

from snippets.captions import (
    BOS,
    EOS,
    WORDS,
    attribute_thresholds,
    bpe_vocabulary,
    build_tokenizer,
    check_prompt,
    ink,
    make_captions,
    slant,
    write_tokenizer,
)
from snippets.data import load_digits


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_ink_is_zero_for_black_and_one_for_white():
    images = torch.stack([torch.full((1, 16, 16), -1.0), torch.full((1, 16, 16), 1.0)])
    torch.testing.assert_close(ink(images), torch.tensor([0.0, 1.0]))


def test_slant_sign_follows_the_lean_of_a_line():
    rows = torch.arange(16)
    right = torch.full((1, 1, 16, 16), -1.0)
    right[0, 0, rows, (15 - rows) // 2 + 4] = 1.0  # "/": top to the right
    upright = torch.full((1, 1, 16, 16), -1.0)
    upright[0, 0, :, 8] = 1.0  # "|"
    assert slant(right).item() == pytest.approx(0.5, abs=0.05)
    assert slant(upright).item() == pytest.approx(0.0, abs=1e-6)
    assert slant(right.flip(-1)).item() < 0  # "\\"


def test_captions_name_the_class_and_split_attributes_in_thirds():
    x, y = load_digits("train")
    thresholds = attribute_thresholds(x)
    captions = make_captions(x, y, thresholds)
    thick = torch.tensor([" thick " in c for c in captions])
    thin = torch.tensor([" thin " in c for c in captions])
    assert abs(thick.float().mean().item() - 1 / 3) < 0.02
    assert abs(thin.float().mean().item() - 1 / 3) < 0.02
    assert ink(x[thick]).min() > ink(x[thin]).max()
    for caption, label in zip(captions[:50], y[:50].tolist()):
        words = caption.split()
        assert words[0] in ("a", "an") and words[-1] == WORDS[-10 + label]
        assert (words[0] == "an") == (words[1][0] in "aeiou")


def test_bpe_vocabulary_makes_every_word_one_token_deterministically(tokenizer):
    vocab, merges = bpe_vocabulary()
    assert (vocab, merges) == bpe_vocabulary()
    assert list(vocab)[-2:] == [BOS, EOS]
    ids = tokenizer("a thick slanted seven").input_ids
    assert tokenizer.convert_ids_to_tokens(ids) == [
        BOS,
        "a</w>",
        "thick</w>",
        "slanted</w>",
        "seven</w>",
        EOS,
    ]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "a thick slanted seven"


def test_written_vocab_and_merges_load_into_clip_tokenizer(tmp_path, tokenizer):
    from transformers import CLIPTokenizer

    write_tokenizer(tmp_path)
    assert json.loads((tmp_path / "vocab.json").read_text()) == bpe_vocabulary()[0]
    loaded = CLIPTokenizer.from_pretrained(tmp_path, model_max_length=8)
    for prompt in ("an eight", "a thin upright zero", ""):
        assert loaded(prompt).input_ids == tokenizer(prompt).input_ids


def test_check_prompt_refuses_unknown_words_and_too_long_prompts(tokenizer):
    assert check_prompt("a thick seven", tokenizer) == ["a thick seven"]
    with pytest.raises(ValueError, match="unknown word 'purple'"):
        check_prompt("a purple seven", tokenizer)
    with pytest.raises(ValueError, match="model_max_length=8"):
        check_prompt("a thin thick upright slanted seven two", tokenizer)
