"""MixtureLoader: an exact, resumable, data-parallel stream of training batches.

Each step takes a global batch of `batch_size x world_size` sequences of `seq_len + 1`
tokens. Which domain each sequence comes from is the exact blend of `mixer.blend`; within
a domain, sequence j is window `perm_e[j mod W]` of epoch `e = j div W`, where the domain's
token array is cut into W windows of seq_len + 1 tokens (consecutive windows share one
boundary token, as in nanoGPT and Megatron) and `perm_e` is a permutation seeded by
(seed, domain name, epoch). Rank r of w takes the r-th contiguous slice of the global batch,
so the union over ranks is the single-rank stream.

Everything the stream depends on is in `state_dict()`: a few integers per domain. A loader
restored at step k yields exactly the batches the uninterrupted one would, also after
`set_mixture()` or a Schedule change.

Devices: on CPU, windows are copied out of the memory-mapped token files. On CUDA, with
`placement="device"` every domain's tokens live in one GPU tensor and windows are gathered
there; with `placement="host"` they are copied into pinned host memory and sent on a side
stream, `prefetch` batches ahead. Loaders of the same domains on one device (a swarm's
members) can share one device copy: `DeviceTokens.place` once, then `tokens=` each loader.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import torch

from mixer.blend import blend_block
from mixer.domain import Domain, refuse_eval_only
from mixer.errors import MixerError
from mixer.mixture import Mixture, Schedule

STATE_VERSION = 1


@dataclass
class LoaderConfig:
    """seq_len: tokens per sequence fed to the model (each window holds seq_len + 1);
    batch_size: sequences per step on this rank; rank/world_size: data parallelism;
    total_steps: needed to place the pieces of a Schedule; placement: 'device' or 'host'
    (CUDA only: where the token arrays live); prefetch: CUDA batches prepared ahead."""

    seq_len: int
    batch_size: int
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    total_steps: int | None = None
    placement: str = "device"
    prefetch: int = 2

    def __post_init__(self):
        if self.seq_len < 1 or self.batch_size < 1:
            raise MixerError("seq_len and batch_size must be positive")
        if not 0 <= self.rank < self.world_size:
            raise MixerError(f"rank {self.rank} is outside world size {self.world_size}")
        if self.placement not in ("device", "host"):
            raise MixerError(f"placement must be 'device' or 'host', got '{self.placement}'")

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size


@dataclass
class DeviceTokens:
    """Every domain's training tokens in one device tensor, as signed ints of the same width
    (torch indexes those everywhere): domain i's tokens start at `base[i]`; `mask` restores
    the unsigned values. One copy serves any number of loaders of these domains."""

    names: tuple[str, ...]
    flat: torch.Tensor
    base: np.ndarray
    mask: int

    @classmethod
    def place(cls, domains: Mapping[str, Domain], device: torch.device | str) -> "DeviceTokens":
        names = tuple(sorted(domains))
        arrays = [np.asarray(domains[n].tokens) for n in names]
        signed = np.int16 if arrays[0].dtype == np.uint16 else np.int32
        sizes = np.array([len(a) for a in arrays], dtype=np.int64)
        base = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        flat = torch.empty(int(sizes.sum()), dtype=torch.int16 if signed == np.int16 else torch.int32,
                           device=device)
        chunk = 1 << 26
        for tokens, b in zip(arrays, base):
            tokens = tokens.view(signed)
            for off in range(0, len(tokens), chunk):  # bounded host memory for any domain size
                piece = torch.from_numpy(tokens[off:off + chunk].copy())
                flat[int(b) + off:int(b) + off + len(piece)] = piece
        return cls(names, flat, base, 0xFFFF if signed == np.int16 else 0xFFFFFFFF)


@dataclass
class Batch:
    """tokens: int64 [B, seq_len + 1]; domain: int64 [B], an index into `names`."""

    tokens: torch.Tensor
    domain: torch.Tensor
    names: tuple[str, ...]

    @property
    def inputs(self) -> torch.Tensor:
        return self.tokens[:, :-1]

    @property
    def targets(self) -> torch.Tensor:
        return self.tokens[:, 1:]


@dataclass
class _StreamState:
    """Where the stream is: the current blend segment and per-domain consumption."""

    step: int
    weights: np.ndarray      # float64 [D], the segment's mixture
    counts: np.ndarray       # int64 [D], samples per domain since the segment began
    consumed: np.ndarray     # int64 [D], samples per domain since the stream began
    piece: int               # index of the Schedule piece in force (-1: set by hand)

    def copy(self) -> "_StreamState":
        return _StreamState(self.step, self.weights.copy(), self.counts.copy(), self.consumed.copy(), self.piece)


class _WindowIndex:
    """Maps a domain's sample ordinal to a window start, one seeded permutation per epoch."""

    def __init__(self, name: str, n_tokens: int, seq_len: int, seed: int):
        self.n_windows = (n_tokens - 1) // seq_len
        if self.n_windows < 1:
            raise MixerError(f"domain '{name}' has {n_tokens} training tokens, fewer than "
                             f"seq_len + 1 = {seq_len + 1}")
        self.seq_len = seq_len
        self._seed = (seed, zlib.crc32(name.encode()))
        self._cache: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            if len(self._cache) > 2:
                self._cache.pop(min(self._cache))
            rng = np.random.default_rng([*self._seed, epoch])
            self._cache[epoch] = rng.permutation(self.n_windows)
        return self._cache[epoch]

    def starts(self, ordinals: np.ndarray) -> np.ndarray:
        """Window starts (token offsets) of increasing ordinals."""
        first, last = int(ordinals[0]) // self.n_windows, int(ordinals[-1]) // self.n_windows
        if first == last:  # the common case: one epoch
            return self.permutation(first)[ordinals - first * self.n_windows] * self.seq_len
        epochs, within = np.divmod(ordinals, self.n_windows)
        out = np.empty(len(ordinals), dtype=np.int64)
        for epoch in range(first, last + 1):
            mask = epochs == epoch
            out[mask] = self.permutation(epoch)[within[mask]]
        return out * self.seq_len


