"""numba kernels for P(arm k has the largest value) among independent arms, on one shared
quadrature grid, fast enough to run before every decision.

P_k = ∫ f_k(x) Π_{j≠k} F_j(x) dx is integrated over a *domain* [L, U] with L the largest of
the arms' lower window ends and U the second largest upper end (a window holds all but
``WINDOW_TAIL`` of an arm's mass on each side):

- below L the arm whose window starts at L has F ≤ ε, so every integrand is at most
  F_k(L) · min_{j≠k} F_j(L), which the kernels check from the grid's boundary values;
- above U, Π_{j≠k} F_j ≈ Π_{j≠k} F_j(U) and the tail term (1 − F_k(U)) Π_{j≠k} F_j(U) is
  added exactly, with error at most (1 − F_k(U)) Σ_{j≠k} (1 − F_j(U)), also checked.

Panels are marched from L to U, each at most ``width`` × the local scale of every arm whose
window it touches (and never running more than that into a window ahead), so narrow
posteriors get fine panels only where they live; each panel carries a Gauss–Legendre rule.
Node arrays hold the boundary points L and U as their first and last entries (weight 0),
so that every arm's CDF row also carries F_k(L) and F_k(U) for the checks.

A CDF/PDF *row* per arm is filled once and then kept: the policy recomputes only the rows
of arms whose posterior changed (a Beta posterior after integer-count updates by the
recurrences of DLMF 8.17.20–21, without any incomplete beta function). The quadrature
itself costs ~K × N multiply-adds (N nodes) per call.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Posterior mass left outside each arm's window, per side: the normal score 6.36.
WINDOW_TAIL = 1e-10
WINDOW_SCORE = 6.361340902404056
# Panel width as a multiple of the narrowest local scale (sd) it touches, and the
# Gauss–Legendre order per panel: ~1e-9 absolute on P(best) (tests/test_argmax.py).
PANEL_WIDTH = 1.6
GL_ORDER = 8
GL_NODES, GL_WEIGHTS = np.polynomial.legendre.leggauss(GL_ORDER)
MAX_PANELS = 4096
# A grid placed for one computation (LinTS scores) may start at the second largest 1e-5
# quantile: two arms with F ≤ 1e-5 there make Π F ≤ 1e-10 below it.
PAIR_SCORE = 4.264890793922825
# Quadrature checks: a filled arm's density must integrate over the grid to its CDF
# difference within MASS_TOLERANCE, the truncation bounds must stay below TRUNCATION, and
# the probabilities must sum to 1 within SUM_TOLERANCE before normalisation.
MASS_TOLERANCE = 1e-9
TRUNCATION = 1e-9
SUM_TOLERANCE = 1e-8
# An arm whose CDF at L is within this of 1 is dead: it lies below the domain, P ≤ this.
DEAD = 1e-12

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# ------------------------------------------------------------------------- the grid


@njit(cache=True)
def domain(lo, hi, live):
    """(L, U, top): L the largest window start, U the second largest window end, top the
    arm with the largest end; U ≤ L means one arm holds all but ε of the probability."""
    lower = -np.inf
    first, second, top = -np.inf, -np.inf, -1
    for k in range(lo.size):
        if live[k]:
            lower = max(lower, lo[k])
            if hi[k] > first:
                second, first, top = first, hi[k], k
            elif hi[k] > second:
                second = hi[k]
    return lower, second, top


@njit(cache=True)
def _panel_end(x, upper, lo, hi, center, scale, growth, live, width):
    """Right end of the panel starting at x: no more than ``width`` local scales of any
    arm it touches, the local scale of arm j at x being max(scale_j, growth_j |x − c_j|)
    (growth > 0 for heavy tails, whose panels may widen away from the centre). The
    maximum of m overlapping arms, whose CDF Π F_j the integrand carries, is narrower
    than any one of them (Gumbel: (π/√6)/√(2 ln m) of their spread, 0.43 at m = 100); at
    ``width`` = 1.6 the Gauss–Legendre rule still resolves it for 128 equal arms
    (tests/test_argmax.py), at 2.5 it did not (1e-6 off at 100 arms)."""
    end = np.inf
    for j in range(lo.size):
        if not live[j] or hi[j] <= x:
            continue
        start = max(x, lo[j])
        if start >= end:
            continue
        local = max(scale[j], growth[j] * abs(start - center[j]))
        end = min(end, start + width * local)
    return min(end, upper)


@njit(cache=True)
def grid(lower, upper, lo, hi, center, scale, growth, live, width, rule_nodes, rule_weights):
    """Quadrature nodes and weights on [lower, upper]: index 0 is ``lower`` and the last
    index is ``upper`` (both weight 0); Gauss–Legendre nodes of every panel in between.
    Returns (nodes, weights), or empty arrays if more than MAX_PANELS panels are needed."""
    breaks = np.empty(MAX_PANELS + 1)
    breaks[0] = lower
    count = 0
    x = lower
    while x < upper:
        if count == MAX_PANELS:
            return np.empty(0), np.empty(0)
        end = _panel_end(x, upper, lo, hi, center, scale, growth, live, width)
        if not end > x:  # a zero scale: no resolution is enough
            return np.empty(0), np.empty(0)
        count += 1
        breaks[count] = end
        x = end
    order = rule_nodes.size
    size = count * order + 2
    nodes, weights = np.empty(size), np.zeros(size)
    nodes[0], nodes[size - 1] = lower, upper
    for panel in range(count):
        half = 0.5 * (breaks[panel + 1] - breaks[panel])
        middle = 0.5 * (breaks[panel + 1] + breaks[panel])
        for g in range(order):
            index = 1 + panel * order + g
            nodes[index] = middle + half * rule_nodes[g]
            weights[index] = half * rule_weights[g]
    return nodes, weights


# ---------------------------------------------------------------------- the integral


@njit(cache=True, fastmath={"reassoc", "contract"})
def argmax_mass(cdf, pdf, weights, work, out):
    """out[k] = ∫_L^U f_k Π_{j≠k} F_j + (1 − F_k(U)) Π_{j≠k} F_j(U) on the grid, for the
    arms not dead (F_k(L) < 1 − DEAD; dead arms get 0), with ``work`` a scratch array of
    at least (arms + 2, nodes). Returns (Σ out, bound below, bound above):

    - below L, ∫ f_k Π_{j≠k} F_j ≤ F_k(L) Π_{j≠k} F_j(L) = Π_j F_j(L) for every k;
    - above U, the tail term errs by at most (1 − F_k(U)) (1 − Π_{j≠k} F_j(U)).
    """
    n_arms, size = cdf.shape
    last = size - 1
    alive = np.empty(n_arms, dtype=np.int64)
    count = 0
    for k in range(n_arms):
        out[k] = 0.0
        if cdf[k, 0] < 1.0 - DEAD:
            alive[count] = k
            count += 1
    if count == 0:
        return 0.0, np.inf, np.inf
    # work[i] = Π over alive arms i, i + 1, ... of F, node by node (work[count] = 1)
    for n in range(size):
        work[count, n] = 1.0
    for i in range(count - 1, -1, -1):
        row = cdf[alive[i]]
        for n in range(size):
            work[i, n] = work[i + 1, n] * row[n]
    below = work[0, 0]
    above = 0.0
    prefix = work[count + 1]  # the running product of the arms before i
    for n in range(size):
        prefix[n] = 1.0
    for i in range(count):
        k = alive[i]
        row, density, after = cdf[k], pdf[k], work[i + 1]
        mass = 0.0
        for n in range(1, last):
            mass += weights[n] * density[n] * prefix[n] * after[n]
        others = prefix[last] * after[last]
        tail = 1.0 - row[last]
        out[k] = mass + tail * others
        above = max(above, tail * (1.0 - others))
        for n in range(size):
            prefix[n] *= row[n]
    total = 0.0
    for k in range(n_arms):
        total += out[k]
    return total, below, above


@njit(cache=True)
def mass_error(cdf_row, pdf_row, weights):
    """|∫ f over the grid − (F(U) − F(L))|: the quadrature error of one arm's density, an
    a-posteriori check that the panels resolve it."""
    integral = 0.0
    for n in range(1, weights.size - 1):
        integral += weights[n] * pdf_row[n]
    return abs(integral - (cdf_row[weights.size - 1] - cdf_row[0]))


# ----------------------------------------------------------------- Beta, logit scale


@njit(cache=True)
def beta_steps(cdf_row, pdf_row, log_x, log_complement, a, b, successes, failures):
    """Advance one arm's Beta(a, b) CDF and logit-scale density rows by integer counts.

    On the logit t = log(x / (1 − x)) the density is g(t) = x^a (1 − x)^b / B(a, b) and
    the CDF I_x(a, b). DLMF 8.17.20–21: I_x(a + 1, b) = I_x(a, b) − g / a and
    I_x(a, b + 1) = I_x(a, b) + g / b, while g picks up x (a + b) / a or (1 − x) (a + b) / b.
    """
    for _ in range(successes):
        ratio = (a + b) / a
        for n in range(cdf_row.size):
            g = pdf_row[n]
            cdf_row[n] = min(max(cdf_row[n] - g / a, 0.0), 1.0)
            pdf_row[n] = g * math.exp(log_x[n]) * ratio
        a += 1.0
    for _ in range(failures):
        ratio = (a + b) / b
        for n in range(cdf_row.size):
            g = pdf_row[n]
            cdf_row[n] = min(max(cdf_row[n] + g / b, 0.0), 1.0)
            pdf_row[n] = g * math.exp(log_complement[n]) * ratio
        b += 1.0


@njit(cache=True)
def trigamma(x):
    """ψ'(x) for x > 0: recurrence ψ'(x) = ψ'(x + 1) + 1/x² up to x ≥ 20, then the
    asymptotic series (Abramowitz & Stegun 6.4.12)."""
    value = 0.0
    while x < 20.0:
        value += 1.0 / (x * x)
        x += 1.0
    inverse = 1.0 / x
    inverse2 = inverse * inverse
    series = inverse2 / 6.0 - inverse2**2 * (1.0 / 30.0 - inverse2 * (1.0 / 42.0 - inverse2 / 30.0))
    return value + inverse + 0.5 * inverse2 + inverse * series


@njit(cache=True)
def logit_beta_scale(a, b):
    """sd of logit(X) for X ~ Beta(a, b): √(ψ'(a) + ψ'(b)) (the logit is a difference of
    log-gamma variables)."""
    return math.sqrt(trigamma(a) + trigamma(b))


# --------------------------------------------------------------------- Student t


_STIRLING = (1.0 / 12, -1.0 / 360, 1.0 / 1260, -1.0 / 1680, 1.0 / 1188, -691.0 / 360360, 1.0 / 156)


@njit(cache=True)
def _stirling_correction(x):
    """log Γ(x) − [(x − ½) log x − x + ½ log 2π] by its Stirling series, for x ≥ 10."""
    inverse = 1.0 / x
    inverse2 = inverse * inverse
    series = 0.0
    for i in range(len(_STIRLING) - 1, -1, -1):
        series = series * inverse2 + _STIRLING[i]
    return inverse * series


@njit(cache=True)
def log_beta(a, b):
    """log B(a, b) to ~1e-15 absolute for large arguments (R's lbeta, after TOMS 708:
    the large terms cancel analytically; a difference of lgamma values near 10⁸ would lose
    ~1e-8)."""
    small, large = min(a, b), max(a, b)
    total = small + large
    if small >= 10.0:
        ratio = small / total
        return (
            -0.5 * math.log(large) + _LOG_SQRT_2PI + _stirling_correction(small)
            + _stirling_correction(large) - _stirling_correction(total)
            + (small - 0.5) * math.log(ratio) + large * math.log1p(-ratio)
        )  # fmt: skip
    if large >= 10.0:
        ratio = small / total
        return (
            math.lgamma(small) + _stirling_correction(large) - _stirling_correction(total)
            + small - small * math.log(total) + (large - 0.5) * math.log1p(-ratio)
        )  # fmt: skip
    return math.lgamma(small) + math.lgamma(large) - math.lgamma(total)


@njit(cache=True)
def _beta_fraction(a, b, x):
    """The continued fraction of I_x(a, b) (DLMF 8.17.22) by the modified Lentz method;
    converges fast for x < (a + 1) / (a + b + 2)."""
    tiny = 1e-300
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    c = 1.0
    value = d
    for m in range(1, 10_000):
        even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
        d = 1.0 + even * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + even / c
        c = c if abs(c) > tiny else tiny
        value *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
        d = 1.0 + odd * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + odd / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        value *= step
        if abs(step - 1.0) < 1e-15:
            break
    return value


# From this many degrees of freedom on, the t tail comes from its expansion in 1/df
# (error < 3e-12 for |z| ≤ 12, checked against mpmath; smaller beyond, where both vanish).
EXPANSION_DF = 1000.0


@njit(cache=True)
def _student_t_tail_expansion(z, z2, inverse_df):
    """P(T > z), z ≥ 0, for T ~ t_df with df large: Φ(−z) + φ(z) (g₁/ν + g₂/ν² + g₃/ν³),
    the asymptotic expansion of the t CDF about the normal (Fisher, "Expansion of
    'Student's' integral in powers of n⁻¹", Metron 1925), with g₁ = (z³ + z)/4,
    g₂ = (3z⁷ − 7z⁵ − 5z³ − 3z)/96, g₃ = (z¹¹ − 11z⁹ + 14z⁷ + 6z⁵ − 3z³ − 15z)/384 (the
    coefficients verified against mpmath's incomplete beta function at ν = 10¹⁴ and 10²⁰)."""
    first = (z2 + 1.0) * z / 4.0
    second = (((3.0 * z2 - 7.0) * z2 - 5.0) * z2 - 3.0) * z / 96.0
    third = (((((z2 - 11.0) * z2 + 14.0) * z2 + 6.0) * z2 - 3.0) * z2 - 15.0) * z / 384.0
    series = inverse_df * (first + inverse_df * (second + inverse_df * third))
    below, density = normal_cdf_pdf(-z)
    return below + density * series


@njit(cache=True)
def student_t_tail(z, df, scale):
    """P(T > |z|) for T ~ t_df: ½ I_x(df/2, ½) with x = df / (df + z²), from whichever of
    I_x(df/2, ½) and 1 − I_{1−x}(½, df/2) converges fast (x and 1 − x computed apart, so
    neither is rounded); ``scale`` is log B(df/2, ½)."""
    z2 = z * z
    if df >= EXPANSION_DF:
        return _student_t_tail_expansion(abs(z), z2, 1.0 / df)
    x = df / (df + z2)
    y = z2 / (df + z2)
    a = 0.5 * df
    if x < (a + 1.0) / (a + 2.5):
        front = math.exp(a * math.log(x) + 0.5 * math.log(y) - scale) / a
        return 0.5 * front * _beta_fraction(a, 0.5, x)
    if y == 0.0:
        return 0.5
    front = math.exp(0.5 * math.log(y) + a * math.log1p(-y) - scale) / 0.5
    return 0.5 * (1.0 - front * _beta_fraction(0.5, a, y))


@njit(cache=True)
def student_t_fill(cdf_row, pdf_row, nodes, loc, scale, df):
    """CDF and density of t_df(loc, scale²) at every node (from df = EXPANSION_DF on,
    0 or 1 and 0 beyond 12 scales, where the tail is below 1e-29)."""
    beta_scale = log_beta(0.5 * df, 0.5)
    log_norm = -beta_scale - 0.5 * math.log(df) - math.log(scale)
    reach = 12.0 if df >= EXPANSION_DF else np.inf
    for n in range(nodes.size):
        z = (nodes[n] - loc) / scale
        if abs(z) > reach:
            cdf_row[n], pdf_row[n] = (1.0 if z > 0.0 else 0.0), 0.0
            continue
        tail = student_t_tail(z, df, beta_scale)
        cdf_row[n] = 1.0 - tail if z > 0.0 else tail
        pdf_row[n] = math.exp(log_norm - 0.5 * (df + 1.0) * math.log1p(z * z / df))


# ------------------------------------------------------------------------- normal


def _normal_table(step: float, reach: float, order: int) -> np.ndarray:
    """Taylor coefficients of Φ about every node z_i of a grid of ``step`` on [−reach,
    reach], one row per order: Φ(z_i + δ) = Φ(z_i) + φ(z_i) Σ_{n≥1} (−1)^{n−1} He_{n−1}(z_i)
    δⁿ / n!, He the probabilists' Hermite polynomials (the derivatives of φ, DLMF 18.5.9).
    The derivative of the same polynomial gives φ(z_i + δ)."""
    centres = np.arange(-reach, reach + 0.5 * step, step)
    density = np.exp(-0.5 * centres**2) / math.sqrt(2.0 * math.pi)
    hermite = [np.ones_like(centres), centres.copy()]
    for n in range(1, order):
        hermite.append(centres * hermite[n] - n * hermite[n - 1])
    table = np.empty((order + 1, centres.size))
    table[0] = 0.5 * np.array([math.erfc(-z / math.sqrt(2.0)) for z in centres])
    for n in range(order):
        table[n + 1] = density * (-1.0) ** n * hermite[n] / math.factorial(n + 1)
    return table


# Φ by its 8-term Taylor polynomial about the nearest 1/32 and φ by that polynomial's
# derivative (|δ| ≤ 1/64: errors below 1e-15), ~3× faster than erfc and exp; beyond ±9 the
# CDF is 0 or 1 to 1e-18.
_TABLE_STEP = 1.0 / 32.0
_TABLE_REACH = 9.0
_TABLE = _normal_table(_TABLE_STEP, _TABLE_REACH, 7)  # (orders, centres): gathered by index


@njit(cache=True, inline="always")
def _table_entry(z):
    """(Φ(z), φ(z)) for |z| ≤ 9 from the table row nearest z."""
    c = _TABLE
    i = min(int((z + _TABLE_REACH) * (1.0 / _TABLE_STEP) + 0.5), c.shape[1] - 1)
    d = z - (i * _TABLE_STEP - _TABLE_REACH)
    c1, c2, c3, c4, c5, c6, c7 = c[1, i], c[2, i], c[3, i], c[4, i], c[5, i], c[6, i], c[7, i]
    cdf = c[0, i] + d * (c1 + d * (c2 + d * (c3 + d * (c4 + d * (c5 + d * (c6 + d * c7))))))
    pdf = c1 + d * (2 * c2 + d * (3 * c3 + d * (4 * c4 + d * (5 * c5 + d * (6 * c6 + d * 7 * c7)))))
    return cdf, pdf


@njit(cache=True, inline="always")
def normal_cdf_pdf(z):
    """(Φ(z), φ(z)) from the Taylor table; beyond ±9, (0 or 1, 0), off by < 1e-18."""
    if not abs(z) < _TABLE_REACH:
        return (1.0 if z > 0.0 else 0.0), 0.0
    return _table_entry(z)


@njit(cache=True, fastmath={"contract"})
def normal_fill(cdf_row, pdf_row, nodes, mean, sd):
    """Φ and φ of N(mean, sd²) at the nodes by the Taylor table (0 or 1, and 0, beyond
    ±9 sd), written branch-free so that the loop vectorizes."""
    inverse = 1.0 / sd
    for n in range(nodes.size):
        z = (nodes[n] - mean) * inverse
        cdf, pdf = _table_entry(min(max(z, -_TABLE_REACH), _TABLE_REACH))
        inside = abs(z) < _TABLE_REACH
        cdf_row[n] = cdf if inside else (1.0 if z > 0.0 else 0.0)
        pdf_row[n] = pdf * inverse if inside else 0.0


@njit(cache=True)
def _product_at_most(x, means, scale, available, target):
    """Whether Π_j F_j(x) ≤ target for normal arms (the lower truncation bound of
    argmax_mass if the domain started at x); stops as soon as the product is below it."""
    product = 1.0
    for k in range(means.size):
        if available[k]:
            z = (x - means[k]) / scale[k]
            if z < _TABLE_REACH:
                product *= normal_cdf_pdf(z)[0]
                if product <= target:
                    return True
    return product <= target


@njit(cache=True)
def _tail_bound(x, means, scale, available):
    """max_k t_k Σ_{j≠k} t_j, t_j = 1 − F_j(x): the upper truncation bound of argmax_mass
    if the domain ended at x."""
    tails, largest = 0.0, 0.0
    for k in range(means.size):
        if available[k]:
            z = (x - means[k]) / scale[k]
            if z < _TABLE_REACH:
                tail = 1.0 - normal_cdf_pdf(z)[0]
                tails += tail
                largest = max(largest, tail)
    return largest * (tails - largest)


@njit(cache=True)
def _tighten_normal_domain(lower, upper, means, scale, available):
    """Raise L and lower U by bisection (4 halvings each) as far as the truncation bounds stay
    below TRUNCATION / 10: with many overlapping arms Π_j F_j vanishes well above any one
    arm's window start (100 equal arms: from 0.8 sd above their mean, not 4.3 below)."""
    target = 0.1 * TRUNCATION
    low, high = lower, upper
    for _ in range(4):
        middle = 0.5 * (low + high)
        if _product_at_most(middle, means, scale, available, target):
            low = middle
        else:
            high = middle
    new_lower = low
    low, high = new_lower, upper
    for _ in range(4):
        middle = 0.5 * (low + high)
        if _tail_bound(middle, means, scale, available) <= target:
            high = middle
        else:
            low = middle
    return new_lower, high


@njit(cache=True)
def normal_argmax_row(means, sds, available, out):
    """P(arm k has the largest value) for independent N(means_k, sds_k²) arms (one
    context's LinTS scores): grid, fill and quadrature in one pass. Arms with sd 0 are
    point masses; if every available sd is 0, the argmax with ties shared."""
    n_arms = means.size
    top_sd = 0.0
    for k in range(n_arms):
        out[k] = 0.0
        if available[k]:
            top_sd = max(top_sd, sds[k])
    if not top_sd > 0.0:
        best, ties = -np.inf, 0
        for k in range(n_arms):
            if available[k]:
                if means[k] > best:
                    best, ties = means[k], 1
                elif means[k] == best:
                    ties += 1
        for k in range(n_arms):
            if available[k] and means[k] == best:
                out[k] = 1.0 / ties
        return
    floor = 1e-12 * top_sd
    lo, hi = np.empty(n_arms), np.empty(n_arms)
    scale, growth = np.empty(n_arms), np.zeros(n_arms)
    for k in range(n_arms):
        scale[k] = max(sds[k], floor)
        lo[k] = means[k] - WINDOW_SCORE * scale[k]
        hi[k] = means[k] + WINDOW_SCORE * scale[k]
    lower, upper, top = domain(lo, hi, available)
    # below the second largest 1e-5 quantile two arms have F ≤ 1e-5: Π_j F_j ≤ 1e-10 there
    first, second = -np.inf, -np.inf
    for k in range(n_arms):
        if available[k]:
            start = means[k] - PAIR_SCORE * scale[k]
            if start > first:
                first, second = start, first
            elif start > second:
                second = start
    lower = max(lower, second)
    if not upper > lower:
        out[top] = 1.0
        return
    lower, upper = _tighten_normal_domain(lower, upper, means, scale, available)
    live = np.zeros(n_arms, dtype=np.bool_)
    count = 0
    for k in range(n_arms):
        if available[k] and hi[k] > lower:
            live[k] = True
            count += 1
    nodes, weights = grid(
        lower, upper, lo, hi, means, scale, growth, live, PANEL_WIDTH, GL_NODES, GL_WEIGHTS
    )
    cdf = np.empty((count, nodes.size))  # normal_fill writes every entry
    pdf = np.empty((count, nodes.size))
    index = np.empty(count, dtype=np.int64)
    i = 0
    for k in range(n_arms):
        if live[k]:
            normal_fill(cdf[i], pdf[i], nodes, means[k], scale[k])
            index[i] = k
            i += 1
    mass = np.empty(count)
    work = np.empty((count + 2, nodes.size))
    total, _, _ = argmax_mass(cdf, pdf, weights, work, mass)
    for i in range(count):
        out[index[i]] = mass[i] / total


@njit(cache=True)
def normal_argmax(means, sds, available, out):
    """Rows of (N, K) means and sds → (N, K) probabilities of being the largest."""
    for n in range(means.shape[0]):
        normal_argmax_row(means[n], sds[n], available, out[n])


# ------------------------------------------------------------ incremental refreshes
#
# status codes of the refresh kernels: the probabilities are in ``out`` (READY), some arms
# need their rows filled from scratch by the caller (FILL, listed in ``needs``), or the
# grid no longer resolves the posteriors and must be rebuilt (REBUILD).
READY, FILL, REBUILD = 0, 1, 2
# A posterior may narrow to this fraction of its scale when the grid was built, and take
# this many recurrence steps between fresh fills, before the rows are refreshed.
SHRINK = 0.5
MAX_STEPS = 4096
STEPS_PER_CALL = 64
# Below this many degrees of freedom a t posterior's panels widen away from its centre.
HEAVY_TAIL_DF = 30.0
TAIL_GROWTH = 0.3


@njit(cache=True)
def _finish(cdf, pdf, weights, work, out, truncation=TRUNCATION):
    total, below, above = argmax_mass(cdf, pdf, weights, work, out)
    if not (abs(total - 1.0) <= SUM_TOLERANCE and below <= truncation and above <= truncation):
        return REBUILD
    for k in range(out.size):
        out[k] /= total
    return READY


@njit(cache=True)
def beta_refresh(
    alpha, beta, row_alpha, row_beta, steps, filled, built_scale,
    cdf, pdf, log_x, log_complement, weights, work, needs, out, truncation,
):  # fmt: skip
    """Bring every arm's rows to its current Beta(alpha, beta) posterior and integrate.

    Rows advance by the integer-count recurrences when an arm gained whole successes and
    failures (at most STEPS_PER_CALL at once, MAX_STEPS between fresh fills); any other
    change (fractional rewards, decay, a merge) is left to the caller (FILL). Each advanced
    arm is checked: its logit scale must stay above SHRINK × the scale the grid was built
    for, and its density must integrate to its CDF difference; the truncation bounds must
    stay below ``truncation``."""
    status = READY
    count = 0
    for k in range(alpha.size):
        if alpha[k] == row_alpha[k] and beta[k] == row_beta[k]:
            continue
        successes = alpha[k] - row_alpha[k]
        failures = beta[k] - row_beta[k]
        whole = (
            filled[k] and successes >= 0.0 and failures >= 0.0
            and successes == math.floor(successes) and failures == math.floor(failures)
            and successes + failures <= STEPS_PER_CALL
            and steps[k] + successes + failures <= MAX_STEPS
        )  # fmt: skip
        if not whole:
            needs[count] = k
            count += 1
            status = FILL
            continue
        beta_steps(
            cdf[k], pdf[k], log_x, log_complement, row_alpha[k], row_beta[k],
            int(successes), int(failures),
        )  # fmt: skip
        row_alpha[k], row_beta[k] = alpha[k], beta[k]
        steps[k] += successes + failures
        if logit_beta_scale(alpha[k], beta[k]) < SHRINK * built_scale[k]:
            return REBUILD
        if mass_error(cdf[k], pdf[k], weights) > MASS_TOLERANCE:
            return REBUILD
    needs[count] = -1
    if status != READY:
        return status
    return _finish(cdf, pdf, weights, work, out, truncation)


@njit(cache=True)
def student_refresh(
    loc, scale, df, row_loc, row_scale, row_df, built_scale, built_df,
    cdf, pdf, nodes, weights, work, out,
):  # fmt: skip
    """Refill the rows of every arm whose t posterior changed (one numba t CDF per node),
    check each (scale against the grid's, density mass, and — while the tails are heavy —
    degrees of freedom at most doubled since the grid was placed, since the windows of a
    t with few degrees of freedom shrink fast) and integrate."""
    for k in range(loc.size):
        if loc[k] == row_loc[k] and scale[k] == row_scale[k] and df[k] == row_df[k]:
            continue
        student_t_fill(cdf[k], pdf[k], nodes, loc[k], scale[k], df[k])
        row_loc[k], row_scale[k], row_df[k] = loc[k], scale[k], df[k]
        if scale[k] < SHRINK * built_scale[k]:
            return REBUILD
        if built_df[k] < HEAVY_TAIL_DF and df[k] > 2.0 * built_df[k]:
            return REBUILD
        if mass_error(cdf[k], pdf[k], weights) > MASS_TOLERANCE:
            return REBUILD
    return _finish(cdf, pdf, weights, work, out)


@njit(cache=True)
def top_two(prob_best, beta, out):
    """Russo's top-two choice probabilities ψ_i = β π_i + (1 − β) π_i Σ_{j≠i} π_j / (1 − π_j)
    from P(best) π, with 1 − π_j computed as Σ_{l≠j} π_l (no cancellation near π_j = 1) and
    a leader with 1 − π_j = 0 replaying itself."""
    n_arms = prob_best.size
    total = 0.0
    for k in range(n_arms):
        total += prob_best[k]
    ratios = 0.0
    for k in range(n_arms):
        rest = total - prob_best[k]
        if rest > 0.0:
            ratios += prob_best[k] / rest
    norm = 0.0
    for k in range(n_arms):
        pi = prob_best[k]
        rest = total - pi
        own = pi / rest if rest > 0.0 else 0.0
        challenger = pi * (ratios - own) + (pi if rest <= 0.0 else 0.0)
        out[k] = beta * pi + (1.0 - beta) * challenger
        norm += out[k]
    for k in range(n_arms):
        out[k] /= norm
