import pytest
import torch

from proxies import PRESETS, ProxyLM, parameter_counts, preset_config, preset_parameters
from proxies.model import ProxyConfig


@pytest.mark.parametrize("name, low, high", [("tiny", 80e3, 120e3), ("1m", 0.8e6, 1.2e6), ("5m", 4e6, 6e6),
                                             ("20m", 16e6, 24e6), ("60m", 50e6, 70e6)])
def test_presets_are_named_by_non_embedding_parameters(name, low, high):
    counts = preset_parameters(name, 257)  # on the meta device: no memory, no init
    assert low <= counts["non_embedding"] <= high
    moe = preset_parameters(f"moe-{name}", 257)
    assert moe["total"] > 2.5 * counts["total"] * 0.9
    assert abs(moe["active_non_embedding"] - counts["non_embedding"]) / counts["non_embedding"] < 0.05


@pytest.mark.parametrize("preset", ["tiny", "moe-tiny"])
def test_causal_logits_ignore_future_tokens(preset):
    torch.manual_seed(0)
    model = ProxyLM(preset_config(preset, 257)).eval()
    x = torch.randint(0, 257, (2, 24))
    y = x.clone()
    y[:, 12:] = torch.randint(0, 257, (2, 12))
    with torch.no_grad():
        a, b = model(x), model(y)
    assert a.shape == (2, 24, 257)
    assert torch.allclose(a[:, :12], b[:, :12], atol=1e-5)
    assert not torch.allclose(a[:, 12:], b[:, 12:], atol=1e-3)


def test_moe_dispatch_is_dropless_and_matches_per_token_experts():
    torch.manual_seed(1)
    cfg = ProxyConfig(d_model=32, n_heads=2, n_layers=1, n_experts=4, top_k=2)
    layer = ProxyLM(cfg).blocks[0].mlp
    x = torch.randn(3, 7, 32)
    y = layer(x)
    flat = x.reshape(-1, 32)
    probs = layer.router(flat).softmax(-1)
    w, e = probs.topk(2, dim=-1)
    w = w / w.sum(-1, keepdim=True)
    expected = torch.zeros_like(flat)
    for t in range(flat.shape[0]):  # the slow, obviously right reference
        for j in range(2):
            gate, up = (flat[t] @ layer.w_gate_up[e[t, j]]).chunk(2)
            expected[t] += w[t, j] * ((torch.nn.functional.silu(gate) * up) @ layer.w_down[e[t, j]])
    assert torch.allclose(y.reshape(-1, 32), expected, atol=1e-5)
    stats = layer.last_routing
    assert stats.expert_index.shape == (21, 2) and float(stats.load.sum()) == pytest.approx(1.0)


def test_balanced_router_gives_balance_loss_of_one():
    cfg = ProxyConfig(d_model=16, n_heads=2, n_layers=1, n_experts=4, top_k=1, z_loss_coef=0.0, aux_loss_coef=1.0)
    layer = ProxyLM(cfg).blocks[0].mlp
    torch.nn.init.zeros_(layer.router.weight)  # uniform probabilities: ties broken to expert 0
    layer(torch.randn(1, 8, 16))
    assert float(layer.last_aux_loss) == pytest.approx(1.0)  # E * (1 * 1/E) with all load on one


def test_meta_device_counts_equal_a_real_model():
    for name in ("tiny", "moe-tiny"):
        assert preset_parameters(name, 257) == parameter_counts(ProxyLM(preset_config(name, 257)))
    assert set(PRESETS) == {p for d in ("tiny", "1m", "5m", "20m", "60m") for p in (d, f"moe-{d}")}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_grouped_gemm_on_cuda_matches_the_expert_loop():
    torch.manual_seed(2)
    cfg = ProxyConfig(d_model=128, n_heads=4, n_layers=1, n_experts=8, top_k=2)
    layer = ProxyLM(cfg).blocks[0].mlp.cuda()
    x = torch.randn(4, 64, 128, device="cuda", requires_grad=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        grouped = layer(x)
    grouped.float().pow(2).mean().backward()
    grad_grouped = layer.w_gate_up.grad.clone()
    layer.zero_grad()
    x_loop = x.detach().to(torch.bfloat16).float().requires_grad_()
    loop = layer(x_loop)  # no autocast: the per-expert loop in fp32
    loop.pow(2).mean().backward()
    def rel(a, b):
        return float((a.float() - b.float()).norm() / b.float().norm())
    assert rel(grouped, loop) < 0.02, rel(grouped, loop)
    assert rel(grad_grouped, layer.w_gate_up.grad) < 0.05, rel(grad_grouped, layer.w_gate_up.grad)
