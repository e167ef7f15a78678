"""Seed 001's generator penalties on tiny batches, against values worked out by hand, and how the
ZDC module combines and switches them."""

import numpy as np
import pytest
import torch

from recogan_app import losses
from recogan_app.config import ZDCConfig
from recogan_app.models.zdc import AuxRegressor, Generator, ZDCGAN


def test_diversity_loss_by_hand():
    z1 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    z2 = torch.tensor([[1.0, 1.0], [1.0, 3.0]])       # mean |dz|: 1 and 1
    f1 = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    f2 = torch.tensor([[2.0, 2.0, 2.0], [1.0, 1.5, 1.0]])  # mean |df|: 2 and 1/6
    s = torch.tensor([0.5, 1.0])
    # per event s·dz/df: 0.5·1/2 = 0.25 and 1·1/(1/6) = 6; the mean is 3.125
    assert losses.diversity_loss(z1, z2, f1, f2, s, eps=0.0).item() == pytest.approx(3.125)
    # the published batch-ratio form would give mean(s)·mean(dz)/mean(df) = 0.75·1/(13/12) ≈ 0.69
    assert losses.diversity_loss(z1, z2, f1, f1, s).item() > 1e6  # collapse is penalised hard


def test_intensity_loss_by_hand():
    real = torch.log1p(torch.tensor([[[0.0, 3.0], [1.0, 0.0]], [[10.0, 0.0], [0.0, 0.0]]]))   # sums 4, 10
    fake = torch.log1p(torch.tensor([[[2.0, 0.0], [0.0, 0.0]], [[5.0, 5.0], [3.0, 0.0]]]))   # sums 2, 13
    assert losses.intensity_loss(fake, real).item() == pytest.approx((2 + 3) / 2, rel=1e-6)


def test_aux_loss_by_hand():
    predicted = torch.tensor([[10.0, 5.0], [0.0, 0.0]])
    target = torch.tensor([[13.0, 1.0], [1.0, 2.0]])
    assert losses.aux_loss(predicted, target).item() == pytest.approx(((9 + 16) + (1 + 4)) / 2)


def batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.log1p(torch.poisson(torch.rand(n, 1, 56, 30, generator=g) * 0.2, generator=g))
    return images, torch.randn(n, 9, generator=g), torch.rand(n, generator=g), torch.rand(n, 2, generator=g) * 20


def test_module_adds_each_penalty_with_its_lambda_and_skips_it_at_zero():
    torch.manual_seed(0)
    config = ZDCConfig(generator_channels=4).for_device(cuda=False)
    module = ZDCGAN(config, AuxRegressor())
    terms = module.generator_loss(*batch())
    assert {"g_adversarial", "g_diversity", "g_intensity", "g_aux", "g_loss"} <= set(terms)
    total = sum(v for k, v in terms.items() if k != "g_loss")
    assert terms["g_loss"].item() == pytest.approx(total.item(), rel=1e-6)
    plain = ZDCGAN(config.updated(lambda_diversity=0, lambda_intensity=0, lambda_aux=0))
    assert set(plain.generator_loss(*batch())) == {"g_adversarial", "g_loss"}
    with pytest.raises(ValueError, match="aux regressor"):
        ZDCGAN(config)


def test_generator_step_moves_the_generator_not_the_frozen_aux():
    torch.manual_seed(1)
    module = ZDCGAN(ZDCConfig(generator_channels=4).for_device(cuda=False), AuxRegressor())
    aux_before = [p.clone() for p in module.aux.parameters()]
    gen_before = [p.clone() for p in module.generator.parameters()]
    opt_g, _ = module.configure_optimizers()
    opt_g.zero_grad()
    module.generator_loss(*batch())["g_loss"].backward()
    opt_g.step()
    assert all(torch.equal(a, b) for a, b in zip(aux_before, module.aux.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(gen_before, module.generator.parameters()))
    assert np.isfinite(module.discriminator_loss(*batch())["d_loss"].item())


def test_fused_generator_draws_the_same_images():
    torch.manual_seed(2)
    generator = Generator(10, 4)
    generator(torch.randn(64, 10), torch.randn(64, 9))  # a training pass: running statistics away from 0 and 1
    conditions = torch.randn(100, 9)
    draw = lambda module: module.sample(conditions, generator=torch.Generator().manual_seed(3))  # noqa: E731
    fused = generator.fused()
    assert not any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d) for m in fused.modules())
    assert torch.allclose(draw(fused), draw(generator), atol=1e-5) and generator.training
