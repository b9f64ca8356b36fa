"""One search as the store holds it, for every reader: the driver between rounds, `search
status`, `best`, `predict`, `plot`, `transfer` and the demo.

    SearchSetup  what the search was told, resolved against the workspace (spec, target,
                 space); built once per command
    SearchState  a snapshot of its runs at one moment: every run with its role, the
                 History of its own finished runs (the model's input), costs and budget
                 spent; loaded once per round

Direction enters here and only here: History holds the target in minimise orientation
(`Target.loss`), and everything a backend returns leaves through `Target.value_of`
(search.recommend for answers, `SearchState.best` and views.predict for values). Nothing
between them knows whether the user maximises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mixer.errors import MixerError
from mixer.workspace import Workspace
from search.evaluators import build_space
from search.fidelity import Fidelities
from search.history import History
from search.runs import domains_of, optional_label, own_runs, weight_matrix
from search.space import SearchSpace
from search.spec import SearchSpec
from search.targets import Target
from store import get_search, run_costs, search_runs
from store.records import SearchKind, SearchRecord


@dataclass(frozen=True)
class SearchSetup:
    """record: the `searches` row; spec: what it was told (None for imported runs); space:
    where its backend proposes; measured: the names a run reports (domains and eval-only
    sets); target: what it minimises or maximises."""

    record: SearchRecord
    spec: SearchSpec | None
    space: SearchSpace
    measured: list[str]
    target: Target
    averaged: list[str]     # the domains `avg` and `worst` cover (those whose held-out split measures)

    @classmethod
    def of(cls, ws: Workspace, record: SearchRecord, runs: pd.DataFrame | None = None) -> "SearchSetup":
        """The setup of a search mixer drives, or of imported runs (one fidelity, modelled
        as a search of its own; `runs`: theirs when the caller has just read them); an
        online run has none."""
        if record.kind is SearchKind.online:
            raise MixerError(f"'{record.name}' is an online {record.backend} run, not a search; start another with "
                             "`mixer online start`")
        if record.kind is SearchKind.imported:
            return _imported_setup(ws, record, runs)
        spec = SearchSpec.from_json(record.config)
        built = build_space(ws, spec)
        spec.target.check(built.measured)
        return cls(record, spec, built.space, built.measured, spec.target, built.averaged)

    @property
    def name(self) -> str:
        return self.record.name

    def costs(self, ws: Workspace) -> dict[str | None, float]:
        """Cost of one run at each fidelity (search.fidelity), measured times as they come in;
        a table search prices its fidelities by that table's own costs only; imported runs
        have no budget to price."""
        fidelity = self.space.fidelity
        if self.spec is None:
            return {}
        if not fidelity.multi:
            return fidelity.cost_table()
        table = self.spec.table.search if self.spec.table is not None else None
        source = get_search(ws.db_path, table).id if table else None
        return fidelity.cost_table(run_costs(ws.db_path, [f for f in fidelity.labels if f], source))

    def load(self, ws: Workspace, runs: pd.DataFrame | None = None) -> "SearchState":
        """A snapshot of the search's runs now (`runs`: `store.search_runs` of this search,
        when the caller has just read it)."""
        runs = search_runs(ws.db_path, self.record.id) if runs is None else runs
        costs = self.costs(ws)
        history = History.from_runs(self.space.domains, own_runs(runs), self.target, costs, self.averaged)
        return SearchState(self, runs, costs, history)

    def target_value(self, finals: dict[str, float]) -> float:
        """A run's target (user's orientation) from its final values; `avg` and `worst`
        cover the search's averaged domains that the run measured."""
        measured = [d for d in self.averaged if d in finals] or None
        return self.target.value(finals, measured)


@dataclass(frozen=True)
class SearchState:
    """runs: every run of the search (`store.search_runs`, with `role`); costs: cost of one
    run per fidelity; history: the search's own finished runs, target minimised."""

    setup: SearchSetup
    runs: pd.DataFrame
    costs: dict[str | None, float]
    history: History

    @property
    def own(self) -> pd.DataFrame:
        """The search's own runs, finished or not (its budget)."""
        return own_runs(self.runs)

    @property
    def at_target(self) -> History:
        """Own finished runs at the target fidelity (every run of an import: it has no target fidelity)."""
        if self.setup.spec is None:
            return self.history
        return self.history.at_fidelity(self.setup.space.target_fidelity)

    def spent(self) -> tuple[int, float]:
        """Own runs so far, and their cost (the sum of their fidelities' costs)."""
        fidelities = self.own.fidelity
        return len(fidelities), float(sum(self.costs.get(optional_label(f), 1.0) for f in fidelities))

    def finished_count(self) -> int:
        """Own runs that ended, done or failed."""
        return int(self.own.status.isin(["done", "failed"]).sum())

    def best(self) -> tuple[float, str] | None:
        """The best own run at the target fidelity: its value in the user's orientation, its id."""
        at_target = self.at_target
        if not len(at_target):
            return None
        i = int(np.argmin(at_target.y))
        return float(self.setup.target.value_of(at_target.y[i])), at_target.run_ids[i]


def _imported_setup(ws: Workspace, record: SearchRecord, runs: pd.DataFrame | None) -> SearchSetup:
    """Imported runs as a search of their own: their domains, their mean mixture as the
    prior, one fidelity where they have one (several: status only, no model)."""
    runs = search_runs(ws.db_path, record.id) if runs is None else runs
    labels = sorted({f for f in runs.fidelity if isinstance(f, str)}) or [None]
    domains = domains_of(runs.mixture)
    target = Target(record.target or "avg", maximize=record.direction == "maximize")
    prior = weight_matrix(runs.mixture, domains).mean(axis=0)
    fidelity = Fidelities.single(labels[0]) if len(labels) == 1 else Fidelities(labels, None)  # models need one
    space = SearchSpace(domains, prior=prior, fidelity=fidelity)
    return SearchSetup(record, None, space, domains, target, domains)
