"""The JSON documents `mixer serve` answers with (`/api/...`): plain dicts of numbers and
strings, built from the store's read side (`search.views`, `search.state`, `store.reads`)
and nothing else, so the web view shows what `mixer search status`, `best` and `mixer sql`
show. No document builds an evaluator, connects to Ray or fits a model."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd

from mixer.domain import list_domains
from mixer.errors import MixerError
from mixer.export import ExportFormat
from mixer.workspace import Workspace
from search import views
from search.lease import driver_state
from search.runs import OWN_ROLES, domains_of, finished_runs, weight_matrix
from search.state import SearchSetup, SearchState
from store import (clustering_names, get_clustering, get_search, latest_recommendation, run_metrics, run_summary,
                   run_version, run_wall_times, search_runs, search_version)
from store.records import SearchKind, SearchRecord

CURVE_SPLITS = ["train", "val", "eval"]   # the splits a run's loss curves are drawn from
ROW_LIMIT = 100_000                       # runs in one document (imported tables can be large)


def number(value: Any) -> float | None:
    """A JSON number: None for a missing or non-finite value (JSON has no NaN)."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def searches_document(ws: Workspace) -> dict:
    """Every search with its kind, target, status (a search whose driver is gone reads
    `interrupted`), runs done against its budget, and best value (as `search list`)."""
    frame = views.searches(ws)
    rows = []
    for row in frame.itertuples(index=False):
        rows.append({
            "name": row.name, "kind": row.kind, "backend": row.backend, "evaluator": row.evaluator,
            "target": row.target, "direction": row.direction, "status": row.status,
            "live": driver_state(ws, row.id).startswith("alive"),
            "runs": int(row.runs), "done": int(row.done), "own_done": int(row.own_done),
            "budget": None if pd.isna(row.budget) else int(row.budget),
            "best": number(row.best), "created": str(row.created_at)[:19]})
    return {"searches": rows, "generated": time.time()}


def search_exists(ws: Workspace, name: str) -> None:
    """Nothing when search `name` is there; the store's one line (`no search named`) when not."""
    get_search(ws.db_path, name)


def search_fingerprint(ws: Workspace, name: str) -> tuple | None:
    """What `search_document` depends on, in one short query and a lease read: the search's
    status, runs, metric rows and recommendations, and whether a driver holds it."""
    version = search_version(ws.db_path, name)
    return None if version is None else (*version, driver_state(ws, version[0]))


def run_fingerprint(ws: Workspace, run_id: str) -> tuple | None:
    return run_version(ws.db_path, run_id)


def search_document(ws: Workspace, name: str) -> dict:
    """One search: its facts, progress and cost, the best-so-far curve, every run, the
    recommendation with its evidence and the baselines beside it, and (online runs) the
    schedule."""
    record = get_search(ws.db_path, name)
    runs = search_runs(ws.db_path, record.id)
    state, unresolved = _state(ws, record, runs)
    domains = state.setup.space.domains if state is not None else domains_of(runs.mixture)
    rec = latest_recommendation(ws.db_path, record.id)
    doc = {
        "search": {"name": record.name, "id": record.id, "kind": record.kind.value, "backend": record.backend,
                   "evaluator": record.evaluator, "target": record.target, "target_label": views.target_label(record),
                   "direction": record.direction, "status": _status(ws, record, len(runs)),
                   "driver": driver_state(ws, record.id)},
        "progress": _counts(runs) | (_progress(state) if state is not None else {}),
        "domains": list(domains),
        "runs": _runs(ws, record, runs, domains),
        "runs_shown": min(len(runs), ROW_LIMIT),
        "best_curve": _best_curve(state) if state is not None else [],
        "recommendation": _recommendation(rec, record, runs, state) if rec is not None else None,
        "exports": [f.value for f in ExportFormat] if rec is not None else [],
        "schedule": (rec or {}).get("evidence", {}).get("schedule"),
        "generated": time.time(),
    }
    if unresolved:
        doc["progress"]["setup"] = unresolved
    return doc


def _state(ws: Workspace, record: SearchRecord, runs: pd.DataFrame) -> tuple[SearchState | None, str | None]:
    """The search's state from its runs, or None (an online or proxy-train run; a setup
    that no longer resolves, with why)."""
    if record.kind in (SearchKind.online, SearchKind.proxy_train):
        return None, None
    try:
        return SearchSetup.of(ws, record, runs).load(ws, runs), None
    except MixerError as error:
        return None, str(error)


def _status(ws: Workspace, record: SearchRecord, n_runs: int) -> str:
    status = views.shown_status(ws, record, n_runs)
    return "interrupted" if status.startswith("interrupted") else status


def _counts(runs: pd.DataFrame) -> dict:
    """Every run of the search by status."""
    counts = runs.status.value_counts().to_dict()
    return {"runs": len(runs), **{status: int(counts.get(status, 0)) for status in ("queued", "running", "done", "failed")}}


def _progress(state: SearchState) -> dict:
    """The search's own runs against its budget, its cost, its best run, as `search status`."""
    spec = state.setup.spec
    own = state.own
    out = {"own": len(own), "own_done": int((own.status == "done").sum()),
           "budget": spec.budget.runs if spec is not None else None,
           "target_fidelity": state.setup.space.target_fidelity if spec is not None else None}
    if spec is not None and spec.budget.max_cost is not None:
        out["cost_spent"], out["max_cost"] = state.spent()[1], spec.budget.max_cost
    best = state.best()
    out["best"] = {"value": best[0], "run": best[1]} if best else None
    said = views.budget_progress(state)     # as `search status` says it: "6 of 16 runs done", a cost, a stop
    out["budget_text"], out["cost_text"] = said.get("budget"), said.get("cost")
    return out


