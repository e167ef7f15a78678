import numpy as np
import pytest
import torch
from scipy import stats

from recogan_app import losses
from recogan_app.losses import MarginalTargets


def test_soft_ecdf_tends_to_the_empirical_cdf():
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    grid = torch.tensor([[-1.0], [0.5], [1.5], [10.0]])
    cdf = losses.soft_ecdf(x, grid, temperature=1e-3)
    assert torch.allclose(cdf[:, 0], torch.tensor([0.0, 0.25, 0.5, 1.0]), atol=1e-6)


def test_ks_penalty_tracks_scipy_ks_and_has_a_gradient():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(20_000, 2, generator=g)
    targets = MarginalTargets.from_data(real, n_grid=256, temperature=0.01)
    fake = (torch.randn(20_000, 2, generator=g) + torch.tensor([0.3, 0.0])).requires_grad_(True)
    penalty = losses.ks_penalty(fake, targets)
    expected = np.mean([stats.ks_2samp(real[:, j].numpy(), fake[:, j].detach().numpy()).statistic for j in range(2)])
    assert penalty.item() == pytest.approx(expected, abs=0.01)
    penalty.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_range_penalty_by_hand():
    targets = MarginalTargets(grid=torch.zeros(1, 2), cdf=torch.zeros(1, 2), low=torch.tensor([0.0, -1.0]),
                              high=torch.tensor([1.0, 1.0]), correlation=torch.eye(2), temperature=0.1,
                              knots=torch.zeros(2, 2))
    fake = torch.tensor([[0.5, 0.0], [1.5, -3.0]])  # out by 0.5 (feature 0) and 2.0 (feature 1)
    assert losses.range_penalty(fake, targets).item() == pytest.approx((0.5 + 2.0) / 4)


def test_correlation_penalty_zero_on_target_and_positive_off_it():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(50_000, 1, generator=g)
    real = torch.cat([a, a + 0.5 * torch.randn(50_000, 1, generator=g)], dim=1)
    targets = MarginalTargets.from_data(real)
    assert losses.correlation_penalty(real, targets).item() == pytest.approx(0.0, abs=1e-5)  # float32
    independent = torch.randn(50_000, 2, generator=g)
    rho = np.corrcoef(real.numpy().T)[0, 1]
    assert losses.correlation_penalty(independent, targets).item() == pytest.approx(rho, abs=0.02)


@pytest.mark.parametrize("kind", losses.ADVERSARIAL)
def test_adversarial_losses_by_hand(kind):
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    d = losses.discriminator_loss(kind, real, fake, label_smoothing=0.1).item()
    g = losses.generator_adversarial_loss(kind, fake).item()
    if kind == "bce":
        sp = lambda v: np.log1p(np.exp(v))  # noqa: E731  softplus
        real_np, fake_np = np.array([2.0, 0.0]), np.array([-1.0, 1.0])
        expected_d = np.mean(0.9 * sp(-real_np) + 0.1 * sp(real_np)) + np.mean(sp(fake_np))
        assert d == pytest.approx(expected_d, rel=1e-6)
        assert g == pytest.approx(np.mean(sp(-fake_np)), rel=1e-6)
    elif kind == "wgan-gp":
        assert d == pytest.approx(0.0 - 1.0) and g == pytest.approx(0.0)
    else:
        assert d == pytest.approx((0 + 1) / 2 + (0 + 2) / 2) and g == pytest.approx(0.0)


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    w = torch.tensor([3.0, 4.0])  # ‖∇‖ = 5 everywhere → penalty (5 − 1)² = 16
    critic = lambda x: x @ w  # noqa: E731
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    assert losses.gradient_penalty(critic, real, fake).item() == pytest.approx(16.0)


def test_to_physical_interpolates_the_tabulated_inverse_with_a_gradient():
    import pandas as pd

    inverse = lambda z: pd.DataFrame(np.exp(z))  # noqa: E731  a non-linear 'preprocessing inverse'
    targets = MarginalTargets.from_data(torch.randn(5000, 2), inverse=inverse)
    z = torch.tensor([[-1.3, 0.0], [2.2, 0.7]], requires_grad=True)
    x = losses.to_physical(z, targets.knots)
    k = losses.KNOT_RANGE  # the knots are centred and scaled per feature (Pearson does not see it)
    centre, spread = (np.exp(k) + np.exp(-k)) / 2, np.exp(k) - np.exp(-k)
    assert torch.allclose(x, (torch.exp(z) - centre) / spread, rtol=2e-4, atol=1e-7)
    x.sum().backward()
    assert torch.allclose(z.grad, torch.exp(z.detach()) / spread, rtol=2e-2)


