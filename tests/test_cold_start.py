"""Cold start (issue 13): ``import splitlab`` and ``splitlab --help`` import no numerical
library; every public name is imported on its first access and is the object its module
defines. Each check runs in a fresh interpreter, since this one has long imported
everything. How long a cold start takes is measured by ``benchmarks/cold_start.py``, not
here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import splitlab

# What a cold start must not import: the numerical and data libraries, and numba's compiler.
HEAVY = (
    "numpy",
    "numba",
    "llvmlite",
    "scipy",
    "pandas",
    "statsmodels",
    "pyarrow",
    "duckdb",
    "polars",
    "narwhals",
    "matplotlib",
)


def _fresh(*arguments: str) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, *arguments], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run


def _imported(*arguments: str) -> set[str]:
    """The modules a fresh ``python -X importtime ARGUMENTS`` imports (its stderr lists one
    per line: ``import time: self | cumulative | name``)."""
    lines = _fresh("-X", "importtime", *arguments).stderr.splitlines()
    return {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")} - {
        "package"
    }


def _heavy(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in HEAVY)


def test_the_import_scan_sees_imports():
    assert "json" in _imported("-c", "import json")


def test_import_splitlab_imports_no_heavy_library():
    loaded = _fresh(
        "-c", "import json, sys, splitlab; print(json.dumps(sorted(sys.modules)))"
    ).stdout
    assert _heavy(set(json.loads(loaded))) == []


@pytest.mark.parametrize("command", [[], ["demo"], ["analyze"], ["power"], ["bench"]])
def test_cli_help_imports_no_heavy_library(command):
    arguments = ("-m", "splitlab", *command, "--help")
    assert _heavy(_imported(*arguments)) == []
    assert _fresh(*arguments).stdout.startswith(f"usage: {' '.join(['splitlab', *command])}")


def test_cli_version_imports_no_heavy_library():
    assert _heavy(_imported("-m", "splitlab", "--version")) == []
    assert _fresh("-m", "splitlab", "--version").stdout.strip() == splitlab.__version__


def test_every_public_name_resolves_on_first_access_to_its_defining_object():
    # in a fresh interpreter, where each name is first reached through __getattr__
    script = """
import importlib, splitlab
for name in splitlab.__all__:
    value = getattr(splitlab, name)
    home = "splitlab" if name in ("errors", "__version__") else value.__module__
    assert getattr(importlib.import_module(home), name) is value, (name, home)
    assert name in dir(splitlab) and getattr(splitlab, name) is value, name
"""
    _fresh("-c", script)


def test_star_import_binds_every_public_name():
    script = """
import splitlab
from splitlab import *
missing = [name for name in splitlab.__all__ if name not in globals()]
assert not missing, missing
assert splitlab.ttest is ttest and splitlab.Allocator is Allocator
"""
    _fresh("-c", script)


def test_subpackages_are_reached_as_attributes():
    script = """
import splitlab
assert splitlab.bandits.EXP3.__module__ == "splitlab.bandits.mab"
assert splitlab.sources.open_source.__module__ == "splitlab.sources"
assert {"bandits", "ope", "simulate", "analyzer", "sequential"} <= set(dir(splitlab))
"""
    _fresh("-c", script)


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        splitlab.nonexistent  # noqa: B018
    with pytest.raises(AttributeError, match=r"module 'splitlab\.sequential'"):
        splitlab.sequential.nonexistent  # noqa: B018


@pytest.mark.parametrize("package", ["splitlab.analyzer", "splitlab.sequential"])
def test_lazy_subpackage_names_resolve_whatever_was_imported_first(package):
    # importing a submodule first (splitlab.sequential.msprt binds the module msprt on the
    # package) must not shadow the function of the same name
    script = f"""
import importlib, {package} as package
for name in package.__all__:
    assert name in dir(package), name
    value = getattr(package, name)
    assert getattr(importlib.import_module(value.__module__), name) is value, name
"""
    _fresh("-c", f"import splitlab.sequential.msprt, splitlab.analyzer.analyzer\n{script}")
    _fresh("-c", script)


def test_the_group_sequential_design_loads_numba_only_when_used():
    script = """
import json, sys
from splitlab.sequential import msprt
before = "numba" in sys.modules
from splitlab.sequential import GroupSequentialDesign
print(json.dumps([before, "numba" in sys.modules]))
"""
    assert json.loads(_fresh("-c", script).stdout) == [False, True]


def test_a_summary_statistics_test_imports_no_data_frame_library():
    # pandas is for to_frame only: a t-test on summary statistics needs numpy and scipy
    loaded = _fresh(
        "-c",
        "import json, sys, splitlab as sl; "
        "sl.ttest(sl.Moments(10, 1.0, 2.0), sl.Moments(12, 1.5, 2.0)); "
        "print(json.dumps(sorted(sys.modules)))",
    ).stdout
    modules = set(json.loads(loaded))
    assert "scipy" in modules and not {"pandas", "pyarrow", "polars"} & modules
