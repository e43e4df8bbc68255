"""tunebench's shared diffusion core: datasets, the fixed diffusers DiT, training, sampling and safe I/O.

Both method packages (`difftune`, `deft`) and `benchmarks` import from here, so there is one copy of each piece.
"""

import os

# Nothing in this suite downloads at run time. Set before diffusers / huggingface_hub are imported (they read it
# once), so a missing model fails at once with our message instead of after ~23 s of network retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

__version__ = "0.1.0"
