"""Read-side operations behind `search list|status`, `best`, `predict`, `export`, `plot`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mixer.domain import list_domains
from mixer.errors import MixerError
from mixer.export import ExportContext, export_mixture
from mixer.mixture import Mixture
from mixer.workspace import Workspace
from search.backends.base import MIN_DISTANCE
from search.groups import expand
from search.history import same_mixture
from search.lease import driver_state
from search.runs import OWN_ROLES, finished_runs, optional_label, weight_matrix
from search.spec import SearchSpec
from search.staged import refuse_unfinished_hierarchy
from search.state import SearchSetup, SearchState
from store import get_search, latest_recommendation, list_searches, run_metrics, search_exists, search_runs
from store.records import SearchKind, SearchRecord

if TYPE_CHECKING:
    from search.backends.base import Model   # imports torch: only where a model is fitted


def latest(ws: Workspace, search_ref: str | None) -> SearchRecord:
    """A search by name or id; without one, the newest search (hidden `proxy-train` runs
    aside), finished or not: every command that takes an optional search means this one."""
    if search_ref is not None:
        if not search_exists(ws.db_path, search_ref):
            refuse_unfinished_hierarchy(ws, search_ref)
        return get_search(ws.db_path, search_ref)
    frame = list_searches(ws.db_path)
    names = list(frame.name[frame.kind != SearchKind.proxy_train.value])
    if not names:
        raise MixerError("no search yet; run `mixer search start` (or `mixer demo`)")
    return get_search(ws.db_path, names[-1])


def searches(ws: Workspace) -> pd.DataFrame:
    """`search list`: every search with its run counts and best value; a search whose
    driver is gone reads `interrupted`, as `search status` says it."""
    frame = list_searches(ws.db_path)
    for i, row in frame.iterrows():
        record = SearchRecord(id=row.id, name=row["name"], backend=row.backend, evaluator=row.evaluator,
                              status=row.status, kind=row.kind)
        frame.loc[i, "status"] = effective_status(ws, record, row.runs)
    return frame


def recommendation(ws: Workspace, search: SearchRecord) -> dict:
    rec = latest_recommendation(ws.db_path, search.id)
    if rec is None:
        raise MixerError(f"search '{search.name}' has no recommendation: {_no_recommendation_hint(ws, search)}")
    return rec


def _no_recommendation_hint(ws: Workspace, search: SearchRecord) -> str:
    if search.kind is SearchKind.online:
        return "its online run did not finish; start another with `mixer online start`"
    if search.kind is SearchKind.imported:
        return (f"it holds imported runs; search over them with `mixer search start --evaluator table "
                f"--table {search.name}`, or fit them with `mixer predict {search.name}`")
    if search.status == "cancelled":
        return "it was cancelled before recommending; start a new search"
    if search.status == "done":
        return "it ended without finished runs to recommend from"
    status = effective_status(ws, search, len(search_runs(ws.db_path, search.id)))
    return f"it is {status}; `mixer search resume {search.name}` finishes it"


RULE_TEXT = {"model": "the model's optimum",
             "no-model": "the best run{run} (this backend has no model)",
             "model:no-target-run": "the model's optimum (no run at the target fidelity yet)",
             "best-run:weak-model": "the best run{run}, because the model cannot be trusted yet",
             "best-run:too-few-runs": "the best run{run}, because there are too few runs to fit a model",
             "best-run:no-predicted-gain": "the best run{run}, because the model predicts no clear gain over it",
             "baseline:no-clear-gain": "the {baseline} mixture's run{run}, because no run beat it by more than "
                                       "the runs' noise",
             "online": "the online run's weights averaged over its training (`mixer export --schedule` writes the "
                       "schedule it followed)"}


def explain(rec: dict, target: str) -> list[str]:
    """What `mixer best` (and `search start`) print under the mixture: the predicted value,
    how the mixture was chosen, how good the fit is, and a plain warning when the model
    cannot be trusted. `rec`: mixture, predicted, predicted_std, evidence."""
    evidence, rule = rec["evidence"], rec["evidence"].get("rule")
    lines = []
    if rec["predicted"] is not None:
        at = " (the model's value at this mixture)" if rule and rule.startswith(("best-run", "baseline")) else ""
        lines.append(f"predicted {target}: {rec['predicted']:.4f} ± {rec['predicted_std'] or 0:.4f}{at}")
    if rule:
        observed = evidence.get("best_observed")
        run = (f" {evidence['best_run']} (observed {observed:.4f}, one run)" if "best_run" in evidence
               and observed is not None else "")
        lines.append("chosen: " + RULE_TEXT.get(rule, rule).format(run=run, baseline=evidence.get("baseline")))
    quality = evidence.get("quality")
    if quality:
        extrapolated = evidence.get("extrapolated")
        fit = (f"fit: {quality['runs']} mixtures at the target fidelity, {extrapolated} of them extrapolated from "
               f"their runs at cheaper ones, for {quality['domains']} domains" if extrapolated else
               f"fit: {quality['runs']} runs at the target fidelity for {quality['domains']} domains")
        if quality.get("cv_spearman") is not None:
            fit += (f", cross-validated Spearman {quality['cv_spearman']:.2f}, error {quality['cv_rmse']:.4f} "
                    f"out of fold (the runs spread {quality.get('runs_std') or 0:.4f})")
        else:
            fit += ", too few to cross-validate: ± is the runs' own spread"
        models = evidence.get("models")
        if models:
            fit += f"; one model per loss the target combines ({len(models)})"
        lines.append(fit)
    if rule in ("best-run:weak-model", "best-run:too-few-runs") or evidence.get("model_weak"):
        lines.append(f"warning: {evidence.get('reason')}; until a search has more runs, the answer is a run it measured")
    elif rule in ("best-run:no-predicted-gain", "baseline:no-clear-gain"):
        lines.append(f"note: {evidence.get('reason')}")
    if rule == "baseline:no-clear-gain":
        lines.append(f"note: {evidence.get('baseline_reason')}")
    unmeasured = evidence.get("baselines_unmeasured")
    if unmeasured:
        lines.append(f"note: no run of the {' or '.join(unmeasured)} mixture at the target fidelity: the answer was "
                     "never compared with " + ("it" if len(unmeasured) == 1 else "them") + " there")
    lines.extend(fidelity_lines(evidence.get("cheap_fidelities")))
    solver = evidence.get("solver")
    if solver:
        lines.append(f"optimum: {'exact convex program (cvxpy)' if solver == 'convex program' else solver}")
    binding = evidence.get("binding")
    if binding is not None:
        lines.append("constraints: " + (", ".join(f"{name} at {bound}" for name, bound in binding.items())
                                        if binding else "none binds (the answer is inside every bound)"))
    lines.extend(noise_lines(evidence))
    lines.extend(online_lines(evidence.get("versus")))
    return lines


def fresh_seed_line(state: SearchState, rec: dict) -> str | None:
    """What a fresh seed would measure at the answer: its ± widened by, and its value moved
    by, the offset of the search's shared initialisation that runs with other seeds
    measured (search.extra_runs.fresh_seed); without such runs, that the ± does not
    cover a fresh seed. None for searches without seeds (tables) or a prediction."""
    from search.extra_runs import FEW_PAIRS, fresh_seed, fresh_seed_values, init_offsets, shown_value

    setup = state.setup
    value, std = shown_value(rec.get("predicted"), rec.get("predicted_std"), rec["evidence"])
    if setup.spec is None or setup.spec.proxy is None or value is None:
        return None
    measured = fresh_seed_values(state, rec["mixture"])
    if len(measured) >= 2:      # the answer itself was trained with other seeds: that, not a model
        return (f"a fresh seed: {measured.mean():.4f} ± {measured.std(ddof=1):.4f} (measured: {len(measured)} runs "
                "of this mixture with other seeds)")
    d = init_offsets(state)
    got = fresh_seed(setup.target.loss(value), std, d)
    if got is None:
        return ("note: the values above are for runs that share the search's initialisation; a fresh seed adds its "
                "offset and noise, not measured here (`--replicates 2` measures them)")
    mean, std = got
    loose = (f"; from so few pairs this ± is itself loose (`--replicates {FEW_PAIRS}` tightens it)"
             if len(d) < FEW_PAIRS else "")
    return (f"a fresh seed: {setup.target.value_of(mean):.4f} ± {std:.4f} (the search's runs share one "
            f"initialisation, which measured {setup.target.value_of(d.mean()):+.4f} against other seeds over "
            f"{plural(len(d), 'paired run')}{loose})")


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def online_lines(versus: dict | None) -> list[str]:
    """An online run against the static uniform run of the same seed and budget: a warning
    when the online run ended worse (lower is better: an online target is a loss)."""
    if not versus or versus.get("online") is None or versus.get("static") is None:
        return []
    online, static, target = versus["online"], versus["static"], versus["target"]
    compared = (f"the uniform mixture's run {versus['run']} ({static:.4f}; same seed and budget, one run each: a gap "
                "within the seed noise decides nothing)")
    if online > static:
        return [f"warning: the online run ended at {online:.4f} ({target}), WORSE than {compared}: train the uniform "
                "mixture instead, or try other --option settings"]
    return [f"the online run ended at {online:.4f} ({target}), {static - online:.4f} better than {compared}"]


def fidelity_lines(gate: dict | None) -> list[str]:
    """bayesopt over several fidelities: what each cheaper fidelity's paired runs say."""
    lines = []
    for label, used in ((gate or {}).get("used") or {}).items():
        r, pairs = gate["rank_correlation_with_target"][label], gate["pairs"][label]
        said = (f"Spearman {r:.2f} with the target over {pairs} paired runs" if r is not None
                else f"{pairs} paired runs, too few to judge")
        lines.append(f"fidelity {label}: {said}; {'used' if used else 'DROPPED: it misleads about the target'}")
    return lines