def test_correlation_of_values_near_1e30_stays_finite():
    """float32 covariances of such values overflowed: every training step was rolled back."""
    import pandas as pd

    g = torch.Generator().manual_seed(3)
    real = torch.randn(20_000, 2, generator=g)
    real[:, 1] = 0.5 * real[:, 0] + 0.9 * real[:, 1]
    inverse = lambda z: pd.DataFrame(np.asarray(z, np.float64) * np.array([1.0, 1e30]))  # noqa: E731
    targets = MarginalTargets.from_data(real, inverse=inverse)
    assert targets.correlation[0, 1].item() == pytest.approx(np.corrcoef(real.numpy().T)[0, 1], abs=1e-3)
    penalty = losses.correlation_penalty(real, targets)
    assert torch.isfinite(penalty) and penalty.item() == pytest.approx(0.0, abs=1e-3)


def test_correlation_penalty_acts_in_physical_units():
    import pandas as pd

    g = torch.Generator().manual_seed(2)
    a = torch.randn(100_000, 1, generator=g)
    real = torch.cat([a, 0.6 * a + 0.8 * torch.randn(100_000, 1, generator=g)], dim=1)
    inverse = lambda z: pd.DataFrame(np.exp(z))  # noqa: E731
    targets = MarginalTargets.from_data(real, inverse=inverse)
    physical = np.exp(real.numpy())
    assert targets.correlation[0, 1].item() == pytest.approx(np.corrcoef(physical.T)[0, 1], abs=0.01)
    assert targets.correlation[0, 1].item() < 0.6 - 0.05  # exp() weakens the Pearson coefficient
    assert losses.correlation_penalty(real, targets).item() == pytest.approx(0.0, abs=0.01)


def test_correlation_and_range_targets_use_every_row():
    torch.manual_seed(0)
    x = torch.randn(5000, 1)
    tail = torch.distributions.StudentT(2.0).sample((5000, 1))
    data = torch.cat([x, x + tail], dim=1).clamp(-5.5, 5.5)  # tail-dominated ρ, inside the knots' range
    targets = MarginalTargets.from_data(data, max_rows=200, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(targets.correlation.numpy(), np.corrcoef(data.numpy().T.astype(np.float64)),
                               atol=1e-4)
    assert torch.equal(targets.low, data.min(dim=0).values) and torch.equal(targets.high, data.max(dim=0).values)


@pytest.mark.parametrize("kind", losses.ADVERSARIAL)
def test_weighted_real_terms_equal_repeated_rows(kind):
    """Integer event weights count a real row as often as its weight: the weighted discriminator
    loss, soft ECDF and correlation target equal those of the rows repeated."""
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(50, generator=generator), torch.randn(30, generator=generator)
    counts = torch.randint(0, 4, (50,), generator=generator).double()
    repeated = real.repeat_interleave(counts.long())
    weighted = losses.discriminator_loss(kind, real, fake, label_smoothing=0.1, weights=counts)
    expected = losses.discriminator_loss(kind, repeated, fake, label_smoothing=0.1)
    assert float(weighted) == pytest.approx(float(expected), rel=1e-6)
    rows = torch.randn(50, 3, generator=generator) @ torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
    grid = torch.linspace(-2, 2, 9).unsqueeze(1).repeat(1, 3)
    torch.testing.assert_close(losses.soft_ecdf(rows, grid, 0.1, counts.float()),
                               losses.soft_ecdf(rows.repeat_interleave(counts.long(), 0), grid, 0.1))
    torch.testing.assert_close(MarginalTargets.from_data(rows, weights=counts.float()).correlation,
                               MarginalTargets.from_data(rows.repeat_interleave(counts.long(), 0)).correlation,
                               atol=1e-5, rtol=1e-5)
