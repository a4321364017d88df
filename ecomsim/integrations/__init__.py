"""Glue to other libraries' training frameworks, one module each, imported only when asked for.

``ecomsim.integrations.rllib``: Ray RLlib (``pip install -e ".[rllib]"``). Nothing else in
ecomsim imports these modules, so their frameworks stay optional.
"""
