"""A hostile user's inputs to the summary-statistics API and the Analyzer: impossible sums
and non-numbers raise InvalidArgumentError naming the argument; degenerate-but-legal data
gives NaN with a reason in ``error``; any label type and any column name works, with the
answer checked against pandas."""

from __future__ import annotations

import datetime
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import splitlab as sl
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError, SplitlabError

C = sl.Moments.from_sums(1000, 5000.0, 27000.0)
T = sl.Moments.from_sums(1000, 5150.0, 28500.0)
J = sl.JointMoments.from_sums(1000, 2000.0, 9000.0, 1000.0, 1200.0, 2500.0)

BAD_CALLS = {
    # impossible power sums
    "sum_sq below sum^2/n": (lambda: sl.Moments.from_sums(10, 100.0, 999.0), "sum_sq"),
    "negative sum_sq": (lambda: sl.Moments.from_sums(10, 0.0, -1.0), "sum_sq"),
    "sum where n is 0": (lambda: sl.Moments.from_sums(0, 5.0, 30.0), "sum"),
    "sum_sq where n is 0": (lambda: sl.Moments.from_sums(0, 0.0, 30.0), "sum_sq"),
    "one impossible row of many": (
        lambda: sl.Moments.from_sums([10, 10, 10], [10.0, 100.0, 5.0], [20.0, 999.0, 9.0]),
        "sum_sq",
    ),
    "negative n": (lambda: sl.Moments.from_sums(-10, 5.0, 30.0), "n"),
    "fractional n": (lambda: sl.Moments.from_sums(10.5, 5.0, 30.0), "n"),
    "NaN sum": (lambda: sl.Moments.from_sums(10, np.nan, 30.0), "sum"),
    "infinite sum_sq": (lambda: sl.Moments.from_sums(10, 5.0, np.inf), "sum_sq"),
    # numbers written as text
    "numeric string sum": (lambda: sl.Moments.from_sums(10, "5", 30.0), "sum"),
    "numeric string n": (lambda: sl.Moments.from_sums("10", 5.0, 30.0), "n"),
    "numeric strings in a list": (lambda: sl.Moments.from_sums([10, 10], ["5", "6"], 30.0), "sum"),
    "numeric string mean": (lambda: sl.Moments(10, "1.5", 2.0), "mean"),
    "bytes var": (lambda: sl.Moments(10, 1.5, b"2"), "var"),
    "object array holding text": (
        lambda: sl.Moments(np.array([10, "10"], dtype=object), 1.0, 1.0),
        "n",
    ),
    "numeric string successes": (lambda: sl.Moments.from_proportions("3", 10), "successes"),
    "datetime as a number": (lambda: sl.Moments(np.datetime64("2026-01-01"), 1.0, 1.0), "n"),
    # moments that no data has
    "negative variance": (lambda: sl.Moments(10, 1.0, -0.5), "var"),
    "NaN variance": (lambda: sl.Moments(10, 1.0, np.nan), "var"),
    "covariance above sd*sd": (lambda: sl.JointMoments(10, 0.0, 1.0, 0.0, 1.0, 1.5), "cov"),
    "negative covariate variance": (lambda: sl.JointMoments(10, 0.0, 1.0, 0.0, -1.0, 0.0), "var_x"),
    "joint ddof 2": (lambda: sl.JointMoments(10, 0.0, 1.0, 0.0, 1.0, 0.0, ddof=2), "ddof"),
    "sum_x2 below sum_x^2/n": (
        lambda: sl.JointMoments.from_sums(10, 10.0, 20.0, 100.0, 999.0, 0.0),
        "sum_x2",
    ),
    "negative sum_x2": (
        lambda: sl.JointMoments.from_sums(10, 10.0, 20.0, 0.0, -1.0, 0.0),
        "sum_x2",
    ),
    "sum_xy beyond Cauchy-Schwarz": (
        lambda: sl.JointMoments.from_sums(10, 10.0, 20.0, 10.0, 20.0, 500.0),
        "sum_xy",
    ),
    "sum_xy where n is 0": (lambda: sl.JointMoments.from_sums(0, 0, 0, 0, 0, 3.0), "sum_xy"),
    "text sum_xy": (lambda: sl.JointMoments.from_sums(10, 1, 2, 1, 2, "1"), "sum_xy"),
    "successes above n": (lambda: sl.Moments.from_proportions(11, 10), "successes"),
    "negative proportion n": (lambda: sl.Moments.from_proportions(0, -10), "n"),
    # test arguments
    "control not moments": (lambda: sl.ttest({"n": 10}, T), "control"),
    "treatment a list": (lambda: sl.ttest(C, [1.0, 2.0]), "treatment"),
    "alpha zero": (lambda: sl.ttest(C, T, alpha=0.0), "alpha"),
    "alpha above one": (lambda: sl.ttest(C, T, alpha=1.5), "alpha"),
    "alpha as text": (lambda: sl.ttest(C, T, alpha="five percent"), "alpha"),
    "alternative unknown": (lambda: sl.ttest(C, T, alternative="both"), "alternative"),
    "relative method unknown": (
        lambda: sl.ttest(C, T, relative=True, relative_method="bootstrap"),
        "relative_method",
    ),
    "origin as text": (lambda: sl.ttest(C, T, origin="zero"), "origin"),
    "origin NaN": (lambda: sl.ttest(C, T, origin=np.nan), "origin"),
    "cuped with plain moments": (lambda: sl.cuped_test(C, T), "control"),
    "ratio with plain moments": (lambda: sl.ratio_test(J, T), "treatment"),
    "proportions above n": (lambda: sl.proportions_test(11, 10, 5, 10), "successes_c"),
    "proportions negative": (lambda: sl.proportions_test(1, 10, -5, 10), "successes_t"),
    "proportions as text": (lambda: sl.proportions_test("1", 10, 5, 10), "successes_c"),
    "p-value above one": (lambda: sl.adjust_pvalues([0.01, 1.2]), "p"),
    "p-values as text": (lambda: sl.adjust_pvalues(["0.01", "0.2"]), "p"),
    "correction unknown": (lambda: sl.adjust_pvalues([0.01, 0.2], method="sidak2"), "method"),
    "srm negative count": (lambda: sl.srm_test([100, -1]), "counts"),
    "srm weights mismatch": (lambda: sl.srm_test([100, 100], [0.5, 0.3, 0.2]), "counts/weights"),
    "srm negative weight": (lambda: sl.srm_test([100, 100], [1.0, -1.0]), "weights"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_summary_input_raises_an_error_naming_the_argument(case):
    call, argument = BAD_CALLS[case]
    with pytest.raises(InvalidArgumentError) as info:
        call()
    assert info.value.argument == argument
    assert str(info.value).startswith(f"{argument}: ")


def test_variance_lost_to_rounding_is_a_row_error_not_a_confident_answer():
    rng = np.random.default_rng(0)
    y = 1e9 + rng.normal(10.0, 2.0, size=(2, 100_000))
    y[1] += 0.05
    control, treatment = (sl.Moments.from_sums(v.size, v.sum(), (v * v).sum()) for v in y)
    ordinary = sl.Moments.from_sums(1000, 5000.0, 27000.0)
    with pytest.warns(DegenerateDataWarning):
        result = sl.ttest(control, treatment)
    assert np.isnan(result.p_value)
    assert "variance lost to rounding" in str(result.error)
    # the same data as centred moments is fine, and agrees with scipy on the raw values
    exact = sl.ttest(sl.Moments.from_samples(y[0]), sl.Moments.from_samples(y[1]))
    reference = stats.ttest_ind(y[1], y[0], equal_var=False)
    assert exact.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    assert float(sl.ttest(ordinary, ordinary).p_value) == pytest.approx(1.0)


def test_an_impossible_row_is_not_clipped_into_a_confident_effect():
    """gbstats flags Σy² < (Σy)²/n (ZERO_NEGATIVE_VARIANCE); clipping it to variance 0
    would report p ≈ 0."""
    with pytest.raises(InvalidArgumentError, match="negative variance"):
        sl.Moments.from_sums([1000, 1000], [5000.0, 5100.0], [27000.0, 26000.0])


def test_overflowing_relative_test_names_its_reason():
    control = sl.Moments(10, 1e200, 1e300)
    treatment = sl.Moments(10, 2e200, 1e300)
    with pytest.warns(DegenerateDataWarning):
        result = sl.ttest(control, treatment, relative=True)
    assert np.isnan(result.p_value)
    assert "overflow" in str(result.error)


def test_zero_variance_and_single_units_are_row_errors():
    with pytest.warns(DegenerateDataWarning):
        result = sl.ttest(sl.Moments([1, 5], [1.0, 2.0], [0.0, 0.0]), sl.Moments(5, 2.0, 0.0))
    assert list(result.error) == ["n < 2 in control", "zero variance in both groups"]
    assert np.isnan(result.p_value).all()


# ---------------------------------------------------------------------- the Analyzer


def _units(labels, control_index=0, seed=1, size=400):
    rng = np.random.default_rng(seed)
    variant = np.resize(np.asarray(labels, dtype=object), size)
    revenue = rng.normal(10.0, 3.0, size) + (variant != labels[control_index]) * 0.5
    return pd.DataFrame({"experiment": "e", "variant": list(variant), "revenue": revenue})


def _pandas_effect(frame, variant_column, control, treatment, metric="revenue"):
    means = frame.groupby(variant_column)[metric].mean()
    return means[treatment] - means[control]


LABELS = {
    "int": ([0, 1], 0, 1),
    "bool": ([False, True], False, True),
    "date": (
        [datetime.date(2026, 1, 1), datetime.date(2026, 2, 1)],
        datetime.date(2026, 1, 1),
        datetime.date(2026, 2, 1),
    ),
    "string": (["control", "b"], "control", "b"),
    "negative int": ([-5, 7], -5, 7),
}


@pytest.mark.parametrize("kind", list(LABELS))
def test_any_label_type_works_in_analyze_and_srm(kind):
    labels, control, treatment = LABELS[kind]
    frame = _units(labels)
    analyzer = sl.Analyzer(frame, control=control)
    row = analyzer.analyze(["revenue"]).iloc[0]
    assert row["error"] == ""
    assert row["effect"] == pytest.approx(
        _pandas_effect(frame, "variant", control, treatment), rel=1e-12
    )
    assert analyzer.srm()["counts"].iloc[0] == [200, 200]
    assert row.name == 0 and row["n_control"] == 200


def test_a_text_control_for_integer_labels_says_which_labels_exist():
    with pytest.raises(InvalidArgumentError) as info:
        sl.Analyzer(_units([0, 1]), control="0").analyze(["revenue"])
    assert info.value.argument == "control"
    assert "'0'" in str(info.value) and "has 0, 1" in str(info.value)


def test_bool_control_does_not_match_integer_one():
    with pytest.raises(InvalidArgumentError, match="control"):
        sl.Analyzer(_units([0, 1]), control=True).analyze(["revenue"])


ENGINE_NAMES = ["n", "segment", "__y0", "__c0", "__e", "period", "revenue.mean_y", "by0", "n_c"]


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_user_columns_may_have_the_engine_s_internal_names(name):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "experiment": "e",
            "variant": np.resize(["control", "b"], 600),
            name: rng.normal(4.0, 1.0, 600),
            "country": np.resize(["de", "fr", "us"], 600),
        }
    )
    results = sl.Analyzer(frame).analyze([name], segments="country")
    overall = results[results["segment"] == "all"].iloc[0]
    assert overall["effect"] == pytest.approx(
        _pandas_effect(frame, "variant", "control", "b", name), rel=1e-12
    )
    german = results[results["segment"] == "country=de"].iloc[0]
    subset = frame[frame["country"] == "de"]
    assert german["effect"] == pytest.approx(
        _pandas_effect(subset, "variant", "control", "b", name), rel=1e-12
    )


