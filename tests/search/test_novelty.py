"""No wasted runs: a search never evaluates (nearly) the same mixture twice at one fidelity."""

import numpy as np
import pytest

from mixer import Mixture, MixerError
from mixer.ingest import IngestConfig, ingest_domain
from mixer.tokenizers import ByteTokenizer
from mixer.workspace import open_workspace
from search import driver
from search.backends import Proposal
from search.evaluation import RunResult, RunStatus
from search.novelty import MIN_DISTANCE, novel_proposals
from search.spec import Budget, ProxySpec, SearchSpec
from store import search_runs
from tests.conftest import synthetic_documents

CORNER_LOVER = np.array([0.97, 0.01, 0.01, 0.01])


class KnownLosses:
    """Answers every run with a smooth per-domain loss of its mixture (no training)."""

    parallel, instant = 64, False

    def evaluate(self, runs):
        for run in runs:
            x = np.array([run.mixture.get(d, 0.0) for d in "abcd"])
            loss = 2.0 + 3.0 * np.abs(x - CORNER_LOVER)  # best at a near-corner: samplers crowd there
            yield run, RunResult(RunStatus.done, values=dict(zip("abcd", loss.tolist())))


@pytest.fixture
def four_domains(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    for i, name in enumerate("abcd"):
        ingest_domain(ws.domains_dir, name, synthetic_documents(i, 30, "xyz "), ByteTokenizer(),
                      IngestConfig(min_val_docs=2))
    return ws


@pytest.mark.slow  # 30-run searches (no training: a known loss answers)
@pytest.mark.parametrize("backend", ["random", "regmix", "bayesopt"])
def test_thirty_runs_without_a_near_duplicate(four_domains, backend):
    options = {"regmix": {"n_candidates": 5000, "n_models": 2}, "bayesopt": {"n_candidates": 128}}.get(backend, {})
    spec = SearchSpec(name=f"n-{backend}", backend=backend, options=options, budget=Budget(runs=30, parallel=4),
                      proxy=ProxySpec(max_epochs=None))
    search = driver.create(four_domains, spec)
    driver.run(four_domains, search.name, evaluator=lambda inner: KnownLosses())
    runs = search_runs(four_domains.db_path, search.id)
    X = np.array([[m.get(d, 0.0) for d in "abcd"] for m in runs.mixture])
    distances = np.abs(X[:, None, :] - X[None, :, :]).sum(axis=2) + np.eye(len(X)) * 9
    assert len(runs) == 30 and distances.min() >= MIN_DISTANCE
    assert runs.seed.nunique() == 30


def test_near_duplicates_of_live_runs_and_of_each_other_are_dropped():
    import pandas as pd

    runs = pd.DataFrame({"mixture": [{"a": 1.0}, {"b": 1.0}], "fidelity": ["f", "g"],
                         "status": ["done", "failed"]})
    proposals = [Proposal(Mixture({"a": 0.995, "b": 0.005}), "f"),   # next to a finished run
                 Proposal(Mixture({"b": 1.0}), "f"),                  # the failed run does not count
                 Proposal(Mixture({"b": 0.999, "a": 0.001}), "f"),   # next to the one just kept
                 Proposal(Mixture({"a": 1.0}), "g")]                  # another fidelity
    kept = novel_proposals(proposals, runs, ["a", "b"])
    assert [(p.mixture.as_dict(), p.fidelity) for p in kept] == [({"b": 1.0}, "f"), ({"a": 1.0}, "g")]


class FailingRuns:
    """Every run fails, as when a domain's data broke after the search was created."""

    parallel, instant = 64, False

    def evaluate(self, runs):
        for run in runs:
            yield run, RunResult.failed("domain 'a': data files do not match the hash")


@pytest.mark.slow  # starts Ray (a proxy search connects at creation)
def test_a_broken_domain_fails_at_creation_and_failed_runs_can_be_retried(four_domains):
    spec = SearchSpec(name="broken", backend="random", budget=Budget(runs=4, parallel=2),
                      proxy=ProxySpec(max_epochs=None))
    tokens = four_domains.domain_dir("a") / "tokens.bin"
    raw = tokens.read_bytes()
    tokens.write_bytes(bytes([raw[0] ^ 0xFF]) + raw[1:])
    with pytest.raises(MixerError, match="domain 'a': data files do not match the hash"):
        driver.create(four_domains, spec)
    tokens.write_bytes(raw)
    search = driver.create(four_domains, spec)
    with pytest.raises(MixerError, match="no finished runs to recommend from"):
        driver.run(four_domains, search.name, evaluator=lambda inner: FailingRuns())
    assert (search_runs(four_domains.db_path, search.id).status == "failed").all()
    rec = driver.run(four_domains, search.name, evaluator=lambda inner: KnownLosses(), retry_failed=True)
    runs = search_runs(four_domains.db_path, search.id)
    assert rec is not None and len(runs) == 4 and (runs.status == "done").all()
