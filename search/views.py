"""Read-side operations behind `search list|status`, `best`, `predict`, `export`, `plot`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mixer.domain import list_domains
from mixer.errors import MixerError
from mixer.export import ExportContext, export_mixture
from mixer.mixture import Mixture
from mixer.workspace import Workspace
from search.driver import SearchSession
from search.spec import SearchSpec
from store import get_search, latest_recommendation, list_searches, search_runs
from store.records import SearchRecord


def resolve(ws: Workspace, search_ref: str | None) -> SearchRecord:
    """A search by name or id; without one, the newest search that has a recommendation."""
    if search_ref:
        return get_search(ws.db_path, search_ref)
    frame = list_searches(ws.db_path)
    for search_id in reversed(list(frame.id)):
        if latest_recommendation(ws.db_path, search_id):
            return get_search(ws.db_path, search_id)
    raise MixerError("no search has a recommendation yet; run `mixer search start` (or `mixer demo`)")


def recommendation(ws: Workspace, search: SearchRecord) -> dict:
    rec = latest_recommendation(ws.db_path, search.id)
    if rec is None:
        raise MixerError(f"search '{search.name}' has no recommendation yet "
                         f"(status {search.status}; `mixer search resume {search.name}` finishes it)")
    return rec


RULE_TEXT = {"model": "the model's optimum",
             "no-model": "the best run (this backend has no model)",
             "model:no-target-run": "the model's optimum (no run at the target fidelity yet)",
             "best-run:weak-model": "the best run, because the model cannot be trusted yet",
             "best-run:no-predicted-gain": "the best run, because the model predicts no clear gain over it"}


def explain(rec: dict) -> list[str]:
    """What `mixer best` says under the mixture: how it was chosen, how good the fit is,
    and a plain warning when the model cannot be trusted."""
    evidence = rec["evidence"]
    lines = []
    rule = evidence.get("rule")
    if rule:
        best_run = f" {evidence['best_run']}" if rule.startswith("best-run") else ""
        lines.append(f"chosen: {RULE_TEXT.get(rule, rule)}{best_run}")
    quality = evidence.get("quality")
    if quality:
        fit = f"fit: {quality['runs']} runs for {quality['domains']} domains"
        if quality.get("cv_spearman") is not None:
            fit += (f", cross-validated Spearman {quality['cv_spearman']:.2f}, "
                    f"error {quality['cv_rmse']:.4f} (out of fold)")
        lines.append(fit)
    if rule == "best-run:weak-model":
        lines.append(f"warning: {evidence.get('reason')}; until a search has more runs, its best run is the answer")
    elif rule == "best-run:no-predicted-gain":
        lines.append(f"note: {evidence.get('reason')}")
    return lines


def load_spec(search: SearchRecord) -> SearchSpec | None:
    """The typed spec of a search mixer ran; None for imported runs."""
    return None if search.backend == "import" else SearchSpec.from_json(search.config)


def _target_fidelity(search: SearchRecord) -> str | None:
    spec = load_spec(search)
    return spec.fidelity.target if spec is not None else None


def status(ws: Workspace, search: SearchRecord) -> tuple[dict, pd.DataFrame]:
    runs = search_runs(ws.db_path, search.id)
    counts = runs.status.value_counts().to_dict()
    done = runs[runs.status == "done"]
    target_fidelity = _target_fidelity(search)
    if target_fidelity:
        done = done[done.fidelity == target_fidelity]
    best = "-"
    if len(done):
        row = done.loc[done.target_value.idxmax() if search.direction == "maximize" else done.target_value.idxmin()]
        best = f"{float(row.target_value):.6g} ({row.run_id})"
    by_fidelity = runs.fidelity.fillna("-").value_counts()
    summary = {"search": search.name, "id": search.id, "backend": search.backend, "evaluator": search.evaluator,
               "target": search.target, "direction": search.direction, "status": search.status,
               "runs": len(runs), **{f"runs {k}": v for k, v in counts.items()},
               "runs by fidelity": ", ".join(f"{label}: {n}" for label, n in by_fidelity.items()), "best": best}
    return summary, runs


def predict(ws: Workspace, search: SearchRecord, mixtures_csv: Path) -> pd.DataFrame:
    from store.importer import read_csv

    session = SearchSession(ws, search)
    domains = session.context.space.domains
    frame = read_csv(mixtures_csv)
    unknown = [c for c in frame.columns if c not in domains]
    if unknown:
        raise MixerError(f"{mixtures_csv}: column(s) {', '.join(unknown)} are not domains of search "
                         f"'{search.name}' ({', '.join(domains)})")
    X = np.array([Mixture.normalized({d: float(row.get(d, 0.0)) for d in domains}).vector(domains)
                  for row in frame.to_dict("records")])
    history = session.history()
    if len(history) < 3:
        raise MixerError(f"search '{search.name}' has {len(history)} finished runs; predictions need 3")
    mean, std = session.backend.predict(history, X)
    return frame.assign(predicted=session.target.value_of(mean), predicted_std=std)


def export(ws: Workspace, search: SearchRecord, fmt: str, path_template: str | None) -> str:
    rec = recommendation(ws, search)
    metas = {m.name: m for m in list_domains(ws.domains_dir)}
    spec = load_spec(search)
    proxy = spec.proxy if spec is not None else None
    ctx = ExportContext(paths={n: str(ws.domain_dir(n)) for n in metas}, path_template=path_template,
                        domain_tokens={n: m.n_tokens for n, m in metas.items()},
                        token_budget=proxy.train.tokens if proxy else None, seed=spec.seed if spec else 0)
    return export_mixture(Mixture.normalized(rec["mixture"]), fmt, ctx)


def plot(ws: Workspace, search: SearchRecord, out: Path) -> None:
    from search.backends.regmix import RegMixConfig, fit_checked
    from search.plot import plot_search

    runs = search_runs(ws.db_path, search.id)
    done = runs[(runs.status == "done") & runs.target_value.notna() & ~runs.run_id.str.endswith("/validation")]
    target_fidelity = _target_fidelity(search)
    if target_fidelity:  # a multi-fidelity search: best-so-far and fit at the target fidelity
        done = done[done.fidelity == target_fidelity]
    if done.empty:
        raise MixerError(f"search '{search.name}' has no finished runs to plot")
    rec = latest_recommendation(ws.db_path, search.id)
    domains = sorted({d for m in done.mixture for d in m})
    X = np.array([[m.get(d, 0.0) for d in domains] for m in done.mixture])
    y = done.target_value.to_numpy(dtype=float)
    predicted = fit_checked(RegMixConfig(n_models=1), X, y).out_of_fold if len(y) >= 3 else None
    plot_search(out, search.name, list(y), search.direction == "maximize",
                rec["mixture"] if rec else None, y, predicted)