def _best_curve(state: SearchState) -> list[dict]:
    """The search's own finished runs at the target fidelity in the order they were made:
    each run's value and the best so far, in the user's orientation."""
    at_target = state.at_target
    if not len(at_target):
        return []
    target = state.setup.target
    best_loss = np.minimum.accumulate(at_target.y)
    return [{"n": i + 1, "run": run_id, "value": number(target.value_of(y)), "best": number(target.value_of(b))}
            for i, (run_id, y, b) in enumerate(zip(at_target.run_ids, at_target.y, best_loss))]


def _runs(ws: Workspace, record: SearchRecord, runs: pd.DataFrame, domains: list[str]) -> dict:
    """The runs as columns (one list per field; `weights` rows follow `domains`)."""
    runs = runs.head(ROW_LIMIT)
    walls = run_wall_times(ws.db_path, record.id)
    weights = weight_matrix(runs.mixture, domains) if len(runs) else np.zeros((0, len(domains)))
    return {
        "id": list(runs.run_id), "role": list(runs.role), "fidelity": [_text(f) for f in runs.fidelity],
        "status": list(runs.status), "target": [number(v) for v in runs.target_value],
        "seed": [None if pd.isna(s) else int(s) for s in runs.seed],
        "wall_s": [number(walls.get(r)) for r in runs.run_id],
        "weights": np.round(weights, 6).tolist(), "error": [_text(e) for e in runs.error],
    }


def _text(value) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _recommendation(rec: dict, record: SearchRecord, runs: pd.DataFrame, state: SearchState | None) -> dict:
    evidence = rec["evidence"]
    quality = evidence.get("quality") or {}
    fresh = views.fresh_seed_line(state, rec) if state is not None else None
    return {
        "mixture": {k: float(v) for k, v in rec["mixture"].items()},
        "predicted": number(rec["predicted"]), "predicted_std": number(rec["predicted_std"]),
        "rule": evidence.get("rule"), "lines": views.explain(rec, record.target or "target") + ([fresh] if fresh else []),
        "quality": {k: number(quality.get(k)) for k in ("runs", "cv_spearman", "cv_rmse", "runs_std", "coverage")},
        "fidelities": views.fidelity_lines(evidence.get("cheap_fidelities")),
        "validation": _validation(rec, runs),
        "references": _references(runs),
    }


def _validation(rec: dict, runs: pd.DataFrame) -> dict | None:
    run_id = rec.get("validation_run_id")
    row = runs[runs.run_id == run_id] if run_id else runs.iloc[:0]
    return {"run": run_id, "value": number(row.target_value.iloc[0])} if len(row) else None


def _references(runs: pd.DataFrame) -> list[dict]:
    """The runs outside the budget (baselines, validations, replicates), grouped by mixture
    and role: mean and std of their target over seeds."""
    extra = finished_runs(runs[~runs.role.isin(OWN_ROLES)])
    groups: dict[tuple, list] = {}
    for row in extra.itertuples(index=False):
        key = (row.role, tuple(sorted((k, round(float(v), 6)) for k, v in dict(row.mixture).items())))
        groups.setdefault(key, []).append(row)
    out = []
    for (role, mixture), rows in groups.items():
        values = np.array([float(r.target_value) for r in rows])
        out.append({"role": role, "runs": [r.run_id for r in rows], "mixture": dict(mixture),
                    "mean": number(values.mean()), "std": number(values.std(ddof=1)) if len(values) > 1 else None,
                    "n": len(values)})
    return out


def curves_document(ws: Workspace, run_id: str) -> dict:
    """One run's training and held-out loss curves: {series name: [[tokens or step, value]]}."""
    summary = run_summary(ws.db_path, run_id)
    if summary is None:
        raise MixerError(f"no run '{run_id}'")
    metrics = run_metrics(ws.db_path, run_id, CURVE_SPLITS)
    series: dict[str, list] = {}
    for (split, name), rows in metrics.groupby(["split", "name"], sort=True):
        x = rows.tokens.where(rows.tokens.notna(), rows.step).astype(float)
        series[f"{split}/{name}"] = [[float(a), number(b)] for a, b in zip(x, rows.value)]
    return {"run": run_id, "search": summary["search"], "status": summary["status"], "series": series}


def corpus_document(ws: Workspace) -> dict:
    """The workspace's domains and eval-only sets, and each clustering's clusters (sizes and
    top terms)."""
    domains = [{"name": m.name, "use": "eval-only" if m.eval_only else "train", "documents": m.n_docs,
                "tokens": m.n_tokens, "held_out_documents": m.n_val_docs, "held_out_tokens": m.n_val_tokens}
               for m in list_domains(ws.domains_dir)]
    clusterings = []
    for name in clustering_names(ws.db_path):
        record = get_clustering(ws.db_path, name)
        clusterings.append({"name": record.name, "embedder": record.embedder, "documents": record.n_docs,
                            "clusters": [{"cluster": c.cluster, "domain": c.domain, "documents": c.n_docs,
                                          "tokens": c.n_tokens, "top_terms": c.top_terms}
                                         for c in record.clusters]})
    return {"domains": domains, "clusterings": clusterings, "generated": time.time()}


def export_document(ws: Workspace, name: str, fmt: str, path_template: str | None) -> tuple[str, str]:
    """What `mixer export NAME --format FMT [--path-template T]` writes, and a file name."""
    record = get_search(ws.db_path, name)
    text = views.export(ws, record, fmt, path_template or None)
    suffix = {"json": "json", "hf": "json", "megatron": "txt"}.get(fmt, "yaml")
    return text, f"{record.name}-{fmt}.{suffix}"
