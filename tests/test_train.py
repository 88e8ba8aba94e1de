"""lesson5.train, schedules and inference: the loop against oracles, schedules, save/load, CUDA."""

from __future__ import annotations

import functools
import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lesson5 import data, inference, models, optim, schedules, train
from lesson5 import device as dev


@pytest.fixture(scope="module")
def ds() -> data.Ratings:
    return data.synthetic(n_users=30, n_movies=40, n_ratings=700, n_factors=3, noise=0.2, seed=1)


def bias_model(d: data.Ratings) -> models.EmbeddingDotBias:
    torch.manual_seed(0)
    return models.EmbeddingDotBias(d.n_users, d.n_movies, 5)


def fit(model, d, epochs=1, opt=None, **kw) -> train.History:
    """train.fit on the CPU without a progress bar; plain SGD at 0.1 unless `opt` is given."""
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.1)
    return train.fit(model, d, epochs, opt, **{"progress": False, "device": "cpu", **kw})


def run(d, seed=0, epochs=2, bs=32, data=None, **kw):
    """A fresh bias model fitted with SGD(0.5, momentum 0.9) on `data` (default: `d`)."""
    model = bias_model(d)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    return model, opt, fit(model, d if data is None else data, epochs, opt, bs=bs, seed=seed, **kw)


def recorder(read):
    """A list, and an on_step callback that appends read(opt) to it after every step."""
    seen = []
    return seen, lambda step, model, opt, loss: seen.append(read(opt))


