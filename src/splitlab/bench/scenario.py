"""User scenarios for ``splitlab bench --scenario FILE``: a bandit study or a validity study.

A scenario is a small TOML file (YAML too when PyYAML is importable). A bandit scenario
names an environment, a horizon, replications, a seed and the policies to compare, each
with its hyperparameters; a validity scenario names a data-generating process, the looks,
the replications, α and the sequential methods to check. Every field is validated before
anything runs, and a bad one raises :class:`~splitlab.errors.InvalidArgumentError` naming
its path in the file (``policies[1].alpha``, ``process.distribution``, ``looks``)::

    kind = "bandit"                 # or "validity"
    name = "checkout-buttons"      # the results file is scenario-<name>.md (default: file stem)
    horizon = 5000
    replications = 200
    seed = 1

    [environment]
    kind = "bernoulli"              # bernoulli | gaussian | linear | logistic | piecewise
    means = [0.04, 0.05, 0.055]

    [[policies]]
    kind = "ThompsonSampling"       # a class of splitlab.bandits

    [[policies]]
    kind = "UCB1"
    alpha = 0.5                     # any hyperparameter of that class
    label = "UCB1 (alpha 0.5)"      # optional row label

Environments: ``bernoulli`` and ``gaussian`` take ``means`` (gaussian also ``sd``) or
``testbed = N`` (random means, ``testbed_seed``); ``linear`` and ``logistic`` take
``n_arms``, ``n_features`` and ``sd`` (linear) or ``scale`` (logistic), θ drawn with
``testbed_seed``, or an explicit ``theta`` (arms × features); ``piecewise`` takes ``means``,
a list of mean vectors, and ``change_points``. A validity scenario::

    kind = "validity"
    replications = 2000
    looks = 20
    batch = 500                     # units per arm per look
    alpha = 0.05
    methods = ["fixed", "peeking", "cs", "msprt", "gst-obf", "gst-pocock"]

    [process]
    distribution = "bernoulli"      # normal | bernoulli | lognormal
    mean = 0.1                      # control mean (rate)
    effects = [0.0, 0.01]           # treatment − control; 0 gives the type I error

>>> scenario = parse({"kind": "validity", "replications": 100, "looks": 5, "batch": 50,
...                   "process": {"distribution": "normal", "effects": [0.0]}}, name="demo")
>>> scenario.methods
('fixed', 'peeking', 'cs', 'msprt', 'gst-obf', 'gst-pocock')
>>> parse({"kind": "bandit", "horizon": 10, "replications": 2,
...        "environment": {"kind": "bernoulli", "means": [0.1, 0.2]},
...        "policies": [{"kind": "UCB1"}, {"kind": "UCB1", "alpha": -1}]}, name="x")
Traceback (most recent call last):
...
splitlab.errors.InvalidArgumentError: policies[1].alpha: must be in [0.0, inf], got -1
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitlab.bench.markdown import table, write_text
from splitlab.bench.progress import Progress
from splitlab.bench.provenance import Provenance
from splitlab.errors import InvalidArgumentError

__all__ = [
    "BanditScenario",
    "ValidityScenario",
    "load",
    "parse",
    "run",
]

ENVIRONMENTS = ("bernoulli", "gaussian", "linear", "logistic", "piecewise")
DISTRIBUTIONS = ("normal", "bernoulli", "lognormal")
METHODS = ("fixed", "peeking", "cs", "msprt", "gst-obf", "gst-pocock")
SIGMAS = 4.0
HEADERS_BANDIT = ("policy", "mean cumulative regret at T", "± 1.96 sd/√R", "growth T/10 → T")


@dataclass(frozen=True)
class PolicySpec:
    label: str
    kind: str
    parameters: dict


@dataclass(frozen=True)
class BanditScenario:
    name: str
    environment: object
    environment_description: str
    horizon: int
    replications: int
    seed: int
    policies: tuple[PolicySpec, ...]


@dataclass(frozen=True)
class ValidityScenario:
    name: str
    distribution: str
    mean: float | None
    sd: float | None
    effects: tuple[float, ...]
    replications: int
    looks: int
    batch: int
    alpha: float
    seed: int
    methods: tuple[str, ...]


# ---------------------------------------------------------------------------- fields


def _fail(path: str, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(path, problem)


def _table(value: object, path: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise _fail(path, f"must be a table of fields, got {value!r}")
    return value


def _known(fields: Mapping, allowed: tuple[str, ...], prefix: str) -> None:
    for key in fields:
        if key not in allowed:
            raise _fail(f"{prefix}{key}", f"unknown field; expected one of {', '.join(allowed)}")


def _integer(fields: Mapping, key: str, path: str, *, default=None, minimum: int = 1) -> int:
    value = fields.get(key, default)
    if value is None:
        raise _fail(path, "is required")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise _fail(path, f"must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _real(value: object, path: str, *, low=-math.inf, high=math.inf, open_low=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise _fail(path, f"must be a finite number, got {value!r}")
    if value < low or value > high or (open_low and value == low):
        bracket = "(" if open_low else "["
        raise _fail(path, f"must be in {bracket}{low:g}, {high:g}], got {value!r}")
    return float(value)


def _choice(value: object, path: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(path, f"unknown value {value!r}; expected one of {', '.join(choices)}")
    return str(value)


def _numbers(value: object, path: str) -> list:
    if not isinstance(value, list) or not value:
        raise _fail(path, f"must be a non-empty list, got {value!r}")
    return value


# ---------------------------------------------------------------------------- bandits


def _environment(fields: Mapping, horizon: int):
    from splitlab import simulate

    fields = _table(fields, "environment")
    kind = _choice(fields.get("kind"), "environment.kind", ENVIRONMENTS)
    allowed = {
        "bernoulli": ("kind", "means", "testbed", "testbed_seed"),
        "gaussian": ("kind", "means", "sd", "testbed", "testbed_seed"),
        "linear": ("kind", "n_arms", "n_features", "sd", "theta", "testbed_seed"),
        "logistic": ("kind", "n_arms", "n_features", "scale", "theta", "testbed_seed"),
        "piecewise": ("kind", "means", "change_points"),
    }[kind]
    _known(fields, allowed, "environment.")
    seed = _integer(fields, "testbed_seed", "environment.testbed_seed", default=0, minimum=0)
    try:
        if kind in ("bernoulli", "gaussian"):
            if ("means" in fields) == ("testbed" in fields):
                raise _fail("environment.means", "give either means = [...] or testbed = N")
            cls = simulate.BernoulliArms if kind == "bernoulli" else simulate.GaussianArms
            extra = {"sd": fields["sd"]} if "sd" in fields else {}
            if "testbed" in fields:
                arms = _integer(fields, "testbed", "environment.testbed", minimum=2)
                return cls.testbed(arms, seed=seed, **extra), f"{kind} testbed, {arms} arms"
            means = _numbers(fields["means"], "environment.means")
            return cls(means, **extra), f"{kind} arms, means {means}"
        if kind in ("linear", "logistic"):
            cls = simulate.LinearContextual if kind == "linear" else simulate.LogisticContextual
            noise = "sd" if kind == "linear" else "scale"
            if "theta" in fields:
                theta = np.asarray(_numbers(fields["theta"], "environment.theta"), dtype=float)
                environment = cls(theta, **({"sd": fields["sd"]} if "sd" in fields else {}))
                return environment, f"{kind} contextual, θ given ({theta.shape})"
            arms = _integer(fields, "n_arms", "environment.n_arms", default=10, minimum=2)
            features = _integer(fields, "n_features", "environment.n_features", default=5)
            extra = {noise: fields[noise]} if noise in fields else {}
            environment = cls.random(arms, features, seed=seed, **extra)
            return environment, f"{kind} contextual, {arms} arms, d = {features}"
        pieces = _numbers(fields.get("means"), "environment.means")
        if "change_points" not in fields:
            raise _fail("environment.change_points", "is required for a piecewise environment")
        points = _numbers(fields["change_points"], "environment.change_points")
        if any(not isinstance(p, int) or not 0 < p < horizon for p in points):
            raise _fail("environment.change_points", f"must be steps in (0, {horizon})")
        return (
            simulate.PiecewiseStationary(np.asarray(pieces, dtype=float), change_points=points),
            f"piecewise stationary, {len(pieces)} pieces, changes at {points}",
        )
    except InvalidArgumentError as exc:
        if exc.argument.startswith("environment."):
            raise
        raise _fail(f"environment.{exc.argument}", exc.problem) from exc
    except (TypeError, ValueError) as exc:
        raise _fail("environment", str(exc)) from exc


def _policy(fields: object, index: int) -> PolicySpec:
    from splitlab import bandits

    path = f"policies[{index}]"
    fields = dict(_table(fields, path))
    names = tuple(sorted(name for name in bandits.__all__ if name[0].isupper()))
    kind = fields.pop("kind", None)
    if kind is None:
        raise _fail(f"{path}.kind", f"is required; one of {', '.join(names)}")
    cls = getattr(bandits, _choice(kind, f"{path}.kind", names))
    label = fields.pop("label", None)
    accepted = [
        name
        for name, parameter in inspect.signature(cls).parameters.items()
        if name not in ("n_arms", "n_features") and parameter.kind is not parameter.VAR_KEYWORD
    ]
    for key in fields:
        if key not in accepted:
            raise _fail(
                f"{path}.{key}", f"is not a parameter of {kind}; expected one of {accepted}"
            )
    try:
        cls(**fields)
    except InvalidArgumentError as exc:
        raise _fail(f"{path}.{exc.argument}", exc.problem) from exc
    except (TypeError, ValueError) as exc:
        raise _fail(path, str(exc)) from exc
    if label is None:
        label = kind + (
            "(" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")" if fields else ""
        )
    return PolicySpec(str(label), kind, fields)


def _bandit(fields: Mapping, name: str) -> BanditScenario:
    _known(fields, ("kind", "name", "horizon", "replications", "seed", "environment",
                    "policies"), "")  # fmt: skip
    horizon = _integer(fields, "horizon", "horizon")
    replications = _integer(fields, "replications", "replications")
    seed = _integer(fields, "seed", "seed", default=0, minimum=0)
    if "environment" not in fields:
        raise _fail("environment", "is required")
    environment, description = _environment(fields["environment"], horizon)
    policies = fields.get("policies")
    if not isinstance(policies, list) or not policies:
        raise _fail("policies", "must be a non-empty list of [[policies]] tables")
    specs = tuple(_policy(policy, index) for index, policy in enumerate(policies))
    labels = [spec.label for spec in specs]
    for index, label in enumerate(labels):
        if labels.index(label) != index:
            raise _fail(f"policies[{index}].label", f"{label!r} is used twice; give a label")
    return BanditScenario(name, environment, description, horizon, replications, seed, specs)


# ---------------------------------------------------------------------------- validity


def _validity(fields: Mapping, name: str) -> ValidityScenario:
    _known(fields, ("kind", "name", "replications", "looks", "batch", "alpha", "seed",
                    "methods", "process"), "")  # fmt: skip
    replications = _integer(fields, "replications", "replications")
    looks = _integer(fields, "looks", "looks")
    batch = _integer(fields, "batch", "batch", minimum=2)
    alpha = _real(fields.get("alpha", 0.05), "alpha", low=0.0, high=0.5, open_low=True)
    seed = _integer(fields, "seed", "seed", default=0, minimum=0)
    methods = fields.get("methods", list(METHODS))
    if not isinstance(methods, list) or not methods:
        raise _fail("methods", f"must be a non-empty list of {', '.join(METHODS)}")
    methods = tuple(_choice(m, f"methods[{i}]", METHODS) for i, m in enumerate(methods))
    if "process" not in fields:
        raise _fail("process", "is required")
    process = _table(fields["process"], "process")
    _known(process, ("distribution", "mean", "sd", "effects"), "process.")
    distribution = _choice(
        process.get("distribution", "normal"), "process.distribution", DISTRIBUTIONS
    )
    mean = None if "mean" not in process else _real(process["mean"], "process.mean")
    sd = None
    if "sd" in process:
        if distribution == "bernoulli":
            raise _fail("process.sd", "a Bernoulli process has no sd (it is √(p(1 − p)))")
        sd = _real(process["sd"], "process.sd", low=0.0, open_low=True)
    if distribution == "bernoulli" and mean is not None and not 0.0 < mean < 1.0:
        raise _fail("process.mean", f"a Bernoulli rate must be in (0, 1), got {mean!r}")
    if distribution == "lognormal" and mean is not None and mean <= 0.0:
        raise _fail("process.mean", f"a lognormal mean must be positive, got {mean!r}")
    effects = _numbers(process.get("effects", [0.0]), "process.effects")
    effects = tuple(_real(e, f"process.effects[{i}]") for i, e in enumerate(effects))
    if distribution == "bernoulli":
        rate = 0.5 if mean is None else mean
        for index, effect in enumerate(effects):
            if not 0.0 < rate + effect < 1.0:
                raise _fail(f"process.effects[{index}]", "treatment rate must be in (0, 1)")
    return ValidityScenario(name, distribution, mean, sd, effects, replications, looks, batch,
                            alpha, seed, methods)  # fmt: skip


# ---------------------------------------------------------------------------- load


def parse(fields: Mapping, *, name: str) -> BanditScenario | ValidityScenario:
    """A scenario from its parsed fields (``name`` when the file gives none)."""
    fields = _table(fields, "scenario")
    kind = _choice(fields.get("kind"), "kind", ("bandit", "validity"))
    given = fields.get("name", name)
    if not isinstance(given, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", given):
        raise _fail("name", f"must be letters, digits, '-', '_' or '.', got {given!r}")
    return _bandit(fields, given) if kind == "bandit" else _validity(fields, given)


def load(path: str | Path) -> BanditScenario | ValidityScenario:
    """Read and validate a TOML (``.toml``) or YAML (``.yaml``/``.yml``) scenario file."""
    path = Path(path)
    if not path.is_file():
        raise _fail("--scenario", f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            fields = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise _fail("--scenario", f"{path} is not valid TOML: {exc}") from exc
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise _fail(
                "--scenario", "YAML scenarios need PyYAML (pip install pyyaml); or use TOML"
            ) from exc
        try:
            fields = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise _fail("--scenario", f"{path} is not valid YAML: {exc}") from exc
    else:
        raise _fail("--scenario", f"expected a .toml, .yaml or .yml file, got {path.name}")
    return parse(fields, name=path.stem)


# ---------------------------------------------------------------------------- run


def _run_bandit(scenario: BanditScenario, out: Path, seed: int, progress: Progress):
    from matplotlib.figure import Figure

    from splitlab import bandits
    from splitlab.simulate import simulate

    progress.start(f"scenario {scenario.name}", total=len(scenario.policies))
    rows, curves = [], {}
    for spec in scenario.policies:
        policy = getattr(bandits, spec.kind)(**spec.parameters)
        try:
            result = simulate(
                policy, scenario.environment, scenario.horizon, scenario.replications,
                seed=seed, record=(),
            )  # fmt: skip
        except InvalidArgumentError as exc:
            rows.append([spec.label, f"does not accept this environment ({exc})", "—", "—"])
            progress.step(spec.label)
            continue
        curves[spec.label] = result
        final, band = result.mean_cumulative_regret[-1], result.band[-1]
        tenth = result.mean_cumulative_regret[max(scenario.horizon // 10 - 1, 0)]
        growth = f"{final / tenth:.1f}x" if tenth > 0 else "—"
        rows.append([spec.label, f"{final:,.2f}", f"{band:,.2f}", growth])
        progress.step(spec.label)
    progress.finish()
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    axis = figure.subplots()
    steps = np.arange(1, scenario.horizon + 1)
    for label, result in curves.items():
        mean, band = result.mean_cumulative_regret, result.band
        (line,) = axis.plot(steps, mean, label=label, linewidth=1.2)
        axis.fill_between(steps, mean - band, mean + band, color=line.get_color(), alpha=0.2)
    axis.set_xlabel("step")
    axis.set_ylabel("mean cumulative regret (±1.96 sd/√R)")
    axis.set_title(f"{scenario.name}: {scenario.environment_description}", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    png = out.with_suffix(".png")
    figure.savefig(png, dpi=100)
    body = f"""Environment: {scenario.environment_description}; horizon {scenario.horizon:,},
{scenario.replications:,} replications. Regret is the pseudo-regret
Σ_t max_k E[r_k | x_t] − E[r_a_t | x_t]; "growth" is the regret at T over the regret at
T/10 (10x: linear regret).