@numba.njit(cache=True, nogil=True)
def _running_ordinals(ids: np.ndarray, consumed: np.ndarray) -> np.ndarray:
    """Per-domain sample ordinal of each id (continuing `consumed`, which is advanced)."""
    out = np.empty(ids.shape[0], dtype=np.int64)
    for i in range(ids.shape[0]):
        d = ids[i]
        out[i] = consumed[d]
        consumed[d] += 1
    return out


@numba.njit(cache=True, nogil=True)
def _window_starts(ids, ordinals, perms, perm_offset, epoch_first, n_windows, seq_len, out) -> bool:
    """out[i] = token offset of sample i's window, from the table of each domain's current
    epoch permutation; False if some sample lies outside that epoch (the caller falls back).

    ids, ordinals: int64 [B]; perms: int64 [sum of windows]; perm_offset, epoch_first,
    n_windows: int64 [D]; out: int64 [B]."""
    for i in range(ids.shape[0]):
        d = ids[i]
        j = ordinals[i] - epoch_first[d]
        if j < 0 or j >= n_windows[d]:
            return False
        out[i] = perms[perm_offset[d] + j] * seq_len
    return True


@numba.njit(cache=True, nogil=True)
def _gather_rows(arrays, ids, starts, out) -> None:
    """out[i, :] = arrays[ids[i]][starts[i] : starts[i] + width], widened to int64.

    arrays: tuple of D token arrays; ids, starts: int64 [B]; out: int64 [B, width]."""
    width = out.shape[1]
    for i in range(ids.shape[0]):
        out[i, :] = arrays[ids[i]][starts[i]:starts[i] + width]


def _indexed(device: torch.device) -> torch.device:
    """'cuda' as the tensor's device reads it ('cuda:0')."""
    return torch.device(device.type, torch.cuda.current_device()) if device.index is None else device


