"""The `mixer` command line: parse, call one function, render.

Errors a user can cause surface as `MixerError`: one line on stderr, exit code 2, no
traceback unless `--debug`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

import store
from mixer import MixerError, __version__, open_workspace
from mixer.workspace import Workspace

console = Console(soft_wrap=True)


@dataclass
class Options:
    workspace: Optional[str] = None
    debug: bool = False

    def open(self) -> Workspace:
        return open_workspace(self.workspace)


OPTIONS = Options()


class MixerApp(typer.Typer):
    """A Typer app that turns `MixerError` into one line and exit code 2."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except MixerError as exc:
            if OPTIONS.debug:
                raise
            print(f"mixer: error: {exc}", file=sys.stderr)
            sys.exit(2)


def _app(help_text: str) -> typer.Typer:
    return MixerApp(help=help_text, no_args_is_help=True, pretty_exceptions_enable=False,
                    add_completion=False)


app = _app("Data-mixture optimisation for language-model pretraining.")
runs_app = _app("Runs: list them, import past experiments.")
app.add_typer(runs_app, name="runs")
corpus_app = _app("Domains: ingest text into tokenised domains, list, show, remove.")
app.add_typer(corpus_app, name="corpus")
proxy_app = _app("Proxy models: list presets, train one.")
app.add_typer(proxy_app, name="proxy")
search_app = _app("Mixture searches: start, list, status, resume, cancel.")
app.add_typer(search_app, name="search")


def _version(value: bool) -> None:
    if value:
        print(f"mixer {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    workspace: Optional[str] = typer.Option(None, "--workspace", "-w", envvar="MIXER_WORKSPACE",
                                            help="Workspace directory (default ./.mixer)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for user errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    OPTIONS.workspace = workspace
    OPTIONS.debug = debug


# ---------------------------------------------------------------- rendering


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):  # a mixture: its largest weights first
        top = sorted(((v, k) for k, v in value.items() if v), reverse=True)
        text = " ".join(f"{k}={v:.3f}" for v, k in top[:4])
        return text + (f" +{len(top) - 4}" if len(top) > 4 else "")
    if value is None or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)):
        return ""
    return str(value)