{table(HEADERS_BANDIT, rows, "lrrr")}

![regret curves]({png.name})
"""
    return body, {"horizon": scenario.horizon, "replications": scenario.replications,
                  "environment": scenario.environment_description,
                  "policies": [spec.label for spec in scenario.policies]}  # fmt: skip


def _law_sd(scenario: ValidityScenario) -> float:
    if scenario.distribution == "bernoulli":
        rate = 0.5 if scenario.mean is None else scenario.mean
        return math.sqrt(rate * (1.0 - rate))
    return 1.0 if scenario.sd is None else scenario.sd


def _run_validity(scenario: ValidityScenario, out: Path, seed: int, progress: Progress):
    from matplotlib.figure import Figure

    from splitlab.bench import validity_sequential as suite
    from splitlab.sequential.group import GroupSequentialDesign
    from splitlab.simulate import ab_streams

    labels = {"fixed": suite.FIXED, "peeking": suite.PEEKING, "cs": suite.CS,
              "msprt": suite.MSPRT, "gst-obf": suite.OBF, "gst-pocock": suite.POCOCK}  # fmt: skip
    alpha, looks, batch = scenario.alpha, scenario.looks, scenario.batch
    designs = {
        suite.OBF: GroupSequentialDesign(k=looks, alpha=alpha, spending="obf"),
        suite.POCOCK: GroupSequentialDesign(k=looks, alpha=alpha, spending="pocock"),
    }
    tolerance = SIGMAS * math.sqrt(alpha * (1 - alpha) / scenario.replications)
    keywords = {"mean": scenario.mean}
    if scenario.sd is not None:
        keywords["sd"] = scenario.sd
    progress.start(f"scenario {scenario.name}", total=len(scenario.effects) + 1)
    sections, curves = [], {}
    for index, effect in enumerate(scenario.effects):
        streams = ab_streams(
            scenario.replications, looks, batch, distribution=scenario.distribution,
            effect=effect, seed=seed + index, **keywords,
        )  # fmt: skip
        analysis = suite.analyse(streams, _law_sd(scenario), looks, batch, designs,
                                 keep_intervals=True, alpha=alpha)  # fmt: skip
        rows = []
        for method in scenario.methods:
            reject = analysis.rejects[labels[method]]
            low, high = analysis.intervals[labels[method]]
            rate = float(np.mean(suite.ever(reject)))
            covered = float(np.mean(np.all((low <= effect) & (effect <= high), axis=1)))
            stop = suite.first_look(reject).mean()
            if effect == 0.0:
                verdict = "ok" if rate <= alpha + tolerance else "**ABOVE α**"
                if method == "peeking":
                    verdict += " (not a sequential method)"
            else:
                verdict = "—"
            rows.append([labels[method], f"{rate:.4f}", verdict, f"{covered:.4f}",
                         f"{stop:.1f} / {looks}"])  # fmt: skip
            curves[(effect, method)] = np.mean(np.logical_or.accumulate(reject, axis=1), axis=0)
        title = "type I error, A/A" if effect == 0.0 else "power"
        headers = ["method", "share rejected at some look", f"≤ α + {tolerance:.4f}",
                   "simultaneous coverage", "mean look of first rejection"]  # fmt: skip
        sections.append(f"### Effect {effect:g}: {title}\n\n" + table(headers, rows, "lrcrr"))
        progress.step(f"effect {effect:g}")
    figure = Figure(figsize=(5 * len(scenario.effects), 4), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(scenario.effects)))
    look = np.arange(1, looks + 1)
    for axis, effect in zip(axes, scenario.effects, strict=True):
        for method in scenario.methods:
            axis.plot(look, curves[(effect, method)], label=labels[method])
        axis.axhline(alpha, color="grey", linestyle=":", linewidth=1)
        axis.set_title(f"effect {effect:g}", fontsize=10)
        axis.set_xlabel("look")
        axis.set_ylabel("share rejected so far")
    axes[0].legend(fontsize=7)
    png = out.with_suffix(".png")
    figure.savefig(png, dpi=100)
    progress.step("plot")
    progress.finish()
    mean = "default" if scenario.mean is None else f"{scenario.mean:g}"
    body = (
        f"Process: {scenario.distribution} (control mean {mean}"
        + ("" if scenario.sd is None else f", sd {scenario.sd:g}")
        + f"); {scenario.replications:,} replications, {looks} looks of {batch:,} units per "
        f"arm; α = {alpha:g}; tolerance {SIGMAS:g} binomial standard errors. Coverage: the "
        "share of replications whose interval covers the true effect at every look at once "
        "(the fixed-horizon test: its one interval at the horizon).\n\n"
        + "\n\n".join(sections)
        + f"\n\n![share rejected by look]({png.name})\n"
    )
    return body, {"distribution": scenario.distribution, "mean": mean,
                  "effects": list(scenario.effects), "replications": scenario.replications,
                  "looks": looks, "batch": batch, "alpha": alpha,
                  "methods": list(scenario.methods)}  # fmt: skip


def run(
    scenario: BanditScenario | ValidityScenario,
    out_dir: Path,
    *,
    command: str,
    seed: int | None = None,
    progress: Progress | None = None,
    source: Path | None = None,
) -> Path:
    """Run a scenario and write ``out_dir/scenario-<name>.md`` (+ ``.png``); returns the path.
    ``seed`` overrides the scenario's own."""
    progress = progress or Progress()
    seed = scenario.seed if seed is None else seed
    out = Path(out_dir) / f"scenario-{scenario.name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    provenance = Provenance.start(command=command, seed=seed, parameters={})
    if isinstance(scenario, BanditScenario):
        body, parameters = _run_bandit(scenario, out, seed, progress)
        title = "bandit scenario"
    else:
        body, parameters = _run_validity(scenario, out, seed, progress)
        title = "validity scenario"
    provenance.parameters = {**({"file": source} if source else {}), **parameters}
    report = f"# {scenario.name} ({title})\n\n{provenance.block()}\n\n{body}"
    print(report)
    write_text(out, report)
    print(f"written to {out}")
    return out