class MixtureLoader:
    """Iterate to get `Batch`es; see the module docstring for the guarantees."""

    def __init__(self, domains: Mapping[str, Domain] | Sequence[Domain], mixture: Mixture | Schedule,
                 cfg: LoaderConfig, tokens: DeviceTokens | None = None):
        if not isinstance(domains, Mapping):
            domains = {d.name: d for d in domains}
        if not domains:
            raise MixerError("a MixtureLoader needs at least one domain")
        refuse_eval_only(list(domains), [n for n, d in domains.items() if d.meta.eval_only], "a training mixture")
        self.cfg = cfg
        self.names: tuple[str, ...] = tuple(sorted(domains))
        self._domains = [domains[n] for n in self.names]
        self._arrays = tuple(np.asarray(d.tokens) for d in self._domains)  # plain views of the memmaps
        self._windows = [_WindowIndex(n, d.meta.n_tokens, cfg.seq_len, cfg.seed)
                         for n, d in zip(self.names, self._domains)]
        self._n_windows = np.array([w.n_windows for w in self._windows], dtype=np.int64)
        self._table_epochs: tuple | None = None
        self._schedule = mixture if isinstance(mixture, Schedule) else Schedule.constant(mixture)
        if len(self._schedule.mixtures) > 1 and not cfg.total_steps:
            raise MixerError("a Schedule with several pieces needs total_steps")
        self._piece_steps = [round(s * (cfg.total_steps or 0)) for s in self._schedule.starts]
        n = len(self.names)
        self._state = _StreamState(0, self._weights(self._schedule.mixtures[0]), np.zeros(n, np.int64),
                                   np.zeros(n, np.int64), 0)
        self._device = torch.device(cfg.device)
        self._cuda = self._device.type == "cuda"
        self._ahead: deque[tuple[_StreamState, Batch]] = deque()
        self._placed = None
        if self._cuda and cfg.placement == "device":
            self._placed = tokens if tokens is not None else DeviceTokens.place(domains, self._device)
            if self._placed.names != self.names or self._placed.flat.device != _indexed(self._device):
                raise MixerError("the shared device tokens hold other domains or live on another device")
        self._stream = torch.cuda.Stream(self._device) if self._cuda else None

    # ------------------------------------------------------------------ public

    @property
    def step(self) -> int:
        return self._state.step

    def __iter__(self) -> "MixtureLoader":
        return self

    def __next__(self) -> Batch:
        if not self._cuda:
            self._state, batch = self._produce(self._state.copy())
            return batch
        while len(self._ahead) < max(1, self.cfg.prefetch):
            start = self._ahead[-1][0] if self._ahead else self._state
            self._ahead.append(self._produce(start.copy()))
        self._state, batch = self._ahead.popleft()
        consumer = torch.cuda.current_stream(self._device)
        consumer.wait_stream(self._stream)
        batch.tokens.record_stream(consumer)
        batch.domain.record_stream(consumer)
        return batch

    def set_mixture(self, mixture: Mixture) -> None:
        """From the next batch on, blend `mixture` exactly (a new segment starts here)."""
        self._ahead.clear()
        self._state.weights = self._weights(mixture)
        self._state.counts[:] = 0
        self._state.piece = -1

    def epochs(self) -> dict[str, float]:
        """Passes over each domain's training windows so far."""
        return {n: float(c) / w.n_windows for n, c, w in zip(self.names, self._state.consumed, self._windows)}

    def state_dict(self) -> dict:
        s = self._state
        return {"version": STATE_VERSION, "names": list(self.names), "seq_len": self.cfg.seq_len,
                "global_batch": self.cfg.global_batch, "seed": self.cfg.seed, "step": s.step,
                "weights": s.weights.tolist(), "counts": s.counts.tolist(),
                "consumed": s.consumed.tolist(), "piece": s.piece}

    def load_state_dict(self, state: Mapping) -> None:
        expected = {"version": STATE_VERSION, "names": list(self.names), "seq_len": self.cfg.seq_len,
                    "global_batch": self.cfg.global_batch, "seed": self.cfg.seed}
        for key, value in expected.items():
            if state.get(key) != value:
                raise MixerError(f"loader state does not match this loader: {key} is "
                                 f"{state.get(key)!r}, expected {value!r}")
        self._ahead.clear()
        self._state = _StreamState(int(state["step"]), np.asarray(state["weights"], np.float64),
                                   np.asarray(state["counts"], np.int64),
                                   np.asarray(state["consumed"], np.int64), int(state["piece"]))

    # ------------------------------------------------------------------ internals

    def _weights(self, mixture: Mixture) -> np.ndarray:
        unknown = [n for n in mixture.names if n not in self.names and mixture.weight(n) > 0]
        if unknown:
            raise MixerError(f"mixture names domain(s) the loader does not have: {', '.join(unknown)}")
        return mixture.vector(self.names)

    def _enter_schedule_piece(self, state: _StreamState) -> None:
        if state.piece < 0:
            return
        nxt = state.piece + 1
        while nxt < len(self._piece_steps) and self._piece_steps[nxt] <= state.step:
            state.piece = nxt
            state.weights = self._weights(self._schedule.mixtures[nxt])
            state.counts[:] = 0
            nxt += 1

    def _produce(self, state: _StreamState) -> tuple[_StreamState, Batch]:
        """The batch at `state` and the state after it (state is modified)."""
        self._enter_schedule_piece(state)
        g, b, r = self.cfg.global_batch, self.cfg.batch_size, self.cfg.rank
        ids = blend_block(state.weights, state.counts, int(state.counts.sum()), g).astype(np.int64)
        perms, perm_offset, epoch_first = self._epoch_table(state.consumed)
        ordinals = _running_ordinals(ids, state.consumed)
        state.step += 1
        mine_ids, mine_ord = ids[r * b:(r + 1) * b], ordinals[r * b:(r + 1) * b]
        starts = np.empty(b, dtype=np.int64)
        if not _window_starts(mine_ids, mine_ord, perms, perm_offset, epoch_first, self._n_windows,
                              self.cfg.seq_len, starts):  # a domain starts a new epoch in this batch
            for d in np.flatnonzero(np.bincount(mine_ids, minlength=len(self.names))):
                rows = np.flatnonzero(mine_ids == d)
                starts[rows] = self._windows[d].starts(mine_ord[rows])
        return state, self._assemble(mine_ids, starts)

    def _epoch_table(self, consumed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each domain's permutation for the epoch of its next sample, concatenated."""
        epochs = tuple((consumed // self._n_windows).tolist())
        if epochs != self._table_epochs:
            self._table_epochs = epochs
            self._perms = np.concatenate([w.permutation(e) for w, e in zip(self._windows, epochs)]).astype(np.int64)
            self._perm_offset = np.concatenate([[0], np.cumsum(self._n_windows)[:-1]]).astype(np.int64)
            self._epoch_first = np.asarray(epochs, dtype=np.int64) * self._n_windows
        return self._perms, self._perm_offset, self._epoch_first

    def _assemble(self, ids: np.ndarray, starts: np.ndarray) -> Batch:
        width = self.cfg.seq_len + 1
        domain = torch.from_numpy(ids)
        if not self._cuda:
            host = np.empty((len(ids), width), dtype=np.int64)
            _gather_rows(self._arrays, ids, starts, host)
            return Batch(torch.from_numpy(host), domain, self.names)
        # Host -> device copies only from pinned buffers, so they never block the host.
        placed = self._placed
        pinned, done = self._next_pinned_buffer(len(ids), width if placed is None else 0)
        pinned_ids = pinned[:, 0]
        pinned_ids.numpy()[:] = ids
        if placed is not None:  # gather on the GPU
            pinned[:, 1].numpy()[:] = placed.base[ids] + starts
        else:
            _gather_rows(self._arrays, ids, starts, pinned[:, 2:].numpy())
        with torch.cuda.stream(self._stream):
            on_device = pinned.to(self._device, non_blocking=True)
            done.record(self._stream)
            if placed is not None:
                index = on_device[:, 1:2] + torch.arange(width, device=self._device)
                tokens = placed.flat[index].to(torch.int64) & placed.mask
            else:
                tokens = on_device[:, 2:]
        return Batch(tokens, on_device[:, 0], self.names)

    def _next_pinned_buffer(self, rows: int, width: int) -> tuple[torch.Tensor, torch.cuda.Event]:
        """A pinned int64 [rows, 2 + width] buffer (domain id, gather offset, tokens) from a
        ring of prefetch + 2, reused once its copy to the device has finished."""
        if not hasattr(self, "_pinned"):
            size = max(1, self.cfg.prefetch) + 2
            self._pinned = [(torch.empty((rows, 2 + width), dtype=torch.int64, pin_memory=True),
                             torch.cuda.Event()) for _ in range(size)]
            self._pinned_next = 0
        buffer, event = self._pinned[self._pinned_next]
        self._pinned_next = (self._pinned_next + 1) % len(self._pinned)
        event.synchronize()
        return buffer, event
