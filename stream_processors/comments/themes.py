"""Recurring themes of internal customers' comments, ranked by how much more often low scores mention them.

Terms: Chinese words of 2+ characters (jieba), English words of 2+ letters and bigrams of adjacent
such words within a clause (scikit-learn's tokenizer, lower-cased), without stop words
(scikit-learn's ``ENGLISH_STOP_WORDS``, :data:`EXTRA_ENGLISH_STOP_WORDS`, :data:`CHINESE_STOP_WORDS`),
digits-only tokens, single letters, punctuation or emoji; a stop word, digit or punctuation mark
breaks a bigram. Only the first :data:`MAX_TOKENISED_CHARS` characters of a comment are read. A term
counts once per comment, and a comment once per ``comment_id`` (its first non-blank occurrence);
blank comments count nowhere, not even in ``low_share``'s denominator.

Ranking: the log-odds ratio with an informative Dirichlet prior of Monroe, Colaresi & Quinn (2008),
"Fightin' Words: Lexical Feature Selection and Evaluation for Identifying the Content of Political
Conflict", Political Analysis 16(4), 372-403, with presence counts in place of word counts::

    y_w^L, y_w^H   comments of the low / high group that mention term w
    n^L, n^H       sum over all terms of y_w^L / y_w^H
    alpha_w        = PRIOR_SCALE * (y_w^L + y_w^H)        the prior: the whole corpus, scaled
    alpha_0        = sum of alpha_w = PRIOR_SCALE * (n^L + n^H)
    delta_w        = log((y_w^L + alpha_w) / (n^L + alpha_0 - y_w^L - alpha_w))
                   - log((y_w^H + alpha_w) / (n^H + alpha_0 - y_w^H - alpha_w))
    var(delta_w)  ~= 1 / (y_w^L + alpha_w) + 1 / (y_w^H + alpha_w)
    z_w            = delta_w / sqrt(var(delta_w))

A theme is a term with z > 0 in at least ``min_comments`` distinct comments, ranked by z (then by
comments, bigrams before words, then alphabetically). With no high-score comment there is nothing
to contrast: themes are then the terms most low-score comments mention, with z = 0. With no
low-score comment there are none.
A term is left out when a higher-ranked term shares a word with it ("hiring", "hiring process",
"process takes") or, in Chinese, holds it or is held by it, and covers all its low-score comments:
they are one theme.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jieba
import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

MAX_TOKENISED_CHARS: Final = 5_000  # a 100 kB paste costs what a long comment does
QUOTE_CHARS: Final = 160
EXAMPLES: Final = 2
# alpha_0 as a share of all term mentions: the prior weighs a tenth of the data, enough to calm terms
# seen a handful of times, too little to hide a theme (the tests' planted themes rank first for 0.01..1).
PRIOR_SCALE: Final = 0.1
# Fragments scikit-learn's tokenizer leaves of English contractions ("don't" -> "don").
EXTRA_ENGLISH_STOP_WORDS: Final = frozenset(
    {"don", "doesn", "didn", "isn", "wasn", "aren", "weren", "wouldn", "couldn", "shouldn", "hasn", "haven"}
    | {"hadn", "ll", "ve", "im", "ive"}
)
# Function words, pronouns and fillers of feedback ("觉得", "希望"). Single characters are listed for
# the reader; every 1-character Chinese word is dropped anyway (mostly particles and noise).
CHINESE_STOP_WORDS: Final = frozenset(
    {"的", "了", "是", "太", "很", "都", "也", "就", "在"}
    | {"和", "有", "还", "被", "把", "吗", "吧", "呢", "啊"}
    | {"我们", "你们", "他们", "她们", "非常", "没有", "这个", "那个", "这些"}
    | {"那些", "一个", "一些", "什么", "怎么", "因为", "所以", "但是", "而且"}
    | {"然后", "如果", "就是", "还是", "已经", "可以", "觉得", "感觉", "真的"}
    | {"比较", "有点", "有些", "时候", "现在", "自己", "这样", "那么", "这么"}
    | {"还有", "不是", "一直", "一下", "其实", "希望", "问题"}
)
_STOP_WORDS: Final = ENGLISH_STOP_WORDS | EXTRA_ENGLISH_STOP_WORDS | CHINESE_STOP_WORDS
_HAN_RUN = re.compile(r"[\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF]+")
_HAN = re.compile(r"[\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF]")
# Punctuation, symbols and emoji end a clause; so does Chinese text (replaced by "|" first).
_CLAUSE_BREAK = re.compile(r"[^\w\s]+")
_NO_CONTRAST: Final = 1e-9  # |z| below this is rounding, not a difference


@dataclass(frozen=True)
class ScoredComment:
    """A redacted comment and whether its score was low (CSAT <= 3 or NPS <= 6, the caller decides)."""

    comment_id: str
    text: str
    low: bool


@dataclass(frozen=True)
class Theme:
    """A term that low-score comments mention more often than high-score ones."""

    term: str
    comments: int  # distinct comments that mention it
    low_comments: int  # of which low-score comments
    low_share: float  # share of all low-score comments that mention it (0..1)
    log_odds_z: float  # the ranking statistic (0 when there is no high-score comment)
    examples: tuple[str, ...]  # up to two quotes, low-score comments first


@functools.cache
def _segmenter() -> Any:
    """jieba's tokenizer, its dictionary loaded once, on first use (about a second), without chatter."""
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


@functools.cache
def _english_words() -> Callable[[str], list[str]]:
    """scikit-learn's lower-casing tokenizer, single characters kept so that they can break a bigram."""
    analyzer: Callable[[str], list[str]] = CountVectorizer(token_pattern=r"(?u)\b\w+\b").build_analyzer()
    return analyzer


