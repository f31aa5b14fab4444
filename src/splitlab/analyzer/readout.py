"""A readout: the results object a report renders.

:meth:`Analyzer.readout <splitlab.analyzer.analyzer.Analyzer.readout>` computes it once — the
tidy results of ``analyze``, the sample-ratio check, the cumulative timelines and each
experiment's control label, with the provenance in ``results.attrs`` — and
:func:`~splitlab.analyzer.report.write_report` renders it. Neither of them needs the other:
a readout can be built, stored or rendered on its own.

>>> import pandas as pd
>>> results = pd.DataFrame({"experiment": ["e1"], "variant": ["b"], "effect": [0.5]})
>>> srm = pd.DataFrame({"experiment": ["e1"], "p_value": [0.4], "mismatch": [False]})
>>> readout = Readout(results, srm, controls={"e1": "control"})
>>> readout.control_of("e1"), readout.mismatched
('control', set())
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

ALL_UNITS = "all"  # the segment label of the rows that pool every unit
SRM_ALPHA = 0.001  # GrowthBook's and Statsig's default threshold for flagging an SRM


@dataclass(frozen=True)
class Readout:
    """What an experiment readout shows.

    ``results`` is :meth:`Analyzer.analyze`'s table (its ``attrs`` hold the provenance),
    ``srm`` is :meth:`Analyzer.srm`'s, ``timelines`` maps a metric name to its cumulative
    timeline (or to the reason there is none), ``controls`` maps an experiment to its
    control label, ``quality`` is :meth:`Analyzer.quality`'s table of data-quality checks
    (None when they were not run), ``bands`` the method of the timelines' bands ("cs",
    "msprt" or "gst": always valid; "ttest" or "bayes": fixed-horizon; None when unknown).
    """

    results: pd.DataFrame
    srm: pd.DataFrame
    timelines: Mapping[str, pd.DataFrame | str] = field(default_factory=dict)
    controls: Mapping[Any, Any] = field(default_factory=dict)
    quality: pd.DataFrame | None = None
    bands: str | None = None

    @property
    def provenance(self) -> dict[str, Any]:
        """splitlab version, call, parameters, columns, source and input fingerprint."""
        return dict(self.results.attrs)

    @property
    def mismatched(self) -> set:
        """Experiments whose sample-ratio check flags a mismatch."""
        if not len(self.srm):
            return set()
        return set(self.srm.loc[self.srm["mismatch"].astype(bool), "experiment"])

    @property
    def flagged(self) -> pd.DataFrame | None:
        """The data-quality checks that flag a problem (None without a quality table)."""
        if self.quality is None:
            return None
        return self.quality[self.quality["flag"].astype(bool)]

    def control_of(self, experiment: object) -> object:
        """The control label of ``experiment`` (None if the readout does not know it)."""
        return self.controls.get(experiment)
