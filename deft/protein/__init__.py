"""DEFT for protein motif scaffolding: a Cα backbone DDPM prior, DEFT heads, baselines and folding-free metrics."""