def noise_lines(evidence: dict) -> list[str]:
    """The seed noise measured by replicates, and whether the predicted gain over each
    baseline exceeds the noise on a difference of two runs (sqrt(2) x one run's std)."""
    noise = evidence.get("seed_noise")
    if not noise:
        return []
    lines = [f"seed noise: {noise['std']:.4f} (std of one run, from {plural(noise['pairs'], 'replicate pair')})"]
    if evidence.get("rule") == "best-run:weak-model" or evidence.get("model_weak"):
        return lines + ["predicted gains over the baselines: not judged, the model cannot be trusted yet"]
    difference = float(np.sqrt(2.0) * noise["std"])
    for baseline, gain in (evidence.get("predicted_gain_over") or {}).items():
        if baseline == evidence.get("baseline"):
            lines.append(f"vs {baseline}: the answer is the {baseline} mixture")
        elif gain > difference:
            lines.append(f"vs {baseline}: predicted gain {gain:.4f} exceeds the noise on a difference of two runs "
                         f"({difference:.4f})")
        else:
            lines.append(f"vs {baseline}: predicted gain {gain:.4f} does NOT exceed the noise on a difference of two "
                         f"runs ({difference:.4f}): one run of each could not tell them apart")
    return lines


def search_state(ws: Workspace, search: SearchRecord) -> SearchState:
    """The search's state now (search.state)."""
    return SearchSetup.of(ws, search).load(ws)


