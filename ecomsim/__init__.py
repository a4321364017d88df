"""ecomsim: a Gymnasium e-commerce simulator scored by simulated conversion.

``import ecomsim`` registers ``ecomsim/Recommend-v0`` and ``ecomsim/Slate-v0``.
"""

from ecomsim.catalog import Catalog, load_catalog, make_reference_catalog
from ecomsim.config import EnvConfig
from ecomsim.registration import ENV_IDS, register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["Catalog", "EnvConfig", "ENV_IDS", "load_catalog", "make_reference_catalog", "register_envs", "__version__"]
