"""The DEFT comparison's method names, as plain data: the baselines' registry imports torch, which a CLI's --help
should not wait for (a test checks BASELINE_NAMES against `deft.baselines.BASELINES`)."""

BASELINE_NAMES = ("dps", "pigdm", "ddrm", "ddnm", "reddiff")  # the registry's keys, in its order
METHODS = ("deft", "amortised", *BASELINE_NAMES)
TRAINED = {"deft": "--head", "amortised": "--conditional"}  # methods that sample from a model trained here