def load_spec(search: SearchRecord) -> SearchSpec | None:
    """The typed spec of a search mixer ran; None for imported runs."""
    return None if search.kind is SearchKind.imported else SearchSpec.from_json(search.config)


def groups_of(search: SearchRecord) -> dict[str, dict[str, float]]:
    """The search's groups (search.groups: fixed sub-mixtures searched as one domain each)."""
    spec = load_spec(search)
    return spec.proxy.groups if spec is not None and spec.proxy is not None else {}


def reuse_line(search: SearchRecord) -> str | None:
    """What a search took from an earlier one (`search start --reuse`), in one line."""
    spec = load_spec(search)
    if spec is None or spec.reuse is None:
        return None
    reuse, groups = spec.reuse, spec.proxy.groups
    said = [f"reusing search '{reuse.search}' ({reuse.mode.value}" + (f": {reuse.why})" if reuse.why else ")")]
    for name, shares in groups.items():
        said.append(f"{', '.join(shares)} searched as one domain '{name}' at its ratios")
    if reuse.previous:
        said.append("its answer is the baseline 'previous'")
    return "; ".join(said)


def stage_line(search: SearchRecord) -> str | None:
    """Which stage of a hierarchical search (search.staged) this search is, in one line."""
    spec = load_spec(search)
    stage = spec.stage if spec is not None else None
    if stage is None:
        return None
    if stage.parent is None:
        return (f"stage 1 of hierarchical search '{stage.of}': the parents, each holding its leaves at their token "
                "shares")
    return (f"stage {stage.index} of hierarchical search '{stage.of}': the leaves of {stage.parent}; every other "
            "weight is fixed (shown as --fix) at the earlier stages' answer, run again here as the baseline "
            "'previous' (its value differs from the earlier stage's by the run-to-run noise)")


