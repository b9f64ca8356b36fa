"""The `mixer` command line: parse, call one function, render.

Errors a user can cause surface as `MixerError`: one line on stderr, exit code 2, no
traceback unless `--debug`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mixer.layout import ShadowedPackageError, check_layout

try:
    check_layout()  # before importing `store`: another distribution may own the name
except ShadowedPackageError as exc:
    print(f"mixer: error: {exc}", file=sys.stderr)
    sys.exit(2)

import duckdb  # noqa: E402  (the store's engine: imported by `store` below in any case)
import typer  # noqa: E402

import store  # noqa: E402
from mixer import MixerError, __version__, open_workspace  # noqa: E402
from mixer.render import console, render_frame, render_mixture, render_pairs, render_rows, write_frame  # noqa: E402
from mixer.workspace import Workspace  # noqa: E402

# Library errors name Python arguments (`budget.runs`, `search.budget.runs`); the CLI speaks in
# flags: the search spec's own table (search.spec.SPEC_FLAGS), and the phrases other checks use.
def _flag_table() -> dict[str, str]:
    from search.spec import SPEC_FLAGS

    return {f.path: f.flag for f in SPEC_FLAGS} | {
        "max_epochs": "--max-epochs", "validate": "--validate", "the proxy evaluator": "--evaluator proxy",
        "the token budget": "--tokens", "the search seed": "--seed", "proxy.train.seed": "--seed",
        "proxy.train.init_seed": "--init-seed", "proxy.train.lr_schedule": "--lr-schedule",
        "ingest.val_fraction": "--val-fraction"}


@dataclass
class Options:
    workspace: Optional[str] = None
    debug: bool = False

    def open(self) -> Workspace:
        return open_workspace(self.workspace)


OPTIONS = Options()


def user_message(exc: MixerError) -> str:
    """The error in the CLI's words: whole Python argument names become their flags."""
    flags = _flag_table()
    names = re.compile(r"(?<![\w.-])(?:search\.)?(" + "|".join(
        re.escape(name) for name in sorted(flags, key=len, reverse=True)) + r")(?![\w])")
    return names.sub(lambda m: flags[m.group(1)], str(exc))


# Help placeholders as command-line tools write them (`--runs INTEGER`, `-o FILE`, a flag
# with none, `SEARCH` and `[SEARCH]` for arguments) instead of typer's `<int>` and `{search}`.
_METAVARS = {"output": "FILE", "workspace": "DIR", "option": "KEY=VALUE", "mixtures": "FILE", "name": "NAME",
             "search": "SEARCH", "table": "SEARCH", "clusters": "NAME", "reference_run": "RUN"}


def _conventional_help(command) -> None:
    from typer.core import TyperArgument, TyperOption

    for param in getattr(command, "params", []):
        if isinstance(param, TyperOption):
            if param.is_flag:
                param.metavar = ""
            elif param.metavar is None:
                bare = param.bare_type().removeprefix("list[").removesuffix("]")
                typed = {"int": "INTEGER", "float": "FLOAT", "Path": "PATH", "bool": "BOOLEAN"}.get(bare)
                number = typed if bare in ("int", "float") else None   # a count stays a count (`--clusters INTEGER`)
                name = number or _METAVARS.get(param.name) or typed or "TEXT"
                param.metavar = name + ("..." if param.multiple else "")
        elif isinstance(param, TyperArgument):
            param.metavar = param.name.upper()
            text = param.metavar + ("..." if param.nargs != 1 else "")
            param._usage_display_name = (lambda text=text, required=param.required:
                                         text if required else f"[{text}]")
            param._rich_display_name = lambda text=text: text
            param.display_type = param.display_type_rich = lambda ctx: None   # the name says it
    for sub in getattr(command, "commands", {}).values():
        _conventional_help(sub)


class MixerApp(typer.Typer):
    """A Typer app that turns `MixerError` into one line and exit code 2."""

    def __call__(self, *args, **kwargs):
        click = sys.modules[typer.BadParameter.__module__]  # Click's exceptions (typer may vendor Click)
        no_args_is_help = getattr(click, "NoArgsIsHelpError", ())  # Click >= 8.2
        command = typer.main.get_command(self)
        _conventional_help(command)
        try:
            code = command.main(*args, **{**kwargs, "standalone_mode": False})
        except MixerError as exc:
            if OPTIONS.debug:
                raise
            print(f"mixer: error: {user_message(exc)}", file=sys.stderr)
            sys.exit(2)
        except no_args_is_help as exc:  # a group alone: its help
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:  # a flag or argument Click refused: one line too
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            print(f"mixer: error: {exc.format_message()}{where}", file=sys.stderr)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:  # end of input at a prompt (typer turns Ctrl-C into exit code 130 itself)
            print("Aborted!", file=sys.stderr)
            sys.exit(1)
        except (RuntimeError, duckdb.Error) as exc:   # Ctrl-C inside a DuckDB query (`runs import`)
            if OPTIONS.debug or "query interrupted" not in str(exc).lower():
                raise
            _say_interrupted()
        sys.exit(code if isinstance(code, int) else 0)


def _say_interrupted() -> None:
    """Ctrl-C in a command that does not say more itself: one line, exit 130. Every write
    is one transaction: one the signal cut short was rolled back, one committed before it
    stays."""
    print("mixer: interrupted (a write it cut short was rolled back; one already committed stays)", file=sys.stderr)
    sys.exit(130)


def _app(help_text: str) -> typer.Typer:
    return MixerApp(help=help_text, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                    add_completion=False)


app = _app("Data-mixture optimisation for language-model pretraining.")
runs_app = _app("Runs: list them, import past experiments.")
app.add_typer(runs_app, name="runs")
corpus_app = _app("Domains: ingest text into tokenised domains, cluster an unlabeled corpus, list, show, remove.")
app.add_typer(corpus_app, name="corpus")
proxy_app = _app("Proxy models: list presets, train one.")
app.add_typer(proxy_app, name="proxy")
search_app = _app("Mixture searches: start, list, status, resume, cancel.")
app.add_typer(search_app, name="search")
online_app = _app("Online mixing: one run whose mixture Aioli or DoReMi changes as it trains.")
app.add_typer(online_app, name="online")


