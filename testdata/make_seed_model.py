"""Write testdata/torch/seed_shufflenet.prm: the seed's checkpoint in small.

The seed fine-tunes a torchvision CNN with a 2-class head and saves its
state_dict with `torch.save(params, "net.prm", pickle_protocol=4)`. resnet18
(45 MB) is too big to commit, so this is torchvision's shufflenet_v2_x0_5 with
a 2-class head (1.4 MB), the smallest torchvision family member: random
weights from a fixed seed, BatchNorm statistics randomised (so that a wrong
epsilon or statistic order shows in the outputs), saved exactly as the seed
saves. `seed_shufflenet.input.npy` is a fixed 1x3x112x112 input (export with `--input-size 112,112`) and
`seed_shufflenet.output.npy` what torch computes for it in eval mode: the
reference for `netport verify --reference`.

Run through `cargo xtask fixtures` (the peer venv, working directory at the
repo root). Deterministic: an unchanged script gives no diff.
"""

import numpy as np
import torch
import torchvision

OUT = "testdata/torch/seed_shufflenet"


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = torchvision.models.shufflenet_v2_x0_5(num_classes=2)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    net.eval()
    params = net.state_dict()
    torch.save(params, OUT + ".prm", pickle_protocol=4)
    x = torch.from_numpy(np.random.RandomState(0).rand(1, 3, 112, 112).astype(np.float32))
    with torch.no_grad():
        y = net(x)
    np.save(OUT + ".input.npy", x.numpy())
    np.save(OUT + ".output.npy", y.numpy())


if __name__ == "__main__":
    main()
