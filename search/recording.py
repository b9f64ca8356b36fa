"""Turning a proxy result into store rows (run status, target, metrics)."""

from __future__ import annotations

from store.records import MetricRow, RunRecord


def result_metrics(run_id: str, result: dict) -> list[MetricRow]:
    """Every number a proxy run measured, as metric rows.

    split 'val': per-domain held-out losses along the curve and at the end (the final step);
    'train': the training loss curve; 'eval': extra evaluation sets; 'perf': throughput,
    time and parameter counts; 'moe': per-domain expert shares and per-layer expert load."""
    rows: list[MetricRow] = []
    final_step = result.get("steps", 0)
    final_tokens = result.get("tokens_trained")
    for point in result.get("curve", []):
        rows.append(MetricRow(run_id, point["step"], "train", "loss", point["train_loss"], point["tokens"]))
        if point["step"] != final_step:
            rows.extend(MetricRow(run_id, point["step"], "val", n, v, point["tokens"]) for n, v in point["val"].items())
    rows.extend(MetricRow(run_id, final_step, "val", n, v, final_tokens) for n, v in result.get("val_loss", {}).items())
    rows.extend(MetricRow(run_id, final_step, "eval", n, v, final_tokens) for n, v in result.get("eval_loss", {}).items())
    perf = {"tokens_per_s": result.get("tokens_per_s"), "wall_s": result.get("wall_s"),
            **{f"params_{k}": v for k, v in result.get("params", {}).items()},
            **{f"epochs_{k}": v for k, v in result.get("epochs", {}).items()}}
    rows.extend(MetricRow(run_id, final_step, "perf", k, float(v), final_tokens) for k, v in perf.items() if v is not None)
    moe = result.get("moe") or {}
    for domain, shares in moe.get("expert_share", {}).items():
        rows.extend(MetricRow(run_id, final_step, "moe", f"share/{domain}/{e}", s) for e, s in enumerate(shares))
    for layer, load in enumerate(moe.get("layer_load", [])):
        rows.extend(MetricRow(run_id, final_step, "moe", f"load/{layer}/{e}", v) for e, v in enumerate(load))
    return rows


def finished_run(run: RunRecord, result: dict, target: float | None) -> RunRecord:
    """The run record after its result arrived."""
    done = result.get("status") == "done"
    run.status = "done" if done else "failed"
    run.error = None if done else (result.get("error") or "failed")
    run.target = target if done else None
    params = result.get("params") or {}
    run.n_params = params.get("non_embedding", run.n_params)
    return run