def test_a_segment_column_named_like_a_key_works():
    frame = _units(["control", "b"])
    frame["n"] = np.resize(["x", "x", "y"], len(frame))
    results = sl.Analyzer(frame).analyze(["revenue"], segments=["n", "experiment"])
    assert set(results["segment"]) == {"all", "n=x", "n=y", "experiment=e"}
    both = results.set_index("segment")["effect"]
    assert both["experiment=e"] == pytest.approx(both["all"], rel=1e-12)


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        ({"experiment": "variant", "variant": "variant"}, "variant"),
        ({"unit": "variant"}, "unit"),
        ({"unit": "experiment"}, "unit"),
        ({"date": "revenue"}, "date"),
        ({"date": "variant"}, "date"),
        ({"variant": "missing"}, "variant"),
        ({"experiment": 3}, "experiment"),
    ],
)
def test_conflicting_or_wrong_columns_are_refused(arguments, argument):
    with pytest.raises(InvalidArgumentError) as info:
        sl.Analyzer(_units(["control", "b"]), **arguments)
    assert info.value.argument == argument


@pytest.mark.parametrize("missing", [None, np.nan])
def test_null_unit_ids_are_refused_with_their_count(missing):
    events = pd.DataFrame(
        {
            "experiment": "e",
            "variant": ["control", "b"] * 4,
            "user": [1.0, 2.0, 3.0, 4.0, missing, missing, 7.0, 8.0],
            "revenue": 1.0,
        }
    )
    with pytest.raises(InvalidArgumentError) as info:
        sl.Analyzer(events, unit="user").analyze(["revenue"])
    assert info.value.argument == "unit"
    assert "2 row(s) without a unit id" in str(info.value)


