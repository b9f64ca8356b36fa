"""Online controllers (mixer.online): Aioli and DoReMi on a simulated loss process, in a
real MixtureLoader, in a plain PyTorch loop, and across a checkpoint."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixer import MixerError
from mixer.domain import open_domains
from mixer.ingest import IngestConfig, ingest_domain
from mixer.loader import LoaderConfig, MixtureLoader
from mixer.online import Aioli, AioliConfig, DoReMi, DoReMiConfig
from mixer.tokenizers import ByteTokenizer
from tests.conftest import synthetic_documents

A_TRUE = np.array([[0.020, 0.004, 0.001],     # [domain i, trained domain m]: loss drop per step
                   [0.002, 0.010, 0.003],
                   [0.001, 0.006, 0.015]])
NAMES = ["a", "b", "c"]


def simulate(controller, steps: int, noise: float = 0.0, seed: int = 0, stop_at: int | None = None,
             losses: np.ndarray | None = None, start: int = 0):
    """A linear dynamic mixing law L(t+1) = L(t) - A p(t): drives `controller` from step
    `start` to `steps` (or until `stop_at`); returns the losses then."""
    rng = np.random.default_rng([seed, start])
    losses = np.full(3, 5.0) if losses is None else losses
    for step in range(start, steps):
        if stop_at is not None and step == stop_at:
            return losses
        if controller.wants(step):
            controller.observe(step, dict(zip(NAMES, losses + rng.normal(0, noise, 3))))
        losses = losses - A_TRUE @ controller.mixture.vector(NAMES)
    return losses


def aioli(total=400, **options):
    cfg = AioliConfig(**{"lp_rounds": 2, "lp_steps": 4, "update_steps": 100, "eta": 5.0, **options})
    return Aioli(NAMES, cfg, total_steps=total, tokens_per_step=1024)


def test_aioli_recovers_the_interaction_matrix_and_moves_toward_the_laws_optimum():
    controller = aioli(normalize=False, eta=20.0, ema=0.0)    # the paper's compounding update
    simulate(controller, 400, noise=1e-3)
    estimate, truth = controller.last_A.ravel(), (A_TRUE * controller.cfg.lp_steps).ravel()
    assert estimate @ truth / np.linalg.norm(estimate) / np.linalg.norm(truth) >= 0.95
    # L drops fastest along the column sums of A: domain a (0.023), then c, then b
    updates = [s.weights for s in controller.log.stages if s.phase == "update"][1:]
    assert len(updates) == 4
    assert all(later[0] > earlier[0] for earlier, later in zip(updates, updates[1:]))
    assert updates[-1][0] > 0.5
    smoothed = aioli(normalize=False, eta=20.0)                 # with the moving average: from the prior each round
    simulate(smoothed, 400, noise=1e-3)
    assert all(s.weights[0] > 1 / 3 for s in smoothed.log.stages if s.phase == "update"
               and s.step > 0)


def test_aioli_steers_toward_an_eval_only_target_that_one_domain_serves():
    """Aioli's target-domain setting: the target set's row of A (here: only domain b lowers
    it), not the domains' own losses, decides the weights."""
    target_row = np.array([0.0, 0.012, 0.0])
    controller = Aioli(NAMES, AioliConfig(lp_rounds=2, lp_steps=4, update_steps=100, eta=20.0), 400, 1024,
                       objective={"target": 1.0})
    losses, target = np.full(3, 5.0), 5.0
    for step in range(400):
        if controller.wants(step):
            controller.observe(step, {**dict(zip(NAMES, losses)), "target": target})
        p = controller.mixture.vector(NAMES)
        losses, target = losses - A_TRUE @ p, target - target_row @ p
    updates = [s.weights for s in controller.log.stages if s.phase == "update"][1:]
    assert controller.measured == NAMES + ["target"] and all(np.argmax(w) == 1 for w in updates)
    assert updates[-1][1] > 0.5          # the domains' own losses would have put a first (test above)
    with pytest.raises(MixerError, match="online controller needs a loss for every domain; missing target"):
        controller.observe(100, dict(zip(NAMES, losses)))