def leaf_weights(search: SearchRecord, mixture: dict[str, float]) -> dict[str, float]:
    """A mixture of the search as the domains a run trains on: its groups expanded
    (search.groups); other searches' mixtures are their leaves already."""
    return expand(mixture, groups_of(search))


def status(ws: Workspace, search: SearchRecord) -> tuple[dict, pd.DataFrame]:
    """`search status`: one line per fact, and every run of the search. A search whose
    setup no longer resolves (a domain removed with --force) still shows its runs."""
    state, unresolved = None, None
    if search.kind is not SearchKind.online:
        try:
            state = SearchSetup.of(ws, search).load(ws)
        except MixerError as error:
            unresolved = str(error)
    runs = state.runs if state is not None else search_runs(ws.db_path, search.id)
    spec = state.setup.spec if state is not None else None
    if spec is not None and (spec.budget.max_cost is not None or state.setup.space.fidelity.multi):
        runs = runs.assign(cost=run_costs_column(state))   # what each run charged to the budget
    summary = {"search": search.name, "id": search.id, "kind": search.kind.value, "backend": search.backend,
               "evaluator": search.evaluator, "target": search.target, "direction": search.direction,
               "status": shown_status(ws, search, len(runs)), "runs": len(runs),
               **{f"runs {k}": v for k, v in runs.status.value_counts().to_dict().items()}}
    if state is not None:
        summary |= budget_progress(state)
    summary["runs by fidelity"] = ", ".join(f"{label}: {n}" for label, n in runs.fidelity.fillna("-")
                                            .value_counts().items())
    best = state.best() if state is not None else None
    summary["best"] = f"{best[0]:.4f} ({best[1]})" if best else "-"
    if unresolved:
        summary["setup"] = f"no longer resolves in this workspace: {unresolved}"
    summary["driver"] = driver_state(ws, search.id)
    if reused := reuse_line(search):
        summary["reuse"] = reused
    if stage := stage_line(search):
        summary["stage"] = stage
    rec = latest_recommendation(ws.db_path, search.id)
    noise = (rec or {}).get("evidence", {}).get("seed_noise")
    if noise:
        summary["seed noise"] = f"{noise['std']:.4f} (std of one run, {plural(noise['pairs'], 'replicate pair')})"
    return summary, runs


def effective_status(ws: Workspace, search: SearchRecord, runs: int) -> str:
    """The stored status, or `interrupted` when a search with `runs` runs was left by a
    driver that is gone."""
    stopped_early = search.status == "created" and runs   # a driver stopped in its first round leaves "created"
    if search.drivable and (search.status == "running" or stopped_early) and \
            not driver_state(ws, search.id).startswith("alive"):
        return "interrupted"
    return search.status


