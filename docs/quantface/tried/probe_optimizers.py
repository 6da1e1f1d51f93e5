"""The scratch probe behind docs/quantface/tried/probe_seed1_*.txt (issue 14, before the held-out split
was added to quantface_mnist.py): seed 1 (the worst seed of the previous run), one model, one source, the
bit widths given; PTQ, one pass of Adam at lr 1e-4 (the example's QAT) and one pass of QuantFace's own
optimizer (its public training script: SGD, Nesterov momentum 0.9, lr 0.1 * batch / 512, weight decay 5e-4).

    python probe_optimizers.py SEED MODEL SOURCE BITS     # e.g. 1 student actmax 8,4

The paths are those of the run it served (/tmp/s12/...: the models of mnist_teacher_student.py --seeds
0,1,2 and the pools of data_free_kd.py). Columns: the QuantFace loss on 5,000 held-out images of the source
(rng 123; never trained on), the top-1 agreement with the float model there, the test accuracy (looked at
here, as a diagnosis; the example never chooses by it), and "drift": the L2 norm of the change of all
the weights, ||theta_QAT - theta_fp||_2, over every parameter.

What it showed (probe_seed1_actmax.txt, probe_seed1_deepinversion.txt): at w8a8 PTQ had the lowest
held-out loss (actmax pool: PTQ 0.00025, Adam 0.00035, SGD 0.00094) -- the pass moved the weights
(drift 0.22 with Adam, 0.31 with SGD) without bringing the copy closer to its model; at w4a4 Adam
lowered it (0.069 -> 0.046). QuantFace's SGD moved the weights furthest (drift 0.78 and 2.15 on the
DeepInversion pool): our loss sums the embedding's entries where QuantFace's averages them, so its
learning rate is too large here; it was not adopted. The rule that came out of it, the lowest held-out
loss among PTQ and the pass's checkpoints, is quantface_mnist.py's "QAT, validated".
"""

import copy
import sys
import time
from argparse import Namespace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import quantface_mnist as Q  # noqa: E402
from common import DataLoader, evaluate, fit  # noqa: E402

import minikd as mk  # noqa: E402
from minikd import optim, quant  # noqa: E402

seed, model_name, source = int(sys.argv[1]), sys.argv[2], sys.argv[3]
bit_widths = [int(b) for b in sys.argv[4].split(",")]
paths = dict(actmax=f"/tmp/s12/am/pool_actmax_seed{seed}.npz",
             deepinversion=f"/tmp/s12/di/pool_deepinversion_seed{seed}.npz", generator="/tmp/s12/df/generator.npz")
x_test, y_test, x_train = Q.load_test(Namespace(real=True, data_dir="/work/shared/data/mnist", quick=False))
images = x_train if source == "real" else Q.load_pool(Path(paths[source]), source, 30720, seed)
perm = np.random.default_rng(123).permutation(len(images))
held, pool = images[perm[:5000]], images[perm[5000:]]
fp = Q.MODELS[model_name]()
fp.load_state_dict(Q.weights_of(f"/tmp/s12/ts/{model_name}_seed{seed}.npz"))
fp.eval()
calib, train = Q.cycled(pool, 640, seed), Q.cycled(pool, 20000, seed + 1)
batches = [mk.tensor(calib[i:i + 64]) for i in range(0, 640, 64)]


def fidelity(m):
    """(mean QuantFace loss, top-1 agreement) against the float model on the held-out images."""
    m.eval()
    total, agree = 0.0, 0
    with mk.no_grad():
        for a in range(0, len(held), 500):
            x = mk.tensor(held[a:a + 500])
            lq, fq = m(x, return_features=True)
            lf, ff = fp(x, return_features=True)
            total += float(quant.quantface_loss(lq, fq, lf, ff, T=3.0).item()) * len(x)
            agree += int((lq.numpy().argmax(1) == lf.numpy().argmax(1)).sum())
    return total / len(held), agree / len(held)


def qat(opt_name, bits):
    """One pass of QAT with Adam (the example's) or QuantFace's SGD; the model and its drift."""
    q = quant.prepare_qat(copy.deepcopy(fp), w_bits=bits, a_bits=bits)
    opt = (optim.Adam(q.parameters(), lr=1e-4) if opt_name == "adam" else
           optim.SGD(q.parameters(), lr=0.1 * 64 / 512, momentum=0.9, nesterov=True, weight_decay=5e-4))
    loader = DataLoader(train, np.zeros(len(train), dtype=np.int64), 64, shuffle=True, seed=seed)
    fit(q, opt, Q.quantface_step(fp, 3.0), loader, progress=False)
    drift = np.sqrt(sum(float(((a.numpy() - b.numpy()) ** 2).sum()) for a, b in zip(q.parameters(), fp.parameters())))
    return q, drift


for b in bit_widths:
    ptq = quant.quantize_model(fp, w_bits=b, a_bits=b, calibration_batches=batches)
    loss, agree = fidelity(ptq)
    print(f"{model_name} s{seed} {source} w{b}a{b} PTQ   heldout loss {loss:.5f} agree {agree:.4f} "
          f"test {evaluate(ptq, x_test, y_test):.4f}", flush=True)
    for o in ("adam", "sgd"):
        start = time.time()
        q, drift = qat(o, b)
        loss, agree = fidelity(q)
        print(f"{model_name} s{seed} {source} w{b}a{b} {o:5s} heldout loss {loss:.5f} agree {agree:.4f} "
              f"test {evaluate(q, x_test, y_test):.4f} drift {drift:.4f} ({time.time() - start:.0f}s)", flush=True)
