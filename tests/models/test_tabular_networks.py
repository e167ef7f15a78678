import torch

from recogan_app.config import TabularConfig
from recogan_app.losses import MarginalTargets
from recogan_app.models.latent import NOISE_BLOCK, block_seed
from recogan_app.models.tabular import Discriminator, Generator, TabularGAN


def test_shapes_and_architecture_follow_the_config():
    config = TabularConfig(latent_dim=6, generator_widths=[20, 30, 40], discriminator_widths=[25, 15])
    data = torch.randn(500, 5)
    gan = TabularGAN(5, config, MarginalTargets.from_data(data))
    assert sum(isinstance(m, torch.nn.Linear) for m in gan.generator.net) == 4
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in gan.generator.net) == 3
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in gan.discriminator.net)
    assert gan.generator(torch.randn(7, 6)).shape == (7, 5)
    assert gan.discriminator(torch.randn(7, 5)).shape == (7,)
    assert gan.sample(1001, seed=0).shape == (1001, 5)


def test_fused_generator_gives_the_same_outputs():
    torch.manual_seed(0)
    g = Generator(8, 4, (16, 16, 16))
    for _ in range(3):  # give batch norm non-trivial running statistics
        g(torch.randn(64, 8) * 3 + 1)
    g.eval()
    z = torch.randn(100, 8)
    fused = g.fused()
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in fused)
    assert torch.allclose(fused(z), g(z), atol=1e-5)


def test_losses_are_finite_and_penalties_follow_their_lambdas():
    data = torch.randn(1000, 3)
    targets = MarginalTargets.from_data(data)
    for kind in ("bce", "wgan-gp", "hinge"):
        gan = TabularGAN(3, TabularConfig(adversarial=kind, lambda_corr=0.0), targets)
        d, g = gan.discriminator_loss(data[:64]), gan.generator_loss(data[:64])
        assert torch.isfinite(d["d_loss"]) and torch.isfinite(g["g_loss"])
        assert ("d_gradient_penalty" in d) == (kind == "wgan-gp")
        assert "g_corr" not in g and {"g_ks", "g_range"} <= set(g)
    assert isinstance(Discriminator(3).net[0], torch.nn.Linear)


def test_sampled_rows_depend_only_on_seed_and_position():
    torch.manual_seed(0)
    g = Generator(4, 3, (8, 8, 8))
    rows = g.sampler()
    n = 2 * NOISE_BLOCK + 100  # spans three noise blocks
    whole = rows(7, 0, n)
    pieces = torch.cat([rows(7, a, min(a + 5000, n)) for a in range(0, n, 5000)])
    assert torch.equal(whole, pieces)
    assert torch.equal(rows(7, NOISE_BLOCK - 3, NOISE_BLOCK + 3), whole[NOISE_BLOCK - 3:NOISE_BLOCK + 3])
    assert not torch.equal(rows(8, 0, 10), whole[:10])
    assert rows(7, 5, 5).shape == (0, 3)
    assert g.training  # the live generator is not switched to eval mode by sampling


def test_sampled_rows_are_the_generator_applied_to_the_block_noise():
    """The buffered passes and the transposed output layer compute what the network computes."""
    torch.manual_seed(1)
    g = Generator(6, 5, (16, 16))
    g(torch.randn(64, 6))  # non-trivial batch-norm statistics
    rows = g.sampler()(3, 0, NOISE_BLOCK + 10)
    z = torch.cat([torch.randn(NOISE_BLOCK, 6, generator=torch.Generator().manual_seed(block_seed(3, b)))
                   for b in (0, 1)])[:NOISE_BLOCK + 10]
    with torch.no_grad():
        expected = g.eval()(z)
    torch.testing.assert_close(rows, expected, rtol=1e-5, atol=1e-5)
    assert rows[:, 2].is_contiguous()  # one contiguous column per feature, as the inverse reads them