def shown_status(ws: Workspace, search: SearchRecord, runs: int) -> str:
    """`effective_status`, with what to do about an interrupted search."""
    status = effective_status(ws, search, runs)
    return f"{status}: no driver runs it; `mixer search resume {search.name}`" if status == "interrupted" else status


@dataclass
class PredictRequest:
    mixtures_csv: Path
    weight_prefix: str = ""          # weight columns start with this (stripped: domain names)
    id_column: str | None = None     # kept in the output; every other column must be a weight
    backend: str | None = None       # the model (default: the search's backend; regmix for imports)


def _ran_out(state: SearchState) -> str | None:
    """Why a finished search has fewer runs than its budget: the cost budget, a table with no
    entry left, or no mixture left that is new (search.novelty) within the weight bounds."""
    search, spec = state.setup.record, state.setup.spec
    if search.status != "done" or state.finished_count() >= spec.budget.runs:
        return None
    spent, max_cost = state.spent()[1], spec.budget.max_cost
    left = None if max_cost is None else max_cost - spent
    if left is not None and min(state.costs.values(), default=1.0) > left + 1e-9:
        return (f"--max-cost {max_cost:g} stopped it: {spent:.4g} spent, and no further run fitted in what was left "
                f"({cost_unit(state)})")
    if left is not None and state.costs.get(state.setup.space.target_fidelity, 1.0) > left + 1e-9:
        return (f"--max-cost {max_cost:g} stopped it: {spent:.4g} spent; the {left:.4g} left pays for no run at the "
                f"target fidelity, and none of {search.backend}'s proposals fitted in it ({cost_unit(state)})")
    if spec.table is not None:
        return f"every entry of table '{spec.table.search}' it could run was run"
    narrow = "; the --min/--max/--fix bounds leave little room: widen them" if spec.constraints else ""
    return f"no mixture at least {MIN_DISTANCE} (L1) from every run so far was left to propose{narrow}"


def ended_early(ws: Workspace, search: SearchRecord) -> str | None:
    """`_ran_out` of a search as stored: what `search start` and `resume` say at the end."""
    return _ran_out(SearchSetup.of(ws, search).load(ws)) if search.drivable else None


def budget_progress(state: SearchState) -> dict[str, str]:
    """Finished runs against the run budget, and cost spent against --max-cost."""
    spec = state.setup.spec
    if spec is None:
        return {}
    out = {"budget": f"{int((state.own.status == 'done').sum())} of {spec.budget.runs} runs done"}
    why = _ran_out(state)
    if why:
        out["budget"] += f" ({why})"
    if spec.budget.max_cost is not None:
        out["cost"] = f"{state.spent()[1]:.4g} of --max-cost {spec.budget.max_cost:g} spent ({cost_unit(state)})"
    elif state.setup.space.fidelity.multi:
        out["cost"] = f"{state.spent()[1]:.4g} spent ({cost_unit(state)})"
    return out


def cost_unit(state: SearchState) -> str:
    """What one unit of a search's cost is, and what a run at each fidelity costs."""
    spec = state.setup.spec
    unit = "--fidelity-cost's units" if spec.fidelity.costs else "units of one run at the target fidelity"
    prices = ", ".join(f"{label} {cost:.3g}" for label, cost in state.costs.items() if label is not None)
    return f"in {unit}; a run costs {prices}" if prices else f"in {unit}"


def run_costs_column(state: SearchState) -> pd.Series:
    """The cost each run charged to the budget: the search's own runs at their fidelity's
    cost; baselines, validations, replicates and transfer checks run outside it (NaN)."""
    own = state.runs.role.isin(OWN_ROLES)
    costs = [state.costs.get(optional_label(f), 1.0) for f in state.runs.fidelity]
    return pd.Series(np.where(own, costs, np.nan), index=state.runs.index)