def test_aioli_probes_are_the_intended_smoothed_one_hot_mixtures_in_order():
    controller = aioli()
    simulate(controller, 100)
    probes = [s for s in controller.log.stages if s.phase == "probe"]
    assert [s.step for s in probes] == list(range(0, 24, 4))          # 2 sweeps x 3 domains x 4 steps
    for sweep in (probes[:3], probes[3:]):
        assert sorted(int(np.argmax(s.weights)) for s in sweep) == [0, 1, 2]
        for s in sweep:
            assert max(s.weights) == pytest.approx(0.75) and min(s.weights) == pytest.approx(0.125)


@pytest.fixture(scope="module")
def eight_domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("eight")
    for i in range(8):
        ingest_domain(root, f"d{i}", synthetic_documents(i, 40, "abcdefgh"[i] + " xy"), ByteTokenizer(),
                      IngestConfig(min_val_docs=4))
    return open_domains(root)


def test_each_probe_is_realised_exactly_even_with_eight_domains(eight_domains):
    """The reference code's batch counts go negative for k >= 7 at factor 0.75; here every
    probe's realised counts stay within one sequence of the intended mixture."""
    names = sorted(eight_domains)
    controller = Aioli(names, AioliConfig(lp_rounds=1, lp_steps=4, update_steps=40), total_steps=40,
                       tokens_per_step=8 * 32)
    loader = MixtureLoader(eight_domains, controller.mixture, LoaderConfig(seq_len=32, batch_size=8))
    counts = []
    for step in range(32):
        if controller.wants(step):
            loader.set_mixture(controller.observe(step, {n: 1.0 for n in names}))
            counts.append(np.zeros(8))
        counts[-1] += np.bincount(next(loader).domain.numpy(), minlength=8)
    probes = [s for s in controller.log.stages if s.phase == "probe"]
    assert len(probes) == 8 == len(counts)
    for stage, realised in zip(probes, counts):
        assert np.abs(realised - 32 * np.asarray(stage.weights)).max() <= 1 + 1e-9
        assert realised.min() >= 1 and realised.sum() == 32


@pytest.mark.parametrize("make", [lambda: aioli(), lambda: DoReMi(NAMES, DoReMiConfig(update_steps=10), 400, 1024,
                                                                  reference={"a": 4.0, "b": 3.0, "c": 2.0})])
def test_a_resumed_controller_takes_the_same_decisions(make):
    whole = make()
    simulate(whole, 400)
    first = make()
    losses = simulate(first, 400, stop_at=157)                       # killed mid-run (mid-probe for aioli)
    state = json.loads(json.dumps(first.state_dict()))                 # a checkpoint is plain JSON
    resumed = make()
    resumed.load_state_dict(state)
    simulate(resumed, 400, losses=losses, start=157)
    assert resumed.state_dict() == whole.state_dict()
    assert resumed.average().as_dict() == pytest.approx(whole.average().as_dict())


def test_aioli_starts_from_its_prior_and_trains_on_it_for_prior_steps():
    controller = aioli(prior="a=0.6,b=0.2,c=0.2", prior_steps=30)
    simulate(controller, 200)
    first, second = controller.log.stages[:2]
    assert first.phase == "prior" and first.weights == pytest.approx([0.6, 0.2, 0.2])
    assert second.step == 30 and second.phase == "probe"
    update = next(s for s in controller.log.stages if s.phase == "update")
    assert update.step == 30 + 24 and update.weights[0] > update.weights[1]   # EG from the prior, not uniform


