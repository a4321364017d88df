"""Conditional tabular GAN for item catalogs, and its fidelity and privacy checks.

``CatalogGAN.load()`` gives the shipped generator; ``sample(num_items, seed,
category_mix, price_band)`` draws a validated :class:`ecomsim.catalog.Catalog`.
Training: :func:`generators.train.train_gan` (``scripts/train_gan.py``); report:
``scripts/catalog_report.py``. Imports point one way: ``generators -> ecomsim``.
"""

from generators.sampler import CatalogGAN

__all__ = ["CatalogGAN"]