@dataclass
class Prediction:
    frame: pd.DataFrame           # the CSV's rows with `predicted` and `predicted_std`
    warning: str | None           # why the model cannot be trusted yet (search.guard's rule), or None


def predict(ws: Workspace, search: SearchRecord, request: PredictRequest) -> Prediction:
    """The target predicted at the CSV's mixtures by a model of the search's runs, with
    its calibrated std; works on imported runs too."""
    from search.quality import weak_model_reason

    setup = SearchSetup.of(ws, search)
    model = _model(ws, setup, request.backend)
    domains = model.history.domains
    frame, weights = _mixtures_frame(request, domains, search.name, groups_of(search))
    X = np.array([Mixture.normalized({d: float(row.get(d, 0.0)) for d in domains}).vector(domains)
                  for row in weights.to_dict("records")])
    if len(model.history) < 3:
        raise MixerError(f"search '{search.name}' has {len(model.history)} finished runs; predictions need 3")
    mean, std = model.predict(X)
    return Prediction(frame.assign(predicted=setup.target.value_of(mean), predicted_std=std),
                      weak_model_reason(model.quality()))


def _model(ws: Workspace, setup: SearchSetup, backend_name: str | None) -> Model:
    """A search's model over its own runs (minimise orientation): its backend (or
    `backend_name`); for imported runs, regmix's unless named."""
    from search.backends import make_backend

    search = setup.record
    state = setup.load(ws)
    if setup.spec is None and not len(state.history):
        raise MixerError(f"imported search '{search.name}' has no target values; import it with --target METRIC")
    if setup.space.fidelity.multi and setup.spec is None:
        raise MixerError(f"imported search '{search.name}' holds several fidelities "
                         f"({', '.join(setup.space.fidelity.labels)}); search over it with --evaluator table "
                         "--target-fidelity to model one")
    name = backend_name or (setup.spec.backend if setup.spec is not None else "regmix")
    options = setup.spec.options if setup.spec is not None and backend_name is None else {}
    return make_backend(name, options, setup.space).fit(state.history)


