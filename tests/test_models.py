"""lesson5.models: shapes, call forms, initialisation, output ranges, float64 gradient checks, tiny fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from lesson5 import data, models, train

N_USERS, N_MOVIES, K = 6, 7, 4


def make(name: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return models.MODELS[name](N_USERS, N_MOVIES, K, **kw)


def batch(n: int = 9, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randint(0, top, (n,), generator=g) for top in (N_USERS, N_MOVIES))


ALL = sorted(models.MODELS)


@pytest.mark.parametrize("name", ALL)
def test_one_prediction_per_pair_and_hparams_rebuild_the_same_model(name):
    model = make(name).eval()
    u, m = batch()
    out = model(u, m)
    assert out.shape == (9,) and out.dtype == torch.float32
    # Row by row equals the whole batch: nothing in forward mixes the pairs (no stray broadcast).
    rows = torch.cat([model(u[i : i + 1], m[i : i + 1]) for i in range(9)])
    torch.testing.assert_close(rows, out)
    kw = dict(nh=7, p1=0.1, p2=0.3, y_range=(1.0, 4.0)) if name == "EmbeddingNet" else {}
    model = models.MODELS[name](N_USERS, N_MOVIES, K, **kw)
    again = models.MODELS[name](**models.hparams(model))
    assert models.hparams(again) == models.hparams(model)
    shapes = [{k: v.shape for k, v in mod.state_dict().items()} for mod in (again, model)]
    assert shapes[0] == shapes[1]
    assert not kw or (models.hparams(model)["nh"], models.hparams(model)["y_range"]) == (7, (1, 4))
    with pytest.raises(TypeError, match="not one of the lesson's models"):
        models.hparams(torch.nn.Linear(2, 2))


def test_dot_product_sigmoid_range_and_the_bias_model_in_closed_form():
    x, w = torch.tensor([[1.0, 2], [3, 4]]), torch.tensor([[2.0, 2], [10, 10]])
    assert models.DotProduct()(x, w).tolist() == [6, 70]  # the lesson's worked example
    x = torch.tensor([-1e9, -1.0, 0.0, 2.0, 1e9], dtype=torch.float64)
    got = models.sigmoid_range(x, 0.5, 5.0)
    with np.errstate(over="ignore"):  # exp(1e9) is inf, and 4.5 / inf is the 0 we want
        want = 0.5 + 4.5 / (1 + np.exp(-x.numpy()))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert got[0] == 0.5 and got[-1] == 5.0 and got[2] == 2.75
    model, (u, m) = make("EmbeddingDotBias"), batch()  # sigmoid_range(dot + biases), in float64
    w = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    z = (w["u.weight"][u] * w["m.weight"][m]).sum(1) + w["ub.weight"][u, 0] + w["mb.weight"][m, 0]
    want = 0.5 + 4.5 / (1 + np.exp(-z))
    np.testing.assert_allclose(model(u, m).detach().numpy(), want, rtol=1e-6)


def test_initialisation_ranges_and_dropout_only_in_training():
    dot, bias, net = make("EmbeddingDot"), make("EmbeddingDotBias"), make("EmbeddingNet")
    for e in (dot.u, dot.m):
        assert e.weight.shape[1] == K and e.weight.min() >= 0 and e.weight.max() <= 0.05
    assert bias.u.weight.shape == (N_USERS, K) and bias.m.weight.shape == (N_MOVIES, K)
    assert bias.ub.weight.shape == (N_USERS, 1) and bias.mb.weight.shape == (N_MOVIES, 1)
    assert (net.lin1.in_features, net.lin1.out_features, net.lin2.out_features) == (2 * K, 10, 1)
    assert net.drop1.p == 0.05 and net.drop2.p == 0.5  # the lesson's defaults
    for e in (bias.u, bias.m, bias.ub, bias.mb, net.u, net.m):
        assert e.weight.abs().max() <= 0.01
    net, (u, m) = make("EmbeddingNet", p1=0.5, p2=0.5), batch(200)
    assert torch.equal(net.eval()(u, m), net(u, m))
    torch.manual_seed(3)
    a = net.train()(u, m)
    torch.manual_seed(4)
    assert not torch.equal(a, net(u, m))


@pytest.mark.parametrize(
    "name, default", [("EmbeddingDotBias", (0.5, 5.0)), ("EmbeddingNet", (0.0, 5.5))]
)
def test_output_stays_in_y_range(name, default):
    model = make(name).eval()
    assert model.y_range == default
    u, m = batch(50)
    with torch.no_grad():
        for p in model.parameters():  # push the pre-activation far out both ways
            p.mul_(0).add_(torch.randn_like(p) * 30)
        out = model(u, m)
    lo, hi = default
    assert out.min() >= lo and out.max() <= hi
    assert out.min() < lo + 0.1 and out.max() > hi - 0.1  # saturates: the range is really used


@pytest.mark.parametrize("name", ALL)
def test_gradients_match_float64_finite_differences(name):
    """Oracle: torch.autograd.gradcheck, float64 central differences."""
    model = make(name).double().eval()  # eval: dropout would change between the evaluations
    u, m = batch(12)
    y = torch.linspace(0.5, 5.0, 12, dtype=torch.float64)
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # move the embeddings off their tiny initial values so every term matters
        for p in params:
            p.add_(torch.randn(p.shape, dtype=p.dtype, generator=g) * 0.3)

    def loss(*ps):
        return F.mse_loss(functional_call(model, dict(zip(names, ps)), (u, m)), y)

    assert torch.autograd.gradcheck(loss, params, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.fixture(scope="module")
def tiny():
    return data.synthetic(n_users=40, n_movies=50, n_ratings=1500, n_factors=3, noise=0.1, seed=3)


@pytest.mark.parametrize("name", ALL)
def test_each_model_fits_a_tiny_planted_problem(tiny, name):
    torch.manual_seed(0)
    kw = dict(p1=0.0, p2=0.0, nh=32) if name == "EmbeddingNet" else {}
    model = models.MODELS[name](tiny.n_users, tiny.n_movies, 8, **kw)
    opt = torch.optim.Adam(model.parameters(), lr=0.02 if kw else 0.05)
    train.fit(model, tiny, 30, opt, bs=64, seed=0, progress=False, device="cpu")
    u, m, y = tiny.tensors("train")
    mse, variance = train.evaluate(model, u, m, y), float(y.var(unbiased=False))
    assert mse < 0.1 * variance, (name, mse, variance)  # the model and the loop learn
