"""What crosses the seams of a proxy run, without torch: its training config and its
result (plain data, JSON on the wire). `mixer search status` and friends import these
without paying for torch."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from enum import Enum

from mixer.errors import MixerError


SEED_LIMIT = 2**32  # seeds are 0 .. 2**32 - 1, what every library here accepts
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_seed(seed: int | None, what: str) -> None:
    """A MixerError naming `what` unless seed is None or in [0, SEED_LIMIT)."""
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise MixerError(f"{what} must be between 0 and {SEED_LIMIT - 1}, got {seed}")


class LRSchedule(str, Enum):
    constant = "constant"
    cosine = "cosine"


@dataclass
class TrainConfig:
    preset: str = "tiny"
    tokens: int = 2_000_000            # training budget; steps = tokens // (batch_size * seq_len)
    seq_len: int = 256
    batch_size: int = 16
    lr: float = 3e-3
    lr_schedule: LRSchedule = LRSchedule.constant
    warmup_frac: float = 0.05
    min_lr_frac: float = 0.1           # cosine floor, as a fraction of lr
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0                      # data order (and the initialisation, without init_seed)
    init_seed: int | None = None       # model initialisation (None: seed)
    device: str = "auto"               # auto: cuda when available
    eval_every: int = 0                # 0: ten evaluations over the run
    eval_tokens: int = 32_768          # held-out tokens per domain at the end of the run (cap)
    curve_eval_tokens: int = 4_096     # ... at the intermediate points of the curve (a fixed slice of those)
    threads: int | None = None         # torch CPU threads (the Ray runner sets it)

    def __post_init__(self):
        self.lr_schedule = LRSchedule(self.lr_schedule)
        for name in ("seq_len", "batch_size"):
            if getattr(self, name) < 1:
                raise MixerError(f"proxy.train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("seed", "init_seed"):
            check_seed(getattr(self, name), f"proxy.train.{name}")
        if not _DEVICE.fullmatch(self.device):
            raise MixerError(f"unknown device {self.device!r} (use auto, cpu, cuda or cuda:N)")
        if self.tokens < self.batch_size * self.seq_len:
            raise MixerError(f"--tokens {self.tokens} is less than one batch "
                             f"({self.batch_size} x {self.seq_len} tokens)")

    @property
    def steps(self) -> int:
        return self.tokens // (self.batch_size * self.seq_len)


@dataclass
class CurvePoint:
    """One periodic measurement: the training loss, each domain's held-out loss and each
    eval-only set's loss."""

    step: int
    tokens: int
    train_loss: float
    val: dict[str, float]
    eval: dict[str, float] = field(default_factory=dict)


@dataclass
class ProxyResult:
    status: str                                    # done | failed
    error: str | None = None
    val_loss: dict[str, float] = field(default_factory=dict)
    eval_loss: dict[str, float] = field(default_factory=dict)
    curve: list[CurvePoint] = field(default_factory=list)
    steps: int = 0
    tokens_trained: int = 0
    tokens_per_s: float = 0.0
    wall_s: float = 0.0
    params: dict[str, int] = field(default_factory=dict)
    epochs: dict[str, float] = field(default_factory=dict)
    node: str | None = None                        # host it ran on (set by the Ray runner)
    node_id: str | None = None                     # Ray node id
    started_at: float | None = None                # worker-side epoch seconds, start-up included
    finished_at: float | None = None
    online: dict = field(default_factory=dict)      # an online controller's report (mixer.online)
    moe: dict = field(default_factory=dict)
    """MoE only: expert_share {domain: [E]}, the share of the domain's held-out tokens sent to
    each expert (averaged over layers); layer_load [[E] per layer], each expert's share of
    assignments averaged over training steps."""

    def to_dict(self) -> dict:
        """Plain JSON-able data: how a result crosses the wire from a Ray worker."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> "ProxyResult":
        known = {f.name for f in fields(cls)}
        result = cls(**{k: v for k, v in doc.items() if k in known})
        result.curve = [p if isinstance(p, CurvePoint) else CurvePoint(**p) for p in result.curve]
        return result

    @classmethod
    def failed(cls, error: str) -> "ProxyResult":
        return cls(status="failed", error=error)


@dataclass(frozen=True)
class ProxyConfig:
    vocab_size: int = 257
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    d_ff: int | None = None          # SwiGLU hidden size; default about 8/3 d_model
    max_seq_len: int = 2048
    tie_embeddings: bool = True
    rope_theta: float = 10_000.0
    n_experts: int = 0               # 0: dense
    top_k: int = 2
    n_shared_experts: int = 0
    expert_d_ff: int | None = None   # default d_ff / top_k: same active parameters as dense
    aux_loss_coef: float = 0.01      # Switch load-balancing loss
    z_loss_coef: float = 0.001       # router z-loss

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")

    @property
    def hidden(self) -> int:
        return self.d_ff or 8 * ((8 * self.d_model // 3 + 7) // 8)

    @property
    def expert_hidden(self) -> int:
        """Default: d_ff / top_k rounded up to a multiple of 8 (16-byte rows in bf16, which
        grouped GEMMs require)."""
        return self.expert_d_ff or 8 * ((self.hidden // self.top_k + 7) // 8)

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0
