"""Comment themes: planted complaints rank first, in Chinese, English and both; the statistic by hand."""

from __future__ import annotations

import math

import pytest

from stream_processors.comments.themes import (
    MAX_TOKENISED_CHARS,
    PRIOR_SCALE,
    QUOTE_CHARS,
    ScoredComment,
    rank_themes,
    terms_of,
)

pytestmark = pytest.mark.unit


def corpus(low: list[str], high: list[str], name: str = "") -> list[ScoredComment]:
    return [ScoredComment(f"{name}low-{i}", text, True) for i, text in enumerate(low)] + [
        ScoredComment(f"{name}high-{i}", text, False) for i, text in enumerate(high)
    ]


# Recruiting in most low-score comments; canteen, meeting rooms, expenses and systems on both sides.
CHINESE = corpus(
    name="zh-",
    low=[
        "招聘太慢，等了一个月还没消息",
        "招聘流程拖了很久",
        "面试安排太慢",
        "招聘进度没人跟进",
        "招聘需求提交后一直没有回音",
        "招聘流程太复杂，面试安排也慢",
        "食堂饭菜一般，招聘也慢",
        "会议室总是订不到",
        "招聘太慢了，影响项目进度",
        "面试官迟到，招聘效率低",
        "报销审批还行，但是招聘拖延",
        "招聘流程不透明",
        "系统经常卡顿",
        "食堂排队太久",
        "会议室设备坏了",
    ],
    high=[
        "食堂饭菜不错",
        "会议室预订方便",
        "报销审批很快",
        "系统稳定好用",
        "食堂环境干净",
        "会议室设备齐全",
        "回复及时，服务周到",
        "报销流程清楚",
        "入职手续办得顺利",
        "工资发放准时",
        "食堂饭菜种类多",
        "系统升级后很快",
        "服务态度很好",
        "会议室很干净",
        "培训安排合理",
    ],
)

ENGLISH = corpus(
    name="en-",
    low=[
        "Hiring takes far too long, we waited two months",
        "The hiring process is slow and nobody answers",
        "Recruiting is slow; hiring managers are not updated",
        "Still no candidates, hiring is stuck",
        "Interviews get scheduled weeks later. Hiring drags on",
        "Hiring requests disappear without feedback",
        "The canteen food is cold, and hiring is slow",
        "Meeting rooms are always booked",
        "Hiring process unclear, recruiting team unreachable",
        "My laptop took ages to arrive",
        "Hiring approvals stuck for weeks",
        "Expense approvals are fine but hiring is painfully slow",
        "Canteen queue is long",
        "Meeting room projector broken",
    ],
    high=[
        "Canteen food is great",
        "Meeting rooms are easy to book",
        "Expense approvals were quick",
        "Laptop arrived next day",
        "Friendly canteen staff",
        "Meeting room equipment works well",
        "Fast answers and helpful people",
        "Expense process is clear",
        "Onboarding went smoothly",
        "Payroll always on time",
        "Canteen has lots of choice",
        "Laptop setup was painless",
        "Helpful and kind support",
        "Clean meeting rooms",
    ],
)


def test_a_planted_chinese_complaint_ranks_first() -> None:
    themes = rank_themes(CHINESE)
    assert themes[0].term == "招聘"
    first = themes[0]
    assert (first.comments, first.low_comments) == (10, 10)
    assert first.low_share == pytest.approx(10 / 15)
    assert first.log_odds_z > 0
    # Evenly spread noise is no theme.
    assert not {"食堂", "会议室", "系统", "报销"} & {theme.term for theme in themes}


def test_a_planted_english_complaint_ranks_first() -> None:
    themes = rank_themes(ENGLISH)
    assert themes[0].term == "hiring"
    assert themes[0].low_comments == 10
    assert not {"canteen", "meeting", "rooms", "expense", "laptop"} & {theme.term for theme in themes}


def test_themes_are_ranked_by_z_and_every_z_is_positive() -> None:
    themes = rank_themes(CHINESE + ENGLISH, min_comments=2)
    assert [theme.log_odds_z for theme in themes] == sorted(
        (theme.log_odds_z for theme in themes), reverse=True
    )
    assert all(theme.log_odds_z > 0 and theme.low_comments > 0 for theme in themes)


def test_a_mixed_corpus_finds_the_complaint_in_both_languages() -> None:
    mixed = corpus(
        low=[
            "报销太慢",
            "报销审批拖了两周",
            "expense claims take weeks",
            "my expense claim was lost",
            "报销 expense 都很慢 😞",
            "expense reimbursement never arrives",
            "报销单被退回三次",
            "食堂 food is cold",
            "报销流程复杂，expense portal confusing",
            "打印机坏了",
        ],
        high=[
            "食堂 food is great",
            "打印机修得很快",
            "IT support 很好",
            "会议室 easy to book",
            "食堂饭菜不错",
            "laptop arrived quickly",
            "招聘 went smoothly",
            "onboarding 很顺利",
        ],
    )
    themes = rank_themes(mixed, min_comments=4)
    assert {theme.term for theme in themes[:2]} == {"报销", "expense"}
    assert all(theme.term not in {"食堂", "food"} for theme in themes)


def test_no_theme_below_the_minimum_of_comments() -> None:
    comments = corpus(
        low=["parking is full", "no parking left", "parking again", "parking lot closed", "slow replies"],
        high=["great help", "quick replies", "friendly people", "great support", "very helpful"],
    )
    assert "parking" not in {theme.term for theme in rank_themes(comments, min_comments=5)}
    parking = [theme for theme in rank_themes(comments, min_comments=4) if theme.term == "parking"]
    assert [(t.comments, t.low_comments, t.low_share) for t in parking] == [(4, 4, 4 / 5)]