def test_doremi_weights_stay_on_the_simplex_above_eps_over_k():
    controller = DoReMi(NAMES, DoReMiConfig(eta=50.0, eps=1e-3, update_steps=5), 200, 1024,
                        reference={"a": 0.0, "b": 10.0, "c": 10.0})           # a's excess dominates
    simulate(controller, 200)
    weights = np.array([s.weights for s in controller.log.stages])
    assert np.allclose(weights.sum(axis=1), 1) and weights.min() >= 1e-3 / 3 - 1e-12
    assert weights[-1][0] > 0.99 and controller.average().weight("a") > 0.9


def test_aioli_starts_no_round_it_cannot_finish():
    controller = aioli(total=220)                 # rounds at 0, 100, 200; the third's probes would end at 224
    simulate(controller, 220)
    probes = [s.step for s in controller.log.stages if s.phase == "probe"]
    assert max(probes) < 200 and controller.log.stages[-1].phase == "update"


def test_the_schedule_replays_every_stage_and_reads_back():
    from mixer.mixture import Schedule

    controller = aioli()
    simulate(controller, 400)
    schedule = Schedule.from_dict(json.loads(json.dumps(controller.schedule().as_dict())))
    for stage in controller.log.stages[1:]:
        assert schedule.at(stage.step / 400).vector(NAMES) == pytest.approx(stage.weights)


@pytest.mark.parametrize("build, needle", [
    (lambda: Aioli(["a"], AioliConfig(), 1000, 1), "at least 2 domains"),
    (lambda: Aioli(NAMES, AioliConfig(update_steps=500), 400, 1), "longer than the run"),
    (lambda: Aioli(NAMES, AioliConfig(update_steps=20), 400, 1), "must exceed LearnParams"),
    (lambda: Aioli(NAMES, AioliConfig(one_hot_factor=1 / 3), 400, 1), "one_hot_factor must exceed 1 / domains"),
    (lambda: Aioli(NAMES, AioliConfig(prior="a=0.5,z=0.5"), 400, 1), "unknown domain.*z"),
    (lambda: DoReMi(NAMES, DoReMiConfig(update_steps=500), 400, 1, {"a": 1, "b": 1, "c": 1}), "longer than the run"),
    (lambda: DoReMi(NAMES, DoReMiConfig(), 400, 1, {"a": 1, "b": 1}), "reference run has no loss for c"),
])
def test_bad_controller_settings_are_one_clear_error(build, needle):
    with pytest.raises(MixerError, match=needle):
        build()


def test_a_controller_drives_a_plain_pytorch_loop(small_domains):
    """No mixer trainer: a bigram model, the loader, held-out losses computed by hand."""
    names = sorted(small_domains)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(257, 32), torch.nn.Linear(32, 257))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    steps = 60
    controller = DoReMi(names, DoReMiConfig(update_steps=10, eta=2.0), steps, 8 * 32,
                        reference={n: 1.0 for n in names})
    loader = MixtureLoader(small_domains, controller.mixture, LoaderConfig(seq_len=32, batch_size=8))
    held_out = {n: torch.as_tensor(np.asarray(d.val_tokens[:33 * 4], dtype=np.int64)).view(4, 33)
                for n, d in small_domains.items()}
    seen = []
    for step in range(steps):
        if controller.wants(step):
            with torch.no_grad():
                losses = {n: F.cross_entropy(model(w[:, :-1]).flatten(0, 1), w[:, 1:].flatten()).item()
                          for n, w in held_out.items()}
            loader.set_mixture(controller.observe(step, losses))
        batch = next(loader)
        seen.append(np.bincount(batch.domain.numpy(), minlength=len(names)))
        loss = F.cross_entropy(model(batch.inputs).flatten(0, 1), batch.targets.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    stages = controller.log.stages
    assert len(stages) == 6 and len(controller.log.measurements) == 5
    for stage, end in zip(stages, [s.step for s in stages[1:]] + [steps]):
        realised = np.sum(seen[stage.step:end], axis=0)
        assert np.abs(realised - realised.sum() * np.asarray(stage.weights)).max() < 1
