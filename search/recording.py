"""Turning a RunResult into store rows (run status, target, metrics)."""

from __future__ import annotations

from search.evaluation import RunResult
from store.records import MetricRow, RunRecord


def result_metrics(run_id: str, result: RunResult) -> list[MetricRow]:
    """Every number a run measured, as metric rows.

    split 'val': per-domain held-out losses along the curve and at the end (the final step);
    'train': the training loss curve; 'eval': the eval-only sets' losses, along the curve and
    at the end; 'perf': throughput,
    time and parameter counts; 'moe': per-domain expert shares and per-layer expert load.
    A table answer has only its final values ('val', step 0)."""
    proxy = result.proxy
    if proxy is None:
        return [MetricRow(run_id, 0, "val", n, v) for n, v in result.values.items()]
    final_step, final_tokens = proxy.steps, proxy.tokens_trained
    rows: list[MetricRow] = []
    for point in result.curve:
        rows.append(MetricRow(run_id, point.step, "train", "loss", point.train_loss, point.tokens))
        if point.step != final_step:
            rows.extend(MetricRow(run_id, point.step, "val", n, v, point.tokens) for n, v in point.val.items())
            rows.extend(MetricRow(run_id, point.step, "eval", n, v, point.tokens) for n, v in point.eval.items())
    rows.extend(MetricRow(run_id, final_step, "val", n, v, final_tokens) for n, v in proxy.val_loss.items())
    rows.extend(MetricRow(run_id, final_step, "eval", n, v, final_tokens) for n, v in proxy.eval_loss.items())
    perf = {"tokens_per_s": proxy.tokens_per_s, "wall_s": proxy.wall_s, "run_s": result.wall_s,
            **{f"params_{k}": v for k, v in proxy.params.items()},
            **{f"epochs_{k}": v for k, v in proxy.epochs.items()}}
    rows.extend(MetricRow(run_id, final_step, "perf", k, float(v), final_tokens) for k, v in perf.items()
                if v is not None)
    for domain, shares in proxy.moe.get("expert_share", {}).items():
        rows.extend(MetricRow(run_id, final_step, "moe", f"share/{domain}/{e}", s) for e, s in enumerate(shares))
    for layer, load in enumerate(proxy.moe.get("layer_load", [])):
        rows.extend(MetricRow(run_id, final_step, "moe", f"load/{layer}/{e}", v) for e, v in enumerate(load))
    return rows


def finished_run(run: RunRecord, result: RunResult, target: float | None) -> RunRecord:
    """The run record after its result arrived."""
    run.status = result.status.value
    run.error = None if result.done else (result.error or "failed")
    run.target = target if result.done else None
    if result.proxy is not None:
        run.n_params = result.proxy.params.get("non_embedding", run.n_params)
    return run
