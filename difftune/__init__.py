"""Diff-Tuning (Zhong et al., NeurIPS 2024): retention pre-sampling and the chain-of-forgetting objective.

Built on the shared core in `tunebench` (datasets, fixed DiT, training loop, samplers);
see docs/difftune.md and docs/architecture.md.
"""
