r"""Captions and a CLIP text encoder for the digits, built here: no vocabulary from a hub.

Stable Diffusion reads a prompt with CLIP's text encoder (Radford et al. 2021), pretrained on 400
million image-text pairs and frozen. The digits have no captions, so this module writes them from
what each image shows: its class and two attributes measured on its pixels,

* *ink*: the mean brightness of the strokes, $\frac{1}{HW}\sum_{ij} (x_{ij} + 1)/2$, "thin" in the
  lowest third of the train split, "thick" in the highest;
* *slant*: the shear of the strokes from their second moments, $\operatorname{cov}(u, -v) /
  \operatorname{var}(v)$ over ink-weighted pixel columns $u$ and rows $v$, "upright" in the lowest
  third (leaning least to the right), "slanted" in the highest,

so a caption reads "a thick slanted seven" or, in the middle thirds, just "a seven". The words of
all captions make a 16-word vocabulary. `CLIPTokenizer` needs a byte-pair vocabulary
(`vocab.json`) and its merges (`merges.txt`); `bpe_vocabulary` writes both from the words so that
every word is one token ending in `</w>`, deterministically. `CLIPTextModel` is then built from a
small `CLIPTextConfig` and trained jointly with the denoiser, as Rombach et al. 2022 (Section 4.3.1)
trained their text transformer $\tau_\theta$.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from snippets import check

if TYPE_CHECKING:
    from transformers import CLIPTextConfig, CLIPTokenizer

DIGIT_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)
INK_WORDS = ("thin", "thick")  # lowest and highest third of the ink
SLANT_WORDS = ("upright", "slanted")  # lowest and highest third of the slant
WORDS = ("a", "an", *INK_WORDS, *SLANT_WORDS, *DIGIT_WORDS)
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 8  # <|startoftext|> a thick slanted seven <|endoftext|> + padding
TOKENIZER_FILES = ("vocab.json", "merges.txt")


# --8<-- [start:attributes]
def ink(images: torch.Tensor) -> torch.Tensor:
    r"""The mean brightness of each digit: $\frac{1}{HW}\sum_{ij} (x_{ij} + 1) / 2$.

    Args:
        images: Digits, shape `(N, 1, H, W)`, in `[-1, 1]`.

    Returns:
        Ink per image, shape `(N,)`, in `[0, 1]`.
    """
    check.tensor("images", images, shape=(None, 1, None, None), dtype="float")
    return ((images.clamp(-1, 1) + 1) / 2).mean(dim=(1, 2, 3))


def slant(images: torch.Tensor) -> torch.Tensor:
    r"""How far each digit leans to the right: the shear $\operatorname{cov}(u, -v)/\operatorname{var}(v)$.

    Pixel columns $u$ and rows $v$ are weighted by the ink $(x + 1)/2$; a digit whose top lies to
    the right of its bottom has a positive slant.

    Args:
        images: Digits, shape `(N, 1, H, W)`, in `[-1, 1]`.

    Returns:
        Slant per image, shape `(N,)` (0 for an upright digit).
    """
    check.tensor("images", images, shape=(None, 1, None, None), dtype="float")
    w = ((images.clamp(-1, 1) + 1) / 2)[:, 0]
    h, wd = w.shape[-2:]
    v = torch.arange(h, dtype=w.dtype).view(1, h, 1)  # rows, downwards
    u = torch.arange(wd, dtype=w.dtype).view(1, 1, wd)  # columns, rightwards
    mass = w.sum(dim=(1, 2)).clamp_min(1e-8)
    mu_u = (w * u).sum(dim=(1, 2)) / mass
    mu_v = (w * v).sum(dim=(1, 2)) / mass
    du, dv = u - mu_u.view(-1, 1, 1), v - mu_v.view(-1, 1, 1)
    cov_u_minus_v = -(w * du * dv).sum(dim=(1, 2)) / mass
    var_v = (w * dv**2).sum(dim=(1, 2)) / mass
    return cov_u_minus_v / var_v.clamp_min(1e-8)


# --8<-- [end:attributes]


def attribute_thresholds(images: torch.Tensor) -> dict[str, list[float]]:
    """The tertiles of ink and slant on a set of digits (the train split): the caption's cut points.

    Args:
        images: Digits, shape `(N, 1, H, W)`, in `[-1, 1]`, `N >= 3`.

    Returns:
        `{"ink": [low, high], "slant": [low, high]}`.
    """
    check.tensor("images", images, shape=(None, 1, None, None), dtype="float")
    if len(images) < 3:
        raise ValueError(f"images must hold at least 3 digits, got {len(images)}")
    q = torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)
    return {
        name: torch.quantile(f(images).double(), q).tolist()
        for name, f in (("ink", ink), ("slant", slant))
    }


# --8<-- [start:captions]
def make_captions(
    images: torch.Tensor, labels: torch.Tensor, thresholds: dict[str, list[float]]
) -> list[str]:
    """Describe each digit: "a" or "an", then "thin" or "thick", "upright" or "slanted", the digit.

    Args:
        images: Digits, shape `(N, 1, H, W)`, in `[-1, 1]`.
        labels: Classes, int64 of shape `(N,)`, in `[0, 10)`.
        thresholds: `attribute_thresholds` of the train split.

    Returns:
        `N` captions such as "a thick slanted seven" or "a two".
    """
    check.tensor("images", images, shape=(None, 1, None, None), dtype="float")
    check.tensor("labels", labels, shape=(len(images),), dtype="int", ge=0, lt=10)
    _check_thresholds(thresholds)
    words = []
    for name, (low_word, high_word) in (("ink", INK_WORDS), ("slant", SLANT_WORDS)):
        value = {"ink": ink, "slant": slant}[name](images)
        low, high = thresholds[name]
        words.append(
            [low_word if v < low else high_word if v > high else None for v in value]
        )
    captions = []
    for i, s, c in zip(*words, labels.tolist()):
        rest = [w for w in (i, s, DIGIT_WORDS[c]) if w]
        article = "an" if rest[0][0] in "aeiou" else "a"
        captions.append(" ".join([article, *rest]))
    return captions


# --8<-- [end:captions]


def _check_thresholds(thresholds) -> None:
    check.instance("thresholds", thresholds, dict)
    for name in ("ink", "slant"):
        pair = thresholds.get(name)
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise ValueError(
                f"thresholds[{name!r}] must be a pair [low, high], got {pair!r}"
            )
        check.real(f"thresholds[{name!r}][0]", pair[0])
        check.real(f"thresholds[{name!r}][1]", pair[1], ge=pair[0])


# --8<-- [start:bpe-vocabulary]
def bpe_vocabulary(
    words: tuple[str, ...] = WORDS,
) -> tuple[dict[str, int], list[str]]:
    """A byte-pair vocabulary in which every word is one token: CLIP's `vocab.json` and merges.

    CLIP's BPE splits a word into characters, marks the last one with `</w>`, and applies merges in
    rank order. Here each word gets the merges that grow it from its first character, left to
    right (`t h`, `th i`, `thi n</w>`), so it always ends as the single token `thin</w>`.

    Args:
        words: Lowercase words of letters `a`-`z`.

    Returns:
        `(vocab, merges)`: token -> id (the two special tokens last), and the merge lines.
    """
    check.instance("words", words, (tuple, list))
    for word in words:
        if not (isinstance(word, str) and re.fullmatch(r"[a-z]+", word)):
            raise ValueError(f"words must be lowercase a-z words, got {word!r}")
    letters = sorted({c for word in words for c in word})
    tokens = [*letters, *(c + "</w>" for c in letters)]
    merges = []
    for word in words:
        pieces = [*word[:-1], word[-1] + "</w>"]
        head = pieces[0]
        for piece in pieces[1:]:
            merges.append(f"{head} {piece}")
            head += piece
            tokens.append(head)
    tokens = list(dict.fromkeys(tokens))  # first occurrence wins, order kept
    merges = list(dict.fromkeys(merges))
    vocab = {token: i for i, token in enumerate([*tokens, BOS, EOS])}
    return vocab, merges


# --8<-- [end:bpe-vocabulary]


def write_tokenizer(directory: str | Path, words: tuple[str, ...] = WORDS) -> Path:
    """Write `vocab.json` and `merges.txt` for `CLIPTokenizer` into `directory`.

    Args:
        directory: Folder to write into (created if needed).
        words: The vocabulary's words.

    Returns:
        The folder.
    """
    vocab, merges = bpe_vocabulary(words)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab, indent=1) + "\n")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return directory


# --8<-- [start:tokenizer]
def build_tokenizer(
    words: tuple[str, ...] = WORDS, max_length: int = MAX_LENGTH
) -> CLIPTokenizer:
    """A `transformers.CLIPTokenizer` over `words`, built in memory from `bpe_vocabulary`.

    Args:
        words: The vocabulary's words.
        max_length: Tokens per prompt, with `<|startoftext|>` and `<|endoftext|>` (77 in SD).

    Returns:
        The tokenizer (padding with `<|endoftext|>`, as Stable Diffusion 1.x's).
    """
    from transformers import CLIPTokenizer

    check.integer("max_length", max_length, ge=3)
    vocab, merges = bpe_vocabulary(words)
    tokenizer = CLIPTokenizer(
        vocab=vocab,
        merges=[tuple(m.split(" ")) for m in merges],
        model_max_length=max_length,
    )
    for word in words:  # every word is one token of its own
        ids = tokenizer(word, add_special_tokens=False).input_ids
        if ids != [vocab[word + "</w>"]]:
            raise RuntimeError(f"the word {word!r} tokenizes to {ids}, not one token")
    return tokenizer


# --8<-- [end:tokenizer]


# --8<-- [start:check-prompt]
def check_prompt(prompt: str | list[str], tokenizer: CLIPTokenizer) -> list[str]:
    """Refuse prompts the tokenizer would silently change: unknown words, too many tokens.

    `CLIPTokenizer` maps an unknown word to `<|endoftext|>` and `StableDiffusionPipeline` cuts a
    long prompt with a logged warning; a prompt here is either read whole or refused.

    Args:
        prompt: A prompt or a list of prompts.
        tokenizer: The `CLIPTokenizer` of the text encoder.

    Returns:
        The prompts as a list.

    Raises:
        ValueError: Naming the unknown word, or the prompt and its token count.
    """
    prompts = [prompt] if isinstance(prompt, str) else prompt
    check.instance("prompt", prompts, list)
    known = {t[: -len("</w>")] for t in tokenizer.get_vocab() if t.endswith("</w>")}
    for p in prompts:
        check.instance("prompt", p, str)
        for word in re.findall(r"\S+", p.lower()):
            if word not in known:
                raise ValueError(
                    f"prompt {p!r}: unknown word {word!r}; the vocabulary is "
                    f"{sorted(known & set(WORDS)) or sorted(known)}"
                )
        n = len(tokenizer(p).input_ids)
        if n > tokenizer.model_max_length:
            raise ValueError(
                f"prompt {p!r} is {n} tokens with <|startoftext|> and <|endoftext|>, "
                "more than the tokenizer's "
                f"model_max_length={tokenizer.model_max_length}"
            )
    return prompts


# --8<-- [end:check-prompt]


# --8<-- [start:text-encoder]
def text_encoder_config(
    tokenizer: CLIPTokenizer, hidden_size: int = 32, num_layers: int = 2
) -> CLIPTextConfig:
    """A small `CLIPTextConfig` for `tokenizer` (SD 1.5: 768 wide, 12 layers, 77 tokens).

    Args:
        tokenizer: The `CLIPTokenizer` whose ids the encoder reads.
        hidden_size: Width of the token states (the UNet's `cross_attention_dim`).
        num_layers: Transformer layers.

    Returns:
        A `transformers.CLIPTextConfig`.
    """
    from transformers import CLIPTextConfig

    check.integer("hidden_size", hidden_size, ge=2)
    check.integer("num_layers", num_layers, ge=1)
    return CLIPTextConfig(
        vocab_size=len(tokenizer.get_vocab()),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


# --8<-- [end:text-encoder]