def flat(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def numpy_mse(model, u, m, y) -> float:
    with torch.no_grad():
        return float(((model.eval()(u, m).double().numpy() - y.double().numpy()) ** 2).mean())


def test_fit_equals_a_hand_written_loop_and_on_step_sees_each_update(ds):
    """Oracle: the textbook loop over the same permutations (one seeded randperm per epoch)."""
    seen = []  # what on_step sees: the step, the weights after its update, its loss

    def on_step(step, mdl, o, loss):
        seen.append((step, flat(mdl), loss))

    model, _, hist = run(ds, seed=7, epochs=2, bs=50, on_step=on_step)
    ref = bias_model(ds)
    opt = torch.optim.SGD(ref.parameters(), lr=0.5, momentum=0.9)
    u, m, y = ds.tensors("train")
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(7)
    want, losses = [], []
    for _ in range(2):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 50):  # the last, short batch too
            idx = perm[i : i + 50]
            loss = F.mse_loss(ref(u[idx], m[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            want.append(flat(ref))
            losses.append(loss.item())
    assert [s for s, _, _ in seen] == hist.steps.step.tolist() == list(range(len(losses)))
    assert [x for _, _, x in seen] == hist.steps.loss.tolist() == losses
    assert all(torch.equal(a, b) for (_, a, _), b in zip(seen, want))
    assert torch.equal(flat(model), want[-1])  # nothing after the last step touches the weights
    assert run(ds, seed=8, epochs=2, bs=50)[2].steps.loss.tolist() != losses  # the seed matters

    def with_dropout(global_seed):
        torch.manual_seed(0)
        net = models.EmbeddingNet(ds.n_users, ds.n_movies, 4, p1=0.3, p2=0.5)
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        torch.manual_seed(global_seed)  # the global state differs between the calls; seed wins
        return fit(net, ds, 1, opt, bs=64, seed=5).steps.loss.tolist()

    assert with_dropout(123) == with_dropout(456)


def test_history_columns_and_oracles_and_tuple_data_equals_ratings(ds):
    model, _, hist = run(ds, epochs=3)
    ep, st = hist.epochs, hist.steps
    assert list(ep.columns) == ["epoch", "train_loss", "valid_mse", "valid_rmse", "lr", "seconds"]
    assert list(st.columns) == ["step", "epoch", "loss", "smooth_loss", "lr"]
    # Debiased EWMA, written out in closed form: sum b^(n-i) (1-b) x_i / (1 - b^n).
    x = st.loss.to_numpy()
    w = 0.02 * 0.98 ** np.arange(len(x) - 1, -1, -1)
    assert math.isclose(ep.train_loss.iloc[-1], (w * x).sum() / (1 - 0.98 ** len(x)), rel_tol=1e-9)
    assert ep.train_loss.tolist() == st.groupby("epoch").smooth_loss.last().tolist()
    # Validation MSE, and evaluate in batches of any size, equal a float64 NumPy computation.
    u, m, y = valid = ds.tensors("valid")
    assert math.isclose(ep.valid_mse.iloc[-1], numpy_mse(model, *valid), rel_tol=1e-12)
    fresh = bias_model(ds)  # near-constant output: batches of 7 round as one batch does
    want = numpy_mse(fresh, *valid)
    for bs in (65_536, 7):
        assert math.isclose(train.evaluate(fresh, *valid, bs=bs), want, rel_tol=1e-12)
    with pytest.raises(ValueError, match="empty"):
        train.evaluate(fresh, u[:0], m[:0], y[:0])
    assert np.allclose(ep.valid_rmse, np.sqrt(ep.valid_mse), rtol=1e-15)
    assert (ep.seconds > 0).all()
    tuples = run(ds, epochs=3, data=(ds.tensors("train"), valid))[2]
    assert tuples.steps.loss.tolist() == st.loss.tolist()
    assert tuples.epochs.valid_mse.tolist() == ep.valid_mse.tolist()


def test_continuing_with_set_lr_like_the_lesson_and_its_progress_bar(ds, capsys):
    model, opt, hist = run(ds, epochs=2)
    steps_per_epoch = len(hist.steps) // 2
    train.set_lr(opt, 0.01)
    hist = fit(model, ds, 2, opt, bs=32, seed=1, history=hist, progress=True)
    assert "epoch 3: train_loss" in "".join(capsys.readouterr())
    assert hist.epochs.epoch.tolist() == [0, 1, 2, 3]
    assert hist.epochs.lr.tolist() == [0.5, 0.5, 0.01, 0.01]
    assert hist.steps.step.tolist() == list(range(4 * steps_per_epoch))
    with pytest.raises(ValueError, match="2 learning rates for 1"):
        train.set_lr(opt, [0.1, 0.2])
    # set_lr between two fit calls wins over the rate a first call's scheduler remembered.
    fit(model, ds, 1, opt, bs=256, sched=schedules.CosineRestarts(), seed=0)
    train.set_lr(opt, 0.01)
    hist = fit(model, ds, 1, opt, bs=256, sched=schedules.CosineRestarts(), seed=1)
    assert hist.steps.lr.iloc[0] == 0.01 and opt.param_groups[0]["lr"] == 0.01


# Each case forks off a process that has imported torch but started none of its threads: one torch
# import, not three, and what lesson5's import does happens as it would in a fresh process.
SUBNORMAL_PROBE = """
import os
import torch
for case in ("plain", "lesson5", "keep"):
    if os.fork() == 0:
        if case == "keep":
            os.environ["LESSON5_SUBNORMALS"] = "keep"
        if case != "plain":
            import lesson5.train
        torch.set_num_threads(2)  # so that worker threads, not only the main one, multiply
        x = torch.full((4_000_000,), 1e-40)  # below float32's smallest normal number, 1.2e-38
        print(int(((x * 1.0) != 0).sum()), flush=True)
        os._exit(0)
    assert os.wait()[1] == 0
"""


def test_importing_the_loop_flushes_subnormals_in_every_thread():
    """Oracle: the CPU's own float32 arithmetic on 1e-40, in processes with and without lesson5."""
    if not dev.FLUSHES_SUBNORMALS and os.environ.get("LESSON5_SUBNORMALS") != "keep":
        pytest.skip("this CPU cannot flush subnormals to zero")
    env = {k: v for k, v in os.environ.items() if k != "LESSON5_SUBNORMALS"}
    cmd = [sys.executable, "-c", SUBNORMAL_PROBE]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    # torch alone keeps them (the probe can fail); with lesson5 every thread flushes, workers too
    assert [int(n) for n in out.stdout.split()] == [4_000_000, 0, 4_000_000]


def test_divergence_names_epoch_and_batch(ds):
    per_epoch, batch = math.ceil(len(ds.train_idx) / 32), itertools.count()

    def poisoned(pred, y):  # nan at epoch 1's batch 3
        return F.mse_loss(pred, y) * (float("nan") if next(batch) == per_epoch + 3 else 1.0)

    def poison(step, mdl, o, loss):  # the last update blows the weights up after a finite loss
        if step == per_epoch - 1:
            torch.nn.init.constant_(mdl.u.weight, float("inf"))

    torch.manual_seed(0)
    dot = models.EmbeddingDot(ds.n_users, ds.n_movies, 5)  # no sigmoid: lr 1e6 blows it up alone
    for match, model, kw in [
        (r"loss is nan at epoch 1 \(0-based\), batch 3 of", bias_model(ds), dict(epochs=3, loss_fn=poisoned)),
        ("epoch 0.*lower the learning rate", dot, dict(epochs=2, opt=torch.optim.SGD(dot.parameters(), lr=1e6))),
        # validation catches it
        ("validation MSE is nan after epoch 0", bias_model(ds), dict(on_step=poison)),
    ]:  # fmt: skip
        with pytest.raises(train.DivergenceError, match=match):
            fit(model, ds, bs=32, seed=0, **kw)


def test_bad_arguments_and_data_are_refused_before_any_training(ds):
    model = bias_model(ds)
    before = flat(model).clone()
    (u, m, y), valid = ds.tensors("train"), ds.tensors("valid")
    uv, mv, yv = valid
    n = ds.n_users - 1
    small = models.EmbeddingDotBias(n, ds.n_movies, 5)
    small_before = flat(small).clone()
    empty = models.EmbeddingDot(30, 40, 0)  # no weights for the optimizer: it gets a stand-in
    stand_in = torch.optim.SGD([torch.zeros(1, requires_grad=True)])
    for error, match, call in [
        (ValueError, "epochs >= 1", lambda: fit(model, ds, 0)),
        (TypeError, "sched must be", lambda: fit(model, ds, sched="cosine")),
        (TypeError, "Ratings", lambda: fit(model, "ratings.csv")),
        (ValueError, "train tensors differ in length", lambda: fit(model, ((u, m[:-1], y), valid))),
        (ValueError, "validation set is empty", lambda: fit(model, ((u, m, y), (uv[:0], mv[:0], yv[:0])))),
        (IndexError, rf"user row number {n} is outside the model's {n} users", lambda: fit(small, ds)),
        (IndexError, "movie row number -1",
         lambda: fit(small, ((u.clamp(max=0), m - 1, y), (uv.clamp(max=0), mv, yv)))),
        (ValueError, r"u.weight has no elements \(shape \(30, 0\)\): is n_fac", lambda: fit(empty, ds, 1, stand_in)),
    ]:  # fmt: skip
        with pytest.raises(error, match=match):
            call()
    assert torch.equal(flat(model), before) and torch.equal(flat(small), small_before)


# ---------------------------------------------------------------- schedules
def _lrs(sched, steps_per_epoch: int, epochs: int) -> list[float]:
    """The rate at each step of a run, read off a scheduler built for a one-parameter optimizer."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0, momentum=0.9)
    s = schedules.build(sched, opt, steps_per_epoch, epochs)
    out = []
    for _ in range(steps_per_epoch * epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return out


def test_schedules_in_closed_form(ds):
    f = _lrs(schedules.CosineRestarts(cycle_len=1, cycle_mult=2), steps_per_epoch=10, epochs=7)
    # Cycles of 10, 20, 40 steps start at 0, 10, 30 and restart at the top.
    assert [f[s] for s in (0, 10, 30)] == [1.0, 1.0, 1.0]
    t = np.concatenate([np.arange(n) / n for n in (10, 20, 40)])  # how far into its cycle
    np.testing.assert_allclose(f, (1 + np.cos(np.pi * t)) / 2, rtol=1e-12)
    for bad in (dict(cycle_len=0), dict(cycle_mult=1.5)):
        with pytest.raises(ValueError):
            schedules.CosineRestarts(**bad)
    # One cycle: up for a quarter of the steps, then down to 1 / (div * final_div) of the top.
    f = _lrs(schedules.OneCycle(pct_start=0.25, div=25, final_div=1e5), 100, 2)
    top = f.index(max(f))
    assert math.isclose(f[0], 1 / 25) and math.isclose(max(f), 1.0)
    assert math.isclose(f[-1], 1 / 25 / 1e5, rel_tol=1e-6) and 48 <= top <= 50
    assert all(a <= b for a, b in zip(f[:top], f[1 : top + 1]))
    assert all(a >= b for a, b in zip(f[top:], f[top + 1 :]))
    tiny = _lrs(schedules.OneCycle(), 4, 1)  # a one-step warm-up: torch's 0/0
    assert math.isclose(tiny[0], 1 / 25) and tiny[1] > tiny[2] > tiny[3]
    # A callable multiplies the caller's rate at each step; None leaves it alone.
    _, opt, hist = run(ds, epochs=1, sched=lambda step: 0.5**step)
    st = hist.steps
    assert np.allclose(st.lr, 0.5 * 0.5**st.step, rtol=1e-15, atol=0)
    assert opt.param_groups[0]["lr"] == 0.5  # the caller's rate comes back after the call
    assert (run(ds, epochs=1, sched=None)[2].steps.lr == 0.5).all()


def test_one_cycle_drives_adam_beta1_and_restores_it(ds):
    model = bias_model(ds)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.99))
    betas, on_step = recorder(lambda o: o.param_groups[0]["betas"])
    hist = fit(model, ds, 1, opt, bs=64, sched=schedules.OneCycle(), seed=0, on_step=on_step)
    # Oracle: torch's OneCycleLR stepped alone on a one-parameter Adam.
    ref = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-2, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        ref, max_lr=1e-2, total_steps=len(betas), pct_start=0.25, div_factor=25,
        final_div_factor=1e5, base_momentum=0.85, max_momentum=0.95,
    )  # fmt: skip
    want_b, want_lr = [], []
    for _ in betas:
        want_b.append(ref.param_groups[0]["betas"])
        want_lr.append(ref.param_groups[0]["lr"])
        ref.step()
        sched.step()
    assert betas == want_b and hist.steps.lr.tolist() == want_lr
    assert betas[0][0] == 0.95 and min(b[0] for b in betas) < 0.86
    assert opt.param_groups[0]["betas"] == (0.9, 0.99) and opt.param_groups[0]["lr"] == 1e-2
    moms, on_step = recorder(lambda o: o.param_groups[0]["momentum"])  # and plain SGD gets none
    fit(bias_model(ds), ds, bs=256, sched=schedules.OneCycle(), seed=0, on_step=on_step)
    assert set(moms) == {0}


@pytest.mark.parametrize(
    "name, lr, wd", [("SGD", 0.5, 1e-3), ("Adam", 1e-2, 1e-3), ("AdamW", 1e-2, 0.2)]
)
def test_fit_with_the_from_scratch_and_the_fused_optimizers_equals_torch_optim(ds, name, lr, wd):
    """Oracle: torch.optim, with two parameter groups and one-cycle driving momentum / beta1. The
    recipes ask for fused=True: the same arithmetic in one pass, equal to float32 rounding."""
    out, torch_cls = [], getattr(torch.optim, name)
    kw = dict(momentum=0.9) if name == "SGD" else {}
    for make in (getattr(optim, name), torch_cls, functools.partial(torch_cls, fused=True)):
        model = bias_model(ds)
        opt = make(train.param_groups(model, wd), lr, **kw)
        hist = fit(model, ds, 2, opt, bs=64, sched=schedules.OneCycle(), seed=0)
        out.append((hist.steps.loss.to_numpy(), flat(model)))
    (loss_a, ours), (loss_b, theirs), (_, fused) = out
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
    assert torch.allclose(fused, theirs, rtol=0, atol=1e-6)
    assert not torch.equal(theirs, flat(bias_model(ds)))


def test_param_groups_leave_every_bias_undecayed():
    net = models.EmbeddingNet(5, 6, 3)
    decayed, plain = train.param_groups(net, 0.1)
    names = {id(p): n for n, p in net.named_parameters()}
    want = ["lin1.weight", "lin2.weight", "m.weight", "u.weight"]
    assert sorted(names[id(p)] for p in decayed["params"]) == want
    assert sorted(names[id(p)] for p in plain["params"]) == ["lin1.bias", "lin2.bias"]
    dot = models.EmbeddingDotBias(5, 6, 3)
    dot.user_bias, dot.movie_bias = dot.ub, dot.mb  # found by shape, whatever they are called
    del dot.ub, dot.mb
    decayed, plain = train.param_groups(dot, 0.1)
    assert [tuple(p.shape) for p in decayed["params"]] == [(5, 3), (6, 3)]
    assert [tuple(p.shape) for p in plain["params"]] == [(5, 1), (6, 1)]
    assert (decayed["weight_decay"], plain["weight_decay"]) == (0.1, 0.0)


# ---------------------------------------------------------------- raw ids, save and load
def test_predict_raw_ids_and_unknowns(ds):
    model, _, _ = run(ds, epochs=1)
    raw_u, raw_m = ds.ratings.userId.to_numpy()[:5], ds.ratings.movieId.to_numpy()[:5]
    got = inference.predict(model, ds, raw_u, raw_m)
    with torch.no_grad():
        idx = (torch.as_tensor(ds.user_idx[:5]), torch.as_tensor(ds.movie_idx[:5]))
        want = model.eval()(*idx).double().numpy()
    assert np.array_equal(got, want)
    u2, m2 = np.append(raw_u, 999_999), np.append(raw_m, raw_m[0])
    with pytest.raises(KeyError, match=r"unknown userId .*999999"):
        inference.predict(model, ds, u2, m2)
    assert np.isnan(inference.predict(model, ds, u2, m2, unknown="nan")[-1])
    out = inference.predict(model, ds, u2, m2, unknown="mean")
    assert out[-1] == float(ds.ratings.rating.to_numpy()[ds.train_idx].mean())
    assert np.array_equal(out[:5], want)
    maps = (ds.users_map, ds.movies_map)
    assert inference.predict(model, maps, u2, m2, unknown=3.0)[-1] == 3.0
    with pytest.raises(ValueError, match="needs a Ratings"):
        inference.predict(model, maps, u2, m2, unknown="mean")
    with pytest.raises(ValueError, match="unknown must be"):
        inference.predict(model, ds, u2, m2, unknown="zero")


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_save_load_round_trip(ds, tmp_path, name):
    torch.manual_seed(0)
    model = models.MODELS[name](ds.n_users, ds.n_movies, 6)
    fit(model, ds, 1, torch.optim.Adam(model.parameters(), 1e-2), seed=0)
    path = inference.save_model(tmp_path / "sub" / "model.pt", model, ds)
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left behind
    os.umask(umask := os.umask(0))
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not mkstemp's
    loaded, users_map, movies_map = inference.load_model(path)
    assert type(loaded) is type(model) and not loaded.training
    assert np.array_equal(users_map.ids, ds.users_map.ids)
    assert np.array_equal(movies_map.ids, ds.movies_map.ids)
    raw_u, raw_m = ds.ratings.userId.to_numpy(), ds.ratings.movieId.to_numpy()
    got = inference.predict(loaded, (users_map, movies_map), raw_u, raw_m)
    assert np.array_equal(got, inference.predict(model, ds, raw_u, raw_m))
    assert loaded.mean_rating == float(ds.ratings.rating.to_numpy()[ds.train_idx].mean())


def test_load_rejects_other_files(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.pt is not a lesson5 model file"):
        inference.load_model(junk)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="format tag"):
        inference.load_model(tmp_path / "other.pt")
    with pytest.raises(TypeError, match="can only save"):
        inference.save_model(tmp_path / "x.pt", torch.nn.Linear(2, 1), (None, None))


# ---------------------------------------------------------------- CUDA and threads
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_cpu(ds):
    out = {}
    for device in ("cpu", "cuda"):
        model = bias_model(ds)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        tensors = (ds.tensors("train"), ds.tensors("valid"))
        hist = fit(model, tensors, 2, opt, bs=len(ds.train_idx), seed=0, device=device)
        assert next(model.parameters()).device.type == device
        out[device] = hist.epochs.valid_mse.to_numpy()
    # One full batch per epoch: no shuffling differences, only float rounding.
    np.testing.assert_allclose(out["cuda"], out["cpu"], rtol=1e-4)


def test_small_batches_train_on_one_thread_unless_the_user_chose(ds, monkeypatch, request):
    """Two trainings at once on two cores must not spin two pools each (benchmarks/threads.py)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    request.addfinalizer(functools.partial(torch.set_num_threads, torch.get_num_threads()))
    before = 2  # as torch chose it on two cores (`make test` runs with OMP_NUM_THREADS=1)
    torch.set_num_threads(before)
    monkeypatch.setattr(dev, "_TORCH_THREADS", before)

    def used(threads=None):
        seen, spy = recorder(lambda o: torch.get_num_threads())
        run(ds, epochs=1, on_step=spy, threads=threads)
        assert torch.get_num_threads() == before  # restored afterwards
        return set(seen)

    assert used() == {1} and used(2) == {2}
    for bs, want in ((64, 1), (dev.SMALL_BATCH, before)):  # a big batch keeps every thread
        with dev.training_threads(None, bs, torch.device("cpu")) as n:
            assert n == want == torch.get_num_threads()
    monkeypatch.setattr(dev, "_TORCH_THREADS", before + 1)  # the user set their own count
    assert used() == {before}
    with pytest.raises(ValueError, match="threads=0"):
        run(ds, epochs=1, threads=0)