def _version(value: bool) -> None:
    if value:
        print(f"mixer {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    workspace: Optional[str] = typer.Option(None, "--workspace", "-w", envvar="MIXER_WORKSPACE",
                                            help="Workspace directory [default: ./.mixer]."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for user errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    OPTIONS.debug = debug
    env = os.environ.get("MIXER_WORKSPACE")
    if env is not None and not env.strip() and workspace in (None, env):   # Click reads "" as unset
        raise MixerError("MIXER_WORKSPACE is empty")
    OPTIONS.workspace = _nonempty(workspace, "--workspace")
    store.db.set_wait_notice(lambda text: print(f"mixer: {text}", file=sys.stderr))


def _split(text: str | None, flag: str) -> list[str] | None:
    """A comma-separated option as a list; None when not given. Given but empty is an error,
    not "the default", and so is an empty item (`a,,b`: a name lost in the typing)."""
    if text is None:
        return None
    parts = [part.strip() for part in _no_empty_item(text, flag).split(",")]
    if not any(parts):
        raise MixerError(f"{flag} is empty")
    return parts


def _no_empty_item(text: str | list[str] | None, flag: str):
    """`text` (or each of a repeated flag's texts), refused when a comma list in it has an
    empty item (`a,,b`: a name lost in the typing). Checked here, where the user types it:
    a stored spec is read as it was stored."""
    for item in [text] if isinstance(text, str) else text or []:
        parts = [part.strip() for part in item.split(",")]
        if any(parts) and not all(parts):
            raise MixerError(f"{flag} '{item}' has an empty item")
    return text


def _nonempty(text: str | None, flag: str) -> str | None:
    if text is not None and not text.strip():
        raise MixerError(f"{flag} is empty")
    return text


def _pairs(items: list[str], flag: str) -> dict[str, float] | None:
    """Repeated or comma-separated NAME=W flags -> {name: weight} (None: not given)."""
    from mixer.config import parse_pairs

    out = {}
    for name, text in parse_pairs(_no_empty_item(items, flag), flag, form="NAME=WEIGHT").items():
        try:
            out[name] = float(text)
        except ValueError:
            raise MixerError(f"{flag} {name}={text}: the weight is not a number") from None
    return out or None


def _groups(items: list[str]) -> dict[str, str] | None:
    """Repeated --group NAME=PATTERN -> {name: pattern} (None: not given)."""
    from mixer.config import parse_pairs

    return parse_pairs(items, "--group", split_commas=False, form="NAME=PATTERN") or None


def _given(**values) -> dict:
    """The options the user typed (None: not given, so the dataclass default applies)."""
    return {k: v for k, v in values.items() if v is not None}


# ---------------------------------------------------------------- workspace and store


@app.command()
def info() -> None:
    """Workspace, schema version, counts, and library versions."""
    from importlib.metadata import version

    ws = OPTIONS.open()
    facts = store.store_info(ws.db_path)
    render_pairs({
        "workspace": str(ws.root), "database": str(ws.db_path), "schema version": facts.schema_version,
        "domains": facts.n_domains,
        "searches": f"{facts.n_searches}" + (f" ({facts.n_proxy_train} of them from `mixer proxy train`)"
                                              if facts.n_proxy_train else ""),
        "runs": f"{facts.n_runs} ({facts.n_runs_done} done)", "mixer": __version__,
        **{lib: version(lib) for lib in ("torch", "ray", "duckdb")}})


@app.command()
def sql(
    statement: str = typer.Argument(..., help="One SQL statement; the database is opened read-only."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE.parquet/.csv/.json."),
    wait: float = typer.Option(store.DEFAULT_WAIT_S, "--wait", help="Seconds to wait for a locked database."),
) -> None:
    """Query the store with SQL (read-only): tables domains, searches, runs, metrics, proposals,
    recommendations, clusterings, clusters and the view run_summary."""
    from mixer.outputs import check_output

    if not wait >= 0:
        raise MixerError(f"--wait must be 0 or more seconds, got {wait}")
    if output:
        check_output(output, (".parquet", ".csv", ".json"))
    write_frame(store.run_sql(OPTIONS.open().db_path, statement, wait_s=wait), fmt, output)
    if output:
        console.print(f"wrote {output}")


@runs_app.command("list")
def runs_list(
    search: Optional[str] = typer.Option(None, "--search", "-s", help="Only runs of this search."),
    limit: int = typer.Option(50, "--limit", "-n", help="Show at most this many (0: all)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
) -> None:
    """List runs, newest first."""
    if limit < 0:
        raise MixerError(f"--limit must be 0 (all) or more, got {limit}")
    write_frame(store.list_runs(OPTIONS.open().db_path, search=search, limit=limit or None), fmt, None)


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
    maximize: bool = typer.Option(False, "--maximize", help="The metrics are scores: higher is better."),
    cost_column: Optional[str] = typer.Option(None, "--cost-column", help="Column with each run's cost (run time, GPU hours): fidelity costs come from its medians, so no --fidelity-cost is needed."),
) -> None:
    """Import past experiments as finished runs of a named search (idempotent)."""
    spec = store.ImportSpec(
        mixtures_csv=mixtures_csv, metrics_csv=metrics_csv, search=search,
        weight_prefix=weight_prefix, metric_prefix=metric_prefix, metric_suffix=metric_suffix,
        id_column=id_column, fidelity=fidelity, fidelity_column=fidelity_column, target=target,
        sum_tolerance=sum_tolerance, maximize=maximize, cost_column=cost_column)
    try:
        report = store.import_runs(OPTIONS.open().db_path, spec)
    except KeyboardInterrupt:   # while the CSV is read (a long one): said, as inside the write
        _say_interrupted()
    new = ("all new" if report.n_new == report.n_runs
           else f"{report.n_new} new, {report.n_runs - report.n_new} stored already, their values updated")
    console.print(f"imported {report.n_runs} runs ({new}) into search '{search}' ({report.search_id}): "
                  f"{len(report.domains)} domains, {len(report.metrics)} metrics; "
                  f"largest weight-sum correction {report.max_correction:.4g}")


# ---------------------------------------------------------------- domains

def _read_options(text_field: str, split_on_blank_lines: bool, skip_bad_lines: bool):
    from mixer.sources import ReadOptions

    return ReadOptions(text_field=text_field, split_on_blank_lines=split_on_blank_lines, skip_bad_lines=skip_bad_lines)


def _ingest_config(val_fraction: float | None, replace: bool, eval_only: bool = False):
    from mixer.config import build
    from mixer.ingest import IngestConfig

    return build(IngestConfig, _given(val_fraction=val_fraction, replace=replace, eval_only=eval_only or None),
                 "ingest")


# How sources are read: the same options for `corpus add` and `corpus cluster`.
TEXT_FIELD = typer.Option("text", "--text-field", help="JSONL field / Parquet column holding the text.")
SPLIT_ON_BLANK_LINES = typer.Option(False, "--split-on-blank-lines", help="Plain text: one document per blank-line block.")
SKIP_BAD_LINES = typer.Option(False, "--skip-bad-lines", help="JSONL: skip (and count) lines that are not valid.")
TOKENIZER = typer.Option(None, "--tokenizer", help="A Hugging Face tokenizer.json (default: bytes).")


@corpus_app.command("add")
def corpus_add(
    name: str = typer.Argument(..., help="Domain name."),
    sources: list[Path] = typer.Argument(None, help="JSONL/Parquet/text files or directories (.gz/.zst too)."),
    builtin: Optional[str] = typer.Option(None, "--builtin", help="Built-in data: python, cpp, docs or licenses (training sources), stdlib-tail (an evaluation set: use with --eval-only)."),
    builtin_max_mb: Optional[float] = typer.Option(None, "--builtin-max-mb", help="Stop a built-in source after this many MB."),
    text_field: str = TEXT_FIELD,
    split_on_blank_lines: bool = SPLIT_ON_BLANK_LINES,
    skip_bad_lines: bool = SKIP_BAD_LINES,
    tokenizer: Optional[Path] = TOKENIZER,
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help="Share of documents held out for validation [default: 0.01; at least 64 documents when the domain has 256 or more]."),
    eval_only: bool = typer.Option(False, "--eval-only", help="An evaluation set: every proxy run measures it, no mixture trains on it; use it in --target."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite an existing domain of this name."),
    force: bool = typer.Option(False, "--force", help="With --replace: even if searches mixed the domain."),
) -> None:
    """Tokenise documents into a domain of the workspace (or, with --eval-only, a set to measure)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from mixer.corpus import AddRequest, held_out_note, source_bytes
    from search.domains import add_domain, check_replace

    request = AddRequest(
        name=name, sources=list(sources or []), builtin=builtin, tokenizer=tokenizer,
        builtin_max_bytes=int(builtin_max_mb * 1e6) if builtin_max_mb else None,
        read=_read_options(text_field, split_on_blank_lines, skip_bad_lines),
        ingest=_ingest_config(val_fraction, replace, eval_only))
    ws = OPTIONS.open()
    check_replace(ws, request, force)
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, transient=True,
                  disable=not console.is_terminal) as bar:
        task = bar.add_task(f"ingesting {name}", total=source_bytes(request.sources) or None)
        meta = add_domain(ws, request, progress=lambda n: bar.advance(task, n), force=force)
    skipped = f", {meta.bad_lines} bad lines skipped" if meta.bad_lines else ""
    if meta.eval_only:
        console.print(f"eval-only set '{name}': {meta.n_val_docs} documents, {meta.n_val_tokens:,} tokens, "
                      f"measured by every proxy run{skipped}; target it with --target {name}")
    else:
        console.print(f"domain '{name}': {meta.n_docs} documents, {meta.n_tokens:,} tokens "
                      f"(+{meta.n_val_docs} held out, {meta.n_val_tokens:,} tokens){skipped}")
    if note := held_out_note(meta, request.ingest.min_val_tokens):
        console.print(f"note: {note}")


@corpus_app.command("list")
def corpus_list(fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json.")) -> None:
    """Domains of the workspace."""
    from mixer.corpus import domain_table
    from search.domains import sync_domain_rows

    ws = OPTIONS.open()
    sync_domain_rows(ws)
    write_frame(domain_table(ws), fmt, None)


@corpus_app.command("show")
def corpus_show(name: str = typer.Argument(..., help="Domain name."),
                verify: bool = typer.Option(False, "--verify", help="Recompute the full content hash.")) -> None:
    """A domain's metadata (and, with --verify, a full hash check)."""
    from mixer.corpus import describe_domain

    print(json.dumps(describe_domain(OPTIONS.open(), name, verify), indent=2))


@corpus_app.command("diff")
def corpus_diff(search: str = typer.Argument(..., help="A search's name or id."),
                fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json.")) -> None:
    """Domains changed, removed and added since a search was created."""
    from search.corpus_diff import corpus_diff, diff_table

    write_frame(diff_table(corpus_diff(OPTIONS.open(), search), shown=fmt == "table"), fmt, None)


@corpus_app.command("remove")
def corpus_remove(name: str = typer.Argument(..., help="Domain name."),
                  force: bool = typer.Option(False, "--force", help="Remove it even if searches mixed it.")) -> None:
    """Delete a domain's files and its row in the store."""
    from search.domains import remove_domain

    remove_domain(OPTIONS.open(), name, force)
    console.print(f"removed domain '{name}'")


@corpus_app.command("cluster")
def corpus_cluster(
    name: str = typer.Argument(..., help="Clustering name; its domains become NAME/00, NAME/01, ... under NAME (largest first)."),
    sources: list[Path] = typer.Argument(..., help="JSONL/Parquet/text files or directories (.gz/.zst too)."),
    clusters: Optional[int] = typer.Option(None, "--clusters", help="Final clusters, one domain each [default: 16]."),
    initial_clusters: Optional[int] = typer.Option(None, "--initial-clusters", help="k-means clusters before pruning and merging, at most what the sample fills (4 x --min-cluster-docs each) [default: 256, or 16 x --clusters when larger]."),
    embedder: str = typer.Option("lsa", "--embedder", help="lsa, proxy, sentence-transformers:PATH (a local model directory) or file:PATH (.npy/.parquet, one row per document in source order)."),
    min_cluster_docs: Optional[int] = typer.Option(None, "--min-cluster-docs", help="Prune initial clusters with fewer sample documents [default: 8]."),
    sample: Optional[int] = typer.Option(None, "--sample", help="Documents the clustering is fitted on; the rest are assigned in batches [default: 50000]."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sampling and k-means seed [default: 0]."),
    text_field: str = TEXT_FIELD,
    split_on_blank_lines: bool = SPLIT_ON_BLANK_LINES,
    skip_bad_lines: bool = SKIP_BAD_LINES,
    tokenizer: Optional[Path] = TOKENIZER,
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help="Share of each cluster's documents held out [default: 0.01; at least 64 documents when a cluster has 256 or more]."),
    replace: bool = typer.Option(False, "--replace", help="Redo an existing clustering of this name (its old domains go)."),
    force: bool = typer.Option(False, "--force", help="With --replace: even if searches mixed the old domains."),
) -> None:
    """Cluster one unlabeled corpus into domains, as CLIMB does: embed, k-means, prune, merge."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from mixer.clustering import ClusterConfig, ClusterRequest
    from mixer.config import build
    from mixer.corpus import held_out_note
    from search.domains import cluster_domains

    request = ClusterRequest(
        name=name, sources=list(sources), embedder=embedder, tokenizer=tokenizer,
        cluster=build(ClusterConfig, _given(clusters=clusters, initial_clusters=initial_clusters,
                                            min_cluster_docs=min_cluster_docs, sample=sample, seed=seed), "cluster"),
        read=_read_options(text_field, split_on_blank_lines, skip_bad_lines),
        ingest=_ingest_config(val_fraction, replace))
    ws = OPTIONS.open()
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("reading", total=None)
        result = cluster_domains(ws, request, lambda phase, done, total: bar.update(
            task, description=phase, completed=done, total=total), force=force)
    rec = result.record
    skipped = f", {result.bad_lines} bad lines skipped" if result.bad_lines else ""
    console.print(f"clustering '{name}': {rec.n_docs:,} documents -> {len(rec.clusters)} domains "
                  f"({rec.clusters[0].domain} ... {rec.clusters[-1].domain}), embedder {rec.embedder}, "
                  f"fitted on {rec.n_sample:,}{skipped}")
    used, asked = rec.config["initial_clusters_used"], rec.config["initial_clusters"]
    if used < asked:
        console.print(f"{used} initial clusters, not {asked}: a sample of {rec.n_sample:,} fills {used} with "
                      f"{4 * rec.config['min_cluster_docs']} documents each")
    if result.retired:
        console.print(f"removed the old clustering's domains: {', '.join(result.retired)}")
    for meta in result.metas:
        if note := held_out_note(meta, request.ingest.min_val_tokens):
            console.print(f"note: {note}")
    console.print(f"next: `mixer corpus clusters {name}`, `mixer plot --clusters {name} -o {name.replace('/', '-')}.png`, "
                  f"`mixer search start --backend climb --domains '{name}/*'`")


@corpus_app.command("clusters")
def corpus_clusters(name: str = typer.Argument(..., help="Clustering name."),
                    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json.")) -> None:
    """A clustering's clusters: domain, documents, tokens, centroid norm, top terms, and
    the initial k-means clusters merged into each (their ids in csv and json)."""
    from search.domains import cluster_table

    frame = cluster_table(OPTIONS.open(), name)
    write_frame(frame.drop(columns=["parents"]) if fmt == "table" else frame, fmt, None)


# ---------------------------------------------------------------- proxies


@proxy_app.command("presets")
def proxy_presets() -> None:
    """Proxy presets with total, non-embedding and active parameters (byte vocabulary)."""
    from proxies.presets import preset_table

    render_frame(preset_table(vocab_size=257))


@proxy_app.command("train")
def proxy_train(
    mixture: str = typer.Option(..., "--mixture", "-m", help="e.g. web=0.5,code=0.5"),
    preset: Optional[str] = typer.Option(None, "--preset", help="Proxy preset (see `mixer proxy presets`) [default: tiny]."),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Training tokens, e.g. 2M [default: 2M]."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Sequence length [default: 256]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sequences per step [default: 16]."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate [default: 3e-3]."),
    lr_schedule: Optional[str] = typer.Option(None, "--lr-schedule", help="constant or cosine [default: constant]."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Training seed [default: 0]."),
    init_seed: Optional[int] = typer.Option(None, "--init-seed", help="Seed of the model's initialisation [default: --seed]; a search's runs share theirs (column init_seed of `runs`), so this with a run's seed trains that run again."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda [default: auto]."),
    cpus: Optional[float] = typer.Option(None, "--cpus", help="CPUs for the run (torch threads) [default: 1]."),
    gpus: Optional[float] = typer.Option(None, "--gpus", help="GPUs (fractional) for the run [default: 0]."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS",
                                              help="Join this Ray cluster (default: embedded local one)."),
) -> None:
    """Train one proxy on a mixture (a one-run search) and print its loss on every domain."""
    from mixer.config import build
    from search.proxy_train import train_mixture
    from search.spec import ProxySpec

    proxy = build(ProxySpec, {
        "train": _given(preset=preset, tokens=_count(tokens, "--tokens"), seq_len=seq_len, batch_size=batch_size,
                        lr=lr, lr_schedule=lr_schedule, seed=seed, init_seed=init_seed, device=device),
        "runner": _given(address=ray_address, cpus_per_run=cpus, gpus_per_run=gpus)}, "proxy")
    ws = OPTIONS.open()
    with console.status(f"training {proxy.train.preset} on {proxy.train.tokens:,} tokens..."):
        run_id, result = train_mixture(ws, _no_empty_item(mixture, "--mixture"), proxy)
    if not result.done:
        raise MixerError(f"run {run_id} failed: {result.error}")
    render_rows([{"domain": n, "val_loss": v} for n, v in result.proxy.val_loss.items()],
                title=f"run {run_id}: {result.proxy.tokens_trained:,} tokens, {result.proxy.tokens_per_s:,.0f} tokens/s")


def _count(text: str | None, flag: str, positive: bool = False) -> int | None:
    """A count (`2M`) as given, or None; an error names `flag`, and `positive` refuses 0."""
    from mixer.mixture import parse_count

    if text is None:
        return None
    try:
        count = parse_count(text)
    except MixerError as exc:
        raise MixerError(f"{flag}: {exc}") from None
    if positive and count == 0:
        raise MixerError(f"{flag} must be at least 1, got 0")
    return count


# ---------------------------------------------------------------- searches


def _run_with_progress(run, budget: int, label: str, done: int = 0, search: str | None = None):
    """Run a search with a progress bar showing best-so-far (in a terminal), or one line per
    finished run (in a log); Ctrl-C leaves it resumable under `search`'s name."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    search = search or label
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=budget, completed=done)

        def update(p):
            best = "" if p.best is None else f" best {p.best:.4f}"
            bar.update(task, completed=p.finished, description=f"{label}{best}")
            if not console.is_terminal:
                console.print(f"{label}: {p.finished}/{p.budget} runs{best}")
        return _interruptible(lambda: run(update), search)


def _interruptible(run, search: str):
    """`run()`; on Ctrl-C, one line saying how to continue search `search`, and exit 130."""
    try:
        return run()
    except BaseException as exc:
        if not _is_interrupt(exc):
            raise
        if _resumable(search):
            console.print(f"interrupted: finished runs are stored; continue with `mixer search resume {search}`")
        else:
            console.print(f"interrupted before search '{search}' was created: nothing to resume "
                          "(domains already built are kept)")
        raise typer.Exit(130)


def _is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C: Python's KeyboardInterrupt, or DuckDB's error for a query it was running
    when the signal came (an InterruptException, or a RuntimeError from a result fetch)."""
    return isinstance(exc, KeyboardInterrupt) or (isinstance(exc, (RuntimeError, duckdb.Error))
                                                  and "interrupted" in str(exc).lower())


def _resumable(name: str) -> bool:
    """Whether `mixer search resume NAME` has something to resume: a search, or a
    hierarchical search's stages."""
    from search import staged

    ws = OPTIONS.open()
    return store.search_exists(ws.db_path, name) or staged.hierarchy_of(ws, name) is not None


def _drive(ws: Workspace, record, retry_failed: bool = False):
    """Run (or resume) a search to its end with a progress bar, say why it ended early; its
    recommendation (None if cancelled). Ctrl-C names what to resume: the search, or the
    hierarchical search it is a stage of."""
    from search import driver, views

    spec = views.load_spec(record)
    done = int((store.search_runs(ws.db_path, record.id).status == "done").sum())
    resume_as = spec.stage.of if spec is not None and spec.stage is not None else record.name
    rec = _run_with_progress(lambda cb: driver.run(ws, record.id, cb, retry_failed=retry_failed),
                             spec.budget.runs if spec else 0, record.name, done, search=resume_as)
    _say_why_it_ended_early(ws, record.id)
    return rec


def _stage_runner(ws: Workspace, retry_failed: bool = False):
    """Runs one stage of a hierarchical search (search.staged) as `search start` runs a search."""
    from search import driver

    def run_stage(record):
        driver.check_resumable(record)
        return _drive(ws, record, retry_failed)
    return run_stage


def _render_staged(ws: Workspace, answer) -> None:
    """A hierarchical search's answer (search.staged): its last stage's, and as leaves."""
    from search import views

    if answer is None:
        return
    name, rec = answer
    record = store.get_search(ws.db_path, name)
    _render_recommendation(ws, record, rec)
    render_mixture(views.leaf_weights(record, rec.mixture.as_dict()), title=f"{name}: the answer over every leaf")
    console.print(views.stage_line(record))


def _say_why_it_ended_early(ws: Workspace, search_id: str) -> None:
    from search import views

    why = views.ended_early(ws, store.get_search(ws.db_path, search_id))
    if why:
        console.print(f"note: fewer runs than --runs: {why}")


def _render_recommendation(ws: Workspace, record, rec) -> None:
    """A search's answer as `search start` and `resume` end with it: what `best` shows."""
    from search import views

    name = record.name
    render_mixture(rec.mixture.as_dict(), title=f"{name}: recommended mixture")
    stored = {"mixture": rec.mixture.as_dict(), "predicted": rec.predicted, "predicted_std": rec.predicted_std,
              "evidence": rec.evidence}
    _render_explanation(ws, record, stored)
    _render_interaction(views.interaction(stored))
    console.print(f"next: `mixer export {name} --format megatron --path-template ...`, `mixer plot {name} -o "
                  f"{name}.png`, `mixer sql \"select run_id, target_value from run_summary where search = '{name}'\"`")


def _render_explanation(ws: Workspace, record, rec: dict) -> None:
    """How the answer `rec` (mixture, predicted, predicted_std, evidence) was chosen and what
    a fresh seed would measure: the lines `best`, `search start` and `resume` share."""
    from search import views

    for line in views.explain(rec, record.target or "target"):
        console.print(line)
    fresh = views.fresh_seed_line(views.search_state(ws, record), rec) if record.drivable else None
    if fresh:
        console.print(fresh)


def _render_interaction(interaction) -> None:
    if interaction is not None:
        render_frame(interaction, title="fitted mixing law: t[law, domain] (< 0: more of the domain lowers the law)")


def _check_search_flags(evaluator: str, table: str | None, fidelities: str | None, preset_or_tokens) -> None:
    """Flag combinations that cannot mean anything, named in the user's flags."""
    if fidelities and preset_or_tokens:
        raise MixerError("give either --fidelities or --preset/--tokens, not both")
    if evaluator not in ("proxy", "table"):
        raise MixerError(f"--evaluator {evaluator}: use proxy or table")
    if evaluator == "table" and not table:
        raise MixerError("--evaluator table needs --table SEARCH (runs imported with `mixer runs import`)")


@search_app.command("start")
def search_start(
    name: Optional[str] = typer.Option(None, "--name", help="Search name (default: BACKEND-N)."),
    backend: str = typer.Option("regmix", "--backend", help="random, regmix, bayesopt, mixing_law or climb."),
    option: list[str] = typer.Option([], "--option", help="Backend option KEY=VALUE (repeat; `mixer search backends` lists them)."),
    evaluator: str = typer.Option("proxy", "--evaluator", help="proxy (train on Ray) or table (imported runs)."),
    table: Optional[str] = typer.Option(None, "--table", help="Imported search answering the table evaluator."),
    target: Optional[str] = typer.Option(None, "--target", help="avg, worst, worst:a,b, a domain's, eval-only set's or metric's name, or weights a=0.7,b=0.3 over them [default: avg]."),
    maximize: bool = typer.Option(False, "--maximize", help="Maximise the target (scores), not minimise."),
    min_weight: list[str] = typer.Option([], "--min", help="Smallest weight NAME=W of a domain (repeat or comma-separate)."),
    max_weight: list[str] = typer.Option([], "--max", help="Largest weight NAME=W of a domain (repeat or comma-separate)."),
    fix_weight: list[str] = typer.Option([], "--fix", help="Fixed weight NAME=W of a domain (repeat or comma-separate)."),
    eval_sets: Optional[str] = typer.Option(None, "--eval", help="Comma-separated eval-only sets every run measures (default: all of the workspace's)."),
    runs: Optional[int] = typer.Option(None, "--runs", help="Run budget [default: 32]."),
    max_cost: Optional[float] = typer.Option(None, "--max-cost", help="Cost budget: in --fidelity-cost's units when given, else in target-fidelity runs (costs measured from run times or an imported --cost-column are relative to the target's)."),
    parallel: Optional[int] = typer.Option(None, "--parallel", help="Runs in flight at once (and proposals per batch) [default: 2]."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Proxy preset [default: tiny]."),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Tokens per proxy run [default: 2M]."),
    fidelities: Optional[str] = typer.Option(None, help="Fidelities to run at: PRESET:TOKENS,... (proxy) or table labels."),
    target_fidelity: Optional[str] = typer.Option(None, help="The fidelity optimised (default: the last of --fidelities)."),
    fidelity_cost: list[str] = typer.Option([], help="LABEL=COST per fidelity (repeat or comma-separate); else measured."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Sequence length [default: 256]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sequences per step [default: 16]."),
    domains: Optional[str] = typer.Option(None, "--domains", help="Comma-separated domains or shell patterns ('web/*') [default: every leaf domain]."),
    max_epochs: Optional[float] = typer.Option(None, "--max-epochs", help="Largest repetition of a domain in a proposal [default: 4]."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Search seed [default: 0]."),
    validate: bool = typer.Option(False, "--validate", help="Train the recommendation once more and record it."),
    replicates: Optional[int] = typer.Option(None, "--replicates", help="Train the R best runs again with other seeds: the seed noise, shown by `best` [default: 0]."),
    cpus: Optional[float] = typer.Option(None, "--cpus", help="CPUs per run [default: 1]."),
    gpus: Optional[float] = typer.Option(None, "--gpus", help="GPUs (fractional) per run [default: 0]."),
    swarm: Optional[int] = typer.Option(None, "--swarm", help="Train up to N runs of one round (same preset and budget, dense or MoE) as one batched task, at most --parallel of them [default: 1 on CPU; with --gpus, a measured size per preset (64 for tiny and 1m), so raise --parallel too]."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS", help="Join this Ray cluster."),
    reuse: Optional[str] = typer.Option(None, "--reuse", help="Start from this earlier search's answer after the corpus changed (`mixer corpus diff SEARCH` shows what changed)."),
    group: list[str] = typer.Option([], "--group", help="NAME=PATTERN: the domains PATTERN matches (e.g. 'web/*', a clustering's) searched as one domain NAME at their token shares; exports give them back (repeat)."),
    reuse_mode: Optional[str] = typer.Option(None, "--reuse-mode", help="aggregate (the unchanged domains as one group at the earlier ratios), warm-start (all free, the earlier answer run first) or full [default: aggregate]."),
    level: Optional[int] = typer.Option(None, "--level", help="Search the nodes at this depth of the domain tree (0: web, code; 1: web/news, ...), each holding its leaves at their token shares; exports give the leaves."),
    hierarchical: bool = typer.Option(False, "--hierarchical", help="Mix the parents first (NAME.1), then each parent's leaves with its weight fixed (NAME.2, ...; the last stage is NAME); --runs covers every stage."),
) -> None:
    """Create a search and run it to its budget, then recommend a mixture."""
    from search import driver, views
    from search.backends import parse_options
    from search.fidelity import parse_costs
    from search.spec import SearchSpec

    _check_search_flags(evaluator, table, fidelities, preset or tokens)
    spec = SearchSpec.from_flat(_given(
        name=_nonempty(name, "--name"), backend=backend, options=parse_options(option), evaluator=evaluator,
        table=_nonempty(table, "--table"), target=_no_empty_item(target, "--target"), maximize=maximize, runs=runs,
        max_cost=max_cost,
        min_weights=_pairs(min_weight, "--min"), max_weights=_pairs(max_weight, "--max"),
        fixed_weights=_pairs(fix_weight, "--fix"), eval_sets=_split(eval_sets, "--eval"),
        parallel=parallel, preset=preset, tokens=_count(tokens, "--tokens"),
        fidelities=_split(fidelities, "--fidelities"),
        target_fidelity=_nonempty(target_fidelity, "--target-fidelity"), fidelity_costs=parse_costs(_no_empty_item(fidelity_cost, "--fidelity-cost")),
        seq_len=seq_len, batch_size=batch_size, domains=_split(domains, "--domains"), max_epochs=max_epochs, seed=seed,
        validate=validate, replicates=replicates, cpus_per_run=cpus, gpus_per_run=gpus, swarm=swarm,
        ray_address=ray_address, reuse=_nonempty(reuse, "--reuse"), reuse_mode=reuse_mode,
        group_by=_groups(group), level=level))
    ws = OPTIONS.open()
    if hierarchical:
        from search import staged

        spec.name = spec.name or staged.default_name(ws, spec)
        _render_staged(ws, _interruptible(lambda: staged.start(ws, spec, _stage_runner(ws), say=console.print),
                                          spec.name))
        return
    search = driver.create(ws, spec)
    console.print(f"search '{search.name}' ({search.id}): {backend} on {evaluator}, {views.plural(spec.budget.runs, 'run')}")
    if reused := views.reuse_line(search):
        console.print(reused)
    if spec.proxy is not None and (spec.proxy.runner.swarm or 0) > spec.budget.parallel:
        console.print(f"note: a swarm trains runs in flight together; with --parallel {spec.budget.parallel} it holds "
                      f"at most {spec.budget.parallel} of --swarm {spec.proxy.runner.swarm}")
    rec = _drive(ws, search)
    if rec is not None:
        _render_recommendation(ws, search, rec)


@online_app.command("start")
def online_start(
    method: str = typer.Option(..., "--method", help="aioli or doremi."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Proxy preset [default: tiny]."),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Training tokens, e.g. 2M [default: 2M]."),
    option: list[str] = typer.Option([], "--option", help="Method option KEY=VALUE (repeat), e.g. eta=0.2, update_steps=100."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Training seed [default: 0]."),
    name: Optional[str] = typer.Option(None, "--name", help="Job name [default: METHOD-N]."),
    domains: Optional[str] = typer.Option(None, "--domains", help="Comma-separated domains or shell patterns ('web/*') [default: every leaf domain]."),
    target: Optional[str] = typer.Option(None, "--target", help="aioli: steer toward an eval-only set's loss or weights a=0.7,b=0.3 over losses [default: avg, the method's own objective]."),
    eval_sets: Optional[str] = typer.Option(None, "--eval", help="Comma-separated eval-only sets the run measures (default: all of the workspace's)."),
    compare: bool = typer.Option(True, "--compare/--no-compare", help="Also train the uniform mixture with the same seed and budget, and say whether the online run beat it (doremi's uniform reference run serves)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Sequence length [default: 256]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sequences per step [default: 16]."),
    cpus: Optional[float] = typer.Option(None, "--cpus", help="CPUs for the run [default: 1]."),
    gpus: Optional[float] = typer.Option(None, "--gpus", help="GPUs (fractional) for the run [default: 0]."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS", help="Join this Ray cluster."),
) -> None:
    """Train one proxy whose mixture an online method changes; record its weight trajectory."""
    from mixer.config import build
    from search import online, views
    from search.backends import parse_options
    from search.spec import ProxySpec

    from search.targets import Target

    proxy = build(ProxySpec, {
        "train": _given(preset=preset, tokens=_count(tokens, "--tokens"), seq_len=seq_len, batch_size=batch_size),
        "runner": _given(address=ray_address, cpus_per_run=cpus, gpus_per_run=gpus),
        "domains": _split(domains, "--domains"), "eval_sets": _split(eval_sets, "--eval")}, "proxy")
    request = online.OnlineRequest(method, parse_options(option), proxy, seed=seed or 0,
                                   name=_nonempty(name, "--name"), target=Target(_no_empty_item(target, "--target") or "avg"), compare=compare)
    ws = OPTIONS.open()
    outcome = online.start(ws, request, say=lambda line: console.print(line))
    name = outcome.search.name
    render_mixture(outcome.average.as_dict(), title=f"{name}: time-averaged mixture ({method})")
    losses = [{"domain": n, "val_loss": v} for n, v in outcome.result.proxy.val_loss.items()]
    losses += [{"domain": f"{n} (eval-only)", "val_loss": v} for n, v in outcome.result.proxy.eval_loss.items()]
    render_rows(losses, title=f"run {outcome.run_id}: final held-out losses, {len(outcome.schedule.starts)} stages")
    for line in views.online_lines(outcome.versus):
        console.print(line)
    console.print(f"next: `mixer export {name} --schedule -o {name}-schedule.json`, `mixer plot {name} -o {name}.png`, "
                  f"`mixer sql \"select step, tokens, name, value from metrics where run_id = '{name}/online' "
                  f"and split = 'weight'\"`")


@search_app.command("resume")
def search_resume(
    search: str = typer.Argument(..., help="Search name or id."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Train failed runs again (after fixing their data)."),
) -> None:
    """Continue a search after Ctrl-C, a crash or kill -9: finished runs are reused (a
    hierarchical search carries on from its first unfinished stage)."""
    from search import driver, staged, views

    ws = OPTIONS.open()
    if (hierarchy := staged.hierarchy_of(ws, search)) is not None:
        _render_staged(ws, _interruptible(
            lambda: staged.carry_on(ws, hierarchy, _stage_runner(ws, retry_failed), say=console.print), hierarchy))
        return
    record = store.get_search(ws.db_path, search)
    driver.check_resumable(record)  # before saying "resuming"
    spec = views.load_spec(record)
    done = int((store.search_runs(ws.db_path, record.id).status == "done").sum())
    if not views.driver_state(ws, record.id).startswith("alive"):  # else driver.run refuses, in one line
        console.print(f"resuming '{record.name}': {done} of {spec.budget.runs if spec else 0} runs done")
    rec = _drive(ws, record, retry_failed)
    if rec is not None:
        _render_recommendation(ws, record, rec)


@search_app.command("cancel")
def search_cancel(search: str = typer.Argument(..., help="Search name or id.")) -> None:
    """Mark a search cancelled; a running driver stops after its current round."""
    from search import driver

    record = driver.cancel(OPTIONS.open(), search)
    console.print(f"search '{record.name}' marked cancelled: a running driver stops after its current round "
                  "and records no recommendation")


@search_app.command("list")
def search_list(fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json.")) -> None:
    """Every search with its run counts and best target."""
    from search import views

    write_frame(views.searches(OPTIONS.open()), fmt, None)


@search_app.command("backends")
def search_backends(fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json.")) -> None:
    """Each backend's `--option KEY=VALUE` keys with their types and defaults, which
    fidelities it runs, and how it handles a worst-case target (`--target worst`)."""
    from search.backends import capability_table, option_table

    write_frame(option_table(), fmt, None)
    if fmt == "table":
        write_frame(capability_table(), fmt, None)


@search_app.command("status")
def search_status(search: Optional[str] = typer.Argument(None, help="Search name or id (default: the latest).")
                  ) -> None:
    """A search's progress, best run and latest runs."""
    from search import views

    ws = OPTIONS.open()
    summary, runs = views.status(ws, views.latest(ws, search))
    render_pairs(summary)
    columns = ["run_id", "status", "fidelity", "target_value"] + (["cost"] if "cost" in runs else []) + ["mixture", "error"]
    render_frame(runs[columns].tail(10))


@app.command()
def best(search: Optional[str] = typer.Argument(None, help="Search name or id (default: the latest).")) -> None:
    """The recommended mixture with its predicted target and uncertainty."""
    from search import views

    ws = OPTIONS.open()
    record = views.latest(ws, search)
    rec = views.recommendation(ws, record)
    render_mixture(rec["mixture"], title=f"{record.name}: recommended mixture")
    leaves = views.leaf_weights(record, rec["mixture"])
    if leaves != rec["mixture"]:
        render_mixture(leaves, title=f"{record.name}: as the domains it trains on (its group expanded)")
    if stage := views.stage_line(record):
        console.print(stage)
    _render_explanation(ws, record, rec)
    _say_why_it_ended_early(ws, record.id)
    _render_interaction(views.interaction(rec))
    if rec["validation_run_id"]:
        summary = store.run_summary(ws.db_path, rec["validation_run_id"])
        value = summary.get("target_value") if summary else None
        measured = f": measured {value:.4f} against {rec['predicted']:.4f} predicted" if value is not None and \
            rec.get("predicted") is not None else ""
        console.print(f"validation run {rec['validation_run_id']}{measured}")


@app.command()
def predict(
    search: Optional[str] = typer.Argument(None, help="Search name or id, imported runs too (default: the latest)."),
    mixtures: Path = typer.Option(..., "--mixtures", help="CSV: one column per domain, one mixture per row."),
    weight_prefix: str = typer.Option("", "--weight-prefix", help="Weight columns start with this (stripped)."),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="A column kept as the row's id."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Model: random, regmix, bayesopt, mixing_law or climb [default: the search's; regmix for imports]."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE.parquet/.csv/.json."),
) -> None:
    """Predict the target of given mixtures with a model of the search's runs (mean and std)."""
    from mixer.outputs import check_output
    from search import views

    if output:
        check_output(output, (".parquet", ".csv", ".json"))
    ws = OPTIONS.open()
    request = views.PredictRequest(mixtures, weight_prefix, id_column, backend)
    record = views.latest(ws, search)
    prediction = views.predict(ws, record, request)
    write_frame(prediction.frame, fmt, output)
    if output:
        console.print(f"wrote {output}")
    warning = prediction.warning
    if warning:
        print(f"mixer: warning: {warning}; treat these predictions as rough", file=sys.stderr)


@app.command()
def export(
    search: Optional[str] = typer.Argument(None, help="Search name or id (default: the latest)."),
    fmt: str = typer.Option("json", "--format", "-f", help="json, yaml, megatron, olmo, hf or streaming."),
    path_template: Optional[str] = typer.Option(None, "--path-template",
                                                help="Your data path per domain, with {name} (e.g. /data/{name}_text_document); needed by megatron, olmo, hf and streaming."),
    token_budget: Optional[str] = typer.Option(None, "--token-budget", help="Tokens of the target training job (olmo: max_tokens and repetition caps)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file."),
    schedule: bool = typer.Option(False, "--schedule", help="An online run's schedule (json or yaml stages), not its averaged mixture."),
    with_probes: bool = typer.Option(False, "--with-probes", help="With --schedule: every stage the run trained on, Aioli's LearnParams probes too (default: the method's decisions only)."),
) -> None:
    """The recommended mixture in a training framework's format."""
    from search import views

    from mixer.outputs import check_output, write_atomically

    if output:
        check_output(output)
    tokens = _count(token_budget, "--token-budget", positive=True)
    ws = OPTIONS.open()
    record = views.latest(ws, search)
    if with_probes and not schedule:
        raise MixerError("--with-probes is for --schedule (an online run's stages)")
    text = (views.export_schedule(ws, record, fmt, with_probes) if schedule
            else views.export(ws, record, fmt, path_template, tokens))
    if output:
        write_atomically(output, lambda tmp: tmp.write_text(text))
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text)
    for warning in [] if schedule else views.repetition_warnings(ws, record, tokens):
        print(f"mixer: warning: {warning}", file=sys.stderr)


@app.command()
def transfer(
    search: str = typer.Argument(..., help="Search name or id (a finished proxy search)."),
    fidelity: str = typer.Option(..., "--fidelity", help="The larger scale, PRESET:TOKENS (e.g. 1m:20M)."),
    top: int = typer.Option(5, "--top", help="Best distinct mixtures of the search to check, besides its recommendation."),
    baselines: str = typer.Option("uniform,token-share", "--baselines", help="Baselines trained too (uniform, token-share; '' for none)."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Seeds per mixture and scale (at least 2) [default: enough for the search's measured seed noise, at most 8; 3 when it measured none]."),
    parallel: Optional[int] = typer.Option(None, "--parallel", help="Runs in flight at once [default: the search's]."),
) -> None:
    """Train the recommendation, the best runs and baselines at a larger scale: does the ranking hold?"""
    from search import transfer as transfer_check

    names = [b.strip() for b in baselines.split(",") if b.strip()]
    request = transfer_check.TransferRequest(fidelity, top, names, seeds, parallel)
    ws = OPTIONS.open()
    _render_transfer(transfer_check.transfer(ws, search, request, say=lambda line: console.print(line)))


def _render_transfer(report) -> None:
    rows = [{"mixture": r.label, "weights": r.mixture.as_dict(), f"mean {report.small}": r.small.mean,
             "std small": r.small.std, f"mean {report.large}": r.large.mean, "std large": r.large.std}
            for r in report.rows]
    render_rows(rows, title=f"{report.search}: the same mixtures at two scales")
    lo, hi = report.spearman_interval
    if len(report.rows) < 5:
        console.print(f"rank correlation (Spearman) of the means across {len(report.rows)} mixtures: "
                      f"{report.spearman:.2f} (too few mixtures for an interval; use --top 3 or more)")
    else:
        console.print(f"rank correlation (Spearman) of the means across {len(report.rows)} mixtures: "
                      f"{report.spearman:.2f} (95% bootstrap interval {lo:.2f} to {hi:.2f})")
    wanted = report.large_seeds_wanted
    if wanted is not None and wanted > report.seeds:
        console.print(f"note: at {report.large} the runs' seed noise is large against the mixtures' spread: about "
                      f"{wanted} seeds per mixture there would make a mean's noise a third of that spread "
                      f"(`mixer transfer {report.search} --fidelity {report.large} --seeds {wanted}` adds the rest)")
    for comparison in report.comparisons:
        a, b = comparison.interval
        v = comparison.verdict
        if v.same_mixture:
            console.print(f"the recommendation is the {v.baseline} mixture itself: trained once, as the recommendation")
        elif a <= 0 <= b:
            console.print(f"at {report.large} the recommendation is NOT distinguishable from {v.baseline}: gain "
                          f"{v.gain:.4f}, 95% interval {a:.4f} to {b:.4f} contains 0")
        else:
            console.print(f"at {report.large} the recommendation {v.sentence()}; 95% interval of the gain "
                          f"{a:.4f} to {b:.4f}")


@app.command()
def plot(
    search: Optional[str] = typer.Argument(None, help="Search name or id (default: the latest)."),
    output: Path = typer.Option(..., "--output", "-o", help="FILE.png (or .pdf, .svg)."),
    transfer: bool = typer.Option(False, "--transfer", help="Small- against large-scale value per mixture (after `mixer transfer`)."),
    clusters: Optional[str] = typer.Option(None, "--clusters", help="Plot clustering NAME instead: its sample in 2-D by cluster."),
) -> None:
    """Best-so-far against runs, the recommended weights, predicted against observed."""
    from mixer.outputs import check_output
    from search import views

    check_output(output, (".png", ".pdf", ".svg"))
    ws = OPTIONS.open()
    if clusters is not None:
        if search is not None or transfer:
            raise MixerError("--clusters plots a clustering: give no search and no --transfer with it")
        from search.domains import plot_clustering

        plot_clustering(ws, clusters, output)
        console.print(f"wrote {output}")
        return
    record = views.latest(ws, search)
    if transfer:
        from search.plot import plot_transfer
        from search.transfer import stored_report

        plot_transfer(output, stored_report(ws, record.id))
    else:
        views.plot(ws, record, output)
    console.print(f"wrote {output}")


def _say_plain(line: str) -> None:
    """A line as it is (paths and tokens are not rich markup), flushed before the server blocks."""
    print(line, flush=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; any but a loopback one needs a token (one is generated when none is given)."),
    port: int = typer.Option(8470, "--port", "-p", help="Port to listen on."),
    token: Optional[str] = typer.Option(None, "--token", envvar="MIXER_SERVE_TOKEN", help="Secret every request must carry (at least 16 characters)."),
    workspace: Optional[str] = typer.Option(None, "--workspace", "-w", help="Workspace to show [default: the global --workspace, else ./.mixer]."),
) -> None:
    """A live, read-only web view of the searches, runs and answers (Ctrl-C stops it)."""
    from mixer.workspace import open_workspace
    from search.web import ServeConfig, serve as serve_workspace

    config = ServeConfig(host=host, port=port, token=token)
    serve_workspace(open_workspace(workspace or OPTIONS.workspace, create=False), config, say=_say_plain)


@app.command()
def demo(
    runs: Optional[int] = typer.Option(None, "--runs", help="Proxy runs in the search [default: 16]."),
    parallel: Optional[int] = typer.Option(None, "--parallel", help="Runs in flight at once [default: 2]."),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Tokens per tiny proxy run [default: 1.2M]."),
    target: Optional[str] = typer.Option(None, "--target", help="What the search minimises: the built-in eval set stdlib-tail, a built-in domain's "
                                         "held-out loss, avg, worst, or weights a=0.7,b=0.3 [default: stdlib-tail]."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Search seed (the replicate seeds follow it) [default: 0]."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Search method [default: mixing_law]."),
    serve_after: bool = typer.Option(False, "--serve", help="Keep a web view of the workspace up afterwards (`mixer serve`) and print its URL."),
    port: Optional[int] = typer.Option(None, "--port", help="The web view's port, with --serve [default: 8470]."),
) -> None:
    """The main job: built-in data and an eval-only target -> a mixing-law search with tiny
    proxies on Ray -> the recommendation against uniform and token-share, 3 seeds each."""
    from mixer.config import build
    from search import views
    from search.demo import DemoConfig, run_demo
    from search.web import ServeConfig, check_listen, serve as serve_workspace, url

    if port is not None and not serve_after:
        raise MixerError("--port is the web view's port: give --serve with it")
    serve_config = ServeConfig(port=port or 8470) if serve_after else None
    if serve_config is not None:
        check_listen(serve_config)   # a port in use fails now, not after the demo
    cfg = build(DemoConfig, _given(runs=runs, parallel=parallel, tokens=_count(tokens, "--tokens"), target=_no_empty_item(target, "--target"), seed=seed,
                                   backend=backend), "demo")
    ws = OPTIONS.open()
    console.print(f"workspace {ws.root}")
    name = store.next_search_name(ws.db_path, "demo")
    result = _run_with_progress(lambda cb: run_demo(ws, cfg, cb, say=console.print, name=name), cfg.runs,
                                "demo search", search=name)
    render_frame(result.table, title=f"{result.search}: target {cfg.target} (held-out loss), mean over {cfg.seeds} "
                                     "seeds (lower is better)")
    rec = result.recommendation
    weights = sorted(rec.mixture.as_dict().items(), key=lambda item: -item[1])
    console.print("recommended mixture: " + ", ".join(f"{name} {weight:.3f}" for name, weight in weights
                                                       if weight > 0))  # as `best` lists it
    for line in views.explain({"predicted": rec.predicted, "predicted_std": rec.predicted_std,
                               "evidence": rec.evidence}, cfg.target)[1:]:  # the search's view; the table measured it
        console.print(line)
    named = f"the recommendation ({result.same_as})" if result.same_as else "the recommendation"
    for v in result.verdicts:
        console.print(f"{named if not v.same_mixture else 'the recommendation'} {v.sentence()}")
    console.print(f"next: `mixer best {result.search}`, `mixer export {result.search} --format megatron --path-template /data/{{name}}_text_document`, "
                  f"`mixer plot {result.search} -o {result.search}.png`, `mixer sql \"select * from run_summary\"`")
    if serve_config is not None:
        _say_plain(f"the demo's search in the web view: {url(serve_config, path=f'search/{result.search}')}")
        serve_workspace(ws, serve_config, say=_say_plain)


if __name__ == "__main__":
    app()
