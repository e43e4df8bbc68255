"""The FID settings the CLIs show as flag defaults, as plain data: importing torch_fidelity imports
torch, which --help should not wait for (`benchmarks.fidelity` takes them from here)."""

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name in the torch hub cache
BATCH_SIZE = 64  # torch-fidelity's DEFAULTS["batch_size"] (a test checks it); 32 to 256 ran equally fast on 2 cores
# Resamples of the FID bootstrap interval (benchmarks.fid_bootstrap) per extractor kind: 500 for the 128-d local
# features (~2 ms each for 500 images on one core, ~1 s in all; beside its upward bias, docs/fid.md, more resamples
# would sharpen nothing that matters); none for Inception, whose 2048-d features at paper scale's 10,000 samples
# cost ~9 s per resample on one core (pass --bootstrap N to ask for one anyway).
FID_BOOTSTRAP = {"local": 500, "inception": 0}
BOOTSTRAP_SEED = 0  # the resampling generator's seed: the interval is reproducible