def _is_word(token: str) -> bool:
    return len(token) > 1 and token not in _STOP_WORDS and any(char.isalpha() for char in token)


def terms_of(text: str) -> set[str]:
    """The candidate terms one comment mentions (Chinese words, English words and bigrams)."""
    text = text[:MAX_TOKENISED_CHARS]
    found: set[str] = set()
    han_runs = _HAN_RUN.findall(text)
    if han_runs:
        segmenter = _segmenter()
        for run in han_runs:
            found.update(word for word in segmenter.lcut(run) if len(word) > 1 and word not in _STOP_WORDS)
        text = _HAN_RUN.sub("|", text)
    words = _english_words()
    for clause in _CLAUSE_BREAK.split(text):
        previous: str | None = None
        for token in words(clause):
            if _is_word(token):
                found.add(token)
                if previous is not None:
                    found.add(f"{previous} {token}")
                previous = token
            else:
                previous = None
    return found


def _log_odds_z(low: np.ndarray[Any, Any], high: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """z of the log-odds ratio, low vs high, with the corpus as the prior (the formula above)."""
    alpha = PRIOR_SCALE * (low + high)
    alpha_0 = PRIOR_SCALE * (low.sum() + high.sum())  # sums of integers: exact in any input order
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.log((low + alpha) / (low.sum() + alpha_0 - low - alpha)) - np.log(
            (high + alpha) / (high.sum() + alpha_0 - high - alpha)
        )
        z = delta / np.sqrt(1 / (low + alpha) + 1 / (high + alpha))
    # Not finite only when one term is the whole vocabulary: no contrast to speak of.
    return np.where(np.isfinite(z), z, 0.0)


def _related(term: str, other: str) -> bool:
    """Whether two terms can be one theme: they share a word, or one Chinese word holds the other."""
    if _HAN.search(term) or _HAN.search(other):
        return term in other or other in term
    return not set(term.split(" ")).isdisjoint(other.split(" "))


def _quote(text: str, term: str) -> str:
    """The comment on one line, at most QUOTE_CHARS long, around the term's first mention when cut."""
    text = " ".join(text.split())
    if len(text) <= QUOTE_CHARS:
        return text
    if _HAN.search(term):
        found = re.search(re.escape(term), text)
    else:
        found = re.search(rf"(?<![^\W_]){re.escape(term)}(?![^\W_])", text, re.IGNORECASE)
    start = 0 if found is None else max(0, found.start() - QUOTE_CHARS // 4)
    if start == 0:
        return text[: QUOTE_CHARS - 1] + "…"
    if start + QUOTE_CHARS - 1 >= len(text):
        return "…" + text[-(QUOTE_CHARS - 1) :]
    return "…" + text[start : start + QUOTE_CHARS - 2] + "…"


def rank_themes(comments: Sequence[ScoredComment], *, min_comments: int = 5, top: int = 10) -> list[Theme]:
    """The ``top`` themes of the comments, most characteristic of low scores first."""
    if min_comments < 1:
        raise ValueError(f"min_comments must be at least 1, not {min_comments}")
    seen: set[str] = set()
    kept: list[ScoredComment] = []
    for comment in comments:
        if comment.comment_id not in seen and comment.text.strip():
            seen.add(comment.comment_id)
            kept.append(comment)
    low_total = sum(comment.low for comment in kept)
    if low_total == 0 or top < 1:
        return []

    postings: defaultdict[str, list[int]] = defaultdict(list)
    low_counts: Counter[str] = Counter()
    for index, comment in enumerate(kept):
        for term in terms_of(comment.text):
            postings[term].append(index)
            if comment.low:
                low_counts[term] += 1
    vocabulary = list(postings)
    low = np.array([low_counts[term] for term in vocabulary], dtype=float)
    mentions = np.array([len(postings[term]) for term in vocabulary], dtype=float)
    contrast = low_total < len(kept)
    z = _log_odds_z(low, mentions - low) if contrast else np.zeros(len(vocabulary))

    candidates = [
        i
        for i in range(len(vocabulary))
        if mentions[i] >= min_comments and (z[i] > _NO_CONTRAST or not contrast)
    ]
    # Exact ties of a phrase and its word mean the same comments: the phrase says more, so it goes first.
    candidates.sort(key=lambda i: (-z[i], -mentions[i], -vocabulary[i].count(" "), vocabulary[i]))

    # A term is dropped when a higher-ranked candidate, kept or itself dropped, is related to it and
    # covers its low-score comments ("hiring process", "hiring", "process delays": one theme).
    ranked_above: list[tuple[str, set[int]]] = []
    chosen: list[tuple[int, set[int]]] = []  # vocabulary index, its low-score comments
    for i in candidates:
        term = vocabulary[i]
        low_ids = {index for index in postings[term] if kept[index].low}
        covered = any(_related(term, other) and low_ids <= other_ids for other, other_ids in ranked_above)
        ranked_above.append((term, low_ids))
        if not covered:
            chosen.append((i, low_ids))
            if len(chosen) == top:
                break

    themes: list[Theme] = []
    for i, low_ids in chosen:
        term = vocabulary[i]
        ranked = sorted(
            postings[term],
            key=lambda index: (not kept[index].low, len(kept[index].text.strip()), kept[index].comment_id),
        )
        # Distinct quotes: many people write the same short sentence; one copy of it says enough.
        quotes: list[str] = []
        for index in ranked:
            quote = _quote(kept[index].text, term)
            if quote not in quotes:
                quotes.append(quote)
                if len(quotes) == EXAMPLES:
                    break
        themes.append(
            Theme(
                term=term,
                comments=int(mentions[i]),
                low_comments=len(low_ids),
                low_share=len(low_ids) / low_total,
                log_odds_z=float(z[i]),
                examples=tuple(quotes),
            )
        )
    return themes
