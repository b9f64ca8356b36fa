"""One round's proposals: what the backend's model proposes, less near-duplicates of live
runs (search.novelty), less what the cost budget cannot pay for, as queued run records.

The proposal RNG is seeded by (search seed, own runs so far), so a resumed search proposes
what the uninterrupted one would have; each run's training seed (its data order) is
derived from (seed, run index), and all of a search's own runs share one model
initialisation (`init_seed`: the search's seed). The initialisation is most of a tiny
proxy's seed noise (benchmarks/README.md): holding it fixed compares mixtures, not
initialisations.
"""

from __future__ import annotations

import numpy as np

from mixer.errors import MixerError
from search.backends import Backend, Proposal
from search.backends.base import Model, nearest_distance, pool_proposal, unused_pool
from search.backends.random import RandomBackend, RandomConfig
from search.fidelity import split_proxy_label
from search.novelty import novel_proposals
from search.space import SearchSpace
from search.spec import Budget, EvaluatorKind
from search.state import SearchState
from store import RunRecord
from store.records import RunRole

NOVELTY_ATTEMPTS = 4   # times the backend is asked again before the prior's sampler fills the batch


def run_seed(search_seed: int, index: int) -> int:
    """The training seed of a search's run `index`: distinct per run, reproducible."""
    return int(np.random.SeedSequence([search_seed, index]).generate_state(1)[0] % 2**31)


def default_fidelity(state: SearchState) -> str | None:
    """The fidelity of a proposal that names none."""
    spec = state.setup.spec
    return spec.fidelity_label if spec.proxy is not None else state.setup.space.target_fidelity


def next_runs(backend: Backend, state: SearchState, n: int) -> list[RunRecord]:
    """Up to n queued runs for the next round (none when the pool or the novel mixtures ran out)."""
    space = state.setup.space
    if space.pool is not None and len(unused_pool(space, state.history)) == 0:
        return []  # every entry of the table has been run
    so_far, _ = state.spent()
    proposals = affordable(state, novel_batch(backend.fit(state.history), state, n))
    return [proposed_run(state, so_far + i, p) for i, p in enumerate(proposals)]


def novel_batch(model: Model, state: SearchState, n: int) -> list[Proposal]:
    """Up to n proposals, none a near-duplicate of a live run (search.novelty): the model
    is asked again, then the prior sampler fills what is still missing."""
    setup = state.setup
    so_far, _ = state.spent()
    if setup.space.pool is not None:  # table entries are distinct runs by construction
        return model.propose(n, np.random.default_rng([setup.spec.seed, so_far]))
    kept: list[Proposal] = []
    for attempt in range(NOVELTY_ATTEMPTS + 1):
        rng = np.random.default_rng([setup.spec.seed, so_far] + ([attempt] if attempt else []))
        source = model if attempt < NOVELTY_ATTEMPTS else RandomBackend(RandomConfig(), setup.space).fit(state.history)
        kept = novel_proposals(kept + source.propose(n + attempt * n, rng), state.runs,
                               setup.space.domains, default_fidelity(state))
        if len(kept) >= n:
            break
    outside = [p.mixture.as_dict() for p in kept if not setup.space.within(p.mixture.vector(setup.space.domains))[0]]
    if outside:
        raise RuntimeError(f"backend {setup.record.backend} proposed {outside[0]}, outside the search's weight bounds")
    return kept[:n]


def refuse_unaffordable(budget: Budget, space: SearchSpace) -> None:
    """A cost budget below one run at the target fidelity, refused at creation: such a
    search could never measure what it recommends on."""
    if budget.max_cost is None:
        return
    cost = space.fidelity.cost_table().get(space.target_fidelity, 1.0)
    if budget.max_cost < cost - 1e-9:
        raise MixerError(f"budget.max_cost {budget.max_cost:g} cannot pay for one run at the target fidelity "
                         f"{space.target_fidelity} (it costs {cost:.3g})")


def affordable(state: SearchState, proposals: list[Proposal]) -> list[Proposal]:
    """The proposals, in order, that the cost budget can still pay for (all without one):
    a run the budget cannot pay for is never started. Until a run at the target fidelity
    is under way, cheaper runs leave one's cost unspent, and when the budget pays for
    nothing cheaper, the batch's first mixture runs at the target instead: a search never
    spends its budget without measuring where its answer must hold."""
    budget = state.setup.spec.budget
    if budget.max_cost is None:
        return proposals
    target = state.setup.space.target_fidelity
    left = budget.max_cost - state.spent()[1]
    live = state.own[state.own.status != "failed"]
    reserve = 0.0 if (live.fidelity == target).any() else state.costs.get(target, 1.0)
    kept = []
    for p in proposals:
        fidelity = p.fidelity or default_fidelity(state)
        cost = state.costs.get(fidelity, 1.0)
        if cost + (0.0 if fidelity == target else reserve) <= left + 1e-9:
            kept.append(p)
            left -= cost
            if fidelity == target:
                reserve = 0.0
    if not kept and proposals and reserve and reserve <= left + 1e-9:
        kept = at_target(state, proposals[0])
    return kept


def at_target(state: SearchState, proposal: Proposal) -> list[Proposal]:
    """`proposal`'s mixture at the target fidelity: in a table, the unused entry there
    nearest to it (none left: [])."""
    space = state.setup.space
    if space.pool is None:
        return [Proposal(proposal.mixture, space.target_fidelity)]
    free = [i for i in unused_pool(space, state.history) if space.pool.fidelity[i] == space.target_fidelity]
    if not free:
        return []
    x = proposal.mixture.vector(space.domains)
    return [pool_proposal(space, free[int(np.argmin(nearest_distance(space.pool.X[free], x[None, :])))])]


def proposed_run(state: SearchState, index: int, proposal: Proposal) -> RunRecord:
    """The queued run of the search's `index`-th proposal (`<search>/NNNN`)."""
    setup, spec = state.setup, state.setup.spec
    record = RunRecord(id=f"{setup.name}/{index:04d}", search_id=setup.record.id, role=RunRole.search,
                       mixture=proposal.mixture.as_dict(), status="queued", fidelity=proposal.fidelity,
                       seed=run_seed(spec.seed, index), init_seed=spec.seed, pool_key=proposal.pool_key)
    if spec.evaluator is EvaluatorKind.proxy:
        record.fidelity = proposal.fidelity or spec.fidelity_label
        record.preset, record.tokens = split_proxy_label(record.fidelity)
    return record