def render_frame(frame: pd.DataFrame, title: str | None = None) -> None:
    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        table.add_column(str(col), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    console.print(table)


def write_frame(frame: pd.DataFrame, fmt: str, output: Optional[Path]) -> None:
    """Render as a rich table, CSV or JSON on stdout, or write Parquet/CSV/JSON to a file."""
    if output is not None:
        suffix = output.suffix.lower()
        if suffix == ".parquet":
            frame.to_parquet(output, index=False)
        elif suffix == ".csv":
            frame.to_csv(output, index=False)
        elif suffix == ".json":
            output.write_text(frame.to_json(orient="records", indent=2, default_handler=str))
        else:
            raise MixerError(f"--output {output}: unknown file type (use .parquet, .csv or .json)")
        print(f"wrote {len(frame)} rows to {output}")
    elif fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(frame.to_json(orient="records", indent=2, default_handler=str))
    elif fmt == "table":
        render_frame(frame)
    else:
        raise MixerError(f"--format {fmt}: unknown format (use table, csv or json)")


# ---------------------------------------------------------------- commands


@app.command()
def info() -> None:
    """Workspace, schema version, counts, and library versions."""
    import duckdb
    import ray
    import torch

    ws = OPTIONS.open()
    facts = store.store_info(ws.db_path)
    table = Table(show_header=False)
    for key, value in [
        ("workspace", str(ws.root)), ("database", str(ws.db_path)),
        ("schema version", str(facts.schema_version)), ("domains", str(facts.n_domains)),
        ("searches", str(facts.n_searches)), ("runs", f"{facts.n_runs} ({facts.n_runs_done} done)"),
        ("mixer", __version__), ("torch", torch.__version__), ("ray", ray.__version__),
        ("duckdb", duckdb.__version__),
    ]:
        table.add_row(key, value)
    console.print(table)


@app.command()
def sql(
    statement: str = typer.Argument(..., help="One SQL statement; the database is opened read-only."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE.parquet/.csv/.json."),
    wait: float = typer.Option(store.DEFAULT_WAIT_S, "--wait", help="Seconds to wait for a locked database."),
) -> None:
    """Query the store with SQL (read-only): tables domains, searches, runs, metrics, proposals,
    recommendations and the view run_summary."""
    ws = OPTIONS.open()
    write_frame(store.run_sql(ws.db_path, statement, wait_s=wait), fmt, output)


@runs_app.command("list")
def runs_list(
    search: Optional[str] = typer.Option(None, "--search", "-s", help="Only runs of this search."),
    limit: int = typer.Option(50, "--limit", "-n", help="Show at most this many (0: all)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
) -> None:
    """List runs, newest first."""
    ws = OPTIONS.open()
    write_frame(store.list_runs(ws.db_path, search=search, limit=limit or None), fmt, None)


@runs_app.command("import")
def runs_import(
    mixtures_csv: Path = typer.Argument(..., help="CSV with one mixture per row (and metrics, if one file)."),
    metrics_csv: Optional[Path] = typer.Argument(None, help="CSV of metrics, joined on the id column."),
    search: str = typer.Option(..., "--search", help="Name of the search the runs belong to."),
    weight_prefix: str = typer.Option(..., "--weight-prefix", help="Prefix of weight columns (stripped: domain names)."),
    metric_prefix: str = typer.Option(..., "--metric-prefix", help="Prefix of metric columns (stripped: metric names)."),
    metric_suffix: str = typer.Option("", "--metric-suffix", help="Suffix of metric columns, stripped too."),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="Run id column (default 'index')."),
    fidelity_column: Optional[str] = typer.Option(None, "--fidelity-column", help="Column with each run's fidelity label."),
    fidelity: Optional[str] = typer.Option(None, "--fidelity", help="One fidelity label for every run (e.g. 1m)."),
    target: Optional[str] = typer.Option(None, "--target", help="Metric that is the search's target."),
    sum_tolerance: float = typer.Option(store.importer.DEFAULT_SUM_TOLERANCE, "--sum-tolerance",
                                        help="Largest |sum - 1| renormalised as rounding."),
) -> None:
    """Import past experiments as finished runs of a named search (idempotent)."""
    ws = OPTIONS.open()
    spec = store.ImportSpec(
        mixtures_csv=mixtures_csv, metrics_csv=metrics_csv, search=search,
        weight_prefix=weight_prefix, metric_prefix=metric_prefix, metric_suffix=metric_suffix,
        id_column=id_column, fidelity=fidelity, fidelity_column=fidelity_column, target=target,
        sum_tolerance=sum_tolerance)
    report = store.import_runs(ws.db_path, spec)
    console.print(f"imported {report.n_runs} runs into search '{search}' ({report.search_id}): "
                  f"{len(report.domains)} domains, {len(report.metrics)} metrics; "
                  f"largest weight-sum correction {report.max_correction:.4g}")



@corpus_app.command("add")
def corpus_add(
    name: str = typer.Argument(..., help="Domain name."),
    sources: list[Path] = typer.Argument(None, help="JSONL/Parquet/text files or directories (.gz/.zst too)."),
    builtin: Optional[str] = typer.Option(None, "--builtin", help="Built-in data: python, cpp, docs or licenses."),
    builtin_max_mb: Optional[float] = typer.Option(None, "--builtin-max-mb", help="Stop a built-in source after this many MB."),
    text_field: str = typer.Option("text", "--text-field", help="JSONL field / Parquet column holding the text."),
    split_on_blank_lines: bool = typer.Option(False, "--split-on-blank-lines", help="Plain text: one document per blank-line block."),
    skip_bad_lines: bool = typer.Option(False, "--skip-bad-lines", help="JSONL: skip (and count) lines that are not valid."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="A Hugging Face tokenizer.json (default: bytes)."),
    val_fraction: float = typer.Option(0.01, "--val-fraction", help="Share of documents held out for validation."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite an existing domain of this name."),
) -> None:
    """Tokenise documents into a domain of the workspace."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from mixer.corpus import AddRequest, add_corpus, source_bytes
    from mixer.ingest import IngestConfig
    from mixer.sources import ReadOptions

    ws = OPTIONS.open()
    request = AddRequest(
        name=name, sources=list(sources or []), builtin=builtin, tokenizer=tokenizer,
        builtin_max_bytes=int(builtin_max_mb * 1e6) if builtin_max_mb else None,
        read=ReadOptions(text_field=text_field, split_on_blank_lines=split_on_blank_lines,
                         skip_bad_lines=skip_bad_lines),
        ingest=IngestConfig(val_fraction=val_fraction, replace=replace))
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"ingesting {name}", total=source_bytes(request.sources) or None)
        meta = add_corpus(ws, request, progress=lambda n: bar.advance(task, n))
    store.upsert_domain(ws.db_path, vars(meta))
    skipped = f", {meta.bad_lines} bad lines skipped" if meta.bad_lines else ""
    console.print(f"domain '{name}': {meta.n_docs} documents, {meta.n_tokens:,} tokens "
                  f"(+{meta.n_val_docs} held out, {meta.n_val_tokens:,} tokens){skipped}")


@corpus_app.command("list")
def corpus_list(fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json.")) -> None:
    """Domains of the workspace."""
    from mixer.domain import list_domains

    ws = OPTIONS.open()
    rows = [{"name": m.name, "docs": m.n_docs, "tokens": m.n_tokens, "val_docs": m.n_val_docs,
             "val_tokens": m.n_val_tokens, "MB": round(m.n_bytes / 1e6, 2),
             "tokenizer": m.tokenizer.get("kind")} for m in list_domains(ws.domains_dir)]
    write_frame(pd.DataFrame(rows, columns=["name", "docs", "tokens", "val_docs", "val_tokens", "MB", "tokenizer"]),
                fmt, None)


@corpus_app.command("show")
def corpus_show(name: str = typer.Argument(..., help="Domain name."),
                verify: bool = typer.Option(False, "--verify", help="Recompute the full content hash.")) -> None:
    """A domain's metadata (and, with --verify, a full hash check)."""
    from mixer.domain import Domain

    ws = OPTIONS.open()
    if not (ws.domain_dir(name) / "meta.json").exists():
        raise MixerError(f"no domain named '{name}'")
    domain = Domain.open(ws.domain_dir(name))
    if verify:
        domain.verify_full()
    print(json.dumps({**vars(domain.meta), "path": str(domain.path),
                      "verified": "full" if verify else "sizes and sampled hash"}, indent=2))


@corpus_app.command("remove")
def corpus_remove(name: str = typer.Argument(..., help="Domain name.")) -> None:
    """Delete a domain's files and its row in the store."""
    from mixer.corpus import remove_corpus

    ws = OPTIONS.open()
    remove_corpus(ws, name)
    store.remove_domain(ws.db_path, name)
    console.print(f"removed domain '{name}'")



@proxy_app.command("presets")
def proxy_presets() -> None:
    """Proxy presets with total, non-embedding and active parameters (byte vocabulary)."""
    from proxies import PRESETS, preset_parameters

    rows = []
    for name, cfg in PRESETS.items():
        counts = preset_parameters(name, 257)
        rows.append({"preset": name, "d_model": cfg.d_model, "layers": cfg.n_layers, "heads": cfg.n_heads,
                     "experts": f"{cfg.n_experts} (top-{cfg.top_k})" if cfg.is_moe else "-",
                     "total": counts["total"], "non_embedding": counts["non_embedding"],
                     "active": counts["active"]})
    render_frame(pd.DataFrame(rows))


@proxy_app.command("train")
def proxy_train(
    mixture: str = typer.Option(..., "--mixture", "-m", help="e.g. web=0.5,code=0.5"),
    preset: str = typer.Option("tiny", "--preset", help="Proxy preset (see `mixer proxy presets`)."),
    tokens: str = typer.Option("2M", "--tokens", help="Training tokens, e.g. 2M."),
    seq_len: int = typer.Option(256, "--seq-len"),
    batch_size: int = typer.Option(16, "--batch-size"),
    lr: float = typer.Option(3e-3, "--lr"),
    schedule: str = typer.Option("constant", "--lr-schedule", help="constant or cosine."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    cpus: float = typer.Option(1.0, "--cpus", help="CPUs for the run (torch threads)."),
    gpus: float = typer.Option(0.0, "--gpus", help="GPUs (fractional) for the run."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS",
                                              help="Join this Ray cluster (default: embedded local one)."),
) -> None:
    """Train one proxy on a mixture and print its loss on every domain."""
    from mixer.mixture import parse_count
    from proxies import PRESETS
    from proxies.runner import RunnerConfig
    from proxies.train import LRSchedule, TrainConfig
    from search.single import train_one

    if schedule not in LRSchedule.__members__:
        raise MixerError(f"--lr-schedule {schedule}: use constant or cosine")
    if preset not in PRESETS:
        raise MixerError(f"unknown proxy preset '{preset}' (see `mixer proxy presets`)")
    ws = OPTIONS.open()
    train = TrainConfig(preset=preset, tokens=parse_count(tokens), seq_len=seq_len, batch_size=batch_size,
                        lr=lr, lr_schedule=schedule, seed=seed, device=device, threads=max(1, int(cpus)))
    runner = RunnerConfig(address=ray_address, cpus_per_run=cpus, gpus_per_run=gpus)
    with console.status(f"training {preset} on {tokens} tokens..."):
        run_id, result = train_one(ws, mixture, train, runner)
    if result["status"] != "done":
        raise MixerError(f"run {run_id} failed: {result.get('error')}")
    frame = pd.DataFrame([{"domain": n, "val_loss": v} for n, v in result["val_loss"].items()])
    render_frame(frame, title=f"run {run_id}: {result['tokens_trained']:,} tokens, "
                              f"{result['tokens_per_s']:,.0f} tokens/s")



def _run_with_progress(run, budget: int, label: str):
    """Run a search with a progress bar showing best-so-far; Ctrl-C leaves it resumable."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=budget)

        def update(p):
            best = "" if p.best is None else f" best {p.best:.4f}"
            bar.update(task, completed=p.finished, description=f"{label}{best}")
        try:
            return run(update)
        except KeyboardInterrupt:
            console.print("interrupted: finished runs are stored; continue with `mixer search resume`")
            raise typer.Exit(130)


def _render_recommendation(name: str, rec) -> None:
    weights = sorted(rec.mixture.as_dict().items(), key=lambda kv: -kv[1])
    render_frame(pd.DataFrame([{"domain": n, "weight": w} for n, w in weights if w > 0]),
                 title=f"{name}: recommended mixture")
    if rec.predicted is not None:
        console.print(f"predicted target {rec.predicted:.4f} ± {rec.predicted_std or 0:.4f}")


@search_app.command("start")
def search_start(
    name: Optional[str] = typer.Option(None, "--name", help="Search name (default: BACKEND-N)."),
    backend: str = typer.Option("regmix", "--backend", help="random, regmix or bayesopt."),
    option: list[str] = typer.Option([], "--option", help="Backend option KEY=VALUE (repeat)."),
    evaluator: str = typer.Option("proxy", "--evaluator", help="proxy (train on Ray) or table (imported runs)."),
    table: Optional[str] = typer.Option(None, "--table", help="Imported search answering the table evaluator."),
    target: str = typer.Option("avg", "--target", help="avg, a domain/metric name, or weights a=0.7,b=0.3."),
    maximize: bool = typer.Option(False, "--maximize", help="Maximise the target (scores), not minimise."),
    runs: int = typer.Option(32, "--runs", help="Run budget."),
    max_cost: Optional[float] = typer.Option(None, "--max-cost", help="Cost budget (see --fidelity-cost)."),
    parallel: int = typer.Option(2, "--parallel", help="Runs in flight at once (and proposals per batch)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Proxy preset (default tiny)."),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Tokens per proxy run (default 5M)."),
    fidelities: Optional[str] = typer.Option(
        None, "--fidelities", help="Fidelities to run at: PRESET:TOKENS,... (proxy) or table labels."),
    target_fidelity: Optional[str] = typer.Option(
        None, "--target-fidelity", help="The fidelity optimised (default: the last of --fidelities)."),
    fidelity_cost: list[str] = typer.Option(
        [], "--fidelity-cost", help="LABEL=COST per fidelity (repeat or comma-separate); else measured."),
    seq_len: int = typer.Option(256, "--seq-len"),
    batch_size: int = typer.Option(16, "--batch-size"),
    domains: Optional[str] = typer.Option(None, "--domains", help="Comma-separated domains (default: all)."),
    max_epochs: float = typer.Option(4.0, "--max-epochs", help="Largest repetition of a domain in a proposal."),
    seed: int = typer.Option(0, "--seed"),
    validate: bool = typer.Option(False, "--validate", help="Train the recommendation once more and record it."),
    cpus: float = typer.Option(1.0, "--cpus", help="CPUs per run."),
    gpus: float = typer.Option(0.0, "--gpus", help="GPUs (fractional) per run."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS"),
) -> None:
    """Create a search and run it to its budget, then recommend a mixture."""
    from mixer.mixture import parse_count
    from search import driver
    from search.backends import parse_options
    from search.fidelity import parse_costs
    from search.spec import SearchSpec

    if fidelities and (preset or tokens):
        raise MixerError("give either --fidelities or --preset/--tokens, not both")
    ws = OPTIONS.open()
    spec = SearchSpec(
        name=name or f"{backend}-{len(store.list_searches(ws.db_path)) + 1}", backend=backend,
        options=parse_options(option), evaluator=evaluator, table=table, target=target, maximize=maximize,
        runs=runs, max_cost=max_cost, parallel=parallel, preset=preset or "tiny",
        tokens=parse_count(tokens or "5M"), fidelities=_split(fidelities), target_fidelity=target_fidelity,
        fidelity_costs=parse_costs(fidelity_cost), seq_len=seq_len, batch_size=batch_size,
        domains=_split(domains), max_epochs=max_epochs, seed=seed, validate=validate,
        cpus_per_run=cpus, gpus_per_run=gpus, ray_address=ray_address)
    search = driver.create(ws, spec)
    console.print(f"search '{search.name}' ({search.id}): {backend} on {evaluator}, {runs} runs")
    rec = _run_with_progress(lambda cb: driver.run(ws, search.id, cb), runs, search.name)
    if rec is not None:
        _render_recommendation(search.name, rec)


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


@search_app.command("resume")
def search_resume(search: str = typer.Argument(..., help="Search name or id.")) -> None:
    """Continue a search after Ctrl-C, a crash or kill -9: finished runs are reused."""
    from search import driver

    ws = OPTIONS.open()
    record = store.get_search(ws.db_path, search)
    rec = _run_with_progress(lambda cb: driver.run(ws, record.id, cb), record.config.get("runs", 0), record.name)
    if rec is not None:
        _render_recommendation(record.name, rec)


@search_app.command("cancel")
def search_cancel(search: str = typer.Argument(..., help="Search name or id.")) -> None:
    """Mark a search cancelled; a running driver stops after its current round."""
    from search import driver

    record = driver.cancel(OPTIONS.open(), search)
    console.print(f"search '{record.name}' cancelled")


@search_app.command("list")
def search_list(fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json.")) -> None:
    """Every search with its run counts and best target."""
    write_frame(store.list_searches(OPTIONS.open().db_path), fmt, None)


@search_app.command("status")
def search_status(search: str = typer.Argument(..., help="Search name or id.")) -> None:
    """A search's progress, best run and latest runs."""
    from search import views

    ws = OPTIONS.open()
    summary, runs = views.status(ws, store.get_search(ws.db_path, search))
    for key, value in summary.items():
        console.print(f"{key}: {value}")
    render_frame(runs[["run_id", "status", "fidelity", "target_value", "mixture", "error"]].tail(10))


@app.command()
def best(search: Optional[str] = typer.Argument(None, help="Search name or id (default: the latest).")) -> None:
    """The recommended mixture with its predicted target and uncertainty."""
    from search import views

    ws = OPTIONS.open()
    record = views.resolve(ws, search)
    rec = views.recommendation(ws, record)
    weights = sorted(rec["mixture"].items(), key=lambda kv: -kv[1])
    render_frame(pd.DataFrame([{"domain": n, "weight": w} for n, w in weights if w > 0]),
                 title=f"{record.name}: recommended mixture")
    if rec["predicted"] is not None:
        console.print(f"predicted {record.target}: {rec['predicted']:.4f} ± {rec['predicted_std'] or 0:.4f}")
    if rec["validation_run_id"]:
        console.print(f"validation run: {rec['validation_run_id']}")


@app.command()
def predict(
    search: str = typer.Argument(..., help="Search name or id."),
    mixtures: Path = typer.Option(..., "--mixtures", help="CSV: one column per domain, one mixture per row."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
) -> None:
    """Predict the target of given mixtures with the search's fitted model (mean and std)."""
    from search import views

    ws = OPTIONS.open()
    write_frame(views.predict(ws, store.get_search(ws.db_path, search), mixtures), fmt, None)


@app.command()
def export(
    search: Optional[str] = typer.Argument(None, help="Search name or id (default: the latest)."),
    fmt: str = typer.Option("json", "--format", "-f", help="json, yaml, megatron, olmo, hf or streaming."),
    path_template: Optional[str] = typer.Option(None, "--path-template",
                                                help="Data path per domain, with {name} (e.g. /data/{name}_text_document)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file."),
) -> None:
    """The recommended mixture in a training framework's format."""
    from search import views

    ws = OPTIONS.open()
    text = views.export(ws, views.resolve(ws, search), fmt, path_template)
    if output:
        output.write_text(text)
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


@app.command()
def plot(
    search: str = typer.Argument(..., help="Search name or id."),
    output: Path = typer.Option(..., "--output", "-o", help="FILE.png (or .pdf, .svg)."),
) -> None:
    """Best-so-far against runs, the recommended weights, predicted against observed."""
    from search import views

    ws = OPTIONS.open()
    views.plot(ws, store.get_search(ws.db_path, search), output)
    console.print(f"wrote {output}")


@app.command()
def demo(
    runs: int = typer.Option(16, "--runs", help="Proxy runs in the search."),
    parallel: int = typer.Option(2, "--parallel", help="Runs in flight at once."),
    tokens: str = typer.Option("600k", "--tokens", help="Tokens per tiny proxy run."),
) -> None:
    """The main job: built-in data -> RegMix search with tiny proxies on Ray -> validated mixture."""
    from mixer.mixture import parse_count
    from search.demo import DemoConfig, run_demo

    ws = OPTIONS.open()
    cfg = DemoConfig(runs=runs, parallel=parallel, tokens=parse_count(tokens))
    console.print(f"workspace {ws.root}: building domains from built-in data, then {runs} tiny proxy runs on Ray")
    name, table = _run_with_progress(lambda cb: run_demo(ws, cfg, cb), runs, "demo search")
    render_frame(table.drop(columns=["weights"]), title=f"{name}: held-out loss per domain (lower is better)")
    console.print(f"recommended mixture: {table.weights[0]}")
    console.print("next: `mixer sql \"select * from run_summary\"`, `mixer best`, "
                  f"`mixer export --format megatron`, `mixer plot {name} -o {name}.png`")


if __name__ == "__main__":
    app()