def test_min_comments_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_comments"):
        rank_themes(CHINESE, min_comments=0)


def test_the_log_odds_z_by_hand() -> None:
    """Two terms: "slow" in 6 low and 1 high comment, "friendly" in 2 low and 5 high."""
    comments = corpus(low=["slow"] * 6 + ["friendly"] * 2, high=["slow"] + ["friendly"] * 5)
    themes = rank_themes(comments, min_comments=1)
    assert [theme.term for theme in themes] == ["slow"]  # "friendly" is commoner in high scores: z < 0

    y_low, y_high = 6, 1  # comments of each group that mention "slow"
    n_low, n_high = 6 + 2, 1 + 5  # mentions of any term in each group
    alpha = PRIOR_SCALE * (6 + 1)  # the prior for "slow": its corpus count, scaled
    alpha_0 = PRIOR_SCALE * (n_low + n_high)  # the sum of the prior over both terms
    log_odds_low = math.log((y_low + alpha) / (n_low + alpha_0 - y_low - alpha))
    log_odds_high = math.log((y_high + alpha) / (n_high + alpha_0 - y_high - alpha))
    variance = 1 / (y_low + alpha) + 1 / (y_high + alpha)
    expected = (log_odds_low - log_odds_high) / math.sqrt(variance)

    assert themes[0].log_odds_z == pytest.approx(expected, rel=1e-12)
    assert (themes[0].comments, themes[0].low_comments, themes[0].low_share) == (7, 6, 6 / 8)


def test_a_bigram_and_its_word_in_the_same_comments_are_one_theme() -> None:
    comments = corpus(
        low=["hiring process broken"] * 1 + [f"the hiring process, take {i}" for i in range(5)],
        high=["all good", "nice people", "fine", "great", "quick"],
    )
    terms = [theme.term for theme in rank_themes(comments, min_comments=5)]
    assert "hiring process" in terms or "hiring" in terms
    assert not {"hiring", "process", "hiring process"} <= set(terms)
    assert len({"hiring", "process", "hiring process"} & set(terms)) == 1


def test_duplicate_comment_ids_count_once() -> None:
    repeated = [ScoredComment("same", "parking is full", True)] * 5
    others = corpus(low=["parking closed", "slow"], high=["nice", "good", "fine"])
    assert "parking" not in {theme.term for theme in rank_themes(repeated + others, min_comments=3)}
    assert [t.comments for t in rank_themes(repeated + others, min_comments=2) if t.term == "parking"] == [2]


def test_empty_and_one_sided_corpora() -> None:
    assert rank_themes([]) == []
    assert rank_themes([ScoredComment("a", "", True), ScoredComment("b", " \n\t ", False)]) == []
    only_high = [ScoredComment(str(i), "slow hiring", False) for i in range(10)]
    assert rank_themes(only_high) == []
    # All low: no contrast, so the terms most comments mention, with z = 0; the phrase stands for its words.
    only_low = [ScoredComment(str(i), "slow hiring" if i < 7 else "canteen food", True) for i in range(10)]
    themes = rank_themes(only_low)
    assert [(t.term, t.comments, t.log_odds_z) for t in themes] == [("slow hiring", 7, 0.0)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n ",
        "🙂🙂👍🔥",
        "<script>alert(1)</script> slow",
        "招聘太慢 🐢 hiring SLOW!!! 12345 ____ ---",
        "a" * 100_000,
        "slow hiring " * 10_000,
        "招聘太慢" * 25_000,
        "\x00\ufeff\u200b zero-width and NUL",
    ],
    ids=["empty", "blank", "emoji", "html", "mixed", "100k-letter", "100k-words", "100k-chinese", "control"],
)
def test_odd_comments_do_not_raise(text: str) -> None:
    comments = [ScoredComment("odd", text, True), *CHINESE]
    themes = rank_themes(comments, min_comments=2)
    assert all(len(example) <= QUOTE_CHARS for theme in themes for example in theme.examples)


def test_only_the_first_characters_of_a_comment_are_read() -> None:
    assert terms_of("x " * MAX_TOKENISED_CHARS + "parking") == set()
    assert "parking" in terms_of("parking " + "x " * MAX_TOKENISED_CHARS)


def test_html_is_data() -> None:
    assert terms_of("<script>alert(1)</script>") == {"script", "alert"}


def test_examples_prefer_short_low_score_comments() -> None:
    comments = corpus(
        low=["  hiring is slow\n\n", "hiring takes ages", "hiring stuck", "hiring again", "hiring, hiring"],
        high=["hiring ok", "nice", "good", "great", "fine"],
    )
    hiring = next(theme for theme in rank_themes(comments) if theme.term == "hiring")
    assert hiring.examples == ("hiring stuck", "hiring again")  # shortest first, ties by comment id


def test_long_examples_are_cut_around_the_term() -> None:
    padding = "the weather was fine and the coffee was warm " * 8
    comments = corpus(
        low=[f"{padding}but hiring is slow, case {i} {padding}" for i in range(5)],
        high=["nice", "good", "great", "fine", "quick"],
    )
    hiring = next(theme for theme in rank_themes(comments) if theme.term == "hiring")
    for example in hiring.examples:
        assert len(example) == QUOTE_CHARS
        assert example.startswith("…") and example.endswith("…")
        assert "hiring is slow" in example


def test_ranking_is_deterministic() -> None:
    assert rank_themes(CHINESE + ENGLISH, min_comments=2) == rank_themes(
        list(reversed(CHINESE + ENGLISH)), min_comments=2
    )
