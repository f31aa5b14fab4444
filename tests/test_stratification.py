"""Post-stratified tests: GrowthBook gbstats' figures (tests/data/reference/
gbstats_post_strat.json, how it was made in the README there), the unstratified test for one
stratum, degenerate strata row by row, and coverage by simulation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import expected_value, load_reference, reference_case, reference_cases
from splitlab.errors import DegenerateDataWarning, InvalidArgumentError
from splitlab.stats.adjustment import cuped_test
from splitlab.stats.frequentist import ratio_test, ttest
from splitlab.stats.moments import LOST_PRECISION, JointMoments, Moments
from splitlab.stats.stratification import (
    PoststratifiedResult,
    poststratified_difference,
    poststratified_test,
)

REFERENCE = "gbstats_post_strat.json"
FIELDS = ("effect", "se", "ci_low", "ci_high", "p_value", "df")


def close(actual, expected, rtol=1e-6, atol=0.0):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def arm(case: dict, name: str) -> Moments | JointMoments:
    """One arm of a reference case: per-stratum lists become the last axis."""
    a = {key: np.asarray(value, dtype=float) for key, value in case[name].items()}
    kind = case["kind"]
    if kind == "mean":
        return Moments.from_sums(a["n"], a["sum"], a["sum_sq"])
    if kind == "proportion":
        return Moments.from_proportions(a["successes"], a["n"])
    if kind == "cuped_proportion":  # binary y and x: p(1 - p) moments, as gbstats' proportions
        n = np.where(a["n"] > 0, a["n"], 1.0)
        p_y, p_x = a["successes_y"] / n, a["successes_x"] / n
        cov = a["successes_xy"] / n - p_y * p_x
        return JointMoments(a["n"], p_y, p_y * (1 - p_y), p_x, p_x * (1 - p_x), cov, ddof=0)
    return JointMoments.from_sums(
        a["n"], a["sum_y"], a["sum_y2"], a["sum_x"], a["sum_x2"], a["sum_xy"]
    )


def run(case: dict) -> PoststratifiedResult:
    options = {
        "alpha": case["alpha"],
        "alternative": case["alternative"],
        "relative": case["relative"],
        "kind": "ratio" if case["kind"] == "ratio" else None,
    }
    return poststratified_test(arm(case, "control"), arm(case, "treatment"), **options)


def cases(select) -> list:
    return reference_cases(REFERENCE, select)


def case_named(name: str) -> dict:
    return reference_case(REFERENCE, name)


def check_fields(result, case: dict, row=()) -> None:
    for name in FIELDS:
        # gbstats takes p = 1 − cdf: its tiny p-values carry ~1e-16 absolute error
        atol = 1e-12 if name == "p_value" else 0.0
        close(np.asarray(getattr(result, name))[row], expected_value(case, name), atol=atol)


def test_reference_file_is_the_one_described():
    reference = load_reference(REFERENCE)
    assert "8f1db4456915a8e7b7faf23d5632ca7219d2f469" in reference["source"]
    ported = [c for c in reference["cases"] if c["origin"].startswith("ported")]
    assert len(ported) == 28 and len(reference["cases"]) == 90


@pytest.mark.parametrize(
    "case",
    cases(lambda c: c["expected"]["error_message"] is None and not c.get("impossible_sums")),
)
def test_matches_gbstats(case):
    result = run(case)
    assert result.error == ""
    check_fields(result, case)
    assert bool(result.stratified) is case["expected"]["post_stratification_applied"]
    weights = np.asarray(result.weights)
    if result.stratified:
        close(weights.sum(), 1.0, rtol=1e-12)
    else:
        assert np.isnan(weights).all() and "unstratified test" in result.note


@pytest.mark.parametrize("case", cases(lambda c: "literal" in c))
def test_matches_the_figures_written_in_gbstats_test_file(case):
    result = run(case)
    close(result.effect, case["literal"]["effect"])
    if "se" in case["literal"]:
        close(result.se, case["literal"]["se"])


def test_a_stratum_with_an_empty_arm_is_merged_into_the_largest():
    # gbstats' test_missing_variation_data: one control unit moved to a new stratum with no
    # treatment units changes nothing
    case = case_named("missing_variation_data-abs")
    result = run(case)
    assert result.weights[-1] == 0.0 and result.weights[4] > 0
    assert result.note.startswith("stratum 5 merged into the largest stratum (4)")
    original = run(case_named("count-abs"))
    for name in FIELDS:
        close(getattr(result, name), getattr(original, name), rtol=1e-12)


def test_the_largest_stratum_without_variance_gives_the_unstratified_test():
    case = case_named("largest_constant_control-abs")
    result = run(case)
    plain = ttest(pool(arm(case, "control")), pool(arm(case, "treatment")))
    assert not result.stratified and "largest stratum" in result.note
    for name in FIELDS:
        close(getattr(result, name), getattr(plain, name), rtol=1e-9)


def test_regression_adjustment_is_dropped_only_in_the_stratum_without_var_x():
    result = run(case_named("count_reg_cell_fallback-abs"))
    assert result.stratified and result.note == "stratum 2 unadjusted: var(x) is zero in an arm"


def test_gbstats_zero_baseline_cuped_case_has_impossible_sums():
    # test_baseline_variation_adjusted_zero sets Σy = 0 but keeps Σy² and Σxy: |corr| ≈ 5
    case = case_named("baseline_variation_adjusted_zero-abs")
    with pytest.raises(InvalidArgumentError) as caught:
        arm(case, "control")
    assert caught.value.argument == "sum_xy"


def test_zero_variance_everywhere_is_a_row_error():
    case = case_named("zero_negative_variance-abs")
    assert case["expected"]["error_message"] == "ZERO_NEGATIVE_VARIANCE"
    with pytest.warns(DegenerateDataWarning):
        result = run(case)
    assert np.isnan(result.effect) and result.error == "zero variance in both groups"
    assert np.isnan(result.weights).all() and not result.stratified


def test_zero_control_mean():
    # gbstats refuses both scales (ZERO_NEGATIVE_BASELINE_VARIATION); splitlab refuses only
    # the lift and reports the absolute effect, which gbstats' own strata results give
    case = case_named("baseline_variation_zero-abs")
    result = run(case)
    for name in FIELDS:
        close(getattr(result, name), case["unguarded"][name], atol=1e-15)
    with pytest.warns(DegenerateDataWarning):
        lift = run(case_named("baseline_variation_zero-rel"))
    assert np.isnan(lift.effect) and "control mean is zero" in lift.error


# ----------------------------------------------------------------------------- one stratum


def draw(rng, kind, shape, n_range=(50, 400)):
    """Per-stratum arms from raw samples: Moments (mean), or JointMoments (cuped, ratio)."""
    arms = []
    for offset in (0.0, 0.3):
        n = rng.integers(*n_range, size=shape)
        size = int(n.max())
        base = rng.uniform(2.0, 20.0, shape)[..., None]
        x = base / 2 + rng.normal(0, 1.0, (*shape, size))
        y = base + offset + 1.5 * (x - base / 2) + rng.normal(0, 2.0, (*shape, size))
        if kind == "ratio":
            x = rng.poisson(3.0, (*shape, size)) + 1.0
            y = x * (base / 10 + offset / 10) + rng.normal(0, 1.0, (*shape, size))
        used = np.arange(size) < n[..., None]
        yu, xu = np.where(used, y, 0.0), np.where(used, x, 0.0)
        sums = (yu.sum(-1), (yu * yu).sum(-1), xu.sum(-1), (xu * xu).sum(-1), (yu * xu).sum(-1))
        if kind == "mean":
            arms.append(Moments.from_sums(n, sums[0], sums[1]))
        else:
            arms.append(JointMoments.from_sums(n, *sums))
    return arms


UNSTRATIFIED = {"mean": ttest, "cuped": cuped_test, "ratio": ratio_test}


@pytest.mark.parametrize("kind", ["mean", "cuped", "ratio"])
@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_a_single_stratum_is_the_unstratified_test(kind, relative, alternative):
    rng = np.random.default_rng(7)
    control, treatment = draw(rng, kind, (6, 1))
    result = poststratified_test(
        control, treatment, relative=relative, alternative=alternative, alpha=0.1,
        kind="ratio" if kind == "ratio" else None,
    )  # fmt: skip
    plain = UNSTRATIFIED[kind](
        control[:, 0], treatment[:, 0], relative=relative, alternative=alternative, alpha=0.1
    )
    for name in (*FIELDS, "statistic"):
        close(getattr(result, name), getattr(plain, name), rtol=1e-12)
    assert not result.stratified.any() and np.isnan(result.weights).all()
    assert (result.note == "one stratum: unstratified test").all()


def test_proportions_single_stratum_is_the_proportions_ttest():
    control = Moments.from_proportions([[40], [13]], [[400], [90]])
    treatment = Moments.from_proportions([[52], [20]], [[410], [95]])
    result = poststratified_test(control, treatment, relative=True)
    plain = ttest(control[:, 0], treatment[:, 0], relative=True)
    for name in FIELDS:
        close(getattr(result, name), getattr(plain, name), rtol=1e-12)


# ----------------------------------------------------------------------------- batches


def test_a_batch_flags_only_its_degenerate_rows():
    case = case_named("count-abs")
    c, t = ({k: np.array(v, float) for k, v in case[a].items()} for a in ("control", "treatment"))
    rows_c = {k: np.stack([v] * 4) for k, v in c.items()}
    rows_t = {k: np.stack([v] * 4) for k, v in t.items()}
    # row 1: stratum 1's control sums no longer resolve a variance
    y = 1e9 + np.random.default_rng(14).normal(10, 2, 1000)
    rows_c["n"][1, 1], rows_c["sum"][1, 1], rows_c["sum_sq"][1, 1] = 1000, y.sum(), y @ y
    # row 2: no variance anywhere; row 3: stratum 3 has no treatment units
    for rows in (rows_c, rows_t):
        rows["sum"][2], rows["sum_sq"][2] = 0.0, 0.0
    rows_t["n"][3, 3] = rows_t["sum"][3, 3] = rows_t["sum_sq"][3, 3] = 0.0
    controls, treatments = Moments.from_sums(**rows_c), Moments.from_sums(**rows_t)
    assert np.isnan(controls.var[1, 1])
    with pytest.warns(DegenerateDataWarning):
        result = poststratified_test(controls, treatments)
    assert result.error.tolist() == [
        "",
        f"stratum 1: control {LOST_PRECISION}",
        "zero variance in both groups",
        "",
    ]
    check_fields(result, case, row=0)
    for name in FIELDS:
        assert np.isnan(getattr(result, name)[1:3]).all()
    alone = poststratified_test(controls[3], treatments[3])
    for name in (*FIELDS, "weights"):
        assert np.array_equal(getattr(result, name)[3], getattr(alone, name))
    assert result.note[3] == alone.note
    assert alone.note == "stratum 3 merged into the largest stratum (4): " + (
        "an arm has fewer than 2 units or no variance"
    )
    assert alone.weights[3] == 0.0 and np.isnan(result.weights[1:3]).all()
    assert result.stratified.tolist() == [True, False, False, True]


@pytest.mark.parametrize("kind", ["mean", "cuped", "ratio"])
@pytest.mark.parametrize("relative", [False, True])
def test_rows_are_independent_comparisons(kind, relative):
    # small strata (1-60 units per arm): merges and fallbacks among the rows
    rng = np.random.default_rng(11)
    control, treatment = draw(rng, kind, (4, 3, 5), n_range=(1, 60))
    options = {"relative": relative, "kind": "ratio" if kind == "ratio" else None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        batch = poststratified_test(control, treatment, **options)
        for i in range(4):
            for j in range(3):
                one = poststratified_test(control[i, j], treatment[i, j], **options)
                for name in (*FIELDS, "weights"):
                    close(getattr(batch, name)[i, j], getattr(one, name), rtol=1e-12)
                assert batch.note[i, j] == one.note
                assert batch.stratified[i, j] == one.stratified
    assert "merged" in " ".join(batch.note.ravel())


def test_control_broadcasts_against_several_treatments():
    rng = np.random.default_rng(5)
    control, treatment = draw(rng, "mean", (3, 4))
    shared = control[0]
    batch = poststratified_test(shared, treatment)
    for i in range(3):
        one = poststratified_test(shared, treatment[i])
        close(batch.effect[i], one.effect, rtol=1e-12)
        close(batch.se[i], one.se, rtol=1e-12)
    assert batch.weights.shape == (3, 4)


def test_difference_is_what_the_test_reports():
    case = case_named("count_reg-rel")
    difference = poststratified_difference(
        arm(case, "control"), arm(case, "treatment"), relative=True
    )
    result = run(case)
    close([difference.effect, difference.se, difference.df], [result.effect, result.se, result.df])
    assert difference.errors.messages == ""


# ----------------------------------------------------------------------------- bad input


def test_mismatched_strata_axes_name_the_argument():
    control = Moments([10, 20, 30], [1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    treatment = Moments([10, 20, 30, 40], [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0])
    with pytest.raises(InvalidArgumentError) as caught:
        poststratified_test(control, treatment)
    assert caught.value.argument == "treatment" and "strata" in str(caught.value)
    with pytest.raises(InvalidArgumentError) as caught:
        poststratified_difference(Moments(10, 1.0, 1.0), Moments(10, 1.0, 1.0))
    assert caught.value.argument == "control" and "strata axis" in str(caught.value)
    with pytest.raises(InvalidArgumentError) as caught:
        poststratified_test(
            Moments(np.full((2, 3), 10), 1.0, 1.0), Moments(np.full((4, 3), 10), 1.0, 1.0)
        )
    assert "control" in caught.value.argument and "treatment" in caught.value.argument


def test_arguments_are_checked():
    moments = Moments([10, 20], [1.0, 2.0], [1.0, 1.0])
    joint = JointMoments([10, 20], [1.0, 2.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.5, 0.5])
    for call, argument in (
        (lambda: poststratified_test(moments, joint), "treatment"),
        (lambda: poststratified_test([1, 2], moments), "control"),
        (lambda: poststratified_test(moments, moments, kind="ratio"), "kind"),
        (lambda: poststratified_test(joint, joint, kind="quantile"), "kind"),
        (lambda: poststratified_test(moments, moments, relative="yes"), "relative"),
        (lambda: poststratified_test(moments, moments, alpha=1.5), "alpha"),
        (lambda: poststratified_test(moments, moments, alternative="up"), "alternative"),
    ):
        with pytest.raises(InvalidArgumentError) as caught:
            call()
        assert caught.value.argument == argument


# ----------------------------------------------------------------------------- simulation


def simulate(rng, reps, n_units, shares, means, effects):
    """Per-(rep, stratum, arm) moments of normal outcomes; strata drawn with ``shares``."""
    k = len(shares)
    stratum = rng.choice(k, size=(reps, n_units), p=shares)
    treated = rng.integers(0, 2, size=(reps, n_units))
    y = means[stratum] + effects[stratum] * treated + rng.normal(0, 1, (reps, n_units))
    cell = (np.arange(reps)[:, None] * k + stratum) * 2 + treated
    size = reps * k * 2
    n = np.bincount(cell.ravel(), minlength=size)
    mean = np.bincount(cell.ravel(), y.ravel(), minlength=size) / np.maximum(n, 1)
    m2 = np.bincount(cell.ravel(), (y - mean[cell]).ravel() ** 2, minlength=size)
    n, mean, m2 = (a.reshape(reps, k, 2) for a in (n, mean, m2))
    var = m2 / np.maximum(n - 1, 1)
    return tuple(Moments(n[..., a], mean[..., a], var[..., a]) for a in (0, 1))


def test_interval_covers_at_the_nominal_rate_and_beats_the_unstratified_one():
    rng = np.random.default_rng(20260815)
    reps = 2000
    shares = np.array([0.4, 0.3, 0.2, 0.1])
    means = np.array([0.0, 4.0, 8.0, 12.0])  # strata explain ~94% of the variance
    effects = np.array([0.2, 0.5, 1.0, 1.5])  # heterogeneous: the weights' noise matters
    control, treatment = simulate(rng, reps, 400, shares, means, effects)
    tolerance = 4 * np.sqrt(0.95 * 0.05 / reps)
    for relative, target in (
        (False, shares @ effects),
        (True, shares @ effects / (shares @ means)),
    ):
        result = poststratified_test(control, treatment, relative=relative)
        assert result.stratified.all()
        covered = (result.ci_low <= target) & (target <= result.ci_high)
        assert abs(covered.mean() - 0.95) < tolerance, (relative, covered.mean())
    absolute = poststratified_test(control, treatment)
    unstratified = ttest(*(pool(m) for m in (control, treatment)))
    assert np.mean(absolute.se) < 0.5 * np.mean(unstratified.se)


def pool(moments: Moments) -> Moments:
    """The strata of each row merged into one (Moments' exact merge)."""
    total = moments[..., 0]
    for k in range(1, moments.shape[-1]):
        total = total + moments[..., k]
    return total