@pytest.mark.parametrize(
    ("values", "needle"),
    [([0.0, 1.0, 2.0, 1.0], "values other than 0 and 1"), ([0.5, 0.5], "values other than 0")],
)
def test_a_proportion_column_that_is_not_binary_is_a_row_error_naming_it(values, needle):
    frame = pd.DataFrame(
        {
            "experiment": "e",
            "variant": np.resize(["control", "b"], 40),
            "paid": np.resize(values, 40),
        }
    )
    with pytest.warns(DegenerateDataWarning):
        row = sl.Analyzer(frame).analyze([sl.Metric("converted", column="paid", kind="proportion")])
    row = row.iloc[0]
    assert "'paid'" in row["error"] and needle in row["error"]
    assert np.isnan(row["p_value"])


def test_analyzer_row_errors_name_the_user_s_column():
    frame = pd.DataFrame(
        {"experiment": "e", "variant": ["control", "b"] * 10, "minutes": 3.0}  # zero variance
    )
    with pytest.warns(DegenerateDataWarning):
        row = sl.Analyzer(frame).analyze(["minutes"]).iloc[0]
    assert row["error"] == "column(s) 'minutes': zero variance in both groups"
    assert "sum" not in row["error"]


def test_a_relative_test_on_huge_values_has_a_reason():
    frame = pd.DataFrame(
        {
            "experiment": "e",
            "variant": ["control", "b"] * 20,
            "value": np.resize([1e300, 1.5e300, 2e300, 1e300], 40),
        }
    )
    with pytest.warns(DegenerateDataWarning):
        row = sl.Analyzer(frame).analyze(["value"], relative=True).iloc[0]
    assert np.isnan(row["p_value"]) and row["error"] != ""


