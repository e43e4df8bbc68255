"""DEFT (Denker et al., NeurIPS 2024): learning the generalised h-transform on a frozen diffusion model.

Built on the shared core in `tunebench` (datasets, models, training loop, samplers);
see docs/deft.md and docs/architecture.md.
"""
