"""Customers over time: return visits, churn, retention levers, calibrated on real repeat buying.

The session core simulates one visit; this package owns the calendar.

* ``params``: the lifecycle equations (module docstring, term for term) and :class:`LifecycleParams`.
* ``model``: customer state in arrays (:class:`Customers`) and the visit step (:class:`Lifecycle`).
* ``returns``: the return-time draw (visit and churn hazards, messages on the way).
* ``entry``: customers enter at a first purchase, drawn by selection on real first visits.
* ``visits``: the :class:`VisitSimulator` interface (context in, outcome summary out), coupons and carried carts.
* ``sessions``: visits as real sessions of the batched core; ``emulator``: a fast fitted emulator of them.
* ``cohort``: simulate a cohort over the calendar and compare it with a real one.
* ``calibration``: simulated method of moments on a calibration window; ``bgnbd``: the BG/NBD reference model;
  ``activity``: the model's who-buys-again score; ``report``: the CDNOW figures (``cdnow.*`` keys).
* ``retention``: the ``ecomsim/Retention-v0`` env (single and native vector), on ``retention_batch`` (customers
  stepped together) and ``retention_config`` (options, action encoding); ``strategies``: what a visit's session
  recommends (popularity, relevance, price fit, margin).
"""