def _gbstats_proportion_cuped(y_c, x_c, y_t, x_t):
    """gbstats' RegressionAdjustedStatistic on ProportionStatistic post/pre, written out:
    variance p(1 − p), covariance Σxy/n − ΣxΣy/n², θ pooled over both arms."""

    def arm(y, x):
        n = len(y)
        p_y, p_x = y.mean(), x.mean()
        return n, p_y, p_x, p_y * (1 - p_y), p_x * (1 - p_x), (x * y).sum() / n - p_x * p_y

    c, t = arm(y_c, x_c), arm(y_t, x_t)
    pooled = arm(np.concatenate([y_c, y_t]), np.concatenate([x_c, x_t]))
    theta = pooled[5] / pooled[4]
    variances = [a[3] + theta**2 * a[4] - 2 * theta * a[5] for a in (c, t)]
    effect = (t[1] - theta * t[2]) - (c[1] - theta * c[2])
    se2 = [v / a[0] for v, a in zip(variances, (c, t), strict=True)]
    df = sum(se2) ** 2 / sum(s**2 / (a[0] - 1) for s, a in zip(se2, (c, t), strict=True))
    se = np.sqrt(sum(se2))
    return effect, se, 2 * stats.t.sf(abs(effect / se), df)


def test_cuped_on_a_proportion_follows_gbstats_bernoulli_variance():
    rng = np.random.default_rng(11)
    size = 6000
    pre = rng.random(2 * size) < 0.3
    post = np.where(rng.random(2 * size) < 0.6, pre, rng.random(2 * size) < 0.32).astype(int)
    frame = pd.DataFrame(
        {
            "experiment": "e",
            "variant": np.repeat(["control", "b"], size),
            "converted": post,
            "pre": pre.astype(int),
        }
    )
    metric = sl.Metric("converted", kind="proportion", covariate="pre")
    row = sl.Analyzer(frame).analyze([metric]).iloc[0]
    effect, se, p_value = _gbstats_proportion_cuped(
        post[:size], pre[:size].astype(int), post[size:], pre[size:].astype(int)
    )
    assert row["effect"] == pytest.approx(effect, rel=1e-9)
    assert row["se"] == pytest.approx(se, rel=1e-9)
    assert row["p_value"] == pytest.approx(p_value, rel=1e-6)


def test_only_splitlab_errors_escape_the_summary_api():
    hostile = [None, object(), {"a": 1}, "text", [1, "2"], np.array(["1"]), [[1, 2], [3]]]
    for value in hostile:
        for call in (
            lambda v: sl.Moments.from_sums(v, 1.0, 2.0),
            lambda v: sl.Moments(10, v, 1.0),
            lambda v: sl.JointMoments.from_sums(10, 1, 2, 1, 2, v),
            lambda v: sl.ttest(C, T, alpha=v),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    call(value)
                except SplitlabError:
                    pass
