"""The FID settings the CLIs show as flag defaults, as plain data: importing torch_fidelity imports
torch, which --help should not wait for (`benchmarks.fidelity` takes them from here)."""

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name in the torch hub cache
BATCH_SIZE = 64  # torch-fidelity's DEFAULTS["batch_size"] (a test checks it); 32 to 256 ran equally fast on 2 cores
# Groups of FID's jackknife interval (benchmarks.fid_interval) per extractor kind: 50 for the 128-d local features
# (one FID without each group of a fiftieth of the images, ~2 ms each for 500 images on one core); none for
# Inception, whose 2048-d features at paper scale's 10,000 samples cost ~9 s per FID on one core (pass
# --jackknife-groups G to ask for one anyway).
FID_JACKKNIFE_GROUPS = {"local": 50, "inception": 0}
