"""The torch-fidelity settings the FID CLIs show as flag defaults, as plain data: importing torch_fidelity imports
torch, which --help should not wait for (`benchmarks.fidelity` takes them from here)."""

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name in the torch hub cache
BATCH_SIZE = 64  # torch-fidelity's DEFAULTS["batch_size"] (a test checks it); 32 to 256 ran equally fast on 2 cores
