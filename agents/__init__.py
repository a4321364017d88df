"""ecomsim agents: baselines, SB3 training glue, evaluation and callbacks."""