def _mixtures_frame(request: PredictRequest, domains: list[str], search: str, groups: dict
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The CSV as read, and its weights renamed to domain names (the search's: a group's
    domains are one column, the group's)."""
    from store.importer import DEFAULT_SUM_TOLERANCE, read_csv   # as `runs import`: CSV rounding renormalised

    frame = read_csv(request.mixtures_csv)
    if request.id_column and request.id_column not in frame.columns:
        raise MixerError(f"{request.mixtures_csv}: no id column '{request.id_column}'")
    columns = [c for c in frame.columns if c != request.id_column]
    if request.weight_prefix:
        columns = [c for c in columns if c.startswith(request.weight_prefix)]
        if not columns:
            raise MixerError(f"{request.mixtures_csv}: no column starts with '{request.weight_prefix}'")
    weights = frame[columns].rename(columns=lambda c: c[len(request.weight_prefix):])
    unknown = [c for c in weights.columns if c not in domains]
    grouped = {c: g for g, shares in groups.items() for c in shares if c in unknown}
    if grouped:
        by_group: dict[str, list[str]] = {}
        for column, group in grouped.items():
            by_group.setdefault(group, []).append(column)
        inside = "; ".join(f"{', '.join(cs)} are inside group '{g}'" for g, cs in by_group.items())
        give = (f"the group's weight in a column '{next(iter(by_group))}'" if len(by_group) == 1 else
                f"each group's weight in a column named as the group ({', '.join(by_group)})")
        raise MixerError(f"{request.mixtures_csv}: column(s) {inside} of search '{search}' at fixed shares; "
                         f"give {give} instead")
    if unknown:
        raise MixerError(f"{request.mixtures_csv}: column(s) {', '.join(unknown)} are not domains of search "
                         f"'{search}' ({', '.join(domains)})")
    missing = [d for d in domains if d not in weights.columns]
    if missing:
        raise MixerError(f"{request.mixtures_csv}: no column for domain(s) {', '.join(missing)} of search '{search}'"
                         " (give 0 weights explicitly)")
    values = weights.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    sums = values.sum(axis=1)
    bad = np.flatnonzero(~np.isfinite(sums) | (values < 0).any(axis=1) | (np.abs(sums - 1.0) > DEFAULT_SUM_TOLERANCE))
    if len(bad):
        raise MixerError(f"{request.mixtures_csv}: data row {bad[0] + 1} is not a mixture (weights must be "
                         f"non-negative numbers summing to 1 within {DEFAULT_SUM_TOLERANCE:g}; they sum to {sums[bad[0]]:.6g})")
    return frame, weights


def export(ws: Workspace, search: SearchRecord, fmt: str, path_template: str | None,
           token_budget: int | None = None) -> str:
    """The recommendation in a framework's format; `token_budget` is the target job's (the
    proxies' budget says nothing about it)."""
    rec = recommendation(ws, search)
    metas = {m.name: m for m in list_domains(ws.domains_dir)}
    spec = load_spec(search)
    ctx = ExportContext(path_template=path_template, domain_tokens={n: m.n_tokens for n, m in metas.items()},
                        token_budget=token_budget, seed=spec.seed if spec else 0)
    return export_mixture(Mixture.normalized(leaf_weights(search, rec["mixture"])), fmt, ctx)


def repetition_warnings(ws: Workspace, search: SearchRecord, token_budget: int | None, limit: float = 4.0
                        ) -> list[str]:
    """Domains the target job would read more than `limit` times (epochs) at its token
    budget: a mixture found with short proxies says nothing about such repetition."""
    if not token_budget:
        return []
    tokens = {m.name: m.n_tokens for m in list_domains(ws.domains_dir)}
    out = []
    for name, weight in leaf_weights(search, recommendation(ws, search)["mixture"]).items():
        epochs = weight * token_budget / tokens[name] if tokens.get(name) else 0.0
        if epochs > limit:
            out.append(f"at --token-budget {token_budget:,} domain '{name}' ({tokens[name]:,} tokens) would be read "
                       f"{epochs:,.0f} times (olmo's max_repetition_ratio is written as that, so the mixture is "
                       f"realised as given): add data to it, or lower its weight")
    return out


def export_schedule(ws: Workspace, search: SearchRecord, fmt: str, probes: bool = False) -> str:
    """An online run's schedule as `Schedule` reads it back (stages: start fraction, tokens,
    mixture), in json or yaml: the method's decisions, or with `probes` every stage it
    trained on (Aioli's LearnParams probes too)."""
    import json

    import yaml

    evidence = recommendation(ws, search)["evidence"]
    schedule = evidence.get("schedule_with_probes" if probes else "schedule")
    if schedule is None and probes:    # stored before the two were told apart: every stage
        schedule = evidence.get("schedule")
    if schedule is None:
        raise MixerError(f"'{search.name}' has no schedule: --schedule is for online runs (`mixer online start`)")
    if fmt not in ("json", "yaml"):
        raise MixerError(f"--schedule writes json or yaml, not '{fmt}'")
    return json.dumps(schedule, indent=2) + "\n" if fmt == "json" else yaml.safe_dump(schedule, sort_keys=False)


def interaction(rec: dict) -> pd.DataFrame | None:
    """A mixing_law recommendation's fitted interaction matrix t: one row per law (each
    domain's loss, or the target), one column per domain; None for other backends."""
    matrix = rec["evidence"].get("interaction")
    if not matrix:
        return None
    return pd.DataFrame.from_dict(matrix, orient="index").rename_axis("law").reset_index()


def plot(ws: Workspace, search: SearchRecord, out: Path) -> None:
    from search.plot import SearchPlot, plot_online, plot_search

    if search.kind is SearchKind.online:
        run_id = recommendation(ws, search)["evidence"]["run"]
        metrics = run_metrics(ws.db_path, run_id, ["weight", "online"])
        end = search_runs(ws.db_path, search.id).set_index("run_id").tokens[run_id]
        plot_online(out, search.name, metrics[metrics.split == "weight"], metrics[metrics.split == "online"],
                    float(end))
        return

    rec = latest_recommendation(ws.db_path, search.id)
    setup = SearchSetup.of(ws, search)
    state = setup.load(ws)
    done = finished_runs(state.runs)       # as proposed (the store orders runs by creation)
    if done.empty:
        raise MixerError(f"search '{search.name}' has no finished runs to plot")
    own = done.role.isin(OWN_ROLES).to_numpy()
    points = pd.DataFrame({
        "value": done.target_value.astype(float).to_numpy(),
        "fidelity": done.fidelity.to_numpy(),
        "label": np.where(own, "", done.run_id.str.removeprefix(f"{search.name}/"))})
    observed, observed_by = None, "validation run"
    if rec and rec.get("validation_run_id"):
        validation = done[done.run_id == rec["validation_run_id"]]
        observed = float(validation.target_value.iloc[0]) if len(validation) else None
    elif rec:   # the guard may answer with a run the search made: its value measures it
        weights = weight_matrix(done.mixture, list(rec["mixture"]))
        same = np.flatnonzero(own & same_mixture(weights, np.array(list(rec["mixture"].values()))))
        if len(same):
            observed, observed_by = float(done.target_value.iloc[same[0]]), f"run {done.run_id.iloc[same[0]]}"
    fit = _fit_view(setup, state)
    plot_search(out, SearchPlot(
        name=search.name, target_label=target_label(search), target=setup.target,
        runs=points, target_fidelity=fit.fidelity, recommended=rec["mixture"] if rec else None,
        observed=fit.y, predicted=fit.predicted, why_no_fit=fit.why_not,
        rec_predicted=rec.get("predicted") if rec else None, rec_std=rec.get("predicted_std") if rec else None,
        rec_observed=observed, rec_observed_by=observed_by, interaction=interaction(rec) if rec else None,
        groups=groups_of(search)))


@dataclass
class FitView:
    """The runs the search's model learns from (its own at the target fidelity): targets y
    [n] and out-of-fold predictions [n] (None, and why not), in the user's orientation."""

    y: np.ndarray
    predicted: np.ndarray | None
    why_not: str
    fidelity: str | None


def _fit_view(setup: SearchSetup, state: SearchState) -> FitView:
    """The model's out-of-fold predictions of the runs: the search's backend's where it
    keeps them from its own fit, else regmix's default model's."""
    from search.backends import make_backend
    from search.backends.regmix import RegMixConfig, fit_checked

    at_target = state.at_target
    y = setup.target.value_of(at_target.y)
    fidelity = setup.space.target_fidelity if setup.spec is not None else None
    if len(y) < 3:
        multi = setup.spec is not None and setup.space.fidelity.multi
        cheaper = "; the others ran at cheaper fidelities (`mixer best`)" if multi else ""
        return FitView(y, None, f"{len(y)} run(s) at the target fidelity: a fit needs 3{cheaper}", fidelity)
    predicted = None
    if setup.spec is not None:
        backend = make_backend(setup.spec.backend, setup.spec.options, setup.space)
        predicted = backend.fit(state.history).quality().out_of_fold
    if predicted is None:
        predicted = fit_checked(RegMixConfig(), at_target.X, at_target.y).quality.out_of_fold  # regmix's default
    return FitView(y, None if predicted is None else setup.target.value_of(predicted), "", fidelity)


def target_label(search: SearchRecord) -> str:
    """The target in words for an axis: `avg held-out loss`, `web held-out loss`, a metric."""
    target = search.target or "target"
    if search.evaluator != "proxy":
        return target
    if target == "avg":
        return "avg held-out loss"
    return f"held-out loss ({target})" if "=" in target else f"{target} held-out loss"
